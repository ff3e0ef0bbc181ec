package poll

import (
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Run binds the socket and runs the observer loop until SIGINT/SIGTERM or
// --shutdown-after-secs, then shuts down cleanly (OBSERVER.md §8). An error
// is a start-up or runtime failure.
func Run(cfg Config) error {
	o, err := newObserver(cfg)
	if err != nil {
		return err
	}
	if o.prom != nil {
		o.log.info("serving metrics", str("addr", o.prom.addr))
	}
	o.log.info("listening", str("socket", cfg.SocketPath), num("threshold_ms", cfg.Threshold.Milliseconds()),
		num("capacity", int64(cfg.TrackerCapacity)), num("pid", int64(os.Getpid())))
	o.notify.Send("READY=1")
	err = o.loop()
	o.opsStop(err == nil)
	o.shutdown()
	return err
}

// loop is the observer: one goroutine, one ppoll per iteration, every step
// bounded (OBSERVER.md §2).
func (o *observer) loop() error {
	var stopAt int64
	if o.cfg.ShutdownAfter > 0 {
		stopAt = o.start + int64(o.cfg.ShutdownAfter)
	}
	for {
		now := o.clock.now()
		if o.sig.stop.Load() || (stopAt != 0 && now >= stopAt) {
			return nil
		}
		if o.sig.reopen.Swap(false) {
			o.reopen()
		}
		o.pfds = append(o.pfds[:0],
			unix.PollFd{Fd: int32(o.uds.Fd()), Events: unix.POLLIN},
			unix.PollFd{Fd: int32(o.sig.rfd), Events: unix.POLLIN})
		if o.prom != nil {
			o.pfds = o.prom.addPollFds(o.pfds, now)
		}
		o.pfds = o.udp.addPollFd(o.pfds)
		o.pfds = o.addExitPollFd(o.pfds)
		o.ts = unix.NsecToTimespec(o.timeout(now, stopAt))
		if _, err := unix.Ppoll(o.pfds, &o.ts, nil); err != nil && err != unix.EINTR {
			return os.NewSyscallError("ppoll", err)
		}
		now = o.clock.now()
		o.tick(now)
		o.iterHist.Observe(float64(o.clock.now()-now) / 1e9)
	}
}

// tick is one iteration's work after the wait.
func (o *observer) tick(now int64) {
	if o.pfds[1].Revents != 0 {
		o.sig.drain()
	}
	if o.pfds[0].Revents != 0 {
		o.receive(now)
	}
	o.receiveUDP(now)
	o.reapExits(now)
	o.raiseStalls(now)
	if o.rec != nil {
		o.rec.Tick(now)
		o.checkAudit(now)
	}
	if o.prom != nil {
		o.prom.serve(o.pfds[2:], now)
		if err := o.prom.takeAcceptErr(); err != nil {
			o.log.limited(logMetrics, now, "cannot accept metrics connections, pausing the listener for 100 ms; "+
				"raise the open-file limit (ulimit -n, LimitNOFILE=) or scrape less often", str("err", err.Error()))
		}
	}
	if o.events.Due(now) {
		o.flushEvents(now)
	}
	o.c.Iterations++
	o.lastLoop = now
	o.lastLoopWall = time.Now().UnixNano()
	o.opsTick(now)
}

// timeout is the wait before the next iteration must run: never longer
// than --read-timeout-ms, and short enough to raise the next stall, kill an
// overdue child or close a timed-out metrics connection on time.
func (o *observer) timeout(now, stopAt int64) int64 {
	t := int64(o.cfg.ReadTimeout)
	if d, ok := o.tr.NextDeadline(); ok {
		t = min(t, d-now)
	}
	if o.rec != nil {
		t = min(t, o.rec.NextDeadline()-now)
	}
	if o.prom != nil {
		if d, ok := o.prom.nextDeadline(now); ok {
			t = min(t, d-now)
		}
	}
	if stopAt != 0 {
		t = min(t, stopAt-now)
	}
	t = min(t, o.opsDeadline(now)-now)
	return max(t, 0)
}

// flushEvents writes the buffered event lines; tick calls it when they
// are due (EventFile.Due), shutdown unconditionally.
func (o *observer) flushEvents(now int64) {
	before := o.events.Errors()
	o.events.Flush()
	if o.events.Errors() != before {
		o.c.IOErrors += o.events.Errors() - before
		o.log.limited(logEvents, now, "writing the event file failed; events are kept in memory up to a bound and counted when dropped",
			str("file", o.cfg.ExportFile), num("dropped", int64(o.events.Dropped())), errField(o.events.Err()))
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
	o.log.limited(logAudit, now, "writing the recovery audit log failed; records are lost (and counted) until it can be written again",
		str("file", o.cfg.Recovery.AuditFile), num("failed", int64(failed)), str("err", msg))
}

// reopen answers SIGHUP: logrotate moved the export and audit files.
func (o *observer) reopen() {
	if err := o.events.Reopen(); err != nil {
		o.log.error("reopening the event file failed", str("err", err.Error()))
	}
	if o.rec != nil {
		if err := o.rec.ReopenAudit(); err != nil {
			o.log.error("reopening the audit file failed", str("err", err.Error()))
		}
	}
	o.log.info("reopened output files after SIGHUP")
}

// shutdown is OBSERVER.md §8's clean exit: STOPPING=1, queued events
// written, recovery children stopped within the grace, files synced, the
// socket unlinked.
func (o *observer) shutdown() {
	o.notify.Send("STOPPING=1")
	o.flushEvents(o.clock.now())
	if o.rec != nil {
		if err := o.rec.Shutdown(o.cfg.ShutdownGrace); err != nil {
			o.log.error("stopping recovery children", str("err", err.Error()))
		}
	}
	o.close()
	o.log.info("stopped", num("beats", int64(o.c.Beats)), num("stalls", int64(o.c.Stalls)),
		str("uptime", strconv.FormatFloat(float64(o.clock.now()-o.start)/1e9, 'f', 1, 64)+"s"))
}
