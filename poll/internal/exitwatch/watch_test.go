package exitwatch

import (
	"os"
	"os/exec"
	"testing"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/testutil"
)

// deadPid runs a child to its end and returns its pid, now free.
func deadPid(t *testing.T) uint32 {
	c := exec.Command("true")
	if err := c.Run(); err != nil {
		t.Skip("cannot run a child:", err)
	}
	return uint32(c.Process.Pid)
}

// TestRecheck: an exit whose recovery was deferred passes recovery's
// recheck once, and only while no other process has taken its pid; a
// full table drops its oldest entry.
func TestRecheck(t *testing.T) {
	testutil.RequireProc(t)
	x, err := New(2)
	if x == nil {
		t.Skip(err)
	}
	defer x.Close()
	self := uint32(os.Getpid())
	selfStart, _ := listen.ProcStartTime(self)
	dead := deadPid(t)

	x.Defer(dead, 5)
	x.Defer(self, selfStart+1) // our pid, "taken" by us since
	if !x.Recheck(dead, 5) {
		t.Error("a deferred exit of a vanished pid failed its recheck")
	}
	if x.Recheck(dead, 5) {
		t.Error("a deferred exit passed its recheck twice")
	}
	if x.Recheck(self, selfStart+1) {
		t.Error("a deferred exit passed although its pid belongs to another process now")
	}
	d1, d2, d3 := deadPid(t), deadPid(t), deadPid(t)
	x.Defer(d1, 1)
	x.Defer(d2, 2)
	x.Defer(d3, 3) // full: the oldest goes
	if x.Recheck(d1, 1) {
		t.Error("the oldest deferred exit outlived a full table")
	}
	if !x.Recheck(d2, 2) || !x.Recheck(d3, 3) {
		t.Error("the two newest deferred exits were lost")
	}
}

func TestPolicyNames(t *testing.T) {
	for _, p := range []Policy{Report, Recover, Ignore} {
		if got, ok := ParsePolicy(p.String()); !ok || got != p {
			t.Errorf("ParsePolicy(%q) = %v, %v, want %v", p.String(), got, ok, p)
		}
	}
	if _, ok := ParsePolicy("restart"); ok {
		t.Error(`ParsePolicy("restart") succeeded`)
	}
	if Policy(9).String() != "invalid" || Policy(0) != Report {
		t.Error("Policy zero value or out-of-range name is wrong")
	}
}
