package escalate

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/ops"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/recovery/resetreason"
)

// Limits of Config.
const (
	MaxAfter          = 100
	MaxWindow         = 7 * 24 * time.Hour
	MaxRebootGrace    = 10 * time.Minute
	DefaultRebootWait = 30 * time.Second
	// ladderKeys is how many agents the ladder follows at once: agents
	// share few programs, and an entry that has not escalated is evicted
	// when a new key needs room.
	ladderKeys = 256
	// maxChecks bounds the silence checks waiting (one per recovery run
	// that exited 0, for one threshold).
	maxChecks = 256
)

// Config is the --escalate-* and --reset-reason-file flags; the zero value
// is off.
type Config struct {
	After       int           // --escalate-after: failures that escalate; 0 off
	Window      time.Duration // --escalate-window-ms: within this long; 0 any age
	Reset       bool          // --escalate-reset: stop kicking the hardware watchdog
	Reboot      bool          // --escalate-reboot: ask init for a reboot, reboot(2) after RebootGrace
	RebootGrace time.Duration // --escalate-reboot-grace-ms
	ResetFile   string        // --reset-reason-file; "" none
}

// Deps is what the escalator works with, all owned by the loop.
type Deps struct {
	Log       *sink.Logger
	Rec       *recovery.Manager // nil without a recovery command
	Ops       *ops.Ops
	Tracker   *track.Tracker
	AgentEnv  func(pid int32) []string // the recovery command's agent environment: the agent's name
	Now       func() int64             // the observer's clock
	Threshold int64                    // ns of silence before a stall
	// Declared, if set, names the declared agent (--agents-file) pid
	// belongs to and its own escalate-after= (0: --escalate-after); ok
	// false for an agent not declared.
	Declared func(pid int32) (name string, after int, ok bool)
}

// The failure kinds, labels of varta_escalation_failures_total.
const (
	failExit = iota
	failKilled
	failSpawn
	failSilent
	numFails
)

var failLabels = [numFails]string{"exit", "killed", "spawn_failed", "silent"}

// The escalate command's outcomes, labels of varta_escalation_commands_total.
const (
	cmdStarted = iota
	cmdStartFailed
	cmdBusy
	cmdZero
	cmdFailed
	numCmd
)

var cmdLabels = [numCmd]string{"started", "start_failed", "busy", "exited_zero", "failed"}

// check is a recovery run that exited 0: at at, the agent must have beaten
// since since, or the run failed.
type check struct {
	key, name string
	pid       int32
	since, at int64
}

// Escalator is the ladder wired to the loop; see the package doc.
type Escalator struct {
	cfg    Config
	d      Deps
	ladder *Ladder
	checks []check // fixed capacity maxChecks

	fails       [numFails]uint64
	cmds        [numCmd]uint64
	escalations uint64
	dropped     uint64 // silence checks that found no room
	resetFailed uint64 // reset-reason writes that failed

	file     resetreason.File
	haveFile bool   // file is what is on disk
	boot     string // this boot's id; "" unknown
	decided  bool   // a controlled reset was decided (the reason written, or tried)
	rebootAt int64  // when reboot(2) is due; 0 none
	rebooted bool
	reboot   rebooter
}

