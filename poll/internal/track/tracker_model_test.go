package track

import (
	"math/rand/v2"
	"testing"

	"github.com/varta-go/varta/vlp"
)

// refSlot and refTracker are the naive reference: a map, full scans, and
// vlp/PROTOCOL.md §5 / cmd/varta-watch/README.md §3 written out as plainly as possible. Ties in
// time are broken by seq, the order in which frames were accepted.
type refSlot struct {
	Slot
	seq     uint64
	trigSeq uint64 // when its stall was triggered
}

type refTracker struct {
	slots    map[uint32]*refSlot
	capacity int
	policy   Policy
	procs    *trkProcs
	clock    int64
	seq      uint64
	tseq     uint64
	thr      []int64 // each class's threshold; 0 is trkThr
}

// live reports whether class c is in use: class 0 always, another while
// a slot (other than except) has it.
func (m *refTracker) live(c int, except *refSlot) bool {
	if c == 0 {
		return true
	}
	for _, s := range m.slots {
		if s != except && int(s.Class) == c {
			return true
		}
	}
	return false
}

// setThreshold is SetThreshold's contract: an exact class in use, else a
// free one (lowest first), else the largest threshold not above thr, else
// the smallest; an armed slot is re-armed from the latest time.
func (m *refTracker) setThreshold(pid uint32, thr int64) Fit {
	s := m.slots[pid]
	thr = max(thr, 1)
	c, fit := -1, FitExact
	for k := range m.thr {
		if m.live(k, s) && m.thr[k] == thr {
			c = k
			break
		}
	}
	for k := 1; c < 0 && k < len(m.thr); k++ {
		if !m.live(k, s) {
			c, m.thr[k] = k, thr
		}
	}
	if c < 0 {
		fit = FitRounded
		best, smallest := int64(-1), 0
		for k, v := range m.thr {
			if v <= thr && v > best {
				c, best = k, v
			}
			if v < m.thr[smallest] {
				smallest = k
			}
		}
		if c < 0 {
			c = smallest
		}
	}
	s.Class = uint8(c)
	if !s.Stalled && !s.Triggered {
		m.seq++
		s.LastArrival, s.seq = m.clock, m.seq
	}
	return fit
}

func (m *refTracker) trigger(pid uint32) bool {
	s := m.slots[pid]
	if s.Stalled || s.Triggered {
		return false
	}
	m.tseq++
	s.Triggered, s.trigSeq = true, m.tseq
	return true
}

func (m *refTracker) deadline(s *refSlot) int64 { return s.LastArrival + m.thr[s.Class] }

func (m *refTracker) now(t int64) int64 {
	m.clock = max(m.clock, t)
	return m.clock
}

func (m *refTracker) proc(pid uint32) (uint64, bool) {
	v, ok := m.procs.start[pid]
	return v, ok
}

func (m *refTracker) observe(f vlp.Frame, o Origin, at int64) (Verdict, uint32, bool) {
	now := m.now(at)
	s := m.slots[f.Pid]
	if s == nil {
		var evicted uint32
		if len(m.slots) == m.capacity {
			v := m.victim(now)
			if v == nil {
				return VerdictCapacityExceeded, 0, false
			}
			evicted = v.Pid
			delete(m.slots, v.Pid)
		}
		m.start(f, o, now)
		return VerdictAccepted, evicted, false
	}
	strength := map[Origin]int{OriginUDP: 0, OriginSecureUDP: 1, OriginUDS: 2}
	if strength[o] < strength[s.Origin] {
		return VerdictOriginConflict, 0, false
	}
	if o != s.Origin {
		m.start(f, o, now)
		return VerdictRestarted, 0, false
	}
	v, wrapped := VerdictAccepted, false
	switch {
	case f.Nonce == vlp.NonceTerminal:
		if s.HasTerminal && f.Timestamp <= s.LastTerminalTs {
			v = VerdictTerminalReplay
		}
	case !s.HasNonce || f.Nonce > s.LastNonce:
	case s.LastNonce >= 1<<64-2-1<<20 && f.Nonce <= 1<<20:
		wrapped = true
	default:
		v = VerdictOutOfOrder
	}
	if v != VerdictAccepted {
		if st, ok := m.proc(f.Pid); o == OriginUDS && ok && (!s.HasStartTime || st != s.StartTime) {
			m.start(f, o, now)
			return VerdictRestarted, 0, false
		}
		return v, 0, false
	}
	m.update(s, f, now)
	return VerdictAccepted, 0, wrapped
}

