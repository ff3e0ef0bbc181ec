package recovery

import (
	"errors"
	"strings"
	"testing"
)

// Escalate runs its command in a slot of its own: while MaxConcurrent
// recovery children hold every slot it still starts, one at a time; its
// completion says Escalation and stays out of the outcome counters; its
// spawn record's source is escalate.
func TestEscalateOwnSlot(t *testing.T) {
	if err := newTestManager(t, Config{Command: shCmd("true")}).Escalate(1, 0, now()); !errors.Is(err, ErrNoEscalate) {
		t.Fatalf("Escalate without an escalate command: %v", err)
	}
	var done []Completion
	audit := tempPath(t, "audit")
	esc := shCmd("exit 0")
	esc.Source = SourceEscalate
	m := newTestManager(t, Config{Command: shCmd("sleep 5"), MaxConcurrent: 1, Escalate: &esc, AuditFile: audit,
		OnComplete: collect(&done)})
	if o := m.OnStall(100, 1, true, now()); o != OutcomeSpawned {
		t.Fatalf("recovery: %v", o)
	}
	if o := m.OnStall(101, 1, true, now()); o != OutcomeDeferred {
		t.Fatalf("second recovery with MaxConcurrent 1: %v, want deferred", o)
	}
	if err := m.Escalate(100, 0, now()); err != nil {
		t.Fatalf("Escalate with every recovery slot busy: %v", err)
	}
	if err := m.Escalate(101, 0, now()); !errors.Is(err, ErrEscalateBusy) {
		t.Fatalf("a second Escalate while the first runs: %v, want ErrEscalateBusy", err)
	}
	tickUntil(t, m, "the escalate command's completion", func() bool { return len(done) == 1 })
	if c := done[0]; !c.Escalation || c.Agent != 100 || c.Outcome != OutcomeReapedZero {
		t.Fatalf("completion %+v, want an escalation for 100 that exited 0", c)
	}
	if n := m.Counts(); n[OutcomeReapedZero] != 0 || n[OutcomeSpawned] != 1 || m.Durations().Count != 0 {
		t.Fatalf("the escalate command was counted as a recovery: %v", n)
	}
	if m.Deferred() != 1 {
		t.Fatalf("the freed escalate slot was taken by a queued recovery: %d deferred, want 1", m.Deferred())
	}
	if err := m.Escalate(101, 0, now()); err != nil {
		t.Fatalf("Escalate once the slot is free again: %v", err)
	}
	var spawns []string
	for _, rec := range readLines(t, audit) {
		if kindOf(rec) == "spawn" {
			spawns = append(spawns, rec)
		}
	}
	if len(spawns) != 3 || !strings.Contains(spawns[1], "\tescalate\t") || strings.Contains(spawns[0], "\tescalate\t") {
		t.Fatalf("spawn records %q: want the recovery inline, then two escalate", spawns)
	}
}
