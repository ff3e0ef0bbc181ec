package main

import (
	"strconv"
	"strings"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/recovery"
)

// The flags are defined once, in flagTable: name, value placeholder, help
// lines, default and bounds. The parser registers them from the table and
// --help is printed from it (help.go), so the two cannot disagree. Bounds
// come from the library where it has them (poll.MaxTrackerCapacity,
// recovery.MinTimeout, recovery.MaxCaptureBytes); the rest are here.

// Defaults.
const (
	// A loop parked in the netpoller wakes for its deadlines only; this
	// cap adds wakes of its own, so it is high (the Rust original's
	// default is 100, its maximum 1000).
	defReadTimeoutMs   = 1000
	defTrackerCapacity = 256
	defMaxBeatRate     = 100
	defGlobalBeatRate  = 5000
	defGlobalBeatBurst = 10000
	defShutdownGraceMs = 5000
	defDebounceMs      = 1000
	defCaptureBytes    = 4096 // the Rust original's, for --recovery-capture-stdio
)

// Bounds.
const (
	minThresholdMs = 10
	// maxThresholdMs is a week: beyond any heartbeat interval, even a
	// weekly job's, and far from overflowing EvictionFactor × threshold.
	maxThresholdMs       = 7 * 24 * 3600 * 1000
	maxReadTimeoutMs     = 60 * 1000 // a minute; the loop's longest single wait
	maxBatchMs           = 1000      // a batch tick longer than a second would hold stalls back too long
	maxDebounceMs        = maxThresholdMs
	maxRecoveryTimeoutMs = 24 * 3600 * 1000 // a day
	maxShutdownGraceMs   = 3600 * 1000      // an hour
	maxShutdownAfterSecs = 366 * 24 * 3600  // a year
	// maxBeatRate bounds the rate and burst flags: a million datagrams a
	// second is beyond what the loop can take; the limiter holds uint32.
	maxBeatRate    = 1000000
	maxExportBytes = 1 << 40 // 1 TiB
	// minExportMaxBytes is --export-file-max-bytes's floor (but 0), the
	// Rust original's.
	minExportMaxBytes = 4096
	// maxSyncEvery bounds the sync-every flags (the Rust observer's are
	// u32; beyond 2^31-1 records between syncs means never).
	maxSyncEvery = recovery.MaxAuditSyncEvery
	maxPort      = 65535
	// The loop's and the audit log's soft budgets, with upstream's
	// defaults and bounds (flags_table.go's upstream rows).
	defLoopBudgetMs      = 250
	minLoopBudgetMs      = 50
	maxLoopBudgetMs      = 60000
	defAuditBudgetMs     = 50
	maxAuditFsyncMs      = 60000
	maxAuditRotationMs   = 250
	maxAuditSyncInterval = 3600 * 1000 // an hour
	defEvictionWindow    = 256
	maxEvictionWindow    = 4096
	defUDSRcvBuf         = 1 << 20
	maxUDSRcvBuf         = 1<<31 - 1 // setsockopt takes an int
	defPromRate          = 5
	defPromBurst         = 10
)

// group is a heading of --help.
type group uint8

const (
	grpRequired group = iota
	grpSocket
	grpTracking
	grpUDP
	grpRecovery
	grpOutput
	grpLife
	numGroups
)

var groupTitles = [numGroups]string{
	"Required:",
	"Socket and loop:",
	"Tracking:",
	"UDP agents (off unless a listener is given):",
	"Recovery:",
	"Output:",
	"Life cycle:",
}

// flagDef is one flag. help may hold "\n" for line breaks and {def},
// {min} and {max}, replaced by the value's default and bounds.
type flagDef struct {
	name string
	arg  string // the value's placeholder in help; "" for a flag without value
	grp  group
	help string
	v    cli.Value // nil for a flag without value
	b    *bool     // the destination of a flag without value
}

// num is a whole-number flag in min..max, def until given; store puts a
// value in its destination.
type num struct {
	min, max int64
	unit     string // for messages: "milliseconds", "seconds", ...
	cur      int64
	given    bool
	store    func(int64)
}

func newNum(def, min, max int64, unit string, store func(int64)) *num {
	store(def)
	return &num{min: min, max: max, unit: unit, cur: def, store: store}
}

func (n *num) String() string { return strconv.FormatInt(n.cur, 10) }
func (n *num) Set(s string) error {
	v, err := cli.ParseInt(s, n.min, n.max, n.unit)
	if err != nil {
		return err
	}
	n.cur, n.given = v, true
	n.store(v)
	return nil
}