func (m *refTracker) start(f vlp.Frame, o Origin, now int64) {
	s := &refSlot{Slot: Slot{Pid: f.Pid, Origin: o}}
	if o == OriginUDS {
		s.StartTime, s.HasStartTime = m.proc(f.Pid)
	}
	m.slots[f.Pid] = s
	m.update(s, f, now)
}

func (m *refTracker) update(s *refSlot, f vlp.Frame, now int64) {
	if f.Nonce == vlp.NonceTerminal {
		s.HasTerminal, s.LastTerminalTs = true, f.Timestamp
	} else {
		s.HasNonce, s.LastNonce = true, f.Nonce
	}
	s.Status, s.Payload, s.LastArrival, s.Stalled = f.Status, f.Payload, now, false
	s.Beats++
	m.seq++
	s.seq = m.seq
}

// victim: the longest silent candidate; at equal silence a stalled slot
// first, then the earlier accepted.
func (m *refTracker) victim(now int64) *refSlot {
	var best *refSlot
	for _, s := range m.slots {
		if now-s.LastArrival < EvictionFactor*m.thr[s.Class] || (m.policy == PolicyStrict && !s.Stalled) || s.Triggered {
			continue
		}
		if best == nil || s.LastArrival < best.LastArrival ||
			s.LastArrival == best.LastArrival && (s.Stalled && !best.Stalled || s.Stalled == best.Stalled && s.seq < best.seq) {
			best = s
		}
	}
	return best
}

// firstDue is the armed slot due first: a triggered one (the earliest
// triggered), else the earliest deadline (the earlier armed at a tie).
func (m *refTracker) firstDue() *refSlot {
	var best *refSlot
	for _, s := range m.slots {
		if s.Stalled {
			continue
		}
		switch {
		case best == nil:
			best = s
		case s.Triggered != best.Triggered:
			if s.Triggered {
				best = s
			}
		case s.Triggered:
			if s.trigSeq < best.trigSeq {
				best = s
			}
		case m.deadline(s) < m.deadline(best) || m.deadline(s) == m.deadline(best) && s.seq < best.seq:
			best = s
		}
	}
	return best
}

func (m *refTracker) nextDeadline() (int64, bool) {
	s := m.firstDue()
	switch {
	case s == nil:
		return 0, false
	case s.Triggered:
		return m.clock, true
	}
	return m.deadline(s), true
}

func (m *refTracker) popStall(at int64) (StallEvent, bool) {
	now := m.now(at)
	s := m.firstDue()
	if s == nil || !s.Triggered && m.deadline(s) > now {
		return StallEvent{}, false
	}
	ev := StallEvent{Pid: s.Pid, Nonce: s.LastNonce, Silence: now - s.LastArrival}
	if s.Origin == OriginUDS {
		st, ok := m.proc(s.Pid)
		if ok && (!s.HasStartTime || st != s.StartTime) {
			ev.Retired = true
			delete(m.slots, s.Pid)
			return ev, true
		}
		ev.Gone = !ok
	}
	s.Stalled, s.Triggered = true, false
	s.Stalls++
	return ev, true
}

// TestTrackerModel drives the tracker and the reference with the same
// random operations, small enough a table that eviction, recycling and
// wrap-around all happen, and compares every result and every slot.
func TestTrackerModel(t *testing.T) {
	for _, policy := range []Policy{PolicyStrict, PolicyBalanced} {
		for seed := uint64(1); seed <= 20; seed++ {
			t.Run(policy.String(), func(t *testing.T) { runModel(t, policy, seed, 3000) })
		}
	}
}

