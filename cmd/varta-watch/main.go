// Command varta-watch is the VLP liveness observer: it receives heartbeat
// frames from agents over a Unix datagram socket (and, when asked, plain
// or secure UDP), raises a stall when a pid goes silent, runs a recovery
// command for it, and writes an event file, an audit log and Prometheus
// metrics.
//
// This file only turns flags into a poll.Config and exit codes: 0 clean
// exit, 1 start-up or runtime failure, 2 bad usage.
package main

import (
	"errors"
	"io"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// Set by the release build (-ldflags -X).
var (
	version = "dev"
	commit  = "unknown"
)

func main() {
	if len(os.Args) < 2 || !isSubcommand(os.Args[1]) {
		tuneRuntime()
	}
	os.Exit(run(os.Args[1:], os.Stdout, logOutput()))
}

// logOutput is standard error opened so that a reader that stops (a stuck
// log collector) costs dropped, counted log lines rather than a blocked
// loop; plain os.Stderr if that cannot be done (no /proc, say).
func logOutput() io.Writer {
	if w, err := poll.OpenLogOutput(2); err == nil {
		return w
	}
	return os.Stderr
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == auditSubcommand {
		return auditCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == resetReasonSubcommand {
		return resetReasonCommand(args[1:], stdout, stderr)
	}
	if len(args) > 0 && isControlCommand(args[0]) {
		return controlCommand(args[0], args[1:], stdout, stderr)
	}
	s, err := parse(args)
	switch {
	case errors.Is(err, cli.ErrHelp):
		io.WriteString(stdout, helpText())
		return 0
	case err != nil:
		io.WriteString(stderr, "varta-watch: "+err.Error()+"; see --help\n")
		return 2
	case s.version:
		io.WriteString(stdout, "varta-watch "+version+" commit "+commit+" "+runtime.GOOS+"/"+runtime.GOARCH+" "+runtime.Version()+"\n")
		return 0
	}
	loadErr := s.load()
	if s.checkConfig {
		return checkConfig(s, loadErr, stdout, stderr)
	}
	if err := loadErr; err != nil {
		var ue *usageError
		if errors.As(err, &ue) { // a value only checkable once read, such as a command line's quoting
			io.WriteString(stderr, "varta-watch: "+err.Error()+"; see --help\n")
			return 2
		}
		io.WriteString(stderr, "varta-watch: "+err.Error()+"\n")
		return 1
	}
	s.cfg.Log, s.cfg.Version = stderr, version
	if s.logSyslog {
		w, err := poll.OpenSyslog(s.syslogPath, os.Getpid(), func() int64 { return time.Now().UnixNano() })
		if err != nil {
			io.WriteString(stderr, "varta-watch: "+err.Error()+"\n")
			return 1
		}
		defer w.Close()
		s.cfg.Log = w
	}
	if s.signalModeSet { // the one line the flag's meaning comes down to here
		l := poll.NewLogger(s.cfg.Log)
		l.SetTimestamps(s.cfg.LogTimestamps)
		l.Info("--signal-handler-mode " + s.signalMode + " has no effect: it picks how the Rust observer installs its " +
			"signal handlers, and here Go's runtime installs them (os/signal)")
	}
	applyTestHooks(s)
	if err := poll.Run(s.cfg); err != nil {
		io.WriteString(stderr, "varta-watch: "+err.Error()+"\n")
		return 1
	}
	return 0
}

// load reads the files the flags name (recovery command, token, keys); their
// failures are start-up failures (exit 1), not usage errors.
func (s *settings) load() error {
	if err := s.ops.load(&s.cfg); err != nil {
		return err
	}
	if s.recoveryExec != "" || s.recoveryFile != "" {
		var cmd recovery.Command
		var err error
		if s.recoveryFile != "" {
			cmd, err = recovery.LoadCommandFile(s.recoveryFile)
		} else {
			cmd, err = recovery.ParseCommand(s.recoveryExec)
			if errors.Is(err, recovery.ErrCommandSyntax) {
				return badErr("recovery-exec", err) // the flag's value is malformed: a usage error
			}
		}
		if err != nil {
			return err
		}
		if err := s.recoveryConfig(cmd); err != nil {
			return err
		}
	}
	if err := s.loadAgents(); err != nil { // agents.go
		return err
	}
	if err := s.esc.load(&s.cfg); err != nil {
		return err
	}
	if s.promAddr != "" {
		m := &poll.MetricsConfig{Addr: s.promAddr, Limit: s.promLimit}
		if s.promToken != "" {
			tok, err := vlp.ReadSecretFile("token file", s.promToken, 4096)
			if err != nil {
				return &loadError{"prom-token-file", err}
			}
			if m.Token = trimToken(tok); len(m.Token) == 0 {
				return &loadError{"prom-token-file", errors.New("token file " + s.promToken + ": holds no token; write the bearer token on one line")}
			}
		}
		s.cfg.Metrics = m
	}
	return s.loadUDP()
}

// recoveryConfig is the recovery configuration the --recovery-* flags
// give, with cmd as the command of every agent without its own (empty:
// none, when only the agents file declares commands).
func (s *settings) recoveryConfig(cmd recovery.Command) error {
	s.cfg.Recovery = &recovery.Config{Command: cmd, Capacity: s.cfg.TrackerCapacity,
		MaxConcurrent: min(s.maxConcurrent, s.cfg.TrackerCapacity),
		Debounce:      s.debounce, Timeout: s.recTimeout, Env: s.recoveryEnv,
		InheritEnv: s.inheritEnv, CaptureBytes: s.captureBytes, AuditFile: s.auditFile,
		AuditSyncEvery: s.auditSyncEvery, AuditMaxBytes: s.auditMaxBytes, AuditSyncInterval: s.auditSyncInterval,
		AuditFsyncBudget: s.auditFsyncBudget, AuditRotationBudget: s.auditRotationBudget, DryRun: s.dryRun}
	if s.recoveryUser != "" {
		cred, err := lookupUser(s.recoveryUser)
		if err != nil {
			return &loadError{"recovery-user", err}
		}
		s.cfg.Recovery.Credential = cred
	}
	return nil
}

// trimToken drops surrounding white space and a trailing newline.
func trimToken(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

// auditCommand implements `varta-watch audit verify FILE`
// (cmd/varta-watch/README.md §6).
func auditCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) != 2 || args[0] != "verify" {
		io.WriteString(stderr, "varta-watch: usage: varta-watch audit verify FILE\n")
		return 2
	}
	path := args[1]
	s, err := recovery.VerifyAudit(path)
	if err != nil {
		io.WriteString(stderr, "varta-watch: audit verify: "+err.Error()+"\n")
		return 1
	}
	io.WriteString(stdout, auditSummary(path, s)+"\n")
	return 0
}

// auditSummary is the one line `audit verify` prints for an intact log.
func auditSummary(path string, s recovery.AuditSummary) string {
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	line := path + ": intact, " + strconv.Itoa(s.Records) + " records"
	if s.Records > 0 {
		line += " (seq " + u(s.FirstSeq) + ".." + u(s.LastSeq) + ")"
	}
	if s.Layout == recovery.LayoutKV {
		return line + " in the earlier key=value layout, which had no checkpoint: records cut from the end would not show"
	}
	if s.Gaps > 0 {
		line += ", " + u(s.Gaps) + " seqs missing between records (lost when written, each a counted failure)"
	}
	if s.Unchained > 0 {
		line += ", " + strconv.Itoa(s.Unchained) + " records without a chain value (shape and seq checked only)"
	}
	if s.V1Lines > 0 {
		line += ", " + strconv.Itoa(s.V1Lines) + " schema v1 lines before the v2 header not checked"
	}
	cp := recovery.CheckpointPath(path)
	if s.Checkpoint == recovery.CheckpointAbsent {
		return line + "; no checkpoint " + cp + ": records cut from the end would not show"
	}
	line += "; checkpoint " + cp + " matches seq " + u(s.CheckpointSeq)
	if s.LastSeq > s.CheckpointSeq {
		line += " (records after it not yet synced when it was written)"
	}
	return line
}
