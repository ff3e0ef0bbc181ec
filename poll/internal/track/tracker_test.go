package track

import (
	"slices"
	"testing"

	"github.com/varta-go/varta/vlp"
)

const trkThr = int64(100) // threshold of the tests' trackers, in "ns"

// trkProcs fakes /proc: pid → start time; a missing pid is a gone process,
// one in unknown cannot be read (out of fds, say). Lookups count calls so
// tests can see when the tracker reads it.
type trkProcs struct {
	start   map[uint32]uint64
	unknown map[uint32]bool
	calls   int
}

func (p *trkProcs) startTime(pid uint32) (uint64, Proc) {
	p.calls++
	if p.unknown[pid] {
		return 0, ProcUnknown
	}
	if v, ok := p.start[pid]; ok {
		return v, ProcAlive
	}
	return 0, ProcGone
}

func newTrk(capacity int, pol Policy, procs *trkProcs) *Tracker {
	cfg := TrackerConfig{Capacity: capacity, Threshold: trkThr, Policy: pol}
	if procs != nil {
		cfg.StartTime = procs.startTime
	}
	return NewTracker(cfg)
}

func beat(pid uint32, nonce uint64) vlp.Frame {
	return vlp.Frame{Status: vlp.Ok, Pid: pid, Timestamp: nonce, Nonce: nonce, Payload: 7}
}

func terminal(pid uint32, ts uint64) vlp.Frame {
	return vlp.Frame{Status: vlp.Critical, Pid: pid, Timestamp: ts, Nonce: vlp.NonceTerminal}
}

// mustObserve feeds f and fails unless the verdict is want.
func mustObserve(t *testing.T, tr *Tracker, f vlp.Frame, o Origin, now int64, want Verdict) {
	t.Helper()
	if v := tr.Observe(f, o, now).Verdict; v != want {
		t.Fatalf("Observe(%+v) = %v, want %v", f, v, want)
	}
}

const top = vlp.NonceTerminal - 1 // the largest regular nonce

