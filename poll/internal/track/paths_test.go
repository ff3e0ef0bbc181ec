package track

import "testing"

func TestPaths(t *testing.T) {
	p := NewPaths(2, 20)
	a := p.Intern([]byte("/usr/bin/a"))
	if a == 0 || p.Intern([]byte("/usr/bin/a")) != a {
		t.Fatalf("interning /usr/bin/a twice gave %d and another id", a)
	}
	b := p.Intern([]byte("/bin/b"))
	if b == 0 || b == a || string(p.Get(a)) != "/usr/bin/a" || string(p.Get(b)) != "/bin/b" {
		t.Fatalf("ids %d %d give %q %q", a, b, p.Get(a), p.Get(b))
	}
	if id := p.Intern([]byte("/c")); id != 0 {
		t.Errorf("a third path in a table of two got id %d, want 0", id)
	}
	q := NewPaths(10, 12)
	q.Intern([]byte("/usr/bin/a"))
	if id := q.Intern([]byte("/bin/bb")); id != 0 {
		t.Errorf("a path past the byte budget got id %d, want 0", id)
	}
	if p.Intern(nil) != 0 || p.Get(0) != nil || p.Get(9) != nil {
		t.Error("empty path or unknown id not refused")
	}
	if n := testing.AllocsPerRun(100, func() { p.Intern([]byte("/usr/bin/a")) }); n != 0 {
		t.Errorf("Intern of a known path: %v allocs, want 0", n)
	}
}
