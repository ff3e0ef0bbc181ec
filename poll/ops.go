package poll

import (
	"os"
	"time"

	"github.com/varta-go/varta/promtext"
)

// Embedded operations (issue 8): what makes the observer at home on a
// board. The loop drives all of it from a few calls:
//
//	newOps        in newObserver, before the socket is bound
//	opsDeadline   bounds the poll wait (pings, kicks, heartbeat, self-watchdog)
//	addExitPollFd appends the exit watch's epoll fd to the poll set
//	reapExits     after receive: agents whose pidfd reported their death
//	exitAtStall   per raised stall: the /proc fallback of exit detection
//	opsTick       at the end of each iteration: progress for the
//	              self-watchdog, WATCHDOG=1, the hardware kick, the heartbeat file
//	opsStop       when the loop has ended, before STOPPING=1
//	closeOps      from close: magic close of the hardware watchdog, fds
//
// Everything here belongs to the loop goroutine except the self-watchdog's
// own goroutine, which reads one atomic (see watchdog.go).

// OpsConfig configures the embedded-operations features; the zero value
// turns every one of them off except exit reporting.
type OpsConfig struct {
	// SelfWatchdog > 0 aborts the process with a stack dump of every
	// goroutine when the loop completes no iteration for this long
	// (--self-watchdog-secs).
	SelfWatchdog time.Duration
	// NotifyWatchdog is $WATCHDOG_USEC (see SystemdWatchdog): send
	// WATCHDOG=1 every half of it while the loop makes progress. 0 off.
	NotifyWatchdog time.Duration
	// HWWatchdog is a watchdog device (/dev/watchdog) to open, kick every
	// tick and magic-close on a clean exit (--hw-watchdog). "" off.
	HWWatchdog string
	// HeartbeatFile is rewritten atomically with "<loop_count>
	// <observer_ns>\n" (--heartbeat-file). "" off.
	HeartbeatFile string
	// OnExit is what to do when a kernel-attested agent dies (--on-exit).
	OnExit ExitPolicy
	// AllowParentBeats admits frames whose pid is the parent of the
	// kernel-reported sender (--allow-parent-beats; see parentbeat.go).
	AllowParentBeats bool
}

// ExitPolicy is --on-exit.
type ExitPolicy uint8

const (
	// ExitReport writes an exit event and counts it as soon as a
	// kernel-attested agent is found dead; nothing else changes: the
	// slot stays and stalls at its threshold as before, so recovery runs
	// when it always did.
	ExitReport ExitPolicy = iota
	// ExitRecover reports the exit, runs recovery at once (unless the
	// agent had already stalled, which ran it) and removes the pid's slot.
	ExitRecover
	// ExitIgnore turns exit detection off: no pidfds, no exit events.
	ExitIgnore
)

var exitPolicyNames = [...]string{"report", "recover", "ignore"}

// String returns the flag spelling.
func (p ExitPolicy) String() string {
	if int(p) < len(exitPolicyNames) {
		return exitPolicyNames[p]
	}
	return "invalid"
}

// ParseExitPolicy is the inverse of String.
func ParseExitPolicy(s string) (ExitPolicy, bool) {
	for i, n := range exitPolicyNames {
		if n == s {
			return ExitPolicy(i), true
		}
	}
	return 0, false
}

// Rates of the periodic work, on the observer's clock.
const (
	heartbeatEvery    = int64(100 * time.Millisecond) // at most this often
	heartbeatMaxGap   = int64(time.Second)            // the loop wakes for it at least this often
	hwKickEvery       = int64(time.Second)            // at most this often
	hwDefaultTimeout  = 10                            // seconds, when --self-watchdog-secs is smaller
	opsLogEvery       = int64(time.Minute)            // failures of periodic work log this rarely
	minNotifyInterval = time.Millisecond
)