func TestObserveRules(t *testing.T) {
	type sent struct {
		f vlp.Frame
		o Origin
	}
	tests := []struct {
		name     string
		prior    []sent // all accepted, in order
		f        vlp.Frame
		origin   Origin
		want     Verdict
		wantWrap bool
	}{
		{"first frame any nonce", nil, beat(10, 12345), OriginUDS, VerdictAccepted, false},
		{"first frame nonce 0", nil, beat(10, 0), OriginUDS, VerdictAccepted, false},
		{"first frame near the top", nil, beat(10, top), OriginUDP, VerdictAccepted, false},
		{"rising", []sent{{beat(10, 1), OriginUDS}}, beat(10, 2), OriginUDS, VerdictAccepted, false},
		{"gap", []sent{{beat(10, 1), OriginUDS}}, beat(10, 1000), OriginUDS, VerdictAccepted, false},
		{"replay", []sent{{beat(10, 5), OriginUDS}}, beat(10, 5), OriginUDS, VerdictOutOfOrder, false},
		{"older", []sent{{beat(10, 5), OriginUDS}, {beat(10, 6), OriginUDS}}, beat(10, 4), OriginUDS, VerdictOutOfOrder, false},
		{"wrap from the top to 0", []sent{{beat(10, top), OriginUDS}}, beat(10, 0), OriginUDS, VerdictAccepted, true},
		{"wrap at both window edges", []sent{{beat(10, top-wrapWindow), OriginUDS}}, beat(10, wrapWindow), OriginUDS, VerdictAccepted, true},
		{"last just below the window", []sent{{beat(10, top-wrapWindow-1), OriginUDS}}, beat(10, 1), OriginUDS, VerdictOutOfOrder, false},
		{"new just above the window", []sent{{beat(10, top), OriginUDS}}, beat(10, wrapWindow+1), OriginUDS, VerdictOutOfOrder, false},
		{"rising inside the top window is no wrap", []sent{{beat(10, top-5), OriginUDS}}, beat(10, top), OriginUDS, VerdictAccepted, false},
		{"replay after a wrap", []sent{{beat(10, top), OriginUDS}, {beat(10, 3), OriginUDS}}, beat(10, 3), OriginUDS, VerdictOutOfOrder, false},
		{"first terminal", nil, terminal(10, 50), OriginUDS, VerdictAccepted, false},
		{"terminal after beats", []sent{{beat(10, 9), OriginUDS}}, terminal(10, 0), OriginUDS, VerdictAccepted, false},
		{"terminal same ts", []sent{{terminal(10, 50), OriginUDS}}, terminal(10, 50), OriginUDS, VerdictTerminalReplay, false},
		{"terminal older ts", []sent{{terminal(10, 50), OriginUDS}}, terminal(10, 49), OriginUDS, VerdictTerminalReplay, false},
		{"terminal newer ts", []sent{{terminal(10, 50), OriginUDS}}, terminal(10, 51), OriginUDS, VerdictAccepted, false},
		{"terminal keeps the high-water mark", []sent{{beat(10, 5), OriginUDS}, {terminal(10, 1), OriginUDS}}, beat(10, 5), OriginUDS, VerdictOutOfOrder, false},
		{"beat after terminal", []sent{{beat(10, 5), OriginUDS}, {terminal(10, 1), OriginUDS}}, beat(10, 6), OriginUDS, VerdictAccepted, false},
		{"any nonce after a terminal-only start", []sent{{terminal(10, 1), OriginUDS}}, beat(10, 0), OriginUDS, VerdictAccepted, false},
		{"terminal nonce with other status is no beat", []sent{{beat(10, 5), OriginUDS}, {vlp.Frame{Status: vlp.Ok, Pid: 10, Nonce: vlp.NonceTerminal, Timestamp: 3}, OriginUDS}}, beat(10, 6), OriginUDS, VerdictAccepted, false},
		{"udp cannot update uds", []sent{{beat(10, 1), OriginUDS}}, beat(10, 2), OriginUDP, VerdictOriginConflict, false},
		{"secure udp cannot update uds", []sent{{beat(10, 1), OriginUDS}}, beat(10, 2), OriginSecureUDP, VerdictOriginConflict, false},
		{"udp cannot update secure udp", []sent{{beat(10, 1), OriginSecureUDP}}, beat(10, 2), OriginUDP, VerdictOriginConflict, false},
		{"uds takes over from udp", []sent{{beat(10, 1<<40), OriginUDP}}, beat(10, 1), OriginUDS, VerdictRestarted, false},
		{"secure udp takes over from udp", []sent{{beat(10, 1<<40), OriginUDP}}, beat(10, 1), OriginSecureUDP, VerdictRestarted, false},
		{"udp updates udp", []sent{{beat(10, 1), OriginUDP}}, beat(10, 2), OriginUDP, VerdictAccepted, false},
		{"other pids are independent", []sent{{beat(10, 9), OriginUDS}}, beat(11, 1), OriginUDS, VerdictAccepted, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrk(4, PolicyStrict, nil)
			for i, p := range tc.prior {
				if v := tr.Observe(p.f, p.o, int64(i)).Verdict; !v.Accepted() {
					t.Fatalf("prior Observe(%+v) = %v, want accepted", p.f, v)
				}
			}
			ob := tr.Observe(tc.f, tc.origin, 10)
			v, evicted, wrapped := ob.Verdict, ob.Evicted, ob.Wrapped
			if v != tc.want || wrapped != tc.wantWrap || evicted != 0 {
				t.Errorf("Observe(%+v) = %v, %d, %v, want %v, 0, %v", tc.f, v, evicted, wrapped, tc.want, tc.wantWrap)
			}
		})
	}
}

func TestObserveUpdatesSlot(t *testing.T) {
	tr := newTrk(4, PolicyStrict, nil)
	mustObserve(t, tr, vlp.Frame{Status: vlp.Degraded, Pid: 10, Nonce: 3, Payload: 99}, OriginUDS, 40, VerdictAccepted)
	mustObserve(t, tr, vlp.Frame{Status: vlp.Degraded, Pid: 10, Nonce: 2, Payload: 1}, OriginUDS, 45, VerdictOutOfOrder)
	mustObserve(t, tr, terminal(10, 77), OriginUDS, 50, VerdictAccepted)
	s := tr.Lookup(10)
	want := Slot{Pid: 10, Status: vlp.Critical, Origin: OriginUDS, HasNonce: true, HasTerminal: true,
		LastNonce: 3, LastTerminalTs: 77, LastArrival: 50, Beats: 2}
	if s == nil {
		t.Fatalf("Lookup(10) = nil after two accepted frames")
	}
	got := *s
	got.limiter, got.order = tokens{}, 0
	if got != want {
		t.Errorf("slot = %+v, want %+v", got, want)
	}
	if tr.Len() != 1 || tr.Capacity() != 4 || tr.Lookup(11) != nil {
		t.Errorf("Len, Capacity, Lookup(11) = %d, %d, %v, want 1, 4, nil", tr.Len(), tr.Capacity(), tr.Lookup(11))
	}
}

