package poll

import (
	"cmp"
	"net/netip"
	"os"
	"strconv"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/upstats"
	"github.com/varta-go/varta/poll/internal/wait"
)

// Run binds the socket and runs the observer loop until SIGINT/SIGTERM or
// --shutdown-after-secs, then shuts down cleanly (cmd/varta-watch/README.md
// §8). An error
// is a start-up or runtime failure.
func Run(cfg Config) error {
	o, err := newObserver(cfg)
	if err != nil {
		return err
	}
	if o.prom != nil {
		o.log.Info("serving metrics", str("addr", o.prom.Addr()))
		o.warnOffHost("the metrics endpoint", o.prom.Addr())
	}
	if o.udp != nil {
		o.warnOffHost("the UDP listener", o.udp.addr)
	}
	o.restoreState()
	o.log.Info("listening", str("socket", cfg.SocketPath),
		str("observer_ns_0", o.startWall.UTC().Format(time.RFC3339Nano)), num("threshold_ms", cfg.Threshold.Milliseconds()),
		num("capacity", int64(cfg.TrackerCapacity)), num("pid", int64(os.Getpid())))
	o.notify.Send("READY=1")
	err = o.loop()
	o.ops.Stop(err == nil, o.clock.now())
	o.shutdown()
	return err
}

// loop is the observer: one goroutine, parked in the Go runtime's
// netpoller between wakes (fds.go), every step bounded
// (cmd/varta-watch/README.md §2).
func (o *observer) loop() error {
	if o.cfg.ShutdownAfter > 0 {
		o.stopAt = o.start + int64(o.cfg.ShutdownAfter)
	}
	return cmp.Or(o.fds.Run(o), o.fatal)
}

// Prepare runs before every look at the fds (wait.Body): it stops the
// loop when asked to, answers SIGHUP, registers the fds wanted now and
// says until when the loop may sleep.
func (o *observer) Prepare() (int64, bool) {
	now := o.clock.now()
	if o.sig.stop.Load() || (o.stopAt != 0 && now >= o.stopAt) || o.fatal != nil {
		return 0, true
	}
	if o.sig.reopen.Swap(false) {
		o.reopen()
	}
	o.register(now)
	return o.deadline(now), false
}

// Finish is one iteration's work once the fds were looked at (wait.Body).
func (o *observer) Finish() {
	now := o.clock.now()
	o.st.Begin(now, o.clock.regressions)
	o.tick(now)
	o.st.End()
}

// The handlers of the loop's own fds: each a view of the observer.
type (
	onUDS   observer
	onUDP   observer
	onExits observer
)

func (h *onUDS) Ready(_ int32, _ int16, now int64) { (*observer)(h).receive(now) }
func (h *onUDP) Ready(_ int32, _ int16, now int64) { (*observer)(h).receiveUDP(now) }
func (h *onExits) Ready(int32, int16, int64) {
	// Reported after the whole dispatch: epoll hands events back in no
	// set order, and an agent's last frames (a dying gasp) must be read
	// before its death is reported.
	(*observer)(h).exitsReady = true
}

// register puts every fd the loop waits on now into the wait, each with
// what handles it, in the order a tick handles them: signals first, then
// the sockets (beats before the exits they may precede), the exit watch,
// and the metrics endpoint.
func (o *observer) register(now int64) {
	o.fds.Reset()
	o.fds.Add(o.sig.rfd, wait.In, 0, o.sig, 0)
	if o.cfg.Batch == 0 { // in batch mode the sockets are read on the tick
		o.fds.Add(o.uds.Fd(), wait.In, 0, (*onUDS)(o), 0)
		if o.udp != nil {
			o.fds.Add(o.udp.fd, wait.In, 0, (*onUDP)(o), 0)
		}
	}
	o.sdn.Register(o.fds) // read on arrival, in --batch-ms mode too: a notify message is rare
	if fd := o.exits.Fd(); fd >= 0 {
		o.fds.Add(fd, wait.In, 0, (*onExits)(o), 0)
	}
	if o.prom != nil {
		for _, f := range o.prom.Fds(now) {
			o.fds.Add(f.Fd, f.Events, f.Gen, o.prom, f.Arg)
		}
	}
	o.ctl.Register(o.fds, now)
}

// tick is one iteration's work after the wait: what the ready fds asked
// for, then what is due whether or not any fd was ready.
func (o *observer) tick(now int64) {
	o.lastLoop = now // the loop is running: /healthz and the loop timestamp say so
	o.lastLoopWall = time.Now().UnixNano()
	o.fds.Dispatch(now)
	if o.cfg.Batch > 0 {
		// Batch mode: read what queued up since the last wake before any
		// silence is judged, on the tick and on any other wake (a scrape,
		// a signal) alike.
		o.receive(now)
		if o.udp != nil {
			o.receiveUDP(now)
		}
		if period := int64(o.cfg.Batch); now >= o.nextBatch {
			o.nextBatch += (now-o.nextBatch)/period*period + period
		}
	}
	o.st.Mark(upstats.StagePoll)
	o.udp.expire(now)
	o.reportExits(now)
	o.raiseStalls(now)
	o.decl.Tick(now)                     // declared agents not beating within their expect-within-ms
	o.st.Mark(upstats.StageDrainPending) // with the replay table's expiry, a few compares
	if o.state != nil && o.state.Due(now) {
		o.saveState(now)
	}
	if o.rec != nil {
		o.st.Mark(upstats.StageMaintenance)
		o.rec.Tick(now)
		o.st.Mark(upstats.StageRecoveryReap)
		o.checkAudit(now)
	}
	if o.prom != nil {
		if err := o.prom.TakeAcceptErr(); err != nil {
			o.log.Limited(logMetrics, now, "cannot accept metrics connections, pausing the listener for 100 ms; "+
				"raise the open-file limit (ulimit -n, LimitNOFILE=) or scrape less often", sink.Err(err))
		}
	}
	o.st.Mark(upstats.StageMaintenance)
	if o.events.Due(now) {
		o.flushEvents(now)
	}
	o.esc.Tick(now)
	o.c.Iterations++
	o.ops.Tick(now, o.c.Iterations, now-o.start)
}

