package statefile

import (
	"slices"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// Env is what replaying a file needs from the observer.
type Env struct {
	Tracker *track.Tracker
	Paths   *track.Paths
	Events  *sink.EventFile // may be nil
	Log     *sink.Logger
	Now     int64 // the observer's clock now
	// Proc reads a pid's process start time now, as the tracker does.
	Proc func(pid uint32) (uint64, track.Proc)
	// Tracked is called for each agent tracked on, with the observation
	// that put it in the table and the frame that stood for its last one.
	Tracked func(ob *track.Observation, f *vlp.Frame)
	// Exited is called for each agent that died while the observer was
	// stopped, after its exit event and log line: gone says no process
	// has its pid now (else another process took the pid).
	Exited func(a *Agent, gone bool)
}

// Result counts what Replay did.
type Result struct {
	Tracked, Exited, Unplaced int
}

// Open starts --state-file at path: it reads the boot id, and the file
// when it is of this boot. A file that cannot be read back, or is another
// boot's, is said in the log and ignored, never fatal: the observer starts
// afresh and writes a new one. The Saver is nil when the boot id cannot be
// read (no /proc): there is then no way to tell a file of this boot.
func Open(path string, capacity int, log *sink.Logger) (*Saver, *File) {
	bootID, err := BootID()
	if err != nil {
		log.Warn("--state-file is off: this boot's id cannot be read", sink.Str("file", path), sink.Err(err))
		return nil, nil
	}
	s := NewSaver(path, bootID, capacity)
	st, err := Read(path)
	switch {
	case err != nil:
		log.Warn("state file ignored", sink.Err(err))
		return s, nil
	case st == nil:
		return s, nil
	case st.BootID != bootID:
		log.Info("state file is from another boot: its agents are not this boot's processes; dropped",
			sink.Str("file", path), sink.Str("boot_id", st.BootID))
		return s, nil
	}
	return s, st
}

// Replay tracks on the agents of st that are still alive as the same
// process, and reports those that are not. It runs once, at start, before
// any frame is read.
//
// An agent's silence resumes where it was: its last beat is placed as long
// before its deadline as when the file was written. The time the observer
// was stopped is not counted against the agent, whose beats had nowhere to
// go then; so an agent that hung just before the observer stopped is
// stalled soon after it starts again, and one that kept beating has a
// whole interval to reach the new observer.
func Replay(st *File, env Env) Result {
	var r Result
	nowBoot := boottime()
	down := max(nowBoot-st.Written, 0)
	agents := slices.Clone(st.Agents)
	slices.SortStableFunc(agents, func(a, b Agent) int { return int(min(max(a.LastBoot-b.LastBoot, -1), 1)) })
	for i := range agents {
		a := &agents[i]
		start, proc := env.Proc(a.Pid)
		if proc == track.ProcGone || proc == track.ProcAlive && start != a.Start {
			r.Exited++
			gone := proc == track.ProcGone
			env.Events.Exit(env.Now, a.Pid, a.Nonce, a.Status, a.Payload)
			how := "no process has its pid now"
			if !gone {
				how = "another process has its pid now"
			}
			env.Log.Warn("agent exited while the observer was stopped", sink.Num("pid", int64(a.Pid)),
				sink.Bytes("name", a.Name), sink.Str("how", how),
				sink.Num("silent_ms", max(nowBoot-a.LastBoot, 0)/1e6))
			env.Exited(a, gone)
			continue
		}
		// Alive as the same process, or unknown (the tracker's later checks
		// judge it then): placed at its remembered last beat, shifted by
		// the time the observer was stopped, never in the future.
		at := min(env.Now-(nowBoot-(a.LastBoot+down)), env.Now)
		f := vlp.Frame{Pid: a.Pid, Nonce: a.Nonce, Status: a.Status, Payload: a.Payload}
		ob := env.Tracker.Observe(f, track.OriginUDS, at)
		if !ob.Verdict.Accepted() || ob.ID == track.NoSlot {
			r.Unplaced++
			continue
		}
		s := env.Tracker.Get(ob.ID)
		s.Beats, s.Stalls = a.Beats, a.Stalls
		s.SetName(a.Name)
		if len(a.Exe) > 0 {
			s.Exe = env.Paths.Intern(a.Exe)
		}
		if a.Stalled {
			env.Tracker.Latch(ob.ID) // its stall went to recovery before; not again
		}
		r.Tracked++
		env.Tracked(&ob, &f)
	}
	env.Log.Info("state file read back", sink.Num("tracked_on", int64(r.Tracked)), sink.Num("exited", int64(r.Exited)),
		sink.Num("not_placed", int64(r.Unplaced)))
	return r
}