func TestStallLatch(t *testing.T) {
	tr := newTrk(4, PolicyStrict, nil)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	if d, ok := tr.NextDeadline(); d != trkThr || !ok {
		t.Fatalf("NextDeadline() = %d, %v, want %d, true", d, ok, trkThr)
	}
	if ev, ok := tr.PopStall(trkThr - 1); ok {
		t.Fatalf("PopStall(%d) = %+v before the deadline", trkThr-1, ev)
	}
	ev, ok := tr.PopStall(trkThr)
	if !ok || ev.Pid != 10 || ev.Nonce != 1 || ev.Silence != trkThr || ev.Retired || ev.Gone ||
		!ev.Slot.Stalled || ev.Slot.Stalls != 1 || ev.Slot.Effective() != vlp.Stall {
		t.Fatalf("PopStall(%d) = %+v, %v, want a first stall of pid 10", trkThr, ev, ok)
	}
	// Latched: however long the silence lasts, no second stall.
	for _, now := range []int64{trkThr, 2 * trkThr, 50 * trkThr} {
		if ev, ok := tr.PopStall(now); ok {
			t.Fatalf("PopStall(%d) = %+v again in the same silence run", now, ev)
		}
	}
	if d, ok := tr.NextDeadline(); ok {
		t.Fatalf("NextDeadline() = %d, true with only a stalled slot", d)
	}
	// A replayed frame does not re-arm; an accepted one does.
	mustObserve(t, tr, beat(10, 1), OriginUDS, 60*trkThr, VerdictOutOfOrder)
	if _, ok := tr.NextDeadline(); ok {
		t.Fatalf("NextDeadline() armed by a rejected frame")
	}
	mustObserve(t, tr, beat(10, 2), OriginUDS, 60*trkThr, VerdictAccepted)
	if s := tr.Lookup(10); s.Stalled || s.Effective() != vlp.Ok {
		t.Fatalf("slot %+v still stalled after an accepted beat", s)
	}
	if d, ok := tr.NextDeadline(); d != 61*trkThr || !ok {
		t.Fatalf("NextDeadline() = %d, %v, want %d, true", d, ok, 61*trkThr)
	}
	ev, ok = tr.PopStall(61 * trkThr)
	if !ok || ev.Pid != 10 || ev.Slot.Stalls != 2 || ev.Slot.Beats != 2 {
		t.Fatalf("PopStall after re-arm = %+v, %v, want the second stall of pid 10", ev, ok)
	}
}

func TestNextDeadlineFollowsEarliest(t *testing.T) {
	tr := newTrk(8, PolicyStrict, nil)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	mustObserve(t, tr, beat(11, 1), OriginUDS, 10, VerdictAccepted)
	mustObserve(t, tr, beat(12, 1), OriginUDS, 20, VerdictAccepted)
	mustObserve(t, tr, beat(10, 2), OriginUDS, 30, VerdictAccepted) // 10 goes last
	for _, want := range []struct {
		deadline int64
		pid      uint32
	}{{110, 11}, {120, 12}, {130, 10}} {
		if d, ok := tr.NextDeadline(); d != want.deadline || !ok {
			t.Fatalf("NextDeadline() = %d, %v, want %d, true", d, ok, want.deadline)
		}
		if ev, ok := tr.PopStall(want.deadline); !ok || ev.Pid != want.pid {
			t.Fatalf("PopStall(%d) = %+v, %v, want pid %d", want.deadline, ev, ok, want.pid)
		}
	}
	if d, ok := tr.NextDeadline(); ok {
		t.Errorf("NextDeadline() = %d, true after all stalled", d)
	}
	if !tr.Remove(11) || tr.Remove(11) || tr.Len() != 2 {
		t.Errorf("Remove(11) twice: want true then false, Len 2 (Len %d)", tr.Len())
	}
}

func TestPopStallDrainsDueOnly(t *testing.T) {
	tr := newTrk(8, PolicyStrict, nil)
	for pid := uint32(10); pid < 15; pid++ {
		mustObserve(t, tr, beat(pid, 1), OriginUDS, int64(pid), VerdictAccepted)
	}
	var popped []uint32
	for {
		ev, ok := tr.PopStall(112) // pids 10, 11, 12 are due
		if !ok {
			break
		}
		popped = append(popped, ev.Pid)
	}
	if len(popped) != 3 || popped[0] != 10 || popped[1] != 11 || popped[2] != 12 {
		t.Errorf("PopStall(112) drained %v, want [10 11 12]", popped)
	}
}

