package track

import "github.com/varta-go/varta/ring"

// Per-agent thresholds: a bounded set of threshold classes, each with its
// own ordered lists, so the next deadline stays the earliest of a few list
// heads and a beat stays O(1) (the Tracker's doc).

// MaxClasses bounds the distinct thresholds the tracker keeps at once;
// class 0 is the tracker's own (--threshold-ms).
const MaxClasses = 8

// class is one threshold and the slots that use it.
type class struct {
	thr      int64 // silence before a stall, ns
	evictAge int64 // EvictionFactor × thr, saturated
	members  int   // slots in the class (any list, or due)
	armed    ring.List
	stalled  ring.List
}

// set gives an empty class its threshold.
func (c *class) set(thr int64) {
	c.thr, c.evictAge = thr, thr*EvictionFactor
	if c.evictAge/EvictionFactor != thr { // a threshold of centuries
		c.evictAge = 1<<63 - 1
	}
}

// Fit is how SetThreshold placed a slot.
type Fit uint8

const (
	// FitExact: a class with that threshold existed, or a free one took it.
	FitExact Fit = iota
	// FitRounded: all MaxClasses classes were in use with other
	// thresholds; the slot went to the class with the largest threshold
	// not above the one asked for (its stall comes no later than asked),
	// or, when every class's is above it, to the smallest.
	FitRounded
)

// SlotThreshold is the silence before a stall for the slot id names.
func (t *Tracker) SlotThreshold(id SlotID) int64 { return t.classes[t.slots[id].Class].thr }

// SetThreshold gives the slot id names its own silence before a stall (ns;
// values below 1 count as 1) and says whether it got exactly that
// threshold or a rounded one. Like systemd's WATCHDOG_USEC=, an armed
// slot is re-armed from the latest time the tracker has seen; a stalled
// slot stays stalled and uses the new threshold from its next beat on; a
// triggered one still stalls at the next PopStall. Classes are shared by
// every slot with the same threshold, and a class whose last slot left is
// free for another threshold.
func (t *Tracker) SetThreshold(id SlotID, thr int64) Fit {
	thr = max(thr, 1)
	i := int32(id)
	s := &t.slots[i]
	if !s.Triggered { // a triggered slot keeps its place on the due list
		t.unlink(i)
	}
	t.classes[s.Class].members--
	c, fit := t.pickClass(thr)
	s.Class = c
	t.classes[c].members++
	switch {
	case s.Triggered:
	case s.Stalled:
		t.insertStalled(i)
	default:
		s.LastArrival, s.order = t.clock, t.nextOrder()
		t.classes[c].armed.PushBack(&t.links, i)
	}
	return fit
}

// pickClass finds the class for thr: one in use with exactly thr, else a
// free one, else the nearest not above thr (FitRounded).
func (t *Tracker) pickClass(thr int64) (uint8, Fit) {
	free := -1
	for c := range t.classes {
		k := &t.classes[c]
		if c > 0 && k.members == 0 {
			if free < 0 {
				free = c
			}
			continue
		}
		if k.thr == thr {
			return uint8(c), FitExact
		}
	}
	if free >= 0 {
		t.hi = max(t.hi, free+1)
		t.classes[free].set(thr)
		return uint8(free), FitExact
	}
	below, smallest := -1, 0
	for c := range t.classes {
		k := &t.classes[c]
		if k.thr <= thr && (below < 0 || k.thr > t.classes[below].thr) {
			below = c
		}
		if k.thr < t.classes[smallest].thr {
			smallest = c
		}
	}
	if below < 0 {
		below = smallest
	}
	return uint8(below), FitRounded
}

// Trigger asks for the stall of the slot id names now (sd_notify's
// WATCHDOG=trigger): the next PopStall raises it whatever the time, and
// beats until then do not cancel it. It reports false when the stall is
// raised already or was triggered before.
func (t *Tracker) Trigger(id SlotID) bool {
	i := int32(id)
	s := &t.slots[i]
	if s.Stalled || s.Triggered {
		return false
	}
	t.classes[s.Class].armed.Remove(&t.links, i)
	s.Triggered = true
	t.due.PushBack(&t.links, i)
	return true
}

// Charge takes one token from the pid's --max-beat-rate bucket and the
// global one for a message that is not a beat but must be rate limited
// all the same (an sd_notify STATUS=, say): VerdictAccepted, or the
// rate-limit verdict that refuses it.
func (t *Tracker) Charge(id SlotID, now int64) Verdict {
	now = t.advance(now)
	if !t.allowPid(&t.slots[id], now) {
		return VerdictPidRateLimited
	}
	if !t.global.Allow(now) {
		return VerdictGlobalRateLimited
	}
	return VerdictAccepted
}

// nextOrder is the next value of the arming sequence.
func (t *Tracker) nextOrder() uint64 {
	t.seq++
	return t.seq
}

// before orders slots by last arrival, then by when they were armed.
func (t *Tracker) before(a, b int32) bool {
	x, y := &t.slots[a], &t.slots[b]
	return x.LastArrival < y.LastArrival || x.LastArrival == y.LastArrival && x.order < y.order
}

// insertStalled links slot i into its class's stalled list in order. A
// stall raised at its deadline belongs at the tail (no step back); only a
// triggered one, or a slot changing class while stalled, walks back past
// the stalls that came due after it.
func (t *Tracker) insertStalled(i int32) {
	l := &t.classes[t.slots[i].Class].stalled
	at := l.Back()
	for at >= 0 && t.before(i, at) {
		at = t.links.Prev(at)
	}
	l.InsertAfter(&t.links, at, i)
}
