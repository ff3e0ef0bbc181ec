package main

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/poll"
)

// usageError is a bad flag, value or combination: one line, exit 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func bad(flagName, what string) error { return usageError{"--" + flagName + ": " + what} }

// removed maps upstream flags dropped for safety to what replaces them.
var removed = map[string]string{
	"recovery-cmd":      "it ran a shell; use --recovery-exec (program and arguments, no shell)",
	"recovery-cmd-file": "it ran a shell; use --recovery-exec-file",
	"key-env":           "keys in the environment leak to children and /proc; use --key-file",
}

// msFlag is a millisecond count with a floor.
type msFlag struct {
	d   *time.Duration
	min int64
	set bool
}

func (f *msFlag) String() string { return "" }
func (f *msFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < f.min || v > int64(time.Duration(1<<62)/time.Millisecond) {
		return errors.New("want a whole number of milliseconds, at least " + strconv.FormatInt(f.min, 10))
	}
	*f.d, f.set = time.Duration(v)*time.Millisecond, true
	return nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return "" }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// settings is what parse produces: the loop's Config plus what main needs
// to build the rest of it (files read only after parsing succeeds).
type settings struct {
	cfg          poll.Config
	recoveryExec string
	recoveryFile string
	recoveryEnv  listFlag
	inheritEnv   bool
	debounce     time.Duration
	recTimeout   time.Duration
	captureBytes int
	auditFile    string
	promAddr     string
	promToken    string
	version      bool
	udp          udpSettings // flags_udp.go
	ops          opsFlags    // flags_ops.go
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
	s := &settings{cfg: poll.Config{SocketMode: 0o600, ReadTimeout: 100 * time.Millisecond,
		TrackerCapacity: 256, MaxBeatRate: 100, GlobalBeatRate: 5000, GlobalBeatBurst: 10000,
		ShutdownGrace: 5 * time.Second}, debounce: time.Second}
	c := &s.cfg
	fs := cli.NewFlagSet()
	threshold := &msFlag{d: &c.Threshold, min: 10}
	fs.Var(threshold, "threshold-ms", "")
	fs.Var(&msFlag{d: &c.ReadTimeout, min: 1}, "read-timeout-ms", "")
	fs.Var(&msFlag{d: &s.debounce, min: 0}, "recovery-debounce-ms", "")
	fs.Var(&msFlag{d: &s.recTimeout, min: 100}, "recovery-timeout-ms", "")
	fs.Var(&msFlag{d: &c.ShutdownGrace, min: 0}, "shutdown-grace-ms", "")
	fs.StringVar(&c.SocketPath, "socket", "", "")
	mode := fs.String("socket-mode", "0600", "")
	fs.StringVar(&s.recoveryExec, "recovery-exec", "", "")
	fs.StringVar(&s.recoveryFile, "recovery-exec-file", "", "")
	fs.Var(&s.recoveryEnv, "recovery-env", "")
	fs.BoolVar(&s.inheritEnv, "recovery-inherit-env", false, "")
	fs.IntVar(&s.captureBytes, "recovery-capture-bytes", 0, "")
	fs.StringVar(&s.auditFile, "recovery-audit-file", "", "")
	fs.StringVar(&c.ExportFile, "export-file", "", "")
	fs.Int64Var(&c.ExportMaxBytes, "export-file-max-bytes", 0, "")
	fs.StringVar(&s.promAddr, "prom-addr", "", "")
	fs.StringVar(&s.promToken, "prom-token-file", "", "")
	fs.IntVar(&c.TrackerCapacity, "tracker-capacity", c.TrackerCapacity, "")
	policy := fs.String("tracker-eviction-policy", "strict", "")
	fs.IntVar(&c.MaxBeatRate, "max-beat-rate", c.MaxBeatRate, "")
	fs.IntVar(&c.GlobalBeatRate, "global-beat-rate", c.GlobalBeatRate, "")
	fs.IntVar(&c.GlobalBeatBurst, "global-beat-burst", c.GlobalBeatBurst, "")
	uids := fs.String("allow-uid", "", "")
	clock := fs.String("clock-source", "monotonic", "")
	after := fs.Int64("shutdown-after-secs", 0, "")
	fs.BoolVar(&c.AllowCrossNS, "allow-cross-namespace-agents", false, "")
	fs.BoolVar(&s.version, "version", false, "")
	s.udp.define(fs)
	s.ops.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, cli.ErrHelp) {
			return nil, err
		}
		return nil, usageError{err.Error()}
	}
	if s.version {
		return s, nil
	}
	if fs.NArg() > 0 {
		return nil, usageError{"unexpected argument " + strconv.Quote(fs.Arg(0))}
	}
	if err := s.check(threshold.set, *mode, *policy, *uids, *clock, *after); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *settings) check(thresholdSet bool, mode, policy, uids, clock string, after int64) error {
	c := &s.cfg
	var ok bool
	switch {
	case c.SocketPath == "":
		return bad("socket", "required: the path to bind the observer's datagram socket")
	case len(c.SocketPath) > 107:
		return bad("socket", "path is longer than the 107 bytes a Unix socket address holds")
	case c.SocketPath[0] == '@':
		return bad("socket", "abstract socket names are not supported; give a filesystem path, e.g. /run/varta/varta.sock")
	case !thresholdSet:
		return bad("threshold-ms", "required: silence in milliseconds before a stall (at least 10)")
	case c.TrackerCapacity < 1 || c.TrackerCapacity > 65536:
		return bad("tracker-capacity", "must be 1 to 65536")
	case c.MaxBeatRate < 0:
		return bad("max-beat-rate", "must not be negative (0 disables the per-pid limit)")
	case c.GlobalBeatRate < 0:
		return bad("global-beat-rate", "must not be negative (0 disables the global limit)")
	case c.GlobalBeatBurst < 0:
		return bad("global-beat-burst", "must not be negative")
	case c.ExportMaxBytes < 0:
		return bad("export-file-max-bytes", "must be at least 1 (leave it out for no rotation)")
	case c.ExportMaxBytes > 0 && c.ExportFile == "":
		return bad("export-file-max-bytes", "needs --export-file: it rotates the event file")
	case c.ExportMaxBytes > 0 && c.ExportFile == poll.EventStdout:
		return bad("export-file-max-bytes", "cannot rotate standard output (--export-file -); give a file path or drop it")
	case after < 0:
		return bad("shutdown-after-secs", "must not be negative")
	case s.captureBytes < 0 || s.captureBytes > 1<<20:
		return bad("recovery-capture-bytes", "must be 0 to 1048576")
	case s.recoveryExec != "" && s.recoveryFile != "":
		return bad("recovery-exec-file", "cannot be combined with --recovery-exec; choose one")
	case s.promToken != "" && s.promAddr == "":
		return bad("prom-token-file", "needs --prom-addr")
	}
	if err := s.checkPromAddr(); err != nil {
		return err
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || m > 0o777 {
		return bad("socket-mode", "want an octal mode such as 0600 or 0660, got "+strconv.Quote(mode))
	}
	c.SocketMode = uint32(m)
	if c.Policy, ok = poll.ParsePolicy(policy); !ok {
		return bad("tracker-eviction-policy", "want strict or balanced, got "+strconv.Quote(policy))
	}
	switch clock {
	case "monotonic":
		c.Clock = poll.ClockMonotonic
	case "boottime":
		c.Clock = poll.ClockBoottime
	default:
		return bad("clock-source", "want monotonic or boottime, got "+strconv.Quote(clock))
	}
	if c.AllowUIDs, err = parseUIDs(uids); err != nil {
		return bad("allow-uid", err.Error())
	}
	c.ShutdownAfter = time.Duration(after) * time.Second
	if err := s.checkUDP(); err != nil {
		return err
	}
	if err := s.ops.check(s); err != nil {
		return err
	}
	return s.checkRecovery()
}

// checkPromAddr wants an IP:PORT, and a token for any address beyond
// loopback: the metrics name every agent pid and the observer's health.
func (s *settings) checkPromAddr() error {
	if s.promAddr == "" {
		return nil
	}
	ap, err := poll.ParseListenAddr(s.promAddr)
	if err != nil {
		return bad("prom-addr", err.Error())
	}
	if ap.Addr().Zone() != "" {
		return bad("prom-addr", "IPv6 zones are not supported, got "+strconv.Quote(s.promAddr)+"; listen on [::1], [::] or a global address")
	}
	if !ap.Addr().Unmap().IsLoopback() && s.promToken == "" {
		return bad("prom-addr", s.promAddr+" is not a loopback address and needs --prom-token-file, "+
			"or listen on 127.0.0.1 or [::1]")
	}
	return nil
}

func (s *settings) checkRecovery() error {
	if s.recoveryExec == "" && s.recoveryFile == "" {
		if name := s.recoveryOption(); name != "" {
			return bad(name, "needs a recovery command: --recovery-exec or --recovery-exec-file")
		}
	}
	for _, kv := range s.recoveryEnv {
		if i := strings.IndexByte(kv, '='); i < 1 {
			return bad("recovery-env", "want K=V, got "+strconv.Quote(kv))
		}
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
	case s.captureBytes > 0:
		return "recovery-capture-bytes"
	case s.recTimeout > 0:
		return "recovery-timeout-ms"
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