func TestEviction(t *testing.T) {
	type action struct {
		pid uint32
		at  int64
		pop bool // PopStall at `at` until none, instead of a beat
	}
	tests := []struct {
		name        string
		policy      Policy
		setup       []action // capacity 2
		at          int64    // new pid 99 arrives
		want        Verdict
		wantEvicted uint32
	}{
		{"free slot", PolicyStrict, []action{{pid: 10}}, 5, VerdictAccepted, 0},
		{"full of live slots", PolicyStrict, []action{{pid: 10}, {pid: 11}}, 50, VerdictCapacityExceeded, 0},
		{"full of live slots balanced", PolicyBalanced, []action{{pid: 10}, {pid: 11}}, 50, VerdictCapacityExceeded, 0},
		{"strict never evicts a live slot", PolicyStrict, []action{{pid: 10}, {pid: 11}}, 100 * trkThr, VerdictCapacityExceeded, 0},
		{"balanced evicts a long-silent unstalled slot", PolicyBalanced, []action{{pid: 10}, {pid: 11, at: 1}}, 10 * trkThr, VerdictAccepted, 10},
		{"balanced respects 10x too", PolicyBalanced, []action{{pid: 10}, {pid: 11}}, 10*trkThr - 1, VerdictCapacityExceeded, 0},
		{"strict evicts stalled after 10x", PolicyStrict, []action{{pid: 10}, {pid: 11, at: 5}, {at: trkThr + 5, pop: true}}, 10 * trkThr, VerdictAccepted, 10},
		{"strict: stalled but not 10x", PolicyStrict, []action{{pid: 10}, {pid: 11}, {at: trkThr, pop: true}}, 10*trkThr - 1, VerdictCapacityExceeded, 0},
		{"strict: only the stalled one", PolicyStrict, []action{{pid: 10}, {pid: 11, at: 5}, {at: trkThr, pop: true}}, 100 * trkThr, VerdictAccepted, 10},
		{"longest silent stalled first", PolicyStrict, []action{
			{pid: 10}, {pid: 11, at: 50}, {pid: 10, at: 60}, {at: 200, pop: true},
		}, 50 + 10*trkThr, VerdictAccepted, 11},
		{"balanced: stalled older than armed", PolicyBalanced, []action{
			{pid: 10}, {pid: 11, at: 50}, {at: trkThr, pop: true},
		}, 100 * trkThr, VerdictAccepted, 10},
		{"re-armed slot is live again", PolicyStrict, []action{
			{pid: 10}, {pid: 11}, {at: trkThr, pop: true}, {pid: 10, at: 9 * trkThr}, {pid: 11, at: 9 * trkThr},
		}, 11 * trkThr, VerdictCapacityExceeded, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newTrk(2, tc.policy, nil)
			nonce := map[uint32]uint64{}
			for _, a := range tc.setup {
				if a.pop {
					for _, ok := tr.PopStall(a.at); ok; _, ok = tr.PopStall(a.at) {
					}
					continue
				}
				nonce[a.pid]++
				mustObserve(t, tr, beat(a.pid, nonce[a.pid]), OriginUDS, a.at, VerdictAccepted)
			}
			before := tr.Len()
			f := beat(99, 1)
			ob := tr.Observe(f, OriginUDS, tc.at)
			v, evicted := ob.Verdict, ob.Evicted
			if v != tc.want || evicted != tc.wantEvicted {
				t.Fatalf("Observe(%+v) = %v, evicted %d, want %v, evicted %d", f, v, evicted, tc.want, tc.wantEvicted)
			}
			if evicted != 0 && (tr.Lookup(evicted) != nil || tr.Len() != before) {
				t.Errorf("evicted pid %d still tracked or Len changed (%d → %d)", evicted, before, tr.Len())
			}
			if (tr.Lookup(99) != nil) != v.Accepted() {
				t.Errorf("Lookup(99) = %v after %v", tr.Lookup(99), v)
			}
		})
	}
}

