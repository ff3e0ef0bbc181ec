package poll

import (
	"os"
	"testing"
)

// TestNsLookupCachesPerTick: within one tick a repeated sender costs no
// /proc read (no allocation); a new tick reads afresh.
func TestNsLookupCachesPerTick(t *testing.T) {
	var c nsLookup
	self := uint32(os.Getpid())
	inner, ok := c.get(self, 1)
	if wantInner, wantOK := nsInnermostPid(self); inner != wantInner || ok != wantOK {
		t.Fatalf("get(self) = %d, %v, want %d, %v", inner, ok, wantInner, wantOK)
	}
	if n := testing.AllocsPerRun(100, func() { c.get(self, 1) }); n != 0 {
		t.Errorf("cached get: %v allocs/op, want 0 (no /proc read)", n)
	}
	if n := testing.AllocsPerRun(10, func() { c.at = 0; c.get(self, 2) }); n == 0 {
		t.Errorf("a new tick did not read /proc again")
	}
}
