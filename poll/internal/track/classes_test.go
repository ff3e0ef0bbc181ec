package track

import (
	"testing"

	"github.com/varta-go/varta/vlp"
)

// TestSetThresholdStallsFirst: an agent with a threshold below the
// tracker's stalls first, although it beat last, and the rest keep theirs.
func TestSetThresholdStallsFirst(t *testing.T) {
	tr := newTrk(4, PolicyStrict, nil)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	mustObserve(t, tr, beat(11, 1), OriginUDS, 10, VerdictAccepted)
	if fit := tr.SetThreshold(tr.ID(11), trkThr/4); fit != FitExact {
		t.Fatalf("SetThreshold = %v, want FitExact", fit)
	}
	if got := tr.SlotThreshold(tr.ID(11)); got != trkThr/4 {
		t.Fatalf("SlotThreshold = %d, want %d", got, trkThr/4)
	}
	if d, ok := tr.NextDeadline(); !ok || d != 10+trkThr/4 {
		t.Fatalf("NextDeadline = %d, %v, want %d", d, ok, 10+trkThr/4)
	}
	ev, ok := tr.PopStall(10 + trkThr/4)
	if !ok || ev.Pid != 11 {
		t.Fatalf("PopStall = %+v, %v, want pid 11 (its own threshold)", ev, ok)
	}
	if _, ok := tr.PopStall(trkThr - 1); ok {
		t.Fatal("pid 10 stalled before the tracker's threshold")
	}
	if ev, ok := tr.PopStall(trkThr); !ok || ev.Pid != 10 {
		t.Fatalf("PopStall = %+v, %v, want pid 10", ev, ok)
	}
}

// TestSetThresholdRounds: with every class in use, a new threshold takes
// the largest one not above it, or the smallest when all are above it.
func TestSetThresholdRounds(t *testing.T) {
	tr := NewTracker(TrackerConfig{Capacity: 8, Threshold: 100, Classes: 3})
	for pid := uint32(2); pid < 7; pid++ {
		mustObserve(t, tr, beat(pid, 1), OriginUDS, 0, VerdictAccepted)
	}
	cases := []struct {
		pid  uint32
		thr  int64
		want Fit
		got  int64
	}{
		{2, 50, FitExact, 50},
		{3, 300, FitExact, 300},
		{4, 200, FitRounded, 100}, // 50, 100, 300 in use: 100 is the largest not above
		{5, 20, FitRounded, 50},   // every class above: the smallest
		{6, 300, FitExact, 300},
	}
	for _, c := range cases {
		id := tr.ID(c.pid)
		if fit := tr.SetThreshold(id, c.thr); fit != c.want || tr.SlotThreshold(id) != c.got {
			t.Errorf("SetThreshold(pid %d, %d) = %v with %d, want %v with %d", c.pid, c.thr, fit, tr.SlotThreshold(id), c.want, c.got)
		}
	}
	// Class 50's members leave: the class is free for another threshold.
	tr.Remove(2)
	tr.Remove(5)
	if fit := tr.SetThreshold(tr.ID(4), 200); fit != FitExact || tr.SlotThreshold(tr.ID(4)) != 200 {
		t.Errorf("after the 50 class emptied, SetThreshold(200) = %v with %d, want exact", fit, tr.SlotThreshold(tr.ID(4)))
	}
}

// TestTrigger: a triggered stall is raised at the next PopStall whatever
// the time, a beat does not take it back, and a second trigger does nothing.
func TestTrigger(t *testing.T) {
	tr := newTrk(4, PolicyStrict, nil)
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted)
	mustObserve(t, tr, beat(11, 1), OriginUDS, 0, VerdictAccepted)
	if !tr.Trigger(tr.ID(11)) || tr.Trigger(tr.ID(11)) {
		t.Fatal("Trigger: want true, then false")
	}
	if d, ok := tr.NextDeadline(); !ok || d != 0 {
		t.Fatalf("NextDeadline after a trigger = %d, %v, want now (0)", d, ok)
	}
	mustObserve(t, tr, beat(11, 2), OriginUDS, 5, VerdictAccepted)
	ev, ok := tr.PopStall(6)
	if !ok || ev.Pid != 11 || !ev.Slot.Stalled || ev.Slot.Triggered {
		t.Fatalf("PopStall = %+v, %v, want the triggered pid 11", ev, ok)
	}
	if _, ok := tr.PopStall(7); ok {
		t.Fatal("a second stall before any deadline")
	}
	if tr.Trigger(tr.ID(11)) {
		t.Fatal("Trigger of a stalled slot reported true")
	}
}

// TestChargeAndText: Charge spends the pid's bucket like a beat does; the
// status text is kept, cut at TextMax.
func TestChargeAndText(t *testing.T) {
	tr := NewTracker(TrackerConfig{Capacity: 2, Threshold: 100, MaxBeatRate: 2})
	mustObserve(t, tr, beat(10, 1), OriginUDS, 0, VerdictAccepted) // one of two tokens
	id := tr.ID(10)
	if v := tr.Charge(id, 0); v != VerdictAccepted {
		t.Fatalf("Charge = %v, want accepted", v)
	}
	if v := tr.Charge(id, 0); v != VerdictPidRateLimited {
		t.Fatalf("Charge over the rate = %v, want pid_rate_limited", v)
	}
	long := make([]byte, TextMax+10)
	for i := range long {
		long[i] = 'a'
	}
	tr.SetText(id, long)
	if len(tr.Text(id)) != TextMax {
		t.Fatalf("Text has %d bytes, want %d", len(tr.Text(id)), TextMax)
	}
	// A new session in the slot starts without the old one's text.
	tr.Remove(tr.Get(id).Pid)
	tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: 99, Nonce: 1}, OriginUDP, 1)
	if got := tr.Text(tr.ID(99)); tr.ID(99) != id || len(got) != 0 {
		t.Fatalf("slot %d (want %d) of a new session has text %q, want none", tr.ID(99), id, got)
	}
}

// TestClassesNoAllocs: the per-agent threshold calls allocate nothing.
func TestClassesNoAllocs(t *testing.T) {
	tr := newTrk(4, PolicyStrict, nil)
	tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: 10, Nonce: 1}, OriginUDS, 0)
	id, n := tr.ID(10), uint64(1)
	if a := testing.AllocsPerRun(1000, func() {
		n++
		tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: 10, Nonce: n}, OriginUDS, int64(n))
		tr.SetThreshold(id, int64(n%5+1)*10)
		tr.Trigger(id)
		tr.PopStall(int64(n))
		tr.Charge(id, int64(n))
	}); a != 0 {
		t.Errorf("%v allocs per run, want 0", a)
	}
}