func TestStartTime(t *testing.T) {
	procs := &trkProcs{start: map[uint32]uint64{10: 111, 11: 500}}
	tr := newTrk(4, PolicyStrict, procs)

	// Read once per session, not per beat.
	for n := uint64(1); n <= 50; n++ {
		mustObserve(t, tr, beat(10, n), OriginUDS, int64(n), VerdictAccepted)
	}
	if s := tr.Lookup(10); procs.calls != 1 || !s.HasStartTime || s.StartTime != 111 {
		t.Fatalf("after 50 beats: %d start-time reads, slot %+v, want 1 read and start 111", procs.calls, s)
	}
	// Unattested origins are never looked up in the local /proc.
	mustObserve(t, tr, beat(20, 1), OriginUDP, 50, VerdictAccepted)
	mustObserve(t, tr, beat(21, 1), OriginSecureUDP, 50, VerdictAccepted)
	if procs.calls != 1 {
		t.Fatalf("UDP pids read the start time (%d reads)", procs.calls)
	}

	// pid 10 recycled: its stall is a retirement, the slot goes away.
	procs.start[10] = 222
	ev, ok := tr.PopStall(50 + trkThr)
	if !ok || ev.Pid != 10 || !ev.Retired || ev.Gone || ev.Slot.StartTime != 111 {
		t.Fatalf("PopStall = %+v, %v, want pid 10 retired", ev, ok)
	}
	if tr.Lookup(10) != nil || tr.Len() != 2 {
		t.Fatalf("retired pid 10 still tracked (Len %d)", tr.Len())
	}
	// The UDP pids stall without a start-time read.
	calls := procs.calls
	for _, want := range []uint32{20, 21} {
		if ev, ok := tr.PopStall(50 + trkThr); !ok || ev.Pid != want || ev.Retired || ev.Gone {
			t.Fatalf("PopStall = %+v, %v, want a plain stall of %d", ev, ok, want)
		}
	}
	if procs.calls != calls {
		t.Fatalf("UDP stalls read the start time")
	}
	// The new process on pid 10 starts a fresh session with nonce 1.
	mustObserve(t, tr, beat(10, 1), OriginUDS, 200, VerdictAccepted)
	if s := tr.Lookup(10); s.StartTime != 222 || s.Beats != 1 {
		t.Fatalf("new session slot = %+v, want start 222, 1 beat", s)
	}
	// pid 10 gone: still a stall, marked Gone, slot kept.
	delete(procs.start, 10)
	if ev, ok := tr.PopStall(200 + trkThr); !ok || ev.Pid != 10 || ev.Retired || !ev.Gone || !ev.Slot.Stalled {
		t.Fatalf("PopStall = %+v, %v, want a gone stall of pid 10", ev, ok)
	}
	if s := tr.Lookup(10); s == nil || !s.Stalled {
		t.Fatalf("gone pid 10 no longer tracked as stalled: %+v", s)
	}
}

func TestRecycledPidRestartsOnRejectedFrame(t *testing.T) {
	procs := &trkProcs{start: map[uint32]uint64{10: 111}}
	tr := newTrk(4, PolicyStrict, procs)
	mustObserve(t, tr, beat(10, 500), OriginUDS, 0, VerdictAccepted)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 1, VerdictOutOfOrder) // same process: a replay
	procs.start[10] = 112                                            // new process, new session at nonce 1
	mustObserve(t, tr, beat(10, 1), OriginUDS, 2, VerdictRestarted)
	if s := tr.Lookup(10); s.StartTime != 112 || s.LastNonce != 1 || s.Beats != 1 || s.LastArrival != 2 {
		t.Fatalf("restarted slot = %+v", s)
	}
	mustObserve(t, tr, beat(10, 1), OriginUDS, 3, VerdictOutOfOrder)
	mustObserve(t, tr, beat(10, 2), OriginUDS, 4, VerdictAccepted)
}

func TestOneShotSender(t *testing.T) {
	// The sender exited before its first frame was tracked (varta-beat).
	procs := &trkProcs{start: map[uint32]uint64{}}
	tr := newTrk(4, PolicyStrict, procs)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	mustObserve(t, tr, beat(11, 1), OriginUDS, 0, VerdictAccepted)
	if s := tr.Lookup(10); s.HasStartTime {
		t.Fatalf("slot %+v has a start time of a process that was gone", s)
	}
	procs.start[11] = 5 // some later process got pid 11
	if ev, ok := tr.PopStall(trkThr); !ok || ev.Pid != 10 || !ev.Gone || ev.Retired {
		t.Fatalf("PopStall = %+v, %v, want a gone stall of 10", ev, ok)
	}
	if ev, ok := tr.PopStall(trkThr); !ok || ev.Pid != 11 || !ev.Retired {
		t.Fatalf("PopStall = %+v, %v, want 11 retired", ev, ok)
	}
}

func TestNoStartTime(t *testing.T) {
	// Without a StartTime function a stall is never Gone nor Retired.
	tr := NewTracker(TrackerConfig{Capacity: 2, Threshold: trkThr})
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	if ev, ok := tr.PopStall(trkThr); !ok || ev.Gone || ev.Retired {
		t.Errorf("PopStall = %+v, %v, want a plain stall", ev, ok)
	}
}