// deadline is when the loop must wake at the latest: the next stall
// deadline, recovery's next child deadline, a metrics connection's
// deadline, the buffered event lines' flush, the next periodic duty of
// package ops, or --shutdown-after-secs, and never later than
// --read-timeout-ms from now. Absolute, so that a deadline that did not
// move re-arms no timer.
func (o *observer) deadline(now int64) int64 {
	d := o.ctl.Deadline(now + int64(o.cfg.ReadTimeout))
	if o.stopAt != 0 {
		d = min(d, o.stopAt)
	}
	if o.cfg.Batch > 0 {
		// Everything due waits for the next tick: stalls are judged only
		// after the sockets were read, and one wake serves all.
		return min(d, o.nextBatch)
	}
	if t, ok := o.tr.NextDeadline(); ok {
		d = min(d, t)
	}
	if o.rec != nil {
		d = min(d, o.rec.NextDeadline())
	}
	if o.prom != nil {
		if t, ok := o.prom.NextDeadline(now); ok {
			d = min(d, t)
		}
	}
	if t, ok := o.events.DueAt(); ok {
		// A trickle of beats flushes on its own wakes; the slack keeps a
		// lone line from costing a wake of its own.
		d = min(d, t+eventFlushSlack)
	}
	d = min(d, o.esc.Deadline(), o.decl.Deadline())
	return min(d, o.ops.Deadline(now))
}

// eventFlushSlack is how much later than due a buffered event line may be
// written when nothing else wakes the loop.
const eventFlushSlack = int64(100 * time.Millisecond)

// flushEvents writes the buffered event lines; tick calls it when they
// are due (EventFile.Due), shutdown unconditionally.
func (o *observer) flushEvents(now int64) {
	before := o.events.Errors()
	o.events.Flush()
	if o.events.Errors() != before {
		o.c.IOErrors += o.events.Errors() - before
		o.log.Backoff(logEvents, now, true, "writing the event file failed; events are kept in memory up to a bound and counted when dropped",
			str("file", o.cfg.ExportFile), num("dropped", int64(o.events.Dropped())), sink.Err(o.events.Err()))
	}
}

// checkAudit counts and logs (rate-limited) the audit-log writes that
// failed since the last tick: recovery counts them and carries on, and
// without this a full disk would lose audit records silently.
func (o *observer) checkAudit(now int64) {
	_, failed, last := o.rec.AuditStats()
	if failed == o.auditFailed {
		return
	}
	o.c.IOErrors += failed - o.auditFailed
	o.auditFailed = failed
	msg := "-"
	if last != nil {
		msg = last.Error()
	}
	o.log.Limited(logAudit, now, "writing the recovery audit log failed; records are lost (and counted) until it can be written again",
		str("file", o.cfg.Recovery.AuditFile), num("failed", int64(failed)), str("err", msg))
}

// reopen answers SIGHUP: logrotate moved the export and audit files.
func (o *observer) reopen() {
	if err := o.events.Reopen(); err != nil {
		o.log.Error("reopening the event file failed", sink.Err(err))
	}
	if o.rec != nil {
		if err := o.rec.ReopenAudit(); err != nil {
			o.log.Error("reopening the audit file failed", sink.Err(err))
		}
	}
	o.log.Backoff(logReopen, o.clock.now(), false, "reopened output files after SIGHUP")
	o.decl.Reload(o.clock.now()) // --agents-file: a bad file keeps the old one
}

// shutdown is cmd/varta-watch/README.md §8's clean exit: STOPPING=1, queued events
// written, recovery children stopped within the grace, files synced, the
// socket unlinked.
func (o *observer) shutdown() {
	o.notify.Send("STOPPING=1")
	o.flushEvents(o.clock.now())
	if o.state != nil {
		o.saveState(o.clock.now())
	}
	if o.rec != nil {
		if err := o.rec.Shutdown(o.cfg.ShutdownGrace); err != nil {
			o.log.Error("stopping recovery children", sink.Err(err))
		}
	}
	o.close()
	o.log.Info("stopped", num("beats", int64(o.c.Beats)), num("stalls", int64(o.c.Stalls)),
		str("uptime", strconv.FormatFloat(float64(o.clock.now()-o.start)/1e9, 'f', 1, 64)+"s"))
}

// warnOffHost says loudly, at start, that a listener can be reached from
// other hosts: whatever it accepts, the network can send.
func (o *observer) warnOffHost(what, addr string) {
	if ap, err := netip.ParseAddrPort(addr); err == nil && !ap.Addr().Unmap().IsLoopback() {
		o.log.Warn(what+" is reachable from other hosts; firewall it, or bind it to 127.0.0.1 or [::1] if nothing "+
			"off this host needs it", str("addr", addr))
	}
}
