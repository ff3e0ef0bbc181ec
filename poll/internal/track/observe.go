package track

import "github.com/varta-go/varta/vlp"

// The beat path (Observe) and the stall path (NextDeadline, PopStall).

// advance returns now, or the latest time already seen if now is earlier:
// the lists stay ordered only if arrivals never go back in time.
func (t *Tracker) advance(now int64) int64 {
	if now > t.clock {
		t.clock = now
	}
	return t.clock
}

// Observe applies vlp/PROTOCOL.md §5's acceptance rules to an
// authenticated, decoded frame (pid ≥ 2) that arrived on origin at time
// now, and says what it did.
//
// In order: a frame from an origin weaker than the slot's is refused
// (VerdictOriginConflict; a stronger one restarts the slot); then the pid's
// --max-beat-rate bucket and the global bucket are charged (rate limiting
// lives here so a slot lookup is done once, and before the nonce rules so a
// flood of replays is bounded too); then the nonce rules. A kernel-attested
// frame the rules reject is checked against the process start time: if the
// pid now belongs to another process, the frame starts a new session
// (VerdictRestarted). A new pid takes a free slot, reading its start time
// once, or evicts one per policy (Evicted names it), or is refused with
// VerdictCapacityExceeded.
func (t *Tracker) Observe(f vlp.Frame, origin Origin, now int64) Observation {
	now = t.advance(now)
	i, ok := t.index.Get(f.Pid)
	if !ok {
		return t.admit(f, origin, now)
	}
	s := &t.slots[i]
	if origin != s.Origin {
		if origin.rank() < s.Origin.rank() {
			return refused(VerdictOriginConflict)
		}
		if !t.global.Allow(now) {
			return refused(VerdictGlobalRateLimited)
		}
		t.restart(i, f, origin, now)
		return Observation{Verdict: VerdictRestarted, ID: SlotID(i), NewSession: true}
	}
	if !t.allowPid(s, now) {
		return refused(VerdictPidRateLimited)
	}
	if !t.global.Allow(now) {
		return refused(VerdictGlobalRateLimited)
	}
	v, wrapped := s.check(f)
	if v != VerdictAccepted {
		if origin == OriginUDS && t.recycled(s) {
			t.restart(i, f, origin, now)
			return Observation{Verdict: VerdictRestarted, ID: SlotID(i), NewSession: true}
		}
		return refused(v)
	}
	ob := Observation{Verdict: VerdictAccepted, ID: SlotID(i), Wrapped: wrapped, Resumed: s.Stalled, Prev: s.Effective(),
		Silent: now - s.LastArrival}
	t.accept(i, f, now)
	return ob
}

// refused is the Observation of a frame that changed no slot.
func refused(v Verdict) Observation { return Observation{Verdict: v, ID: NoSlot} }

// wrapWindow is vlp/PROTOCOL.md §5's 2^20: how close to the top the last nonce
// must be, and how small the new one, for a wrap to be accepted.
const wrapWindow = 1 << 20

// maxRegularNonce is the last regular nonce before the counter wraps to 0.
const maxRegularNonce = vlp.NonceTerminal - 1

// check applies the nonce and terminal-timestamp rules without changing
// the slot.
func (s *Slot) check(f vlp.Frame) (Verdict, bool) {
	// Any frame carrying the reserved nonce is judged as terminal, so it
	// can never become the regular high-water mark.
	if f.Nonce == vlp.NonceTerminal {
		if s.HasTerminal && f.Timestamp <= s.LastTerminalTs {
			return VerdictTerminalReplay, false
		}
		return VerdictAccepted, false
	}
	switch {
	case !s.HasNonce || f.Nonce > s.LastNonce:
		return VerdictAccepted, false
	case s.LastNonce >= maxRegularNonce-wrapWindow && f.Nonce <= wrapWindow:
		return VerdictAccepted, true
	}
	return VerdictOutOfOrder, false
}

