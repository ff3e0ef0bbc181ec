package recovery

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUpstreamOutcomes: each of our outcomes is counted under upstream's
// word for it, or in ExtraOutcomes, never both and never lost; upstream's
// refusal reasons repeat their outcomes.
func TestUpstreamOutcomes(t *testing.T) {
	m := &Manager{}
	for o := range m.counts {
		m.counts[o] = 1 << o // one bit per outcome: a sum tells which were added
	}
	out, refused := m.UpstreamOutcomes()
	want := map[string]Outcome{
		"spawned": OutcomeSpawned, "debounced": OutcomeDebounced, "reaped_zero": OutcomeReapedZero,
		"reaped_nonzero": OutcomeReapedNonzero, "killed": OutcomeKilled, "spawn_failed": OutcomeSpawnFailed,
		"refused_unauthenticated_transport": OutcomeSkippedUnattested, "refused_outstanding_capacity": OutcomeRefusedCapacity,
		"skipped_agent_resumed": OutcomeSkippedResumed, "skipped_pid_recycled": OutcomeSkippedRecycled,
		"skipped_stall_unverifiable": OutcomeSkippedUnverifiable,
	}
	var seen uint64
	for i, label := range UpstreamOutcomeLabels {
		o, ok := want[label]
		switch {
		case ok && out[i] != 1<<o:
			t.Errorf("%s = %b, want our %s alone (%b)", label, out[i], o, uint64(1)<<o)
		case !ok && out[i] != 0:
			t.Errorf("%s = %b, want 0: nothing here means it", label, out[i])
		}
		seen |= out[i]
	}
	for _, o := range ExtraOutcomes {
		if seen&(1<<o) != 0 {
			t.Errorf("%s is both upstream's and extra", o)
		}
		seen |= 1 << o
	}
	if seen != 1<<NumOutcomes-1 {
		t.Errorf("outcomes counted nowhere: %b", ^seen&(1<<NumOutcomes-1))
	}
	if refused != [5]uint64{1 << OutcomeSkippedUnattested, 0, 0, 1 << OutcomeRefusedCapacity, 0} {
		t.Errorf("refused = %v", refused)
	}
	var nilM *Manager
	if o, r := nilM.UpstreamOutcomes(); o != [len(UpstreamOutcomeLabels)]uint64{} || r != [5]uint64{} || nilM.Stats() != (Stats{}) {
		t.Error("a nil Manager counts something")
	}
}

// TestStatsCounters: the recovery counters of upstream's catalogue move
// on the events they name, with real children.
func TestStatsCounters(t *testing.T) {
	// The children wait at a gate, so that they exit together once it opens.
	gate := filepath.Join(t.TempDir(), "gate")
	m := newTestManager(t, Config{Command: shCmd("while [ ! -e " + gate + " ]; do sleep 0.01; done"), SpawnsPerTick: 1, ReapsPerTick: 1,
		Recheck: func(pid int32, start uint64) Stale {
			return map[int32]Stale{60: Resumed, 61: Recycled}[pid]
		}})
	t0 := now()
	// Spawn budget 1: the second stall of the tick waits, once counted.
	m.OnStall(50, 1, true, t0)
	m.OnStall(51, 1, true, t0)
	m.OnStall(52, 1, true, t0)
	if s := m.Stats(); s.SpawnBudgetExceeded != 1 {
		t.Fatalf("SpawnBudgetExceeded = %d after one tick's deferrals, want 1", s.SpawnBudgetExceeded)
	}
	tickUntil(t, m, "every child spawned", func() bool { return m.Outstanding() == 3 && m.Deferred() == 0 })
	if err := os.WriteFile(gate, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // all three exit (each looks every 10 ms)
	tickUntil(t, m, "every child reaped", func() bool { return m.Outstanding() == 0 && m.Deferred() == 0 })
	s := m.Stats()
	if s.ReapTruncated == 0 {
		t.Errorf("ReapTruncated = 0 with a reap budget of 1 and children exiting together")
	}
	// The pid now names another process: its debounce window is dropped.
	m.OnStall(50, 2, true, now())
	if s := m.Stats(); s.DebounceRecycleResets != 1 {
		t.Errorf("DebounceRecycleResets = %d, want 1", s.DebounceRecycleResets)
	}
	tickUntil(t, m, "reaped", func() bool { return m.Outstanding() == 0 })
	// Deferred stalls that no longer stand, told apart.
	t1 := now()
	m.OnStall(70, 1, true, t1) // takes this tick's spawn
	m.OnStall(60, 1, true, t1)
	m.OnStall(61, 1, true, t1)
	tickUntil(t, m, "both rechecked", func() bool { return m.Deferred() == 0 })
	c := m.Counts()
	if c[OutcomeSkippedResumed] != 1 || c[OutcomeSkippedRecycled] != 1 {
		t.Errorf("resumed %d, recycled %d; want 1 and 1", c[OutcomeSkippedResumed], c[OutcomeSkippedRecycled])
	}
}

// TestAuditFsyncStats: every audit fdatasync is timed into the histogram,
// one over a 1 ns budget is counted, and --audit-sync-interval-ms syncs
// records the record cadence left waiting.
func TestAuditFsyncStats(t *testing.T) {
	m := newTestManager(t, Config{Command: shCmd("exit 0"), AuditFile: tempPath(t, "audit"), AuditSyncEvery: 1000,
		AuditFsyncBudget: time.Nanosecond, AuditSyncInterval: 10 * time.Millisecond})
	s := m.Stats()
	if s.Fsync == nil || s.Fsync.Count() == 0 || s.FsyncOverBudget == 0 {
		t.Fatalf("the boot record's sync was not timed: %+v", s)
	}
	before := s.Fsync.Count()
	t0 := now()
	m.OnStall(-1, 0, true, t0) // a refused record, left unsynced by the cadence of 1000
	m.Tick(t0)
	if m.Stats().Fsync.Count() != before {
		t.Fatal("synced before the interval")
	}
	if d := m.NextDeadline(); d > t0+int64(10*time.Millisecond) {
		t.Errorf("NextDeadline %d ns away, want the sync interval", d-t0)
	}
	m.Tick(t0 + int64(10*time.Millisecond))
	if got := m.Stats().Fsync.Count(); got != before+1 {
		t.Errorf("fdatasyncs %d after the interval, want %d", got, before+1)
	}
}
