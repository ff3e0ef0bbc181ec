package poll

import (
	"errors"

	"github.com/varta-go/varta/poll/internal/exitwatch"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/statefile"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// The observer's half of exit detection (--on-exit; the pidfds and their
// tables are package exitwatch's): following the tracker's sessions,
// reporting each exit once, and --on-exit recover.

// exitObserved follows the tracker after an accepted frame: a new session
// gets its entry (and, for a UDS one, its pidfd); a dying gasp is
// remembered so the exit event can show it.
func (o *observer) exitObserved(ob *track.Observation, f *vlp.Frame, origin track.Origin, now int64) {
	x := o.exits
	if x == nil || ob.ID == track.NoSlot {
		return
	}
	s := o.tr.Get(ob.ID)
	if ob.NewSession {
		x.Begin(ob.ID, s.Pid, s.StartTime)
	}
	if f.Nonce == vlp.NonceTerminal {
		x.Entry(ob.ID).GaspBeats = s.Beats
	}
	if ob.NewSession && origin == track.OriginUDS {
		if err := x.Start(ob.ID, s.Pid, s.StartTime, s.HasStartTime); err != nil {
			if errors.Is(err, exitwatch.ErrFallback) {
				o.log.Warn(err.Error())
			} else {
				o.log.Limited(logExit, now, "cannot watch an agent's exit with a pidfd; its exit is noticed at stall time",
					num("pid", int64(s.Pid)), sink.Err(err))
			}
		}
	}
}

// exitDrainWait bounds how long exits wait for the Unix socket's queue
// to empty when its length bound is unknown (udsReadBound) and a flood
// keeps it full; then they are reported with the frames read so far.
const exitDrainWait = 50_000_000

// reportExits reports the agents found dead, once their last frames are
// read. Everything an agent sent was queued before it died, so a drain
// begun after its death was seen that has read everything queued when it
// began (drain) has read its dying gasp, if it sent one. Until then the
// exits wait (the socket is still readable, so the loop comes straight
// back); at most exitDrainWait.
func (o *observer) reportExits(now int64) {
	if o.exits == nil || !o.exitsReady && !o.exits.DeadPending() {
		return
	}
	if !o.drain(o.rx, false, now) {
		if o.exitsHeld == 0 {
			o.exitsHeld = now
		}
		if now-o.exitsHeld < exitDrainWait {
			return
		}
	}
	o.exitsHeld = 0
	if o.exitsReady {
		o.exitsReady = false
		o.reapExits(now)
	}
	o.reportDead(now)
}

// reportDead reports the agents whose watch found them gone already (a
// one-shot sender).
func (o *observer) reportDead(now int64) {
	for _, id := range o.exits.TakeDead() {
		if e := o.exits.Entry(id); o.sameSession(id, e) {
			o.agentExited(id, now, false)
		}
	}
}

// reapExits reports the agents whose pidfd became readable.
func (o *observer) reapExits(now int64) {
	o.dead = o.exits.Ready(o.dead)
	for _, id := range o.dead {
		if !o.sameSession(id, o.exits.Entry(id)) {
			o.exits.Forget(id) // the slot moved on; nothing to report
			continue
		}
		o.agentExited(id, now, false)
	}
}

// sameSession reports whether slot id still holds the session e names.
func (o *observer) sameSession(id track.SlotID, e *exitwatch.Entry) bool {
	s := o.tr.Get(id)
	return s.Pid == e.Pid && s.StartTime == e.Start
}

// exitAtStall is the /proc fallback, called for each stall raised: a
// stalled UDS agent whose process is gone (or whose exit was already
// reported) has exited. The stall has already been handed to recovery.
func (o *observer) exitAtStall(ev *track.StallEvent, now int64) {
	x := o.exits
	if x == nil || ev.Retired || ev.Slot.Origin != track.OriginUDS {
		return
	}
	e := x.Entry(ev.ID)
	if e.Pid != ev.Pid || e.Start != ev.Slot.StartTime {
		x.Begin(ev.ID, ev.Pid, ev.Slot.StartTime)
	}
	if ev.Gone || e.Reported {
		o.agentExited(ev.ID, now, true)
	}
}

// agentExited reports the death of the agent in slot id once, then applies
// --on-exit recover: run recovery now (unless the stall already did) and
// drop the slot, whose metrics rows disappear with it.
//
// The exit line repeats the agent's last accepted frame: its nonce, status
// and payload. When that frame was a dying gasp, the nonce column holds
// the terminal marker 18446744073709551615 (vlp.NonceTerminal), exactly as
// the gasp's own beat line did, and the status is the gasp's (critical).
func (o *observer) agentExited(id track.SlotID, now int64, atStall bool) {
	x, s := o.exits, o.tr.Get(id)
	e := x.Entry(id)
	if x.Reported(id) {
		gasp := e.GaspBeats != 0 && e.GaspBeats == s.Beats
		nonce := s.LastNonce
		if gasp {
			nonce = vlp.NonceTerminal
		}
		o.events.Exit(now, s.Pid, nonce, s.Status, s.Payload)
		o.log.Warn("agent exited", num("pid", int64(s.Pid)), o.name(s), num("last_nonce", int64(s.LastNonce)),
			str("dying_gasp", yesNo(gasp)), num("silent_ms", (now-s.LastArrival)/1e6))
		o.decl.Exited(s, now) // a declared agent's expect-within-ms clock starts again
	}
	if o.cfg.Ops.OnExit != ExitRecover {
		return
	}
	pid, start, stalled := s.Pid, s.StartTime, s.Stalled || atStall
	o.exited = *s // the recovery below still wants the agent's name
	o.tr.Remove(pid)
	x.Forget(id)
	if o.rec == nil || stalled {
		return // a stall of this process already went to recovery
	}
	if st, ok := listen.ProcStartTime(pid); ok && st != start {
		o.log.Info("not recovering an exited agent: its pid already belongs to another process", num("pid", int64(pid)))
		return
	}
	if o.rec.OnStall(int32(pid), start, true, now) == recovery.OutcomeDeferred {
		x.Defer(pid, start)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// restoreState reads --state-file back: agents still alive as the same
// process are tracked on (with their exit watch), those that died while
// the observer was stopped are reported (statefile.Replay).
func (o *observer) restoreState() {
	var st *statefile.File
	if o.cfg.Ops.StateFile == "" {
		return
	}
	if o.state, st = statefile.Open(o.cfg.Ops.StateFile, o.cfg.TrackerCapacity, o.log); st == nil {
		return
	}
	now := o.clock.now()
	statefile.Replay(st, statefile.Env{Tracker: o.tr, Paths: o.paths, Events: o.events, Log: o.log, Now: now, Proc: procStart,
		Tracked: func(ob *track.Observation, f *vlp.Frame) {
			o.exitObserved(ob, f, track.OriginUDS, now)
			o.decl.Match(ob.ID, o.tr.Get(ob.ID), o.tr.Get(ob.ID).NameBytes(), o.paths.Get(o.tr.Get(ob.ID).Exe), now)
		},
		Exited: func(a *statefile.Agent, gone bool) {
			// --on-exit recover, as for an exit seen live; never against a
			// pid another process holds now, nor again after a stall.
			if o.cfg.Ops.OnExit == ExitRecover && o.rec != nil && gone && !a.Stalled {
				o.exited = track.Slot{Pid: a.Pid, LastArrival: now}
				o.exited.SetName(a.Name)
				o.rec.OnStall(int32(a.Pid), a.Start, true, now)
			}
		}})
}

// saveState writes --state-file (at most once a second, and at shutdown).
func (o *observer) saveState(now int64) {
	if err := o.state.Save(now, o.tr, o.paths); err != nil {
		o.log.Limited(logState, now, "cannot write the state file", sink.Err(err))
	}
}
