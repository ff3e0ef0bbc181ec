package statefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// table builds a tracker whose processes are what procs says.
func table(procs map[uint32]uint64) *track.Tracker {
	return track.NewTracker(track.TrackerConfig{Capacity: 8, Threshold: 1e9,
		StartTime: func(pid uint32) (uint64, track.Proc) {
			if st, ok := procs[pid]; ok {
				return st, track.ProcAlive
			}
			return 0, track.ProcGone
		}})
}

// TestSaveReadReplay: what Save writes, Read reads back whole, and Replay
// tracks on the agent still alive as the same process (name, program,
// counts, a raised stall kept raised) and reports the others: gone, and
// another process on the pid.
func TestSaveReadReplay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	procs := map[uint32]uint64{100: 11, 200: 22, 300: 33}
	tr, paths := table(procs), track.NewPaths(8, 1024)
	for i, pid := range []uint32{100, 200, 300} {
		ob := tr.Observe(vlp.Frame{Pid: pid, Nonce: 5, Status: vlp.Degraded, Payload: 7}, track.OriginUDS, int64(i+1)*1e6)
		s := tr.Get(ob.ID)
		s.SetName([]byte("svc\n\"x\""))
		s.Exe = paths.Intern([]byte("/usr/bin/svc two"))
	}
	if ev, ok := tr.PopStall(2e9); !ok || ev.Pid != 100 {
		t.Fatalf("PopStall = %+v %v", ev, ok)
	}
	s := NewSaver(path, "boot-a", 8)
	if err := s.Save(2e9, tr, paths); err != nil {
		t.Fatal(err)
	}
	st, err := Read(path)
	if err != nil || st.BootID != "boot-a" || len(st.Agents) != 3 {
		t.Fatalf("Read = %+v, %v", st, err)
	}
	a := st.Agents[0]
	if a.Pid != 100 || a.Start != 11 || a.Nonce != 5 || a.Status != vlp.Degraded || a.Payload != 7 || !a.Stalled ||
		a.Beats != 1 || a.Stalls != 1 || string(a.Name) != "svc\n\"x\"" || string(a.Exe) != "/usr/bin/svc two" {
		t.Errorf("agent read back: %+v", a)
	}

	// After the restart: 100 alive as itself, 200 gone, 300 someone else's.
	procs2 := map[uint32]uint64{100: 11, 300: 99}
	tr2, paths2 := table(procs2), track.NewPaths(8, 1024)
	var exited []string
	var tracked []uint32
	r := Replay(st, Env{Tracker: tr2, Paths: paths2, Log: sink.NewLogger(nil), Now: 5e9,
		Proc: func(pid uint32) (uint64, track.Proc) {
			if v, ok := procs2[pid]; ok {
				return v, track.ProcAlive
			}
			return 0, track.ProcGone
		},
		Tracked: func(ob *track.Observation, f *vlp.Frame) { tracked = append(tracked, f.Pid) },
		Exited: func(a *Agent, gone bool) {
			exited = append(exited, map[bool]string{true: "gone", false: "taken"}[gone])
		}})
	if r.Tracked != 1 || r.Exited != 2 || len(tracked) != 1 || tracked[0] != 100 || strings.Join(exited, ",") != "gone,taken" {
		t.Fatalf("Replay = %+v, tracked %v, exited %v", r, tracked, exited)
	}
	s2 := tr2.Lookup(100)
	if s2 == nil || !s2.Stalled || string(s2.NameBytes()) != "svc\n\"x\"" || string(paths2.Get(s2.Exe)) != "/usr/bin/svc two" || s2.Stalls != 1 {
		t.Errorf("slot tracked on: %+v", s2)
	}
	if _, ok := tr2.NextDeadline(); ok {
		t.Errorf("a stall raised before the restart is armed again")
	}
}

// TestReadDamaged: every way a file can be broken is ErrDamaged, naming
// the line; a missing file is no error and no state.
func TestReadDamaged(t *testing.T) {
	dir := t.TempDir()
	if st, err := Read(filepath.Join(dir, "none")); st != nil || err != nil {
		t.Errorf("missing file: %v, %v", st, err)
	}
	head := "varta-watch state 1\nboot_id b\nwritten_boottime_ns 5\n"
	good := `agent 100 1 2 ok 3 4 0 5 6 "n" "/e"` + "\n"
	for name, body := range map[string]string{
		"empty":          "",
		"version":        "varta-watch state 2\n",
		"no end":         head + good,
		"cut":            head + good[:20],
		"count":          head + good + "end 2\n",
		"after end":      head + "end 0\nagent\n",
		"bad status":     head + strings.Replace(good, "ok", "stall", 1) + "end 1\n",
		"pid 1":          head + strings.Replace(good, "agent 100", "agent 1", 1) + "end 1\n",
		"unquoted name":  head + strings.Replace(good, `"n"`, "n", 1) + "end 1\n",
		"trailing field": head + strings.TrimSuffix(good, "\n") + " x\nend 1\n",
		"long line":      head + "agent " + strings.Repeat("9", 5000) + "\n",
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_"))
		os.WriteFile(p, []byte(body), 0o600)
		if _, err := Read(p); !errors.Is(err, ErrDamaged) {
			t.Errorf("%s: Read error %v, want ErrDamaged", name, err)
		}
	}
	p := filepath.Join(dir, "good")
	os.WriteFile(p, []byte(head+good+"end 1\n"), 0o600)
	if st, err := Read(p); err != nil || len(st.Agents) != 1 {
		t.Errorf("a good file: %+v, %v", st, err)
	}
}