func TestRateLimits(t *testing.T) {
	tr := NewTracker(TrackerConfig{Capacity: 8, Threshold: trkThr, MaxBeatRate: 3, GlobalRate: 5, GlobalBurst: 5})
	const sec = int64(1e9)
	steps := []struct {
		name string
		pid  uint32
		at   int64
		want Verdict
	}{
		{"pid burst 1", 10, 0, VerdictAccepted},
		{"pid burst 2", 10, 0, VerdictAccepted},
		{"pid burst 3", 10, 0, VerdictAccepted},
		{"pid over rate", 10, 0, VerdictPidRateLimited},
		{"other pid", 11, 0, VerdictAccepted},
		{"global burst 5", 11, 0, VerdictAccepted},
		{"global over burst", 11, 0, VerdictGlobalRateLimited},
		{"new pid over global", 12, 0, VerdictGlobalRateLimited},
		{"a fifth of a second refills one global token", 12, sec / 5, VerdictAccepted},
		{"pid refills at its rate", 10, 2 * sec / 5, VerdictAccepted},
	}
	nonce := uint64(0)
	for _, s := range steps {
		nonce++
		f := beat(s.pid, nonce)
		if v := tr.Observe(f, OriginUDS, s.at).Verdict; v != s.want {
			t.Fatalf("%s: Observe(%+v) = %v, want %v", s.name, f, v, s.want)
		}
	}
	if tr.Lookup(12) == nil || tr.Len() != 3 {
		t.Errorf("Len = %d, want 3", tr.Len())
	}
}

func TestAppendSorted(t *testing.T) {
	tr := newTrk(64, PolicyStrict, nil)
	pids := []uint32{900, 3, 77, 65535, 12, 4000000, 2, 31}
	for i, pid := range pids {
		mustObserve(t, tr, beat(pid, 1), OriginUDS, int64(i), VerdictAccepted)
	}
	tr.PopStall(trkThr + 1) // 900 and 3 stall: both lists are walked
	tr.PopStall(trkThr + 1)
	var got []uint32
	for _, id := range tr.AppendSorted(nil) {
		got = append(got, tr.Get(id).Pid)
	}
	want := []uint32{2, 3, 12, 31, 77, 900, 65535, 4000000}
	if len(got) != len(want) {
		t.Fatalf("AppendSorted gave %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("AppendSorted gave %v, want %v", got, want)
		}
	}
	n := 0
	tr.Each(func(s *Slot) { n++ })
	if n != len(pids) {
		t.Errorf("Each visited %d slots, want %d", n, len(pids))
	}
	ids := make([]SlotID, 0, tr.Capacity())
	if a := testing.AllocsPerRun(100, func() { ids = tr.AppendSorted(ids[:0]) }); a != 0 {
		t.Errorf("AppendSorted: %v allocs/op, want 0", a)
	}
}

func TestNewTrackerPanics(t *testing.T) {
	for _, cfg := range []TrackerConfig{
		{Capacity: 0, Threshold: 1},
		{Capacity: MaxTrackerCapacity + 1, Threshold: 1},
		{Capacity: 1, Threshold: 0},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewTracker(%+v) did not panic", cfg)
				}
			}()
			NewTracker(cfg)
		}()
	}
	if tr := NewTracker(TrackerConfig{Capacity: MaxTrackerCapacity, Threshold: 1 << 62}); tr.classes[0].evictAge != 1<<63-1 {
		t.Errorf("evictAge of a huge threshold = %d, want saturated", tr.classes[0].evictAge)
	}
}

func TestNames(t *testing.T) {
	for _, p := range []Policy{PolicyStrict, PolicyBalanced} {
		if got, ok := ParsePolicy(p.String()); !ok || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v", p.String(), got, ok)
		}
	}
	if _, ok := ParsePolicy("lru"); ok || Policy(9).String() != "invalid" {
		t.Errorf("ParsePolicy(lru) accepted or Policy(9) named")
	}
	want := []string{"accepted", "restarted", "out_of_order", "terminal_replay", "capacity_exceeded",
		"origin_conflict", "pid_rate_limited", "global_rate_limited"}
	for i, w := range want {
		if Verdict(i).String() != w {
			t.Errorf("Verdict(%d).String() = %q, want %q", i, Verdict(i).String(), w)
		}
	}
	if OriginUDS.String() != "uds" || OriginSecureUDP.String() != "secure_udp" || Origin(7).String() != "invalid" {
		t.Errorf("Origin names wrong")
	}
}

