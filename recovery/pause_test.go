package recovery

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
)

// TestHeldStallRunsNothing: while Held says an agent is paused, its stall
// starts no child (the marker file the command would write never
// appears), is counted skipped_paused, audited refused with reason paused
// and told to OnOutcome; once Held says no, the next stall runs the
// command.
func TestHeldStallRunsNothing(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	audit := filepath.Join(dir, "audit")
	paused := true
	var told []Outcome
	m := newTestManager(t, Config{Command: shCmd("touch " + marker), AuditFile: audit,
		Held:      func(int32) bool { return paused },
		OnOutcome: func(_ int32, o Outcome) { told = append(told, o) }})
	pid := int32(os.Getpid())
	if got := m.OnStall(pid, 1, true, now()); got != OutcomeSkippedPaused {
		t.Fatalf("OnStall while paused = %v, want skipped_paused", got)
	}
	m.Tick(now())
	if _, err := os.Stat(marker); err == nil || m.Outstanding() != 0 {
		t.Fatalf("a paused agent's stall ran the command (outstanding %d)", m.Outstanding())
	}
	paused = false
	if got := m.OnStall(pid, 1, true, now()); got != OutcomeSpawned {
		t.Fatalf("OnStall after resume = %v, want spawned", got)
	}
	tickUntil(t, m, "the child reaped", func() bool { return m.Outstanding() == 0 })
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("after resume the command did not run: %v", err)
	}
	c := m.Counts()
	if c[OutcomeSkippedPaused] != 1 || c[OutcomeSpawned] != 1 {
		t.Fatalf("counts %v; want one skipped_paused and one spawned", c)
	}
	if want := []Outcome{OutcomeSkippedPaused, OutcomeSpawned, OutcomeReapedZero}; !slices.Equal(told, want) {
		t.Fatalf("OnOutcome saw %v, want %v", told, want)
	}
	if !hasRefused(t, audit, RefusedPaused) {
		t.Fatal("no refused record with reason paused in the audit log")
	}
}

// TestHeldWhileQueued: a stall queued behind the concurrency cap whose
// agent is paused before its turn is not started then.
func TestHeldWhileQueued(t *testing.T) {
	paused := map[int32]bool{}
	m := newTestManager(t, Config{Command: shCmd("sleep 0.2"), MaxConcurrent: 1,
		Held: func(p int32) bool { return paused[p] }})
	if got := m.OnStall(1<<20+1, 1, true, now()); got != OutcomeSpawned {
		t.Fatalf("first stall = %v, want spawned", got)
	}
	if got := m.OnStall(1<<20+2, 1, true, now()); got != OutcomeDeferred {
		t.Fatalf("second stall = %v, want deferred", got)
	}
	paused[1<<20+2] = true
	tickUntil(t, m, "the queue drained", func() bool { return m.Deferred() == 0 && m.Outstanding() == 0 })
	if c := m.Counts(); c[OutcomeSkippedPaused] != 1 || c[OutcomeSpawned] != 1 {
		t.Fatalf("counts %v; want the queued stall held (skipped_paused) and one spawn", c)
	}
}

// TestDryRun: with DryRun the command line goes to OnDryRun, nothing
// runs, the stall is counted dry_run and audited, and the debounce clock
// still starts as if it had run.
func TestDryRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	audit := filepath.Join(dir, "audit")
	var argv []string
	m := newTestManager(t, Config{Command: shCmd("touch " + marker), AuditFile: audit, DryRun: true,
		Debounce: 1 << 40, OnDryRun: func(_ int32, a []string) { argv = a }})
	pid := int32(os.Getpid())
	if got := m.OnStall(pid, 1, true, now()); got != OutcomeDryRun {
		t.Fatalf("OnStall = %v, want dry_run", got)
	}
	if got := m.OnStall(pid, 1, true, now()); got != OutcomeDebounced {
		t.Fatalf("second OnStall = %v, want debounced: a dry run starts the debounce clock", got)
	}
	m.Tick(now())
	if _, err := os.Stat(marker); err == nil || m.Outstanding() != 0 {
		t.Fatal("a dry run ran the command")
	}
	if len(argv) != 4 || argv[0] != "sh" || argv[3] != strconv.Itoa(int(pid)) {
		t.Fatalf("OnDryRun got argv %q, want sh -c SCRIPT %d", argv, pid)
	}
	if !hasRefused(t, audit, RefusedDryRun) {
		t.Fatal("no refused record with reason dry_run in the audit log")
	}
}

// hasRefused reports whether the audit log at path has a refused record
// with reason.
func hasRefused(t *testing.T, path, reason string) bool {
	t.Helper()
	for _, rec := range readLines(t, path)[1:] {
		if kindOf(rec) == "refused" && mustField(t, rec, "reason") == reason {
			return true
		}
	}
	return false
}