func msNum(d *time.Duration, def, min, max int64) *num {
	return newNum(def, min, max, "milliseconds", func(v int64) { *d = time.Duration(v) * time.Millisecond })
}

func secsNum(d *time.Duration, def, min, max int64) *num {
	return newNum(def, min, max, "seconds", func(v int64) { *d = time.Duration(v) * time.Second })
}

func intNum(p *int, def, min, max int64) *num {
	return newNum(def, min, max, "", func(v int64) { *p = int(v) })
}

// str is a string flag; its default is what *p holds when registered.
type str struct{ p *string }

func (s str) String() string     { return *s.p }
func (s str) Set(v string) error { *s.p = v; return nil }

func strDef(p *string, def string) str { *p = def; return str{p} }

// givenStr is a str that records in *set whether its flag was given.
type givenStr struct {
	str
	set *bool
}

func (g givenStr) Set(v string) error { *g.set = true; return g.str.Set(v) }

// flagTable defines every flag over s's fields and sets their defaults.
func flagTable(s *settings) []flagDef {
	c, u, o := &s.cfg, &s.udp, &s.ops
	c.SocketMode = 0o600
	u.portNum = newNum(0, 0, maxPort, "", func(int64) {})
	o.selfWatchdogNum = secsNum(&o.selfWatchdog, 0, 0, maxSelfWatchdogSecs)
	s.auditSyncNum = newNum(1, 1, maxSyncEvery, "records", func(v int64) { s.auditSyncEvery = int(v) })
	s.auditIntervalNum = msNum(&s.auditSyncInterval, 0, 0, maxAuditSyncInterval)
	s.exportSyncNum = newNum(0, 0, maxSyncEvery, "lines", func(v int64) { c.ExportSyncEvery = int(v) })
	evict := strconv.Itoa(poll.EvictionFactor)
	s.maxConcNum = intNum(&s.maxConcurrent, recovery.DefaultMaxConcurrent, 1, recovery.MaxCapacity)
	s.captureNum = intNum(&s.captureCap, defCaptureBytes, 0, recovery.MaxCaptureBytes)
	return append([]flagDef{
		{name: "socket", arg: "PATH", grp: grpRequired, v: strDef(&c.SocketPath, ""),
			help: "bind the observer's datagram socket here"},
		{name: "threshold-ms", arg: "MS", grp: grpRequired, v: msNum(&c.Threshold, 0, minThresholdMs, maxThresholdMs),
			help: "silence before a stall, {min}..{max}\n(at least 10 ms, at most a week)"},

		{name: "socket-mode", arg: "OCTAL", grp: grpSocket, v: strDef(&s.socketMode, "0600"),
			help: "socket file mode, set at bind (default {def})"},
		{name: "read-timeout-ms", arg: "MS", grp: grpSocket,
			v:    msNum(&c.ReadTimeout, defReadTimeoutMs, 1, maxReadTimeoutMs),
			help: "longest single poll wait, {min}..{max}\n(default {def})"},
		{name: "batch-ms", arg: "MS", grp: grpSocket, v: msNum(&c.Batch, 0, 0, maxBatchMs),
			help: "read the sockets on a tick of MS, {min}..{max},\ninstead of on every datagram: less CPU,\nstalls up to MS later; needs a larger\nnet.unix.max_dgram_qlen (0 = off; default {def})"},
		{name: "allow-uid", arg: "UID[,UID]", grp: grpSocket, v: strDef(&s.uids, ""),
			help: "sender uids allowed to beat; absent:\nonly our own"},
		{name: "allow-cross-namespace-agents", grp: grpSocket, b: &c.AllowCrossNS,
			help: "admit agents from another pid namespace"},
		{name: "clock-source", arg: "monotonic|boottime", grp: grpSocket, v: strDef(&s.clock, "monotonic"),
			help: "boottime counts suspend as silence\n(default {def})"},
		{name: "log-timestamps", arg: "auto|on|off", grp: grpSocket, v: strDef(&s.logTime, "auto"),
			help: "start log lines with the UTC time; auto:\non unless standard error is the journal\nor --log-syslog, which stamp their own\n(default {def})"},
		{name: "log-syslog", grp: grpSocket, b: &s.logSyslog,
			help: "send log lines to the syslog daemon\n(--log-syslog-path) instead of standard\nerror"},
		{name: "log-syslog-path", arg: "PATH", grp: grpSocket, v: strDef(&s.syslogPath, poll.SyslogPath),
			help: "the syslog daemon's socket (default {def})"},
		{name: "allow-parent-beats", grp: grpSocket, b: &o.allowParent,
			help: "accept frames for the sender's parent pid\n(varta-beat --parent in a shell loop)"},
		{name: "notify-socket", arg: "PATH", grp: grpSocket, v: strDef(&c.NotifySocket, ""),
			help: "also bind an sd_notify socket here: a daemon\nbuilt for systemd's watchdog beats when\nstarted with NOTIFY_SOCKET=PATH"},
		{name: "strict-namespace-check", grp: grpSocket, b: &c.StrictNS,
			help: "stop with an error at the first frame\nfrom another pid namespace, instead of\nrefusing it (not with --allow-cross-\nnamespace-agents)"},
		{name: "uds-rcvbuf-bytes", arg: "N", grp: grpSocket,
			v: newNum(defUDSRcvBuf, 0, maxUDSRcvBuf, "bytes", func(v int64) {
				c.UDSRcvBuf = int(v)
				if v == 0 {
					c.UDSRcvBuf = -1 // poll's spelling of the kernel default
				}
			}),
			help: "SO_RCVBUF of the socket, {min}..{max};\n0 = the kernel default (default {def})"},
		{name: "iteration-budget-ms", arg: "MS", grp: grpSocket,
			v:    msNum(&c.Loop.IterationBudget, defLoopBudgetMs, minLoopBudgetMs, maxLoopBudgetMs),
			help: "count loop iterations longer than MS,\n{min}..{max} (default {def})"},
		{name: "scrape-budget-ms", arg: "MS", grp: grpSocket,
			v:    msNum(&c.Loop.ScrapeBudget, defLoopBudgetMs, minLoopBudgetMs, maxLoopBudgetMs),
			help: "count iterations whose metrics serving\ntook longer than MS, {min}..{max}\n(default {def})"},

		{name: "tracker-capacity", arg: "N", grp: grpTracking,
			v:    intNum(&c.TrackerCapacity, defTrackerCapacity, 1, poll.MaxTrackerCapacity),
			help: "fixed pid-table size, {min}..{max} (default {def})"},
		{name: "tracker-eviction-policy", arg: "strict|balanced", grp: grpTracking, v: strDef(&s.policy, "strict"),
			help: "when full, strict evicts only long-stalled\npids; balanced any pid silent " + evict + "x threshold\n(default {def})"},
		{name: "max-beat-rate", arg: "N", grp: grpTracking, v: intNum(&c.MaxBeatRate, defMaxBeatRate, 0, maxBeatRate),
			help: "beats/s per pid, {min}..{max}, 0 = off\n(default {def})"},
		{name: "global-beat-rate", arg: "N", grp: grpTracking, v: intNum(&c.GlobalBeatRate, defGlobalBeatRate, 0, maxBeatRate),
			help: "beats/s in all, {min}..{max}, 0 = off\n(default {def})"},
		{name: "global-beat-burst", arg: "N", grp: grpTracking, v: intNum(&c.GlobalBeatBurst, defGlobalBeatBurst, 0, maxBeatRate),
			help: "global burst, {min}..{max}, 0 = the rate\n(default {def})"},
		{name: "eviction-scan-window", arg: "N", grp: grpTracking,
			v:    intNum(&c.Loop.EvictionWindow, defEvictionWindow, 1, maxEvictionWindow),
			help: "upstream's eviction scan bound, {min}..{max};\naccepted and served, eviction here never\nscans (default {def})"},
		{name: "on-exit", arg: "report|recover|ignore", grp: grpTracking, v: strDef(&o.onExit, "report"),
			help: "when a kernel-attested agent dies (pidfd,\nelse /proc at stall): report writes an\nexit event; recover also runs recovery\nat once and forgets the pid (default {def})"},

		{name: "udp-addr", arg: "IP:PORT", grp: grpUDP, v: strDef(&u.addr, ""),
			help: "also take frames over UDP, IPv4 or [IPv6];\n:PORT is 0.0.0.0:PORT, localhost:PORT\n127.0.0.1:PORT"},
		{name: "udp-port", arg: "N", grp: grpUDP, v: u.portNum,
			help: "the Rust original's form of --udp-addr:\nthe port, {min}..{max}"},
		{name: "udp-bind-addr", arg: "IP", grp: grpUDP, v: strDef(&u.bindAddr, ""),
			help: "the IP for --udp-port; absent: 127.0.0.1,\nplain UDP too (every interface only when\nnamed: 0.0.0.0 or ::)"},
		{name: "key-file", arg: "F", grp: grpUDP, v: strDef(&u.keyFile, ""),
			help: "secure UDP: the current shared key"},
		{name: "accepted-key-file", arg: "F", grp: grpUDP, v: strDef(&u.acceptedFile, ""),
			help: "more shared keys, one per line, for key\nrotation: every key is tried on every frame"},
		{name: "master-key-file", arg: "F", grp: grpUDP, v: strDef(&u.masterFile, ""),
			help: "secure UDP: master key of per-agent keys\nKey files: 64 hex characters per key, a\nregular file we own, mode 0600, no symlink"},
		{name: "i-accept-plaintext-udp", grp: grpUDP, b: &u.plaintext,
			help: "also take plain frames: unauthenticated,\nanyone who reaches the port can beat"},
		{name: "udp-recovery", grp: grpUDP, b: &u.recovery,
			help: "let UDP agents' stalls run the recovery\ncommand (absent: only socket agents,\nwhose pid the kernel vouches for)"},
		{name: flagRecoverPlain, grp: grpUDP, b: &u.recoverPlain,
			help: "--udp-recovery for plain frames only\n(the Rust original's spelling)"},
		{name: flagRecoverSecure, grp: grpUDP, b: &u.recoverSecure,
			help: "--udp-recovery for secure frames only\n(the Rust original's spelling)"},
		{name: flagSecureOffHost, grp: grpUDP, b: &u.secureOffHost,
			help: "let secure UDP listen on an address other\nhosts can reach (absent: loopback only)"},
		{name: "i-accept-recovery-from-unauthenticated-network", grp: grpUDP, b: &u.acceptOffHost,
			help: "let plain UDP frames from off this host run\nthe recovery command (anyone who reaches the\nport could then pick a local pid to act on)"},

		{name: "recovery-exec", arg: "CMD", grp: grpRecovery, v: strDef(&s.recoveryExec, ""),
			help: "program and arguments, no shell ('' and \"\"\nquote, \\ escapes); {pid} is replaced by\nthe stalled pid, else appended"},
		{name: "recovery-exec-file", arg: "PATH", grp: grpRecovery, v: strDef(&s.recoveryFile, ""),
			help: "the same read from a 0600 file we own"},
		{name: "agents-file", arg: "PATH", grp: grpRecovery, v: strDef(&s.agentsFile, ""),
			help: "declared agents, one a line: how each is\nrecognised, its own threshold, recovery\ncommand, escalate-after and expect-within-ms\n(reloaded at SIGHUP)"},
		{name: "recovery-debounce-ms", arg: "MS", grp: grpRecovery, v: msNum(&s.debounce, defDebounceMs, 0, maxDebounceMs),
			help: "per-pid minimum interval, {min}..{max}\n(default {def})"},
		{name: "recovery-timeout-ms", arg: "MS", grp: grpRecovery,
			v:    msNum(&s.recTimeout, 0, int64(recovery.MinTimeout/time.Millisecond), maxRecoveryTimeoutMs),
			help: "kill the child's group after MS,\n{min}..{max} (absent: no timeout)"},
		{name: "recovery-max-concurrent", arg: "N", grp: grpRecovery,
			v:    s.maxConcNum,
			help: "recovery children running at once,\n{min}..{max} (default {def}); more wait in\na queue, refused_outstanding_capacity\nwhen it is full"},
		{name: "recovery-user", arg: "USER[:GROUP]", grp: grpRecovery, v: strDef(&s.recoveryUser, ""),
			help: "run the command as this user (name or\nuid) and group (default: the user's)"},
		{name: "recovery-env", arg: "K=V", grp: grpRecovery, v: &s.recoveryEnv,
			help: "add to the child's environment (repeatable)"},
		{name: "recovery-inherit-env", grp: grpRecovery, b: &s.inheritEnv,
			help: "child inherits our environment"},
		{name: "recovery-capture-stdio", grp: grpRecovery, b: &s.captureStdio,
			help: "capture the child's standard output and\nerror, up to --recovery-capture-bytes,\nfor the log and the audit log"},
		{name: "recovery-capture-bytes", arg: "N", grp: grpRecovery, v: s.captureNum,
			help: "capture cap, {min}..{max} (default {def});\ngiven alone it also turns capture on,\nunless 0"},
		{name: "recovery-audit-file", arg: "PATH", grp: grpRecovery, v: strDef(&s.auditFile, ""),
			help: "hash-chained audit log of every decision,\nwith its checkpoint in PATH.chk"},
		{name: "recovery-audit-max-bytes", arg: "N", grp: grpRecovery,
			v: newNum(0, 0, maxExportBytes, "bytes", func(v int64) { s.auditMaxBytes = v }),
			help: "rotate the audit log at N bytes, {min}..{max},\nat least " + strconv.Itoa(recovery.MinAuditMaxBytes) +
				" unless 0, keeping " + strconv.Itoa(recovery.AuditGenerations) + "\ngenerations (default {def}: no rotation)"},
		{name: "recovery-audit-sync-every", arg: "N", grp: grpRecovery, v: s.auditSyncNum,
			help: "fdatasync the audit log and rewrite its\ncheckpoint every N records, {min}..{max}\n(default {def})"},
		{name: "escalate-after", arg: "N", grp: grpRecovery, v: s.esc.afterNum(&s.cfg),
			help: "escalate an agent once its recovery failed\nN times within the window, {min}..{max}\n(default {def}: off)"},
		{name: "escalate-window-ms", arg: "MS", grp: grpRecovery, v: s.esc.windowNum(&s.cfg),
			help: "the window of --escalate-after, {min}..{max}\n(0: failures never age out; default {def})"},
		{name: "escalate-exec", arg: "CMD", grp: grpRecovery, v: strDef(&s.esc.exec, ""),
			help: "run CMD once when an agent escalates, as\n--recovery-exec runs (audited, source escalate)"},
		{name: "escalate-reset", grp: grpRecovery, b: &s.cfg.Escalate.Reset,
			help: "on escalation write the reset reason and\nstop kicking --hw-watchdog: the board resets"},
		{name: "escalate-reboot", grp: grpRecovery, b: &s.cfg.Escalate.Reboot,
			help: "on escalation write the reset reason, sync,\nask init to reboot, reboot(2) after the grace"},
		{name: "escalate-reboot-grace-ms", arg: "MS", grp: grpRecovery, v: s.esc.graceNum(&s.cfg),
			help: "how long init has to reboot before\nreboot(2), {min}..{max} (default {def})"},
		{name: "audit-sync-interval-ms", arg: "MS", grp: grpRecovery, v: s.auditIntervalNum,
			help: "also fdatasync once a record has waited\nMS unsynced, {min}..{max} (default {def}:\nthe record cadence only)"},
		{name: "audit-fsync-budget-ms", arg: "MS", grp: grpRecovery,
			v:    msNum(&s.auditFsyncBudget, defAuditBudgetMs, 1, maxAuditFsyncMs),
			help: "count audit fdatasyncs longer than MS,\n{min}..{max} (default {def})"},
		{name: "audit-rotation-budget-ms", arg: "MS", grp: grpRecovery,
			v:    msNum(&s.auditRotationBudget, defAuditBudgetMs, 1, maxAuditRotationMs),
			help: "count audit rotations (and SIGHUP\nreopens) longer than MS, {min}..{max}\n(default {def})"},

		{name: "export-file", arg: "PATH", grp: grpOutput, v: strDef(&c.ExportFile, ""),
			help: "append one tab-separated line per event\n(- for standard output)"},
		{name: "export-file-max-bytes", arg: "N", grp: grpOutput,
			v: newNum(0, 0, maxExportBytes, "bytes", func(v int64) { c.ExportMaxBytes = v }),
			help: "rotate at N bytes, {min}..{max}, at least\n" + strconv.Itoa(minExportMaxBytes) + " unless 0, keeping " +
				strconv.Itoa(poll.EventGenerations) + "\ngenerations (default {def}: no rotation)"},
		{name: "export-file-sync-every", arg: "N", grp: grpOutput, v: s.exportSyncNum,
			help: "fdatasync the event file every N lines,\n{min}..{max} (default {def}: only when\nrotating and at exit)"},
		{name: "export-kinds", arg: "all|upstream", grp: grpOutput, v: strDef(&s.exportKinds, "all"),
			help: "upstream writes only the Rust observer's\nseven event kinds, no exit or recovered\nlines (default {def})"},
		{name: "export-time", arg: "observer|wall", grp: grpOutput, v: strDef(&s.exportTime, "observer"),
			help: "first column: observer_ns (since start)\nor wall, Unix-epoch ns (default {def})"},
		{name: "prom-addr", arg: "IP:PORT", grp: grpOutput, v: strDef(&s.promAddr, ""),
			help: "serve /metrics and /healthz; :PORT is\n0.0.0.0:PORT, localhost:PORT 127.0.0.1:PORT"},
		{name: "prom-token-file", arg: "PATH", grp: grpOutput, v: strDef(&s.promToken, ""),
			help: "require Authorization: Bearer <token>;\nneeded when --prom-addr is not loopback"},
		{name: "prom-rate-limit-per-sec", arg: "N", grp: grpOutput,
			v:    intNum(&s.promLimit.PerSec, defPromRate, 0, maxBeatRate),
			help: "metrics connections per second per source\nIP, {min}..{max}, 0 = off (default {def})"},
		{name: "prom-rate-limit-burst", arg: "N", grp: grpOutput,
			v:    intNum(&s.promLimit.Burst, defPromBurst, 1, maxBeatRate),
			help: "per-source-IP burst, {min}..{max} (default {def})"},

		{name: "shutdown-grace-ms", arg: "MS", grp: grpLife,
			v:    msNum(&c.ShutdownGrace, defShutdownGraceMs, 0, maxShutdownGraceMs),
			help: "time to stop recovery children,\n{min}..{max} (default {def})"},
		{name: "shutdown-after-secs", arg: "S", grp: grpLife, v: secsNum(&c.ShutdownAfter, 0, 0, maxShutdownAfterSecs),
			help: "exit cleanly after S seconds, {min}..{max}\n(default {def}: never)"},
		{name: "self-watchdog-secs", arg: "S", grp: grpLife, v: o.selfWatchdogNum,
			help: "abort with a stack dump (exit 134) when the\nloop makes no progress for S s, {min}..{max};\n0 = off (absent: " +
				strconv.Itoa(int(autoSelfWatchdog/time.Second)) + " when $WATCHDOG_USEC is set)"},
		{name: "hw-watchdog", arg: "PATH", grp: grpLife, v: strDef(&o.hwWatchdog, ""),
			help: "open a watchdog device, kick it every\nsecond, magic-close it on a clean exit"},
		{name: "heartbeat-file", arg: "PATH", grp: grpLife, v: strDef(&o.heartbeat, ""),
			help: "rewrite \"<loops> <ns>\" atomically, at most\nevery 100 ms (put it on a tmpfs)"},
		{name: "state-file", arg: "PATH", grp: grpLife, v: strDef(&o.stateFile, ""),
			help: "remember tracked agents across restarts\n(this boot only; put it on a tmpfs)"},
		{name: "reset-reason-file", arg: "PATH", grp: grpLife, v: strDef(&s.cfg.Escalate.ResetFile, ""),
			help: "keep why the board last reset here\n(persistent storage); see varta-watch\nreset-reason"},
		{name: "signal-handler-mode", arg: "direct|libc", grp: grpLife, v: givenStr{strDef(&s.signalMode, "direct"), &s.signalModeSet},
			help: "accepted for the Rust original's command\nlines; no effect: Go's runtime installs\nthe handlers (default {def})"},
		{name: "version", grp: grpLife, b: &s.version,
			help: "print version and exit"},
		{name: "control-socket", arg: "PATH", grp: grpLife, v: strDef(&s.control, ""),
			help: "serve varta-watch status, pause and resume\non this Unix stream socket, mode 0600\n(absent: the --socket path plus .ctl;\nnone: no control socket)"},
		{name: "check-config", grp: grpLife, b: &s.checkConfig,
			help: "check every flag and the files they name,\nstart nothing; exit 0 with \"config ok\"\nor 1 with every problem found"},
		{name: "recovery-dry-run", grp: grpRecovery, b: &s.dryRun,
			help: "log the command a stall would run, run\nnothing (counted dry_run, audited)"},
	}, testHookFlags(s)...)
}

// newFlagSet registers the table's flags over s.
func newFlagSet(s *settings) *cli.FlagSet {
	fs := cli.NewFlagSet()
	for _, d := range flagTable(s) {
		if d.b != nil {
			fs.BoolVar(d.b, d.name, false, "")
		} else {
			fs.Var(d.v, d.name, "")
		}
	}
	return fs
}

// expand fills {def}, {min} and {max} in d's help.
func (d *flagDef) expand() string {
	h := d.help
	if d.v != nil {
		h = strings.ReplaceAll(h, "{def}", d.v.String())
	}
	if n, ok := d.v.(*num); ok {
		h = strings.ReplaceAll(h, "{min}", strconv.FormatInt(n.min, 10))
		h = strings.ReplaceAll(h, "{max}", strconv.FormatInt(n.max, 10))
	}
	return h
}
