package escalate

import "testing"

const ms = int64(1e6)

// The N-th failure within the window escalates, once; failures older than
// the window do not count towards it.
func TestLadderWindow(t *testing.T) {
	l := NewLadder(3, 1000*ms, 4)
	steps := []struct {
		key   string
		at    int64
		count int
		esc   bool
	}{
		{"/usr/bin/a", 0, 1, false},
		{"/usr/bin/a", 500 * ms, 2, false},
		{"/usr/bin/b", 600 * ms, 1, false},  // another agent: its own count
		{"/usr/bin/a", 1400 * ms, 2, false}, // the first failure aged out of the window
		{"/usr/bin/a", 1450 * ms, 3, true},  // three within 1 s: escalate
		{"/usr/bin/a", 1800 * ms, 3, false}, // once only
		{"/usr/bin/b", 700 * ms, 2, false},
	}
	for i, s := range steps {
		c, esc := l.Fail(s.key, s.at)
		if c != s.count || esc != s.esc {
			t.Fatalf("step %d (%s at %d ms): got count %d escalate %v, want %d %v", i, s.key, s.at/ms, c, esc, s.count, s.esc)
		}
	}
	if !l.Escalated("/usr/bin/a") || l.Escalated("/usr/bin/b") {
		t.Fatal("Escalated does not match what Fail returned")
	}
}

// Without a window every failure counts, however old.
func TestLadderNoWindow(t *testing.T) {
	l := NewLadder(2, 0, 1)
	if _, esc := l.Fail("x", 0); esc {
		t.Fatal("escalated at the first failure")
	}
	if c, esc := l.Fail("x", 1e15); !esc || c != 2 {
		t.Fatalf("second failure a long time later: count %d escalate %v, want 2 true", c, esc)
	}
}

// A full table evicts the key with the oldest latest failure, never one
// that escalated; when every entry escalated, failures are dropped and
// counted.
func TestLadderFull(t *testing.T) {
	l := NewLadder(1, 0, 2)
	if _, esc := l.Fail("a", 1); !esc {
		t.Fatal("after=1 must escalate at once")
	}
	l.Fail("b", 2) // escalates too: the table is full of escalated keys
	if c, esc := l.Fail("c", 3); c != 0 || esc || l.Dropped() != 1 {
		t.Fatalf("a third key with every entry escalated: count %d escalate %v dropped %d, want 0 false 1", c, esc, l.Dropped())
	}
	if !l.Escalated("a") || !l.Escalated("b") {
		t.Fatal("an escalated key was evicted: it could escalate again")
	}
	l2 := NewLadder(3, 0, 2)
	l2.Fail("old", 1)
	l2.Fail("new", 5)
	l2.Fail("third", 6) // evicts "old"
	if c, _ := l2.Fail("new", 7); c != 2 {
		t.Fatalf("the newer key lost its count (%d): the wrong entry was evicted", c)
	}
	if c, _ := l2.Fail("old", 8); c != 1 {
		t.Fatalf("the evicted key kept its count (%d)", c)
	}
}

// Fail allocates nothing once an entry's ring exists.
func TestLadderNoAllocs(t *testing.T) {
	l := NewLadder(4, 10, 8)
	l.Fail("k", 0)
	now := int64(1)
	if n := testing.AllocsPerRun(100, func() { now++; l.Fail("k", now) }); n != 0 {
		t.Fatalf("Fail allocates %v times per call", n)
	}
}

// TestLadderFailAfterPerKey: a key with its own count (a declared agent's
// escalate-after=) escalates at that count, another at the ladder's.
func TestLadderFailAfterPerKey(t *testing.T) {
	l := NewLadder(3, 0, 4)
	if _, esc := l.FailAfter("own", 1, 1); !esc {
		t.Error("escalate-after=1: the first failure must escalate")
	}
	for i, want := range []bool{false, false, true} {
		if _, esc := l.Fail("global", int64(i)); esc != want {
			t.Errorf("global failure %d: escalate %v, want %v", i+1, esc, want)
		}
	}
}
