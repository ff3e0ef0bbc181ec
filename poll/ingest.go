package poll

import (
	"github.com/varta-go/varta/vlp"
)

// receive drains the socket in bounded batches; what is left waits for the
// next iteration, after due stalls have been raised.
func (o *observer) receive(now int64) {
	for b := 0; b < batchesPerTick; b++ {
		n, err := o.rx.Recv()
		if err != nil {
			o.c.IOErrors++
			o.events.IO(now, "recv")
			o.log.limited(logIO, now, "receiving from the socket failed", str("err", err.Error()))
			return
		}
		o.c.Received += uint64(n)
		for i := 0; i < n; i++ {
			o.handle(i, now)
		}
		o.c.ClosedFds = o.rx.ClosedFds()
		if n < o.rx.Batch() {
			return
		}
	}
}

// handle runs one datagram through decode, identity and tracking. Nothing
// here allocates for a well-formed beat.
func (o *observer) handle(i int, now int64) {
	if o.rx.Truncated(i) || o.rx.Len(i) != vlp.Size {
		o.c.Truncated++
		return
	}
	f, e := vlp.Parse(o.rx.Data(i))
	if e != 0 {
		o.c.DecodeErrors[e]++
		o.events.Decode(now, e)
		o.log.limited(logDecode, now, "dropped a malformed frame", str("kind", e.Name()))
		return
	}
	pid, uid, _, ok := o.rx.Cred(i)
	switch {
	case !ok:
		o.refuse(now, f.Pid, MismatchAuthFailure, &o.c.AuthFailures, "frame without kernel credentials")
		return
	case !o.uidAllowed(uid):
		o.refuse(now, f.Pid, MismatchAuthFailure, &o.c.UIDRefused, "sender uid not allowed (see --allow-uid)")
		return
	case pid != f.Pid:
		if !o.otherPid(now, &f, pid) {
			return
		}
	}
	o.track(f, OriginUDS, now)
}

// crossNamespace classifies a frame whose pid differs from the kernel's
// view of the sender. An agent in a child pid namespace reports its own
// namespace's pid; with --allow-cross-namespace-agents it is tracked under
// the pid we can see (and signal). Anything else is a spoof.
func (o *observer) crossNamespace(now int64, f *vlp.Frame, kernelPid uint32) bool {
	inner, ok := o.ns.get(kernelPid, now)
	switch {
	case kernelPid != 0 && (!ok || inner != f.Pid):
		o.refuse(now, f.Pid, MismatchAuthFailure, &o.c.AuthFailures, "frame pid differs from the sender's kernel pid")
		return false
	case !o.cfg.AllowCrossNS || kernelPid == 0:
		// pid 0: the sender lives where we cannot see or signal it.
		o.refuse(now, f.Pid, MismatchNamespaceConflict, &o.c.NSRefused, "agent in another pid namespace (see --allow-cross-namespace-agents)")
		return false
	}
	f.Pid = kernelPid
	return true
}

func (o *observer) refuse(now int64, pid uint32, reason MismatchReason, counter *uint64, msg string) {
	*counter++
	o.events.Mismatch(now, pid, reason)
	o.log.limited(logAuth, now, msg, num("pid", int64(pid)), str("reason", string(reason)))
}

func (o *observer) uidAllowed(uid uint32) bool {
	for _, u := range o.allow {
		if u == uid {
			return true
		}
	}
	return false
}

// track applies the tracker's verdict: counters, events, logs.
func (o *observer) track(f vlp.Frame, origin Origin, now int64) {
	v, evicted, wrapped := o.tr.Observe(f, origin, now)
	o.exitObserved(v, &f, origin, now)
	if evicted != 0 {
		o.c.Evictions++
		o.events.Eviction(now, evicted)
		o.log.info("evicted a silent pid to make room", num("pid", int64(evicted)), num("for", int64(f.Pid)))
	}
	switch v {
	case VerdictAccepted, VerdictRestarted:
		o.c.Beats++
		if wrapped {
			o.c.NonceWraps++
		}
		o.events.Beat(now, f.Pid, f.Nonce, f.Status, f.Payload)
		if s := o.tr.Lookup(f.Pid); s != nil && s.Beats == 1 {
			o.log.info("tracking a new agent", num("pid", int64(f.Pid)), str("origin", origin.String()))
		}
	case VerdictOutOfOrder:
		o.c.OutOfOrder++
	case VerdictTerminalReplay:
		o.c.TermReplays++
	case VerdictOriginConflict:
		o.refuse(now, f.Pid, MismatchOriginConflict, &o.c.OriginClash, "pid is tracked from a more trusted transport")
	case VerdictPidRateLimited:
		o.c.RateLimited[ratePerPid]++
		o.log.limited(logRate, now, "beat over the per-pid rate (see --max-beat-rate)", num("pid", int64(f.Pid)))
	case VerdictGlobalRateLimited:
		o.c.RateLimited[rateGlobal]++
		o.log.limited(logRate, now, "beat over the global rate (see --global-beat-rate)", num("pid", int64(f.Pid)))
	case VerdictCapacityExceeded:
		o.c.CapExceeded++
		o.log.limited(logCapacity, now, "pid table full, new agent dropped (see --tracker-capacity)", num("pid", int64(f.Pid)))
	}
}

// raiseStalls pops every due stall (bounded per tick) and hands it to
// recovery. A recycled pid is retired, not stalled.
//
// An agent whose process has exited (ev.Gone: no process holds the pid)
// is stalled like any other, logged as gone, and still gets recovery when
// it was kernel-attested: its pid was checked by SCM_CREDENTIALS when it
// beat, and restarting a crashed service is what the recovery command is
// for. Only a pid now held by another process is denied it (Retired here,
// or skipped_stale when recovery re-checks a deferred stall).
func (o *observer) raiseStalls(now int64) {
	for k := 0; k < stallsPerTick; k++ {
		ev, ok := o.tr.PopStall(now)
		if !ok {
			return
		}
		if ev.Retired {
			o.c.Retired++
			o.log.info("pid now belongs to another process; stopped tracking it", num("pid", int64(ev.Pid)))
			continue
		}
		o.c.Stalls++
		o.events.Stall(now, ev.Pid, ev.Nonce)
		if ev.Gone {
			o.log.warn("agent stalled", num("pid", int64(ev.Pid)), num("silent_ms", ev.Silence/1e6),
				num("last_nonce", int64(ev.Nonce)), str("process", "gone"))
		} else {
			o.log.warn("agent stalled", num("pid", int64(ev.Pid)), num("silent_ms", ev.Silence/1e6),
				num("last_nonce", int64(ev.Nonce)))
		}
		if o.rec != nil {
			o.rec.OnStall(int32(ev.Pid), ev.Slot.StartTime, o.recoveryEligible(ev.Slot.Origin), now)
		}
		o.exitAtStall(&ev, now)
	}
}
