package declared

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/poll/internal/agents"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// TestMatchNoAllocs: matching a new session, with the command line and
// cgroup read from /proc (this test's own process), allocates nothing,
// finds the agent, records its name and gives it its own threshold.
func TestMatchNoAllocs(t *testing.T) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Skip("no /proc:", err)
	}
	if len(os.Args) < 2 {
		t.Skip("no argument to match")
	}
	src := "other exe=/nonexistent/x\nme exe=" + exe + " arg=" + quote(os.Args[1]) + " cgroup=/ threshold-ms=250 expect-within-ms=1000\n"
	f, err := agents.Parse(strings.NewReader(src), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	tr := track.NewTracker(track.TrackerConfig{Capacity: 4, Threshold: int64(5e9)})
	s := New(f, Deps{Log: sink.NewLogger(nil), Tracker: tr, Threshold: 5e9}, 0)
	pid := uint32(os.Getpid())
	ob := tr.Observe(vlp.Frame{Pid: pid, Nonce: 1}, track.OriginUDS, 1)
	sl := tr.Get(ob.ID)
	allocs := testing.AllocsPerRun(100, func() {
		sl.Declared = 0
		s.Match(ob.ID, sl, []byte(filepath.Base(exe)), []byte(exe), 2)
	})
	if allocs != 0 {
		t.Errorf("Match allocates %v per session", allocs)
	}
	if s.Name(sl) != "me" || tr.SlotThreshold(ob.ID) != 250e6 {
		t.Errorf("matched %q with threshold %d, want me with 250 ms", s.Name(sl), tr.SlotThreshold(ob.ID))
	}
	if _, ok := s.exp.Next(); ok {
		t.Error("a present agent still has a missing deadline")
	}
}

// TestMissingOnceAndAgain: an agent not beating within expect-within-ms is
// reported once; after its process exits its clock starts again.
func TestMissingOnceAndAgain(t *testing.T) {
	f, err := agents.Parse(strings.NewReader("a comm=zz expect-within-ms=100\n"), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	tr := track.NewTracker(track.TrackerConfig{Capacity: 4, Threshold: int64(5e9)})
	s := New(f, Deps{Log: sink.NewLogger(nil), Tracker: tr, Threshold: 5e9}, 0)
	if d := s.Deadline(); d != 100e6 {
		t.Fatalf("deadline %d, want 100 ms", d)
	}
	s.Tick(100e6)
	s.Tick(200e6)
	if s.missTotal[0] != 1 || !s.exp.Missing(0) {
		t.Fatalf("missing reported %d times, missing now %v; want once, yes", s.missTotal[0], s.exp.Missing(0))
	}
	ob := tr.Observe(vlp.Frame{Pid: 42, Nonce: 1}, track.OriginUDS, 300e6)
	sl := tr.Get(ob.ID)
	s.Match(ob.ID, sl, []byte("zz"), nil, 300e6)
	if s.exp.Missing(0) || s.Name(sl) != "a" {
		t.Fatalf("after it beats: missing %v, agent %q", s.exp.Missing(0), s.Name(sl))
	}
	s.Exited(sl, 400e6)
	if d := s.Deadline(); d != 500e6 {
		t.Errorf("after its exit the deadline is %d, want 500 ms", d)
	}
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
