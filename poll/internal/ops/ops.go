package ops

import (
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
)

// Config configures the embedded operations; the zero value turns every
// one of them off.
type Config struct {
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
	// ShutdownGrace is the observer's --shutdown-grace-ms, checked
	// against the hardware watchdog's timeout.
	ShutdownGrace time.Duration
	// Log receives the self-watchdog's abort report; nil is standard error.
	Log io.Writer
	// LogTimestamps stamps the abort report's line as the loop's are.
	LogTimestamps bool
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

// Ops is the periodic work that tells the world the loop is alive: the
// self-watchdog, WATCHDOG=1 to the service manager, the hardware watchdog
// and the heartbeat file. The loop drives it through two calls: Deadline
// bounds its wait, Tick runs at the end of every iteration (and only
// there, since each of these is proof of progress). A nil *Ops is off.
//
// Everything belongs to the loop's goroutine except the self-watchdog's
// own goroutine, which reads one atomic (see watchdog.go).
type Ops struct {
	cfg       Config
	log       *sink.Logger
	notify    *Notifier
	wd        *selfWatchdog // nil when off
	hw        *hwWatchdog   // nil when off
	hb        *heartbeat    // nil when off
	pingEvery int64         // WATCHDOG=1 interval; 0 off
	nextPing  int64
	stopped   bool  // Stop ran: no more pings, kicks or heartbeats
	clean     bool  // the loop ended cleanly: magic-close the hardware watchdog
	held      bool  // HoldWatchdog ran: no more kicks, and never a magic close
	wedgeAt   int64 // test hook, see testhooks_on.go; 0 off
	nextLog   [numOpsLogs]int64
	// suppressed counts the failure lines logFailure left out, by kind.
	suppressed [numOpsLogs]uint64
}

// HeartbeatLogSuppressed counts the heartbeat-file failure lines left out
// by the once-per-interval limit.
func (x *Ops) HeartbeatLogSuppressed() uint64 {
	if x == nil {
		return 0
	}
	return x.suppressed[opsLogHeartbeat]
}

// opsLogKind rate-limits the periodic-work failure logs separately.
type opsLogKind uint8

const (
	opsLogPing opsLogKind = iota
	opsLogKick
	opsLogHeartbeat
	numOpsLogs
)

// New opens what cfg asks for at time now; notify carries WATCHDOG=1 (it
// may be a no-op Notifier). An error is a start-up failure, and what was
// opened so far is closed again.
func New(cfg Config, log *sink.Logger, notify *Notifier, now int64) (_ *Ops, err error) {
	x := &Ops{cfg: cfg, log: log, notify: notify, clean: true}
	defer func() {
		if err != nil {
			x.Close()
		}
	}()
	x.wedgeAt = testWedgeAt(now)
	if cfg.NotifyWatchdog > 0 {
		x.pingEvery = int64(max(cfg.NotifyWatchdog/2, minNotifyInterval))
	}
	if cfg.HeartbeatFile != "" {
		if x.hb, err = openHeartbeat(cfg.HeartbeatFile); err != nil {
			return nil, err
		}
		if err = x.hb.write(0, 0); err != nil {
			return nil, err
		}
		x.hb.last = now
	}
	// The hardware watchdog comes last: opening it arms the timer.
	if cfg.HWWatchdog != "" {
		timeout := max(hwDefaultTimeout, 2*int(cfg.SelfWatchdog/time.Second))
		if x.hw, err = openHWWatchdog(cfg.HWWatchdog, timeout, log); err != nil {
			return nil, err
		}
		if g := cfg.ShutdownGrace; x.hw.timeout > 0 && g >= time.Duration(x.hw.timeout)*time.Second {
			log.Warn("--shutdown-grace-ms is not below the hardware watchdog's timeout: a slow shutdown may reboot the board",
				sink.Num("grace_ms", g.Milliseconds()), sink.Num("timeout_s", int64(x.hw.timeout)))
		}
	}
	if cfg.SelfWatchdog > 0 {
		out := cfg.Log
		if out == nil {
			out = os.Stderr
		}
		x.wd = startSelfWatchdog(cfg.SelfWatchdog, out, cfg.LogTimestamps, os.Exit)
		log.Info("self-watchdog armed", sink.Num("deadline_ms", cfg.SelfWatchdog.Milliseconds()))
	}
	return x, nil
}

// Deadline is the latest time the loop may wake for periodic work.
func (x *Ops) Deadline(now int64) int64 {
	d := int64(1<<63 - 1)
	if x == nil || x.stopped {
		return d
	}
	if x.pingEvery > 0 && x.notify.Enabled() {
		d = min(d, x.nextPing)
	}
	if x.hw != nil && !x.held {
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

// Tick is the housekeeping at the end of an iteration: iterations is the
// loop's count so far, uptime the observer's age in ns.
func (x *Ops) Tick(now int64, iterations uint64, uptime int64) {
	if x == nil || x.stopped {
		return
	}
	if x.wedgeAt != 0 && now >= x.wedgeAt {
		testWedge(x.log)
		x.wedgeAt = 0 // a bounded wedge is over
	}
	if x.wd != nil {
		x.wd.progress.Store(iterations)
	}
	if x.pingEvery > 0 && now >= x.nextPing && x.notify.Enabled() {
		x.nextPing = now + x.pingEvery
		if err := x.notify.Send(NotifyWatchdog); err != nil {
			x.logFailure(opsLogPing, now, "sending WATCHDOG=1 failed", err)
		}
	}
	if x.hw != nil && !x.held && now >= x.hw.next {
		if err := x.hw.kick(now); err != nil {
			x.logFailure(opsLogKick, now, "kicking the hardware watchdog failed", err)
		}
	}
	if x.hb != nil && now-x.hb.last >= heartbeatEvery {
		x.hb.last = now
		if err := x.hb.write(iterations, uptime); err != nil {
			x.logFailure(opsLogHeartbeat, now, "writing the heartbeat file failed", err)
		}
	}
}

// Stop runs once the loop has ended, before STOPPING=1: the self-watchdog
// stops (shutdown waits out recovery children by design), no WATCHDOG=1
// follows, and the hardware watchdog gets a last kick to cover the
// shutdown grace. clean says whether the loop ended on request.
func (x *Ops) Stop(clean bool, now int64) {
	if x == nil || x.stopped {
		return
	}
	x.stopped, x.clean = true, clean
	if x.wd != nil {
		x.wd.stop()
	}
	if x.hw != nil && !x.held {
		x.hw.kick(now)
	}
}

// Close releases what New opened. The hardware watchdog is magic-closed
// (disarmed) unless the loop failed: a start-up failure never watched
// anything, a requested stop is deliberate, but a loop that died on an
// error should let the board reboot unless it is restarted within the
// timeout. Safe on a nil or partly opened Ops, and more than once.
func (x *Ops) Close() error {
	if x == nil {
		return nil
	}
	if x.wd != nil {
		x.wd.stop()
	}
	var err error
	if x.hw != nil && x.hw.fd >= 0 {
		err = x.hw.close(x.clean && !x.held)
	}
	return err
}

// HoldWatchdog stops kicking the hardware watchdog for good, so that the
// board resets once its timeout runs out (a controlled reset, see package
// escalate), and makes sure nothing disarms it any more: neither Stop's
// last kick nor the magic close of a clean exit (a SIGTERM after the
// decision must not undo it). It reports whether a watchdog is open;
// without one nothing resets the board.
func (x *Ops) HoldWatchdog() bool {
	if x == nil || x.hw == nil {
		return false
	}
	x.held = true
	return true
}

// HWOpen reports whether a hardware watchdog is open.
func (x *Ops) HWOpen() bool { return x != nil && x.hw != nil }

// WatchdogHeld reports whether HoldWatchdog ran with a watchdog open.
func (x *Ops) WatchdogHeld() bool { return x != nil && x.hw != nil && x.held }

// WatchdogTimeout is the hardware watchdog's timeout in seconds as its
// driver reports it; 0 when unknown or none is open.
func (x *Ops) WatchdogTimeout() int {
	if x == nil || x.hw == nil {
		return 0
	}
	return x.hw.timeout
}

// WatchdogBootStatus is the open watchdog's WDIOC_GETBOOTSTATUS: what the
// driver knows of why the board last reset (WDIOF_CARDRESET: the watchdog
// did). ok is false without a watchdog, or when the driver does not say
// (ENOTTY: a driver without the ioctl, or a stand-in that is no watchdog).
func (x *Ops) WatchdogBootStatus() (status int, ok bool) {
	if x == nil || x.hw == nil || x.hw.fd < 0 {
		return 0, false
	}
	st, err := unix.IoctlGetInt(x.hw.fd, unix.WDIOC_GETBOOTSTATUS)
	return st, err == nil
}

// Stopped reports whether Stop ran: the loop has ended and the observer
// is shutting down.
func (x *Ops) Stopped() bool { return x != nil && x.stopped }

// HWKicks reports the hardware watchdog's keep-alive writes and failures.
func (x *Ops) HWKicks() (kicks, errs uint64) {
	if x == nil || x.hw == nil {
		return 0, 0
	}
	return x.hw.kicks, x.hw.errs
}

// logFailure logs a failure of periodic work at most once per opsLogEvery
// per kind: a kick that fails every second must not flood the log.
func (x *Ops) logFailure(k opsLogKind, now int64, msg string, err error) {
	if now < x.nextLog[k] {
		x.suppressed[k]++
		return
	}
	x.nextLog[k] = now + opsLogEvery
	x.log.Warn(msg, sink.Err(err))
}