// accept records an accepted frame and re-arms the slot at the armed tail.
func (t *Tracker) accept(i int32, f vlp.Frame, now int64) {
	s := &t.slots[i]
	if f.Nonce == vlp.NonceTerminal {
		s.HasTerminal, s.LastTerminalTs = true, f.Timestamp
	} else {
		s.HasNonce, s.LastNonce = true, f.Nonce
	}
	s.Status, s.Payload, s.LastArrival, s.order = f.Status, f.Payload, now, t.nextOrder()
	s.Beats++
	k := &t.classes[s.Class]
	switch {
	case s.Triggered: // stays due: a beat does not take back a trigger
	case s.Stalled:
		s.Stalled = false
		k.stalled.Remove(&t.links, i)
		k.armed.PushBack(&t.links, i)
	default:
		k.armed.MoveToBack(&t.links, i)
	}
}

// recycled reports whether a kernel-attested slot's pid now names another
// process than the one first seen. It costs one /proc read, paid only for
// rejected frames, which the per-pid bucket has already rate-limited.
func (t *Tracker) recycled(s *Slot) bool {
	if t.startTime == nil {
		return false
	}
	cur, proc := t.startTime(s.Pid)
	return proc == ProcAlive && (s.HasStartTime && cur != s.StartTime || !s.HasStartTime && !s.StartUnknown)
}

// admit places a new pid, evicting per policy when the table is full.
func (t *Tracker) admit(f vlp.Frame, origin Origin, now int64) Observation {
	if !t.global.Allow(now) {
		return refused(VerdictGlobalRateLimited)
	}
	var evicted uint32
	if t.free.Len() == 0 {
		victim := t.victim(now)
		if victim < 0 {
			return refused(VerdictCapacityExceeded)
		}
		evicted = t.slots[victim].Pid
		t.release(victim)
	}
	i, _ := t.free.Pop() // one is free now
	t.n++
	t.index.Put(f.Pid, i)
	t.start(i, f, origin, now)
	return Observation{Verdict: VerdictAccepted, ID: SlotID(i), Evicted: evicted, NewSession: true}
}

// restart replaces the session in slot i by a new one starting with f.
func (t *Tracker) restart(i int32, f vlp.Frame, origin Origin, now int64) {
	t.leave(i)
	t.start(i, f, origin, now)
}

// start fills an unlinked slot from the first frame of a session and arms
// it in class 0. The start time is read here, once per session, never per
// beat.
func (t *Tracker) start(i int32, f vlp.Frame, origin Origin, now int64) {
	s := &t.slots[i]
	*s = Slot{Pid: f.Pid, Origin: origin, limiter: fullTokens(t.pidRate, now)}
	if t.texts != nil {
		t.texts[i].n = 0 // a new session has said nothing yet
	}
	if origin == OriginUDS && t.startTime != nil {
		// ProcGone here means the sender exited right after sending (a
		// one-shot client): PopStall treats any live process on the pid
		// as a different one. ProcUnknown (no fd left to read /proc
		// with, say) means the session's process cannot be told from a
		// successor: its stalls are Unverifiable.
		var proc Proc
		s.StartTime, proc = t.startTime(f.Pid)
		s.HasStartTime, s.StartUnknown = proc == ProcAlive, proc == ProcUnknown
	}
	t.allowPid(s, now)
	t.classes[0].members++
	t.classes[0].armed.PushBack(&t.links, i)
	t.accept(i, f, now)
}

// victim picks the longest-silent evictable slot, or -1: silent for
// EvictionFactor × its own class's threshold. Each class's list heads are
// its longest silent; at equal silence a stalled slot goes first (it
// reached its deadline), then the one armed earlier. A triggered slot
// whose stall is not raised yet is no candidate: it is about to be.
func (t *Tracker) victim(now int64) int32 {
	best, bestStalled := int32(-1), false
	for c := range t.classes[:t.hi] {
		k := &t.classes[c]
		if h := k.stalled.Front(); h >= 0 && now-t.slots[h].LastArrival >= k.evictAge &&
			(best < 0 || t.before(h, best) || !bestStalled && t.slots[h].LastArrival == t.slots[best].LastArrival) {
			best, bestStalled = h, true
		}
		if t.policy != PolicyBalanced {
			continue
		}
		if h := k.armed.Front(); h >= 0 && now-t.slots[h].LastArrival >= k.evictAge &&
			(best < 0 || t.slots[h].LastArrival < t.slots[best].LastArrival ||
				!bestStalled && t.slots[h].LastArrival == t.slots[best].LastArrival && t.before(h, best)) {
			best, bestStalled = h, false
		}
	}
	return best
}

