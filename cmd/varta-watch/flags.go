package main

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/recovery"
	"golang.org/x/sys/unix"
)

// usageError is a bad flag, value or combination: one line, exit 2. flag
// names the flag at fault ("" for a stray argument); err, when set, is the
// cause (a *cli.Error from the parser, ...), reachable with errors.Is/As.
type usageError struct {
	flag string
	msg  string
	err  error
}

func (e *usageError) Error() string { return e.msg }
func (e *usageError) Unwrap() error { return e.err }

func bad(flagName, what string) error {
	return &usageError{flag: flagName, msg: "--" + flagName + ": " + what}
}

// badErr is bad with a cause kept in the chain.
func badErr(flagName string, err error) error {
	return &usageError{flag: flagName, msg: "--" + flagName + ": " + err.Error(), err: err}
}

// loadError is a file a flag names that could not be used (a key file,
// the token file): a start-up failure, exit 1, naming the flag. err is
// the cause (a *vlp.KeyFileError, ...).
type loadError struct {
	flag string
	err  error
}

func (e *loadError) Error() string { return "--" + e.flag + ": " + e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

// removed maps upstream flags dropped for safety to what replaces them.
var removed = map[string]string{
	"recovery-cmd":      "it ran a shell; use --recovery-exec (program and arguments, no shell)",
	"recovery-cmd-file": "it ran a shell; use --recovery-exec-file",
	"key-env":           "keys in the environment leak to children and /proc; use --key-file",
	// The shell is gone, so there is no risk left to accept.
	"i-accept-shell-risk": "it accepted --recovery-cmd's shell; use --recovery-exec, which runs no shell",
	"master-key-env":      "keys in the environment leak to children and /proc; use --master-key-file",
	"accepted-key-env":    "keys in the environment leak to children and /proc; use --accepted-key-file",
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// settings is what parse produces: the loop's Config plus what main needs
// to build the rest of it (files read only after parsing succeeds).
type settings struct {
	cfg           poll.Config
	recoveryExec  string
	recoveryFile  string
	recoveryEnv   listFlag
	inheritEnv    bool
	debounce      time.Duration
	recTimeout    time.Duration
	captureBytes  int    // what recovery captures: 0 off, else the cap
	captureStdio  bool   // --recovery-capture-stdio
	captureCap    int    // --recovery-capture-bytes ...
	captureNum    *num   // ... given or not
	signalMode    string // --signal-handler-mode, checked and logged but of no effect
	signalModeSet bool
	injectWedge   *num // --inject-wedge-ms, test builds only (flags_testhooks_on.go)
	maxConcurrent int
	maxConcNum    *num // given or not: the default is clamped to the capacity, a given value is checked
	recoveryUser  string
	auditFile     string
	// auditMaxBytes and auditSyncEvery are --recovery-audit-max-bytes
	// and --recovery-audit-sync-every; the nums say whether they were given.
	auditMaxBytes  int64
	auditSyncEvery int
	auditSyncNum   *num
	// The audit log's time cadence and soft budgets (upstream's flags).
	auditSyncInterval   time.Duration
	auditIntervalNum    *num
	auditFsyncBudget    time.Duration
	auditRotationBudget time.Duration
	promLimit           poll.RateLimit // --prom-rate-limit-*
	exportSyncNum       *num
	exportKinds         string
	exportTime          string
	promAddr            string
	promToken           string
	version             bool
	// Kept as given; check reads them.
	socketMode string
	policy     string
	uids       string
	clock      string
	logTime    string      // --log-timestamps
	logSyslog  bool        // --log-syslog
	syslogPath string      // --log-syslog-path
	udp        udpSettings // flags_udp.go
	ops        opsFlags    // flags_ops.go
	esc        escFlags    // flags_escalate.go
	// control.go: --control-socket, --check-config, --recovery-dry-run
	control     string
	checkConfig bool
	dryRun      bool
	agentsFile  string // --agents-file (agents.go)
}

func checkRemoved(args []string) error {
	for _, a := range args {
		if a == "--" || !strings.HasPrefix(a, "-") {
			continue
		}
		name := strings.TrimLeft(a, "-")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		if why, ok := removed[name]; ok {
			return bad(name, "removed: "+why)
		}
	}
	return nil
}

func parse(args []string) (*settings, error) {
	if err := checkRemoved(args); err != nil {
		return nil, err
	}
	s := &settings{}
	fs := newFlagSet(s)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return nil, err
		}
		var fe *cli.Error
		errors.As(err, &fe)
		return nil, &usageError{flag: fe.Flag, msg: err.Error(), err: err}
	}
	if s.version {
		return s, nil
	}
	if fs.NArg() > 0 {
		return nil, &usageError{msg: "unexpected argument " + strconv.Quote(fs.Arg(0))}
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) check() error {
	c := &s.cfg
	var ok bool
	switch {
	case c.SocketPath == "":
		return bad("socket", "required: the path to bind the observer's datagram socket")
	case len(c.SocketPath) > 107:
		return bad("socket", "path is longer than the 107 bytes a Unix socket address holds")
	case c.SocketPath[0] == '@':
		return bad("socket", "abstract socket names are not supported; give a filesystem path, e.g. /run/varta/varta.sock")
	case c.NotifySocket != "" && c.NotifySocket == c.SocketPath:
		return bad("notify-socket", "must differ from --socket: the two sockets speak different protocols")
	case c.Threshold == 0: // given, it is at least minThresholdMs
		return bad("threshold-ms", "required: silence in milliseconds before a stall ("+
			strconv.Itoa(minThresholdMs)+" to "+strconv.Itoa(maxThresholdMs)+")")
	case c.ExportMaxBytes > 0 && c.ExportFile == "":
		return bad("export-file-max-bytes", "needs --export-file: it rotates the event file")
	case c.ExportMaxBytes > 0 && c.ExportFile == poll.EventStdout:
		return bad("export-file-max-bytes", "cannot rotate standard output (--export-file -); give a file path or drop it")
	case c.ExportMaxBytes > 0 && c.ExportMaxBytes < minExportMaxBytes:
		// As in the Rust original: a cap that small rotates on nearly
		// every line, and the five generations keep a handful of events.
		return bad("export-file-max-bytes", "want 0 (no rotation) or at least "+strconv.Itoa(minExportMaxBytes)+
			" bytes, got "+strconv.FormatInt(c.ExportMaxBytes, 10))
	case c.ExportSyncEvery > 0 && c.ExportFile == "":
		return bad("export-file-sync-every", "needs --export-file: it syncs the event file")
	case c.ExportSyncEvery > 0 && c.ExportFile == poll.EventStdout:
		return bad("export-file-sync-every", "cannot sync standard output (--export-file -); give a file path or drop it")
	case s.exportKinds != "all" && s.exportKinds != "upstream":
		return bad("export-kinds", "want all or upstream, got "+strconv.Quote(s.exportKinds))
	case s.exportTime != "observer" && s.exportTime != "wall":
		return bad("export-time", "want observer or wall, got "+strconv.Quote(s.exportTime))
	case s.auditMaxBytes > 0 && s.auditMaxBytes < recovery.MinAuditMaxBytes:
		return bad("recovery-audit-max-bytes", "want 0 (no rotation) or at least "+strconv.Itoa(recovery.MinAuditMaxBytes)+
			" bytes, got "+strconv.FormatInt(s.auditMaxBytes, 10))
	case s.auditFile == "" && s.auditMaxBytes > 0:
		return bad("recovery-audit-max-bytes", "needs --recovery-audit-file: it rotates the audit log")
	case s.auditFile == "" && s.auditSyncNum.given:
		return bad("recovery-audit-sync-every", "needs --recovery-audit-file: it syncs the audit log")
	case s.auditFile == "" && s.auditIntervalNum.given:
		return bad("audit-sync-interval-ms", "needs --recovery-audit-file: it syncs the audit log")
	case c.StrictNS && c.AllowCrossNS:
		return bad("strict-namespace-check", "contradicts --allow-cross-namespace-agents (one stops at such an agent, the other admits it); choose one")
	case s.recoveryExec != "" && s.recoveryFile != "":
		return bad("recovery-exec-file", "cannot be combined with --recovery-exec; choose one")
	case s.promToken != "" && s.promAddr == "":
		return bad("prom-token-file", "needs --prom-addr")
	}
	if err := s.checkPromAddr(); err != nil {
		return err
	}
	m, err := strconv.ParseUint(s.socketMode, 8, 32)
	if err != nil || m > 0o777 {
		return bad("socket-mode", "want an octal mode such as 0600 or 0660, got "+strconv.Quote(s.socketMode))
	}
	c.SocketMode = uint32(m)
	if c.Policy, ok = poll.ParsePolicy(s.policy); !ok {
		return bad("tracker-eviction-policy", "want strict or balanced, got "+strconv.Quote(s.policy))
	}
	switch s.clock {
	case "monotonic":
		c.Clock = poll.ClockMonotonic
	case "boottime":
		c.Clock = poll.ClockBoottime
	default:
		return bad("clock-source", "want monotonic or boottime, got "+strconv.Quote(s.clock))
	}
	switch s.logTime {
	case "auto":
		c.LogTimestamps = !stderrIsJournal() && !s.logSyslog // the journal and syslogd stamp their own
	case "on":
		c.LogTimestamps = true
	case "off":
	default:
		return bad("log-timestamps", "want auto, on or off, got "+strconv.Quote(s.logTime))
	}
	if s.signalMode != "direct" && s.signalMode != "libc" {
		return bad("signal-handler-mode", "want direct or libc, got "+strconv.Quote(s.signalMode))
	}
	c.ExportUpstreamKinds = s.exportKinds == "upstream"
	c.ExportWallTime = s.exportTime == "wall"
	if c.AllowUIDs, err = parseUIDs(s.uids); err != nil {
		return badErr("allow-uid", err)
	}
	if err := s.checkUDP(); err != nil {
		return err
	}
	if err := s.ops.check(s); err != nil {
		return err
	}
	if err := s.esc.check(s); err != nil {
		return err
	}
	if err := s.checkControl(); err != nil {
		return err
	}
	return s.checkRecovery()
}

// checkPromAddr wants a listen address (listenAddr), and a token for any
// address beyond loopback: the metrics name every agent pid and the
// observer's health. It leaves s.promAddr in IP:PORT form.
func (s *settings) checkPromAddr() error {
	if s.promAddr == "" {
		return nil
	}
	ap, err := listenAddr("prom-addr", s.promAddr, "[::1]")
	if err != nil {
		return err
	}
	if !ap.Addr().Unmap().IsLoopback() && s.promToken == "" {
		what := " is not a loopback address"
		if strings.HasPrefix(s.promAddr, ":") {
			what = " listens on every interface"
		}
		return bad("prom-addr", strconv.Quote(s.promAddr)+what+" and needs --prom-token-file, "+
			"or listen on 127.0.0.1 or [::1]")
	}
	s.promAddr = ap.String()
	return nil
}

// anyIPv4 is what ":PORT" listens on: every IPv4 interface. IPv4 and not
// [::] because a board's kernel may have no IPv6 at all; give [::]:PORT
// for both families.
var anyIPv4 = netip.IPv4Unspecified()

// listenAddr reads the listen address given to flag: IP:PORT (IPv6 as
// [IP]:PORT, no zone), :PORT for every IPv4 interface (0.0.0.0:PORT), or
// localhost:PORT for 127.0.0.1:PORT. Host names beyond localhost are
// refused: resolving them would need the resolver and could block. The
// observer gets the address back in IP:PORT form (AddrPort.String).
func listenAddr(flag, addr, v6 string) (netip.AddrPort, error) {
	a := addr
	switch {
	case strings.HasPrefix(a, ":"):
		a = anyIPv4.String() + a
	case strings.HasPrefix(a, "localhost:"):
		a = "127.0.0.1" + strings.TrimPrefix(a, "localhost")
	}
	ap, err := poll.ParseListenAddr(a)
	if err != nil {
		return ap, &usageError{flag: flag, err: err, msg: "--" + flag + ": want IP:PORT such as 127.0.0.1:9100 or " + v6 +
			":9100, :PORT for every IPv4 interface or localhost:PORT, got " + strconv.Quote(addr)}
	}
	if ap.Addr().Zone() != "" {
		return ap, bad(flag, "IPv6 zones are not supported, got "+strconv.Quote(addr)+"; listen on "+v6+", [::] or a global address")
	}
	return ap, nil
}

func (s *settings) checkRecovery() error {
	// Capture is on with --recovery-capture-stdio, as in the Rust
	// original, and also with --recovery-capture-bytes N alone, this
	// observer's spelling before it had the former (0: off).
	switch {
	case s.captureStdio && s.captureCap == 0:
		return bad("recovery-capture-bytes", "0 captures nothing, yet --recovery-capture-stdio asks for capture; "+
			"give 1 to "+strconv.Itoa(recovery.MaxCaptureBytes)+" or drop --recovery-capture-stdio")
	case s.captureStdio || s.captureNum.given:
		s.captureBytes = s.captureCap
	}
	if s.recoveryExec == "" && s.recoveryFile == "" && s.agentsFile == "" { // the file's own commands: loadAgents
		if name := s.recoveryOption(); name != "" {
			return bad(name, "needs a recovery command: --recovery-exec or --recovery-exec-file")
		}
	}
	for _, kv := range s.recoveryEnv {
		if i := strings.IndexByte(kv, '='); i < 1 {
			return bad("recovery-env", "want K=V, got "+strconv.Quote(kv))
		}
	}
	if s.maxConcNum.given && s.maxConcurrent > s.cfg.TrackerCapacity {
		return bad("recovery-max-concurrent", strconv.Itoa(s.maxConcurrent)+" is more than --tracker-capacity "+
			strconv.Itoa(s.cfg.TrackerCapacity)+", which also bounds the children running and queued")
	}
	return nil
}

// recoveryOption names the first --recovery-* option given that only
// makes sense with a recovery command, or "".
func (s *settings) recoveryOption() string {
	switch {
	case len(s.recoveryEnv) > 0:
		return "recovery-env"
	case s.inheritEnv:
		return "recovery-inherit-env"
	case s.captureStdio:
		return "recovery-capture-stdio"
	case s.captureBytes > 0:
		return "recovery-capture-bytes"
	case s.recTimeout > 0:
		return "recovery-timeout-ms"
	case s.recoveryUser != "":
		return "recovery-user"
	case s.dryRun:
		return "recovery-dry-run"
	case s.auditFile != "":
		return "recovery-audit-file"
	}
	return ""
}

// parseUIDs reads "UID[,UID]"; empty means only our own uid.
func parseUIDs(list string) ([]uint32, error) {
	if list == "" {
		return []uint32{uint32(os.Geteuid())}, nil
	}
	var out []uint32
	for _, f := range strings.Split(list, ",") {
		v, err := strconv.ParseUint(strings.TrimSpace(f), 10, 32)
		if err != nil {
			return nil, errors.New("want numeric uids separated by commas, got " + strconv.Quote(f))
		}
		out = append(out, uint32(v))
	}
	return out, nil
}

// stderrIsJournal reports whether standard error is the systemd journal's
// stream, which stamps every line itself: $JOURNAL_STREAM names its
// device and inode ("dev:ino"), as systemd.exec(5) describes, and must
// match standard error's own, since the variable is inherited by children
// whose standard error may have been redirected.
func stderrIsJournal() bool {
	dev, ino, ok := strings.Cut(os.Getenv("JOURNAL_STREAM"), ":")
	if !ok {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(2, &st) != nil {
		return false
	}
	return dev == strconv.FormatUint(uint64(st.Dev), 10) && ino == strconv.FormatUint(uint64(st.Ino), 10)
}
