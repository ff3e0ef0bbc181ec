package poll

import (
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// The beat path: datagrams off a socket → decode → identity → tracker.
// Nothing here allocates for a well-formed beat.

// receive drains the Unix socket; receiveUDP (udp.go) the UDP one.
func (o *observer) receive(now int64) { o.drain(o.rx, false, now) }

// drain reads rx in bounded batches and handles every datagram; what is
// left waits for the next iteration, after due stalls have been raised.
// udp says which handler judges the datagrams. It reports whether every
// datagram queued when it began has been read: its last call found the
// queue empty, or it read at least as many as the Unix socket's queue can
// hold (udsReadBound; it then tells rx so, for the pid-reuse guard). Then
// a stall judged at a clock reading taken before the drain cannot miss a
// beat that was waiting in the queue at that reading.
func (o *observer) drain(rx *listen.Receiver, udp bool, now int64) bool {
	limit, bound := o.udsPerPass, o.udsBound
	if udp {
		limit, bound = batchesPerTick*rx.Batch(), false
	}
	first := uint64(0) // the first receive call of this drain
	for read := 0; read < limit; {
		want := min(limit-read, rx.Batch())
		n, err := rx.RecvAtMost(want)
		if err != nil {
			o.c.IOErrors++
			what := "recv"
			if udp {
				what = "recv udp"
			}
			o.events.IO(now, what+": "+err.Error())
			o.log.Limited(logIO, now, "receiving from the socket failed", str("op", what), sink.Err(err))
			return false
		}
		if first == 0 {
			first = rx.Calls()
		}
		o.c.Received += uint64(n)
		for i := 0; i < n; i++ {
			if udp {
				o.handleUDP(i, now)
			} else {
				o.handle(i, now)
			}
		}
		o.c.ClosedFds = o.rx.ClosedFds()
		if n < want {
			return true
		}
		read += n
	}
	if bound {
		rx.ReadAllQueuedBefore(first)
	}
	return bound
}

// handle runs one Unix-socket datagram through decode, identity and
// tracking.
func (o *observer) handle(i int, now int64) {
	if o.rx.Truncated(i) || o.rx.Len(i) != vlp.Size {
		o.c.Truncated++
		return
	}
	if o.rx.CtrlTruncated(i) {
		// The sender passed more descriptors than fit (all closed unread);
		// the frame is still judged on the credentials that arrived.
		o.events.Ctrunc(now, ctruncText)
		o.log.Limited(logIO, now, "a datagram's control data was cut short by the kernel (its sender passed file descriptors)")
	}
	f, e := vlp.Parse(o.rx.Data(i))
	if e != 0 {
		o.decodeError(now, e, o.rx.Data(i), "uds")
		return
	} else if o.tr.AbovePidMax(f.Pid) { // at or above pid_max no process has it (the tracker counts it)
		return
	}
	pid, uid, _, ok := o.rx.Cred(i)
	switch {
	case !ok:
		o.refuse(now, f.Pid, sink.MismatchAuthFailure, &o.c.AuthFailures, "frame without kernel credentials")
		return
	case !o.uidAllowed(uid):
		o.refuse(now, f.Pid, sink.MismatchAuthFailure, &o.c.UIDRefused, "sender uid not allowed (see --allow-uid)")
		return
	case pid != f.Pid:
		if !o.otherPid(now, &f, pid) {
			return
		}
	}
	if why := o.guard.Check(o.rx, i, o.tr, f.Pid); why != "" {
		o.log.Limited(logAuth, now, why, num("pid", int64(f.Pid)))
		return
	}
	o.track(f, track.OriginUDS, now)
}

// ctruncText is the payload of a ctrunc event.
const ctruncText = "control data truncated by the kernel (the sender passed more file descriptors than fit)"

// decodeError counts a frame (or a secure frame's plaintext) that fails
// vlp/PROTOCOL.md §2; frame is its 32 bytes, or nil when not at hand.
func (o *observer) decodeError(now int64, e vlp.Error, frame []byte, transport string) {
	o.c.DecodeErrors[e]++
	o.events.Decode(now, e, frame)
	o.log.Limited(logDecode, now, "dropped a malformed frame", str("kind", e.Name()), str("transport", transport))
}

// otherPid classifies a frame whose pid is not its sender's kernel pid: a
// parent beat, an agent in a child pid namespace, or a spoof. It reports
// whether the frame may be tracked (under f.Pid, which it may rewrite).
//
// Parent beats (--allow-parent-beats) let a shell-script daemon beat by
// running `varta-beat --parent` in its loop: the frame's pid must be the
// sender's parent (field 4 of /proc/<sender>/stat, read now), so a
// process can beat only for its own parent. A sender already reaped by
// that parent has no /proc entry left, and its frame is refused and
// counted (varta-beat --parent waits until its last frame was read before
// exiting, which narrows that window). Parent sessions use
// CLOCK_MONOTONIC nanoseconds as nonces, so successive varta-beat
// children produce one rising sequence for the shell's pid.
func (o *observer) otherPid(now int64, f *vlp.Frame, sender uint32) bool {
	if o.cfg.Ops.AllowParentBeats && sender != 0 {
		ppid, ok := listen.ProcParentPid(sender)
		switch {
		case !ok:
			o.c.Parent[parentSenderGone]++
			o.refuse(now, f.Pid, sink.MismatchAuthFailure, &o.c.AuthFailures,
				"parent beat refused: the sender exited before its parent could be checked")
			return false
		case ppid == f.Pid:
			o.c.Parent[parentVerified]++
			return true
		}
	}
	return o.crossNamespace(now, f, sender)
}

// crossNamespace classifies a frame whose pid differs from the kernel's
// view of the sender. An agent in a child pid namespace reports its own
// namespace's pid; with --allow-cross-namespace-agents it is tracked under
// the pid we can see (and signal). Anything else is a spoof.
func (o *observer) crossNamespace(now int64, f *vlp.Frame, kernelPid uint32) bool {
	inner, ok := o.ns.Get(kernelPid, now)
	switch {
	case kernelPid != 0 && (!ok || inner != f.Pid):
		o.refuse(now, f.Pid, sink.MismatchAuthFailure, &o.c.AuthFailures, "frame pid differs from the sender's kernel pid")
		return false
	case !o.cfg.AllowCrossNS || kernelPid == 0:
		// pid 0: the sender lives where we cannot see or signal it.
		if o.cfg.StrictNS && o.fatal == nil {
			o.fatal = listen.ForeignNamespaceError(f.Pid)
		}
		o.refuse(now, f.Pid, sink.MismatchNamespaceConflict, &o.c.NSRefused, "agent in another pid namespace (see --allow-cross-namespace-agents)")
		return false
	}
	f.Pid = kernelPid
	return true
}

func (o *observer) refuse(now int64, pid uint32, reason sink.MismatchReason, counter *uint64, msg string) {
	*counter++
	o.events.Mismatch(now, pid, reason)
	o.log.Limited(logAuth, now, msg, num("pid", int64(pid)), str("reason", string(reason)))
}

func (o *observer) uidAllowed(uid uint32) bool {
	for _, u := range o.allow {
		if u == uid {
			return true
		}
	}
	return false
}

// track applies the tracker's verdict: counters, events, logs, and the
// exit watch of a new session. It reports whether the frame was accepted.
func (o *observer) track(f vlp.Frame, origin track.Origin, now int64) bool {
	ob := o.tr.Observe(f, origin, now)
	if ob.Evicted != 0 {
		o.c.Evictions++
		o.events.Eviction(now, ob.Evicted)
		o.log.Info("evicted a silent pid to make room", num("pid", int64(ob.Evicted)), num("for", int64(f.Pid)))
	}
	switch ob.Verdict {
	case track.VerdictAccepted, track.VerdictRestarted:
		o.c.Beats++
		if ob.Wrapped {
			o.c.NonceWraps++
		}
		o.events.Beat(now, f.Pid, f.Nonce, f.Status, f.Payload)
		s := o.tr.Get(ob.ID)
		if ob.NewSession {
			if origin == track.OriginUDS {
				o.readName(ob.ID, s, now)
			}
			o.log.Info("tracking a new agent", num("pid", int64(f.Pid)), o.name(s), str("origin", origin.String()))
		}
		if ob.Resumed {
			o.c.Recovered++
			o.events.Recovered(now, f.Pid, f.Nonce, f.Status, ob.Silent/1e6)
			o.log.Info("agent beats again after its stall", num("pid", int64(f.Pid)), o.name(s), num("silent_ms", ob.Silent/1e6))
		}
		o.exitObserved(&ob, &f, origin, now)
	case track.VerdictOutOfOrder:
		o.c.OutOfOrder++
	case track.VerdictTerminalReplay:
		o.c.TermReplays++
	case track.VerdictOriginConflict:
		o.refuse(now, f.Pid, sink.MismatchOriginConflict, &o.c.OriginClash, "pid is tracked from a more trusted transport")
	case track.VerdictPidRateLimited:
		o.c.RateLimited[ratePerPid]++
		o.log.Limited(logRate, now, "beat over the per-pid rate (see --max-beat-rate)", num("pid", int64(f.Pid)))
	case track.VerdictGlobalRateLimited:
		o.c.RateLimited[rateGlobal]++
		o.log.Limited(logRate, now, "beat over the global rate (see --global-beat-rate)", num("pid", int64(f.Pid)))
	case track.VerdictCapacityExceeded:
		o.c.CapExceeded++
		o.log.Limited(logCapacity, now, "pid table full, new agent dropped (see --tracker-capacity)", num("pid", int64(f.Pid)))
	}
	return ob.Verdict.Accepted()
}

// readName keeps a kernel-attested agent's process name and program path
// in its slot, read once per session (two /proc reads, never per beat),
// and ties it to its declared agent (package declared).
func (o *observer) readName(id track.SlotID, s *track.Slot, now int64) {
	var comm [listen.CommMax]byte
	if n, ok := listen.ProcComm(s.Pid, &comm); ok {
		s.SetName(comm[:n])
	}
	exe := o.exe[:0]
	if n, ok := listen.ProcExe(s.Pid, o.exe[:]); ok {
		s.Exe, exe = o.paths.Intern(o.exe[:n]), o.exe[:n]
	}
	o.decl.Match(id, s, s.NameBytes(), exe, now)
}

// name is the log field of an agent's name: bytes the agent chose,
// escaped by the logger; "-" when unknown; with agent=NAME after it for a
// declared agent.
func (o *observer) name(s *track.Slot) sink.Field {
	if s == nil || s.NameLen == 0 {
		return str("name", "-")
	}
	return sink.NameAgent(s.NameBytes(), o.decl.Name(s))
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
			o.c.Retired, o.c.PidRecycled = o.c.Retired+1, o.c.PidRecycled+1
			o.log.Info("pid now belongs to another process; stopped tracking it", num("pid", int64(ev.Pid)))
			continue
		}
		o.c.Stalls++
		o.events.Stall(now, ev.Pid, ev.Nonce)
		if ev.Gone {
			o.log.Warn("agent stalled", num("pid", int64(ev.Pid)), o.name(o.tr.Get(ev.ID)), num("silent_ms", ev.Silence/1e6),
				num("last_nonce", int64(ev.Nonce)), str("process", "gone"))
		} else {
			o.log.Warn("agent stalled", num("pid", int64(ev.Pid)), o.name(o.tr.Get(ev.ID)), num("silent_ms", ev.Silence/1e6),
				num("last_nonce", int64(ev.Nonce)))
		}
		if ev.Unverifiable {
			o.c.Unverifiable++
			o.log.Limited(logUnverifiable, now, "cannot tell whether a stalled agent's pid still names its process "+
				"(reading /proc failed: out of file descriptors? raise ulimit -n / LimitNOFILE=); not recovering it",
				num("pid", int64(ev.Pid)), o.name(o.tr.Get(ev.ID)))
			if o.rec != nil {
				o.rec.OnUnverifiableStall(int32(ev.Pid))
			}
			continue
		}
		if o.rec != nil {
			o.rec.OnStall(int32(ev.Pid), ev.Slot.StartTime, o.recoveryEligible(ev.Slot.Origin), now)
		}
		o.exitAtStall(&ev, now)
	}
}