// release unlinks slot i from its list and the index and frees it.
func (t *Tracker) release(i int32) {
	t.leave(i)
	t.index.Delete(t.slots[i].Pid)
	t.slots[i] = Slot{}
	t.free.Push(i) // within capacity: it came from there
	t.n--
}

// leave takes slot i off its list and out of its class.
func (t *Tracker) leave(i int32) {
	t.unlink(i)
	t.classes[t.slots[i].Class].members--
}

// unlink takes slot i off whichever list holds it.
func (t *Tracker) unlink(i int32) {
	s := &t.slots[i]
	switch {
	case s.Triggered:
		t.due.Remove(&t.links, i)
	case s.Stalled:
		t.classes[s.Class].stalled.Remove(&t.links, i)
	default:
		t.classes[s.Class].armed.Remove(&t.links, i)
	}
}

// NextDeadline returns the earliest stall deadline (last arrival + the
// slot's threshold) among slots whose stall is not raised yet, or the
// latest time seen when a slot's stall was triggered, or false when there
// is none. The loop bounds its poll timeout with it.
func (t *Tracker) NextDeadline() (int64, bool) {
	if t.due.Front() >= 0 {
		return t.clock, true
	}
	h, _ := t.nextArmed()
	if h < 0 {
		return 0, false
	}
	return t.slots[h].LastArrival + t.classes[t.slots[h].Class].thr, true
}

// nextArmed is the armed slot with the earliest deadline (ties: armed
// first), -1 when none, with its class: the earliest of the class heads.
func (t *Tracker) nextArmed() (int32, int) {
	best, bc := int32(-1), 0
	var bd int64
	for c := range t.classes[:t.hi] {
		k := &t.classes[c]
		h := k.armed.Front()
		if h < 0 {
			continue
		}
		d := t.slots[h].LastArrival + k.thr
		if best < 0 || d < bd || d == bd && t.slots[h].order < t.slots[best].order {
			best, bc, bd = h, c, d
		}
	}
	return best, bc
}

// PopStall returns the next slot whose deadline is ≤ now, oldest first
// (triggered ones before all, in the order they asked), and
// latches its stall (raised once per silence run; the next accepted beat
// re-arms it). Call it until false to drain the stalls due. For a
// kernel-attested pid the process start time is read again first: a pid
// now held by a different process is removed and returned with Retired
// set, not stalled; a pid with no process left is stalled with Gone set.
func (t *Tracker) PopStall(now int64) (StallEvent, bool) {
	now = t.advance(now)
	i := t.due.Front()
	if i < 0 {
		var c int
		if i, c = t.nextArmed(); i < 0 || now-t.slots[i].LastArrival < t.classes[c].thr {
			return StallEvent{}, false
		}
	}
	s := &t.slots[i]
	ev := StallEvent{Pid: s.Pid, ID: SlotID(i), Nonce: s.LastNonce, Silence: now - s.LastArrival}
	if s.Origin == OriginUDS && t.startTime != nil {
		cur, proc := t.startTime(s.Pid)
		switch {
		case proc == ProcGone:
			ev.Gone = true
		case proc == ProcUnknown, !s.HasStartTime && s.StartUnknown:
			ev.Unverifiable = true
		case !s.HasStartTime || cur != s.StartTime:
			ev.Retired, ev.Slot, ev.ID = true, *s, NoSlot
			t.release(i)
			return ev, true
		}
	}
	t.unlink(i)
	s.Stalled, s.Triggered = true, false
	s.Stalls++
	t.insertStalled(i)
	ev.Slot = *s
	return ev, true
}

// Latch marks slot id's stall as raised without raising it: for a stall
// the caller has already handled, such as one remembered across the
// observer's restart. The next accepted beat re-arms it as usual.
func (t *Tracker) Latch(id SlotID) {
	s := &t.slots[id]
	if s.Stalled {
		return
	}
	t.unlink(int32(id))
	s.Stalled, s.Triggered = true, false
	t.insertStalled(int32(id))
}