func runModel(t *testing.T, policy Policy, seed uint64, ops int) {
	rng := rand.New(rand.NewPCG(seed, 0x7661727461))
	const npids = 16
	procs := &trkProcs{start: map[uint32]uint64{}}
	for pid := uint32(2); pid < 2+npids; pid++ {
		procs.start[pid] = uint64(pid)
	}
	// Three threshold classes for eight slots: they run out, and rounding
	// is exercised.
	tr := NewTracker(TrackerConfig{Capacity: 8, Threshold: trkThr, Policy: policy, StartTime: procs.startTime, Classes: 3})
	ref := &refTracker{slots: map[uint32]*refSlot{}, capacity: 8, policy: policy, procs: procs, thr: make([]int64, 3)}
	ref.thr[0] = trkThr
	sent := map[uint32]uint64{} // last nonce each fake agent sent
	now := int64(0)
	counts := map[string]int{}

	for op := range ops {
		now += rng.Int64N(60) - 5 // sometimes backwards: the tracker must cope
		pid := 2 + rng.Uint32N(npids)
		switch r := rng.IntN(100); {
		case r < 64:
			f := modelFrame(rng, pid, sent)
			o := OriginUDS
			if x := rng.IntN(20); x == 0 {
				o = OriginUDP
			} else if x == 1 {
				o = OriginSecureUDP
			}
			ob := tr.Observe(f, o, now)
			v, ev, w := ob.Verdict, ob.Evicted, ob.Wrapped
			rv, rev, rw := ref.observe(f, o, now)
			if v != rv || ev != rev || w != rw {
				t.Fatalf("seed %d op %d: Observe(%+v, %v, %d) = %v, %d, %v, want %v, %d, %v",
					seed, op, f, o, now, v, ev, w, rv, rev, rw)
			}
			counts[v.String()]++
			if w {
				counts["wrap"]++
			}
			if ev != 0 {
				counts["evicted"]++
			}
		case r < 82:
			ev, ok := tr.PopStall(now)
			rev, rok := ref.popStall(now)
			if ok && (ev.Retired != (ev.ID == NoSlot) || !ev.Retired && tr.Get(ev.ID).Pid != ev.Pid) {
				t.Fatalf("seed %d op %d: PopStall gave slot %d for pid %d, which holds pid %d", seed, op, ev.ID, ev.Pid, tr.Get(ev.ID).Pid)
			}
			ev.Slot, ev.ID = Slot{}, 0
			if ev != rev || ok != rok {
				t.Fatalf("seed %d op %d: PopStall(%d) = %+v, %v, want %+v, %v", seed, op, now, ev, ok, rev, rok)
			}
			if ev.Retired {
				counts["retired"]++
			} else if ev.Gone {
				counts["gone"]++
			}
		case r < 86:
			_, want := ref.slots[pid]
			delete(ref.slots, pid)
			if got := tr.Remove(pid); got != want {
				t.Fatalf("seed %d op %d: Remove(%d) = %v, want %v", seed, op, pid, got, want)
			}
		case r < 94 && ref.slots[pid] != nil:
			// Thresholds from a quarter of the tracker's to three times
			// it, more of them than there are classes.
			thr := trkThr / 4 * (1 + rng.Int64N(12))
			got, want := tr.SetThreshold(tr.ID(pid), thr), ref.setThreshold(pid, thr)
			if got != want {
				t.Fatalf("seed %d op %d: SetThreshold(pid %d, %d) = %v, want %v", seed, op, pid, thr, got, want)
			}
			counts["threshold"]++
			if got == FitRounded {
				counts["rounded"]++
			}
		case r < 96 && ref.slots[pid] != nil:
			got, want := tr.Trigger(tr.ID(pid)), ref.trigger(pid)
			if got != want {
				t.Fatalf("seed %d op %d: Trigger(pid %d) = %v, want %v", seed, op, pid, got, want)
			}
			if got {
				counts["triggered"]++
			}
		case r < 98: // the process exits, or the pid is recycled
			if rng.IntN(2) == 0 {
				delete(procs.start, pid)
			} else {
				procs.start[pid] = uint64(op)*100 + uint64(pid)
				delete(sent, pid)
			}
		default:
			now += 3 * EvictionFactor * trkThr / 2
		}
		compareModel(t, seed, op, tr, ref)
	}
	if testing.Verbose() {
		t.Logf("seed %d: %v", seed, counts)
	}
	for _, k := range []string{"accepted", "out_of_order", "evicted", "retired", "gone", "capacity_exceeded", "restarted",
		"threshold", "rounded", "triggered"} {
		if counts[k] == 0 && ops >= 3000 {
			t.Errorf("seed %d: no %s in %d operations: the model test lost its coverage (%v)", seed, k, ops, counts)
		}
	}
}