// ops is the loop's embedded-operations state.
type ops struct {
	cfg       OpsConfig
	wd        *selfWatchdog // nil when off
	hw        *hwWatchdog   // nil when off
	hb        *heartbeat    // nil when off
	exit      *exitWatch    // nil with ExitIgnore or without /proc
	parent    parentCounts
	pingEvery int64 // WATCHDOG=1 interval; 0 off
	nextPing  int64
	stopped   bool  // opsStop ran: no more pings, kicks or heartbeats
	clean     bool  // the loop ended cleanly: magic-close the hardware watchdog
	wedgeAt   int64 // test hook, see watchdog.go; 0 off
	nextLog   [numOpsLogs]int64
}

// opsLogKind rate-limits the periodic-work failure logs separately.
type opsLogKind uint8

const (
	opsLogPing opsLogKind = iota
	opsLogKick
	opsLogHeartbeat
	opsLogExit
	numOpsLogs
)

// newOps opens what OpsConfig asks for; an error is a start-up failure.
// On error everything opened so far is closed by the caller's closeOps.
func (o *observer) newOps() error {
	cfg := o.cfg.Ops
	x := &ops{cfg: cfg, clean: true}
	o.ops = x
	now := o.clock.now()
	x.wedgeAt = testWedgeAt(now)
	if cfg.NotifyWatchdog > 0 {
		x.pingEvery = int64(max(cfg.NotifyWatchdog/2, minNotifyInterval))
	}
	var err error
	if cfg.HeartbeatFile != "" {
		if x.hb, err = openHeartbeat(cfg.HeartbeatFile); err != nil {
			return err
		}
		if err = x.hb.write(0, 0); err != nil {
			return err
		}
		x.hb.last = now
	}
	if cfg.OnExit != ExitIgnore {
		x.exit = newExitWatch(o, cfg.OnExit)
	}
	// The hardware watchdog comes last: opening it arms the timer.
	if cfg.HWWatchdog != "" {
		timeout := max(hwDefaultTimeout, 2*int(cfg.SelfWatchdog/time.Second))
		if x.hw, err = openHWWatchdog(cfg.HWWatchdog, timeout, o.log); err != nil {
			return err
		}
		if g := o.cfg.ShutdownGrace; x.hw.timeout > 0 && g >= time.Duration(x.hw.timeout)*time.Second {
			o.log.warn("--shutdown-grace-ms is not below the hardware watchdog's timeout: a slow shutdown may reboot the board",
				num("grace_ms", g.Milliseconds()), num("timeout_s", int64(x.hw.timeout)))
		}
	}
	if cfg.SelfWatchdog > 0 {
		out := o.cfg.Log
		if out == nil {
			out = os.Stderr
		}
		x.wd = startSelfWatchdog(cfg.SelfWatchdog, out, os.Exit)
		o.log.info("self-watchdog armed", num("deadline_ms", cfg.SelfWatchdog.Milliseconds()))
	}
	return nil
}

// opsDeadline is the latest time the loop may wake for periodic work.
func (o *observer) opsDeadline(now int64) int64 {
	x := o.ops
	d := int64(1<<63 - 1)
	if x == nil || x.stopped {
		return d
	}
	if x.pingEvery > 0 && o.notify.Enabled() {
		d = min(d, x.nextPing)
	}
	if x.hw != nil {
		d = min(d, x.hw.next)
	}
	if x.hb != nil {
		d = min(d, x.hb.last+heartbeatMaxGap)
	}
	if x.wd != nil {
		// The self-watchdog watches iterations, so an idle loop must
		// still complete several per deadline.
		d = min(d, now+int64(x.wd.deadline/4))
	}
	if x.wedgeAt != 0 {
		d = min(d, x.wedgeAt)
	}
	return d
}