var (
	trkSinkObs   Observation
	trkSinkEvent StallEvent
	trkSinkTime  int64
	trkSinkOK    bool
)

func TestNoAllocs(t *testing.T) {
	procs := &trkProcs{start: map[uint32]uint64{10: 1, 20: 2}}
	tr := newTrk(64, PolicyStrict, procs)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	nonce, now := uint64(1), int64(0)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Observe existing", func() {
			nonce++
			now++
			trkSinkObs = tr.Observe(beat(10, nonce), OriginUDS, now)
		}},
		{"Observe new into a free slot", func() {
			trkSinkObs = tr.Observe(beat(20, 1), OriginUDS, now)
			tr.Remove(20)
		}},
		{"PopStall", func() {
			now += trkThr
			trkSinkEvent, trkSinkOK = tr.PopStall(now)
			nonce++
			tr.Observe(beat(10, nonce), OriginUDS, now)
		}},
		{"NextDeadline", func() { trkSinkTime, trkSinkOK = tr.NextDeadline() }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
	if trkSinkEvent.Pid != 10 {
		t.Errorf("PopStall case did not pop pid 10: %+v", trkSinkEvent)
	}
}

func BenchmarkObserve(b *testing.B) {
	const pids = 4096
	tr := NewTracker(TrackerConfig{Capacity: pids, Threshold: 1e9, MaxBeatRate: 100, GlobalRate: 1e9})
	var nonces [pids]uint64
	now := int64(0)
	for p := range pids {
		tr.Observe(beat(uint32(p+2), 1), OriginUDS, now)
		nonces[p] = 1
	}
	p := 0
	b.ReportAllocs()
	for b.Loop() {
		now += 10_000 // each pid beats every 41 ms: under its 100/s limit
		nonces[p]++
		trkSinkObs = tr.Observe(beat(uint32(p+2), nonces[p]), OriginUDS, now)
		if p++; p == pids {
			p = 0
		}
	}
}

// BenchmarkPopStallRearm measures one PopStall of a due slot plus the
// Observe that re-arms it, over 4096 tracked pids.
func BenchmarkPopStallRearm(b *testing.B) {
	const pids = 4096
	tr := NewTracker(TrackerConfig{Capacity: pids, Threshold: pids})
	var nonces [pids + 2]uint64
	now := int64(0)
	for p := range pids {
		now++
		tr.Observe(beat(uint32(p+2), 1), OriginUDS, now)
		nonces[p+2] = 1
	}
	b.ReportAllocs()
	for b.Loop() {
		now++
		ev, ok := tr.PopStall(now)
		if !ok {
			b.Fatal("no stall due")
		}
		nonces[ev.Pid]++
		trkSinkObs = tr.Observe(beat(ev.Pid, nonces[ev.Pid]), OriginUDS, now)
	}
}

func BenchmarkNextDeadline(b *testing.B) {
	tr := newTrk(4096, PolicyStrict, nil)
	tr.Observe(beat(10, 1), OriginUDS, 0)
	b.ReportAllocs()
	for b.Loop() {
		trkSinkTime, trkSinkOK = tr.NextDeadline()
	}
}

// TestObservation: Observe says what it did, so callers need not infer it
// from the slot (a first beat, a stall that ended, the slot used).
func TestObservation(t *testing.T) {
	procs := &trkProcs{start: map[uint32]uint64{10: 1}}
	tr := newTrk(4, PolicyStrict, procs)
	ob := tr.Observe(beat(10, 1), OriginUDS, 0)
	if ob.Verdict != VerdictAccepted || !ob.NewSession || ob.ID == NoSlot || tr.Get(ob.ID).Pid != 10 || ob.Resumed {
		t.Fatalf("first frame: %+v, want an accepted new session in 10's slot", ob)
	}
	id := ob.ID
	if ob = tr.Observe(beat(10, 2), OriginUDS, 1); ob.NewSession || ob.ID != id || ob.Resumed || ob.Prev != vlp.Ok {
		t.Fatalf("second frame: %+v, want the same session in slot %d", ob, id)
	}
	if _, ok := tr.PopStall(trkThr + 1); !ok {
		t.Fatal("no stall")
	}
	if ob = tr.Observe(beat(10, 3), OriginUDS, trkThr+2); !ob.Resumed || ob.Prev != vlp.Stall || ob.NewSession || ob.Silent != trkThr+1 {
		t.Fatalf("frame after a stall: %+v, want Resumed from stall", ob)
	}
	if ob = tr.Observe(beat(10, 3), OriginUDS, trkThr+3); ob.Verdict != VerdictOutOfOrder || ob.ID != NoSlot {
		t.Fatalf("replayed frame: %+v, want out of order and no slot", ob)
	}
	procs.start[10] = 2 // the pid now names another process
	if ob = tr.Observe(beat(10, 1), OriginUDS, trkThr+4); ob.Verdict != VerdictRestarted || !ob.NewSession || ob.ID != id {
		t.Fatalf("recycled pid: %+v, want a restarted session in slot %d", ob, id)
	}
}

