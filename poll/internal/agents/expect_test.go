package agents

import (
	"strings"
	"testing"
)

func TestExpect(t *testing.T) {
	f, err := Parse(strings.NewReader("a exe=/a expect-within-ms=100\nb exe=/b\nc exe=/c expect-within-ms=300\n"), "f")
	if err != nil {
		t.Fatal(err)
	}
	const ms = int64(1e6)
	e := NewExpect(f, 1000*ms)
	if at, ok := e.Next(); !ok || at != 1100*ms {
		t.Fatalf("Next = %d %v, want 1100 ms", at/ms, ok)
	}
	if i, ok := e.PopMissing(1099 * ms); ok {
		t.Fatalf("missing too early: %d", i)
	}
	e.Present(2) // c beats in time
	if i, ok := e.PopMissing(1100 * ms); !ok || i != 0 || !e.Missing(0) {
		t.Fatalf("PopMissing = %d %v, want a (0)", i, ok)
	}
	if i, ok := e.PopMissing(5000 * ms); ok {
		t.Fatalf("reported twice or c missing while present: %d", i)
	}
	if _, ok := e.Next(); ok {
		t.Errorf("a deadline left with a reported and c present")
	}
	if !e.Present(0) || e.Missing(0) {
		t.Errorf("a came: Present should say it had been missing")
	}
	e.Exited(2, 6000*ms) // c's process exited: 300 ms to come back
	if at, _ := e.Next(); at != 6300*ms {
		t.Errorf("Next after c's exit = %d ms, want 6300", at/ms)
	}
	if i, ok := e.PopMissing(6300 * ms); !ok || i != 2 {
		t.Errorf("c not missing after its exit: %d %v", i, ok)
	}

	// A reload keeps c missing, drops a's expectation, starts d's clock.
	f2, _ := Parse(strings.NewReader("a exe=/a\nc exe=/c expect-within-ms=300\nd exe=/d expect-within-ms=50\n"), "f")
	e = e.Reload(f2, 7000*ms)
	if !e.Missing(1) || e.Missing(0) {
		t.Errorf("reload lost state: c missing %v, a missing %v", e.Missing(1), e.Missing(0))
	}
	if at, _ := e.Next(); at != 7050*ms {
		t.Errorf("Next after reload = %d ms, want 7050 (d)", at/ms)
	}
	var none *Expect
	if _, ok := none.Next(); ok || none.Present(0) {
		t.Errorf("nil Expect")
	}
}