// opsTick is the housekeeping at the end of an iteration: everything here
// is proof that the loop made progress, so it happens only here.
func (o *observer) opsTick(now int64) {
	x := o.ops
	if x == nil || x.stopped {
		return
	}
	if x.wedgeAt != 0 && now >= x.wedgeAt {
		testWedge(o.log)
	}
	if x.wd != nil {
		x.wd.progress.Store(o.c.Iterations)
	}
	if x.pingEvery > 0 && now >= x.nextPing && o.notify.Enabled() {
		x.nextPing = now + x.pingEvery
		if err := o.notify.Send(NotifyWatchdog); err != nil {
			o.opsLog(opsLogPing, now, "sending WATCHDOG=1 failed", err)
		}
	}
	if x.hw != nil && now >= x.hw.next {
		if err := x.hw.kick(now); err != nil {
			o.opsLog(opsLogKick, now, "kicking the hardware watchdog failed", err)
		}
	}
	if x.hb != nil && now-x.hb.last >= heartbeatEvery {
		x.hb.last = now
		if err := x.hb.write(o.c.Iterations, now-o.start); err != nil {
			o.opsLog(opsLogHeartbeat, now, "writing the heartbeat file failed", err)
		}
	}
}

// opsStop runs once the loop has ended, before STOPPING=1: the
// self-watchdog stops (shutdown waits out recovery children by design),
// no WATCHDOG=1 follows, and the hardware watchdog gets a last kick to
// cover the shutdown grace. clean says whether the loop ended on request.
func (o *observer) opsStop(clean bool) {
	x := o.ops
	if x == nil || x.stopped {
		return
	}
	x.stopped, x.clean = true, clean
	if x.wd != nil {
		x.wd.stop()
	}
	if x.hw != nil {
		x.hw.kick(o.clock.now())
	}
}

// closeOps releases what newOps opened. The hardware watchdog is
// magic-closed (disarmed) unless the loop failed: a start-up failure
// never watched anything, a requested stop is deliberate, but a loop that
// died on an error should let the board reboot unless it is restarted
// within the timeout.
func (o *observer) closeOps() {
	x := o.ops
	if x == nil {
		return
	}
	if x.wd != nil {
		x.wd.stop()
	}
	if x.hw != nil {
		if err := x.hw.close(x.clean); err != nil {
			o.log.error("closing the hardware watchdog failed", str("err", err.Error()))
		}
	}
	if x.exit != nil {
		x.exit.close()
	}
	o.ops = nil
}

// opsLog logs a failure of periodic work at most once per opsLogEvery per
// kind: a kick that fails every second must not flood the log.
func (o *observer) opsLog(k opsLogKind, now int64, msg string, err error) {
	if now < o.ops.nextLog[k] {
		return
	}
	o.ops.nextLog[k] = now + opsLogEvery
	o.log.warn(msg, str("err", err.Error()))
}

// renderOps emits the metrics of this file's features.
func (o *observer) renderOps(e *promtext.Encoder) {
	x := o.ops
	var exits, watched uint64
	if x != nil && x.exit != nil {
		exits, watched = x.exit.exits, uint64(x.exit.watched)
	}
	counter(e, "varta_agent_exits_total", "Kernel-attested agents found dead (pidfd, or /proc at stall time).", exits)
	gauge(e, "varta_exit_watch_pids", "Agents whose exit is watched through a pidfd.", float64(watched))
	var p parentCounts
	if x != nil {
		p = x.parent
	}
	e.Family("varta_parent_beats_total", "Frames claiming the sender's parent pid (--allow-parent-beats), by result.", promtext.TypeCounter)
	e.Label("result", "verified")
	e.Uint(p.verified)
	e.Label("result", "sender_gone")
	e.Uint(p.senderGone)
	var kicks, kickErrs uint64
	if x != nil && x.hw != nil {
		kicks, kickErrs = x.hw.kicks, x.hw.errs
	}
	counter(e, "varta_hw_watchdog_kicks_total", "Keep-alive writes to the hardware watchdog.", kicks)
	counter(e, "varta_hw_watchdog_errors_total", "Failed keep-alive writes to the hardware watchdog.", kickErrs)
}