// TestUnknownIsNotGone: a start time that cannot be read (the observer
// out of file descriptors) is neither a dead process nor a recycled pid:
// the stall is raised as Unverifiable, never Gone, never Retired.
func TestUnknownIsNotGone(t *testing.T) {
	procs := &trkProcs{start: map[uint32]uint64{10: 1, 11: 2}, unknown: map[uint32]bool{}}
	tr := newTrk(4, PolicyStrict, procs)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	procs.unknown[11] = true // unreadable from its first frame on
	mustObserve(t, tr, beat(11, 1), OriginUDS, 0, VerdictAccepted)
	procs.unknown[10] = true // readable then, unreadable at the stall
	for range 2 {
		ev, ok := tr.PopStall(trkThr)
		if !ok || ev.Gone || ev.Retired || !ev.Unverifiable {
			t.Fatalf("PopStall = %+v, %v; want an Unverifiable stall, neither Gone nor Retired", ev, ok)
		}
	}
	// Readable again, but 11's first frame could not be tied to a process:
	// a replayed nonce does not restart the session on a guess.
	delete(procs.unknown, 11)
	mustObserve(t, tr, beat(11, 1), OriginUDS, trkThr+1, VerdictOutOfOrder)
}

// TestPidAboveMax: with pid_max set, a pid at or above it is refused and
// counted, one below passes; without it nothing is refused.
func TestPidAboveMax(t *testing.T) {
	tr := NewTracker(TrackerConfig{Capacity: 4, Threshold: trkThr})
	if tr.AbovePidMax(1 << 31) {
		t.Error("refused a pid before pid_max was set")
	}
	tr.SetPidMax(1000)
	for _, pid := range []uint32{1000, 4000000} {
		if !tr.AbovePidMax(pid) {
			t.Errorf("pid %d passes pid_max 1000", pid)
		}
	}
	if tr.AbovePidMax(999) || tr.PidAboveMax() != 2 || tr.PidMax() != 1000 {
		t.Errorf("pid 999 refused, or %d counted (want 2), pid_max %d", tr.PidAboveMax(), tr.PidMax())
	}
}

// TestAppendSortedKeys: the keys list every tracked pid in pid order, in
// stalled and armed slots alike, and read back through AtKey; the snapshot
// outlives the table's changes: a pid that left reads back as nil, and so
// does its slot once another pid holds it.
func TestAppendSortedKeys(t *testing.T) {
	tr := newTrk(64, PolicyStrict, nil)
	pids := []uint32{900, 3, 77, 65535, 12, 4000000, 2, 31}
	for i, pid := range pids {
		mustObserve(t, tr, beat(pid, 1), OriginUDS, int64(i), VerdictAccepted)
	}
	tr.PopStall(trkThr + 1) // 900 and 3 stall
	tr.PopStall(trkThr + 1)
	keys := tr.AppendSortedKeys(nil)
	var got []uint32
	for _, k := range keys {
		got = append(got, tr.AtKey(k).Pid)
	}
	if want := []uint32{2, 3, 12, 31, 77, 900, 65535, 4000000}; !slices.Equal(got, want) {
		t.Fatalf("AppendSortedKeys gave pids %v, want %v", got, want)
	}
	buf := make([]uint64, 0, tr.Capacity())
	if a := testing.AllocsPerRun(100, func() { buf = tr.AppendSortedKeys(buf[:0]) }); a != 0 {
		t.Errorf("AppendSortedKeys: %v allocs/op, want 0", a)
	}
	if !tr.Remove(77) || tr.AtKey(keys[4]) != nil {
		t.Fatalf("AtKey of removed pid 77: %+v, want nil", tr.AtKey(keys[4]))
	}
	mustObserve(t, tr, beat(78, 1), OriginUDS, trkThr+2, VerdictAccepted)
	if s := tr.AtKey(keys[4]); s != nil || tr.Lookup(78) != tr.Get(SlotID(int32(uint32(keys[4])))) {
		t.Errorf("pid 78 took 77's slot: AtKey of 77's key gave %+v, want nil", s)
	}
}