// New starts the escalator: with a reset-reason file it reads it back,
// logs the previous reset and records this boot. It returns nil (off)
// when cfg asks for nothing. A damaged or unreadable file is logged and
// ignored, never fatal; a file that cannot be written is.
func New(cfg Config, d Deps) (*Escalator, error) {
	if cfg.After == 0 && cfg.ResetFile == "" {
		return nil, nil
	}
	x := &Escalator{cfg: cfg, d: d, reboot: newRebooter(d.Log)}
	if cfg.After > 0 {
		x.ladder = NewLadder(cfg.After, int64(cfg.Window), ladderKeys)
		x.checks = make([]check, 0, maxChecks)
		if cfg.Reset && !d.Ops.HWOpen() && !cfg.Reboot {
			d.Log.Warn("--escalate-reset without --hw-watchdog: an escalation cannot reset the board by itself; " +
				"open the watchdog, or add --escalate-reboot")
		}
	}
	if cfg.ResetFile != "" {
		if err := x.startResetFile(); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// startResetFile is the reset-reason file's part of the start.
func (x *Escalator) startResetFile() error {
	path := x.cfg.ResetFile
	boot, err := resetreason.ReadBootID(bootIDPath())
	if err != nil {
		x.d.Log.Warn("cannot read the boot id: resets cannot be told from restarts", sink.Err(err))
	}
	x.boot = boot
	f, err := resetreason.Read(path)
	have := err == nil
	switch {
	case have, errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, resetreason.ErrDamaged):
		moved := path + ".damaged"
		if rerr := unix.Rename(path, moved); rerr != nil {
			moved = "-"
		}
		x.d.Log.Warn("the reset-reason file is damaged; ignored and started afresh", sink.Str("file", path),
			sink.Str("moved_to", moved), sink.Err(err))
	default:
		x.d.Log.Warn("cannot read the reset-reason file; ignored and started afresh", sink.Str("file", path), sink.Err(err))
	}
	if boot == "" {
		x.file, x.haveFile = f, have
		if have {
			x.d.Log.Info("previous reset: "+f.Describe(), sink.Str("file", path))
		}
		return nil // without a boot id nothing is recorded: a restart would look like a reset
	}
	st, known := x.d.Ops.WatchdogBootStatus()
	nf, found := resetreason.Start(f, have, boot, resetreason.ReasonFromBootStatus(st, known), time.Now().UnixMilli())
	switch found {
	case resetreason.FoundControlled, resetreason.FoundUnexpected:
		x.d.Log.Warn("previous reset: "+nf.Describe(), sink.Str("file", path))
	case resetreason.FoundSameBoot:
		if nf.Kind != "" {
			x.d.Log.Info("previous reset: "+nf.Describe(), sink.Str("file", path), sink.Str("boot", "same (the observer restarted)"))
		}
	}
	x.file = nf
	if found == resetreason.FoundSameBoot {
		x.haveFile = true
		return nil
	}
	if err := resetreason.Write(path, &nf); err != nil {
		return &os.PathError{Op: "--reset-reason-file: write", Path: path, Err: errors.Unwrap(err)}
	}
	x.haveFile = true
	return nil
}

// LastReset returns the reset-reason file as it stands, for a status
// report; ok is false without --reset-reason-file.
func (x *Escalator) LastReset() (resetreason.File, bool) {
	if x == nil || x.cfg.ResetFile == "" {
		return resetreason.File{}, false
	}
	return x.file, true
}

// Done takes every reaped recovery child (recovery's OnComplete, on the
// loop goroutine).
func (x *Escalator) Done(c *recovery.Completion) {
	if x == nil || x.ladder == nil || x.d.Ops.Stopped() || c.Missing {
		// Shutdown kills children: that is no failure of theirs. A
		// missing agent's command recovered no process: no ladder step.
		return
	}
	if c.Escalation {
		x.escalateDone(c)
		return
	}
	switch {
	case c.Outcome == recovery.OutcomeReapedZero:
		x.addCheck(c.Agent)
	case c.Outcome == recovery.OutcomeKilled:
		x.fail(c.Agent, failKilled, "killed")
	case c.Signal != 0:
		x.fail(c.Agent, failExit, "signal:"+signalName(c.Signal))
	default:
		x.fail(c.Agent, failExit, "exit:"+strconv.Itoa(c.ExitCode))
	}
}

// Failed takes a recovery command that could not be started.
func (x *Escalator) Failed(agent int32) {
	if x == nil || x.ladder == nil || x.d.Ops.Stopped() {
		return
	}
	x.fail(agent, failSpawn, "spawn_failed")
}

// addCheck schedules the silence check of a run that exited 0.
func (x *Escalator) addCheck(pid int32) {
	if len(x.checks) == cap(x.checks) {
		x.dropped++
		return
	}
	key, name := x.identify(pid)
	now := x.d.Now()
	x.checks = append(x.checks, check{key: key, name: name, pid: pid, since: now, at: now + x.d.Threshold})
}

// Tick runs the due silence checks and the reboot's last step.
func (x *Escalator) Tick(now int64) {
	if x == nil {
		return
	}
	for i := 0; i < len(x.checks); {
		c := x.checks[i]
		if c.at > now {
			i++
			continue
		}
		x.checks[i] = x.checks[len(x.checks)-1]
		x.checks = x.checks[:len(x.checks)-1]
		if !x.beatSince(c.key, c.since) {
			x.failKey(c.key, c.name, c.pid, failSilent, "silent")
		}
	}
	if x.rebootAt != 0 && now >= x.rebootAt && !x.rebooted {
		x.rebooted = true
		x.d.Log.Error("escalation: init did not reboot within the grace; calling reboot(2)",
			sink.Num("grace_ms", x.cfg.RebootGrace.Milliseconds()))
		if err := x.reboot.Reboot(); err != nil {
			x.d.Log.Error("escalation: reboot(2) failed", sink.Err(err))
		}
	}
}

// Deadline is when Tick has work next.
func (x *Escalator) Deadline() int64 {
	d := int64(1<<63 - 1)
	if x == nil {
		return d
	}
	for _, c := range x.checks {
		d = min(d, c.at)
	}
	if x.rebootAt != 0 && !x.rebooted {
		d = min(d, x.rebootAt)
	}
	return d
}

// beatSince reports whether an agent with key beat after since: the
// recovered agent itself, or its successor under a new pid.
func (x *Escalator) beatSince(key string, since int64) bool {
	found := false
	x.d.Tracker.Each(func(s *track.Slot) {
		if !found && s.LastArrival > since && x.slotKey(s) == key {
			found = true
		}
	})
	return found
}

// identify returns the agent's key and name: a declared agent's declared
// name (an agents file; Deps.Declared), else its process name as the
// kernel shows it (the comm, as varta_agent_info's name label), taken
// from the environment recovery gives its command, which also covers an
// agent --on-exit recover has just forgotten. Not the program path: it
// cannot be read for an agent that exited before it was first tracked,
// and the same agent would then count under two keys. An agent nobody
// knows any more is keyed by its pid.
func (x *Escalator) identify(pid int32) (key, name string) {
	if x.d.Declared != nil {
		if n, _, ok := x.d.Declared(pid); ok {
			return n, n
		}
	}
	if x.d.AgentEnv != nil {
		for _, kv := range x.d.AgentEnv(pid) {
			if v, ok := strings.CutPrefix(kv, "VARTA_AGENT_NAME="); ok && v != "" {
				return v, v
			}
		}
	}
	key = "pid:" + strconv.Itoa(int(pid))
	return key, key
}

// slotKey is s's key as identify spells it (escaped as the environment
// has it).
func (x *Escalator) slotKey(s *track.Slot) string {
	if x.d.Declared != nil {
		if n, _, ok := x.d.Declared(int32(s.Pid)); ok {
			return n
		}
	}
	q := strconv.Quote(string(s.NameBytes()))
	return q[1 : len(q)-1]
}

// fail counts a failed recovery of pid towards its agent's ladder.
func (x *Escalator) fail(pid int32, kind int, what string) {
	key, name := x.identify(pid)
	x.failKey(key, name, pid, kind, what)
}

func (x *Escalator) failKey(key, name string, pid int32, kind int, what string) {
	x.fails[kind]++
	now := x.d.Now()
	after := x.cfg.After
	if x.d.Declared != nil {
		if _, a, ok := x.d.Declared(pid); ok && a > 0 {
			after = a
		}
	}
	n, esc := x.ladder.FailAfter(key, now, after)
	x.d.Log.Info("escalation ladder: a recovery failed", sink.Str("agent", name), sink.Str("key", key), sink.Num("pid", int64(pid)),
		sink.Str("failure", what), sink.Num("failures", int64(n)), sink.Num("escalate_after", int64(after)))
	if esc {
		x.escalate(key, name, pid, what, n, now)
	}
}

// escalate is the decision: once per agent, every step logged and counted.
func (x *Escalator) escalate(key, name string, pid int32, what string, n int, now int64) {
	x.escalations++
	x.d.Log.Warn("escalating: an agent's recovery keeps failing", sink.Str("agent", name), sink.Str("key", key),
		sink.Num("pid", int64(pid)), sink.Str("failure", what), sink.Num("failures", int64(n)),
		sink.Num("window_ms", x.cfg.Window.Milliseconds()))
	if x.d.Rec != nil {
		switch err := x.d.Rec.Escalate(pid, 0, now); {
		case err == nil:
			x.cmds[cmdStarted]++
			x.d.Log.Info("escalation: escalate command started", sink.Str("agent", name), sink.Num("pid", int64(pid)))
		case errors.Is(err, recovery.ErrNoEscalate):
		case errors.Is(err, recovery.ErrEscalateBusy):
			x.cmds[cmdBusy]++
			x.d.Log.Warn("escalation: the escalate command is still running for another agent; not started again",
				sink.Str("agent", name))
		default:
			x.cmds[cmdStartFailed]++
			x.d.Log.Error("escalation: the escalate command could not be started", sink.Str("agent", name), sink.Err(err))
		}
	}
	if !x.cfg.Reset && !x.cfg.Reboot || x.decided {
		return
	}
	x.decided = true
	x.writeReason(name, pid, what)
	if x.cfg.Reset {
		if x.d.Ops.HoldWatchdog() {
			x.d.Log.Error("escalation: stopped kicking the hardware watchdog; the board resets when it runs out",
				sink.Num("timeout_s", int64(x.d.Ops.WatchdogTimeout())), sink.Str("agent", name))
		} else if !x.cfg.Reboot {
			x.d.Log.Error("escalation: --escalate-reset, but no hardware watchdog is open: nothing resets the board",
				sink.Str("agent", name))
		}
	}
	if x.cfg.Reboot {
		x.reboot.Sync()
		how, err := x.reboot.AskInit()
		if err != nil {
			x.d.Log.Error("escalation: asking init for a reboot failed; reboot(2) follows after the grace",
				sink.Str("init", how), sink.Err(err))
		} else {
			x.d.Log.Error("escalation: asked init for a reboot", sink.Str("init", how),
				sink.Num("grace_ms", x.cfg.RebootGrace.Milliseconds()))
		}
		x.rebootAt = now + int64(x.cfg.RebootGrace)
	}
}

// writeReason puts the controlled reset's reason on disk, fsynced, before
// anything that resets the board.
func (x *Escalator) writeReason(name string, pid int32, what string) {
	if x.cfg.ResetFile == "" {
		return
	}
	nf := resetreason.Controlled(x.file, x.boot, name, int64(pid), what, time.Now().UnixMilli())
	if err := resetreason.Write(x.cfg.ResetFile, &nf); err != nil {
		x.resetFailed++
		x.d.Log.Error("escalation: writing the reset reason failed; the reset goes ahead without it",
			sink.Str("file", x.cfg.ResetFile), sink.Err(err))
		return
	}
	x.file = nf
	x.d.Log.Info("escalation: reset reason written", sink.Str("file", x.cfg.ResetFile), sink.Str("reason", nf.Describe()))
}

// escalateDone takes the escalate command's completion.
func (x *Escalator) escalateDone(c *recovery.Completion) {
	if c.Outcome == recovery.OutcomeReapedZero {
		x.cmds[cmdZero]++
		x.d.Log.Info("escalation: escalate command exited 0", sink.Num("pid", int64(c.Agent)),
			sink.Num("ms", c.Duration.Milliseconds()))
		return
	}
	x.cmds[cmdFailed]++
	x.d.Log.Warn("escalation: escalate command failed", sink.Num("pid", int64(c.Agent)), sink.Str("outcome", c.Outcome.String()),
		sink.Num("exit", int64(c.ExitCode)), sink.Str("signal", signalName(c.Signal)), sink.Num("ms", c.Duration.Milliseconds()))
}

// Render writes the escalation and reset families (only those configured).
func (x *Escalator) Render(e *promtext.Encoder) {
	if x == nil {
		return
	}
	if x.ladder != nil {
		e.Family("varta_escalation_failures_total", "Failed recoveries counted towards the escalation ladder, by kind.", promtext.TypeCounter)
		for k, l := range failLabels {
			e.Label("failure", l)
			e.Uint(x.fails[k])
		}
		e.Family("varta_escalations_total", "Agents escalated: their recovery failed --escalate-after times within the window.", promtext.TypeCounter)
		e.Uint(x.escalations)
		e.Family("varta_escalation_commands_total", "The escalate command's starts and ends, by outcome.", promtext.TypeCounter)
		for k, l := range cmdLabels {
			e.Label("outcome", l)
			e.Uint(x.cmds[k])
		}
		e.Family("varta_escalation_dropped_total", "Failures or silence checks the escalation tables had no room for.", promtext.TypeCounter)
		e.Uint(x.dropped + x.ladder.Dropped())
		e.Family("varta_escalation_watchdog_held", "1 once an escalation stopped kicking the hardware watchdog.", promtext.TypeGauge)
		e.Uint(b2u(x.d.Ops.WatchdogHeld()))
		e.Family("varta_escalation_reboot_requested", "1 once an escalation asked for a reboot (--escalate-reboot).", promtext.TypeGauge)
		e.Uint(b2u(x.rebootAt != 0))
	}
	if x.cfg.ResetFile != "" {
		e.Family("varta_reset_total", "Board resets on record in --reset-reason-file: controlled and unexpected.", promtext.TypeCounter)
		e.Uint(x.file.Resets)
		e.Family("varta_reset_reason_write_failures_total", "Reset-reason writes that failed before a controlled reset.", promtext.TypeCounter)
		e.Uint(x.resetFailed)
		if x.file.Kind != "" {
			e.Family("varta_last_reset_info", "The last reset on record: why, and the agent that escalated (empty when unexpected); always 1.", promtext.TypeGauge)
			e.Label("reason", x.file.Reason)
			e.Label("agent", x.file.Agent)
			e.Uint(1)
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