// modelFrame plays an agent: mostly the next nonce, sometimes a replay, a
// jump, a terminal frame or a run up to the wrap.
func modelFrame(rng *rand.Rand, pid uint32, sent map[uint32]uint64) vlp.Frame {
	last := sent[pid]
	f := vlp.Frame{Status: vlp.Status(rng.IntN(3)), Pid: pid, Timestamp: rng.Uint64N(50), Payload: rng.Uint32()}
	switch r := rng.IntN(100); {
	case r < 60:
		f.Nonce = last + 1
		if f.Nonce == vlp.NonceTerminal {
			f.Nonce = 0
		}
	case r < 72:
		f.Nonce = last - rng.Uint64N(3) // replay or older
	case r < 80:
		f.Nonce = vlp.NonceTerminal - 1 - rng.Uint64N(1<<21) // near the top
	case r < 86:
		f.Nonce = rng.Uint64N(1 << 21) // near the bottom
	case r < 92:
		f.Nonce = rng.Uint64()
		if f.Nonce == vlp.NonceTerminal {
			f.Nonce--
		}
	default:
		f.Status, f.Nonce = vlp.Critical, vlp.NonceTerminal
	}
	if f.Nonce != vlp.NonceTerminal {
		sent[pid] = f.Nonce
	}
	return f
}

func compareModel(t *testing.T, seed uint64, op int, tr *Tracker, ref *refTracker) {
	t.Helper()
	if tr.Len() != len(ref.slots) {
		t.Fatalf("seed %d op %d: Len() = %d, want %d", seed, op, tr.Len(), len(ref.slots))
	}
	d, ok := tr.NextDeadline()
	if rd, rok := ref.nextDeadline(); d != rd || ok != rok {
		t.Fatalf("seed %d op %d: NextDeadline() = %d, %v, want %d, %v", seed, op, d, ok, rd, rok)
	}
	for pid, want := range ref.slots {
		s := tr.Lookup(pid)
		if s == nil {
			t.Fatalf("seed %d op %d: Lookup(%d) = nil, want %+v", seed, op, pid, want.Slot)
		}
		got := *s
		got.limiter, got.order = tokens{}, 0
		if got != want.Slot {
			t.Fatalf("seed %d op %d: slot %d = %+v, want %+v", seed, op, pid, got, want.Slot)
		}
	}
	n := 0
	tr.Each(func(*Slot) { n++ })
	if n != len(ref.slots) {
		t.Fatalf("seed %d op %d: Each visited %d slots, want %d", seed, op, n, len(ref.slots))
	}
}

// FuzzTracker runs the model comparison from fuzzer-chosen seeds.
func FuzzTracker(f *testing.F) {
	f.Add(uint64(1), false)
	f.Fuzz(func(t *testing.T, seed uint64, balanced bool) {
		policy := PolicyStrict
		if balanced {
			policy = PolicyBalanced
		}
		runModel(t, policy, seed, 500)
	})
}
