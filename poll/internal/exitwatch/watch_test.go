package exitwatch

import (
	"os"
	"os/exec"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/testutil"
	"github.com/varta-go/varta/poll/internal/track"
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

// TestEntriesStartEmpty: the entry table is left zeroed by New (so slots
// never used cost no memory), and a zero entry holds no pidfd: forgetting
// or unwatching it closes nothing, not even fd 0. A real watch's pidfd is
// closed by Unwatch, once.
func TestEntriesStartEmpty(t *testing.T) {
	testutil.RequireProc(t)
	x, err := New(8)
	if x == nil || err != nil {
		t.Skip(err)
	}
	defer x.Close()
	if unsafe.Sizeof(Entry{}) > 32 { // 28 on a 32-bit target
		t.Errorf("Entry takes %d bytes, want at most 32 (one per tracker slot)", unsafe.Sizeof(Entry{}))
	}
	probe, err := unix.Dup(0)
	if err != nil {
		t.Skip("no fd 0 to watch over:", err)
	}
	defer unix.Close(probe)
	for id := range track.SlotID(8) {
		if *x.Entry(id) != (Entry{}) {
			t.Fatalf("entry %d of a new Watch is %+v, want zero", id, *x.Entry(id))
		}
		x.Unwatch(id)
		x.Forget(id)
	}
	if _, err := unix.FcntlInt(0, unix.F_GETFD, 0); err != nil {
		t.Fatalf("fd 0 was closed by unwatching empty entries: %v", err)
	}
	self := uint32(os.Getpid())
	start, ok := listen.ProcStartTime(self)
	if !ok {
		t.Skip("no start time for ourselves")
	}
	x.Begin(3, self, start)
	if err := x.Start(3, self, start, true); err != nil {
		t.Skip("no pidfd here:", err)
	}
	fd := int(x.Entry(3).pidfd - 1)
	if _, watched, _ := x.Counts(); watched != 1 || fd < 0 {
		t.Fatalf("after Start: %d watched, pidfd %d; want 1 and an fd", watched, fd)
	}
	x.Unwatch(3)
	x.Unwatch(3)
	if _, watched, _ := x.Counts(); watched != 0 || x.Entry(3).pidfd != 0 {
		t.Errorf("after Unwatch: %d watched, entry %+v; want none", watched, *x.Entry(3))
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fd != probe {
		t.Errorf("pidfd %d still open after Unwatch", fd)
	}
}
