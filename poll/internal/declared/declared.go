package declared

import (
	"bytes"
	"errors"
	"strconv"

	"github.com/varta-go/varta/poll/internal/agents"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
)

// MaxExposition bounds the bytes Render adds to /metrics: four families
// of at most agents.MaxAgents rows (a 32-byte name, a 20-digit value),
// the reload and missing-recovery counters, and their HELP and TYPE lines.
const MaxExposition = agents.MaxAgents*4*(48+agents.MaxName+24) + 4096

// The results of a missing agent's recovery command, labels of
// varta_declared_missing_recoveries_total.
const (
	missStarted = iota
	missBusy
	missFailed
	missNoCommand
	missDryRun
	numMiss
)

var missLabels = [numMiss]string{"started", "busy", "start_failed", "no_command", "dry_run"}

// Deps is what the Set works with, all owned by the loop.
type Deps struct {
	Log       *sink.Logger
	Events    *sink.EventFile // nil without --export-file
	Tracker   *track.Tracker
	Paths     *track.Paths // the program paths the slots' Exe ids name
	Threshold int64        // --threshold-ms, ns: a declared agent without threshold-ms=
	Ladder    bool         // the escalation ladder is on (--escalate-after)
}

// Set is the declared agents in force; nil (no --agents-file) is a valid
// Set that declares nothing.
type Set struct {
	d   Deps
	f   *agents.File
	exp *agents.Expect
	// Rec runs the agents' recovery commands; nil when recovery is off
	// (no --recovery-exec and no recovery-exec= in the file at start).
	Rec *recovery.Manager

	missTotal []uint64 // per agent: times reported missing
	tracked   []uint32 // per agent: scratch for Render
	missRec   [numMiss]uint64
	reloads   [2]uint64 // ok, failed

	// Scratch for matching, fixed: never grown per session.
	cmdline [4096]byte
	args    [64][]byte
	cgroup  [512]byte
}

// New takes f (nil: no file) into force at now, the observer's start.
func New(f *agents.File, d Deps, now int64) *Set {
	if f == nil {
		return nil
	}
	s := &Set{d: d}
	s.take(f, agents.NewExpect(f, now))
	return s
}

func (s *Set) take(f *agents.File, exp *agents.Expect) {
	old, oldTotal := s.f, s.missTotal
	s.f, s.exp = f, exp
	s.missTotal, s.tracked = make([]uint64, len(f.Agents)), make([]uint32, len(f.Agents))
	for i := range f.Agents {
		a := &f.Agents[i]
		if j := old.Index(a.Name); j >= 0 {
			s.missTotal[i] = oldTotal[j] // a counter carries on across a reload
		}
		if a.WeakOnly() {
			s.d.Log.Warn("declared agent matched by its process name only: any process can take that name; "+
				"add exe= (and arg= or cgroup=)", sink.Str("file", f.Path), sink.Num("line", int64(a.Line)), sink.Str("agent", a.Name))
		}
		if a.EscalateAfter > 0 && !s.d.Ladder {
			s.d.Log.Warn("escalate-after= has no effect without --escalate-after (which says what an escalation does)",
				sink.Str("file", f.Path), sink.Num("line", int64(a.Line)), sink.Str("agent", a.Name))
		}
	}
}

// SetRecovery gives the Set the recovery manager the observer made after
// it (nil-safe on both sides).
func (s *Set) SetRecovery(m *recovery.Manager) {
	if s != nil {
		s.Rec = m
	}
}

// Len is the number of declared agents.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.f.Agents)
}

// Missing is agent i's name and whether it is missing now (the control
// socket's status rows).
func (s *Set) Missing(i int) (string, bool) {
	if s == nil || i < 0 || i >= len(s.f.Agents) {
		return "", false
	}
	return s.f.Agents[i].Name, s.exp.Missing(i)
}

// Match ties the new kernel-attested session in slot id to its declared
// agent, if any, from the comm and program path the caller read: it
// records the name in the slot, applies the agent's own threshold, and
// reports an agent that was missing as present again. Allocation-free.
func (s *Set) Match(id track.SlotID, sl *track.Slot, comm, exe []byte, now int64) {
	if s == nil {
		return
	}
	i := s.match(sl, comm, exe)
	if i < 0 {
		return
	}
	a := &s.f.Agents[i]
	sl.Declared = uint16(i + 1)
	if a.ThresholdMs > 0 {
		s.threshold(id, sl, a.ThresholdMs*1e6)
	}
	if s.exp.Present(i) {
		s.d.Log.Info("declared agent is no longer missing", sink.Str("agent", a.Name), sink.Num("pid", int64(sl.Pid)))
	}
}

// match returns the declared agent sl's process is, or -1.
func (s *Set) match(sl *track.Slot, comm, exe []byte) int {
	p := agents.Process{Exe: exe, Comm: comm}
	if s.f.NeedArgs {
		if n, ok := listen.ProcCmdline(sl.Pid, s.cmdline[:]); ok {
			p.Args = splitArgs(s.cmdline[:n], s.args[:0])
		}
	}
	if s.f.NeedCgroup {
		p.Cgroup, _ = listen.ProcCgroup(sl.Pid, s.cgroup[:])
	}
	return s.f.Match(&p)
}

// splitArgs cuts a NUL-separated command line into its arguments after
// the program, into dst's room (arguments beyond it are not looked at).
func splitArgs(b []byte, dst [][]byte) [][]byte {
	first := true
	for len(b) > 0 && len(dst) < cap(dst) {
		arg := b
		if i := bytes.IndexByte(b, 0); i >= 0 {
			arg, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if !first {
			dst = append(dst, arg)
		}
		first = false
	}
	return dst
}

func (s *Set) threshold(id track.SlotID, sl *track.Slot, thr int64) {
	if s.d.Tracker.SetThreshold(id, thr) == track.FitRounded {
		s.d.Log.Warn("a declared agent's threshold-ms did not get a class of its own (too many distinct thresholds); "+
			"it stalls at the nearest threshold below it", sink.Str("agent", s.Name(sl)), sink.Num("pid", int64(sl.Pid)),
			sink.Num("threshold_ms", thr/1e6), sink.Num("used_ms", s.d.Tracker.SlotThreshold(id)/1e6))
	}
}

// index is the declared agent matched to sl's session, as an index into
// the file in force; -1 for none.
func (s *Set) index(sl *track.Slot) int {
	if s == nil {
		return -1
	}
	return indexIn(s.f, sl)
}

// indexIn is sl's declared agent as an index into f's agents (Slot.Declared
// less one), -1 for none or one f does not have.
func indexIn(f *agents.File, sl *track.Slot) int {
	if sl == nil || sl.Declared == 0 || int(sl.Declared) > len(f.Agents) {
		return -1
	}
	return int(sl.Declared) - 1
}

// Name is the declared name of sl's agent, "" when it is no declared
// agent's.
func (s *Set) Name(sl *track.Slot) string {
	if i := s.index(sl); i >= 0 {
		return s.f.Agents[i].Name
	}
	return ""
}

// Exited restarts the expect-within-ms clock of the declared agent whose
// tracked process exited (the exit watch reported it).
func (s *Set) Exited(sl *track.Slot, now int64) {
	if i := s.index(sl); i >= 0 && !s.stillTracked(sl) {
		s.exp.Exited(i, now)
	}
}

// stillTracked reports whether another tracked session than sl's belongs
// to sl's declared agent: then the agent is still there.
func (s *Set) stillTracked(sl *track.Slot) bool {
	found := false
	s.d.Tracker.Each(func(o *track.Slot) {
		if o != sl && o.Declared == sl.Declared && o.Pid != sl.Pid {
			found = true
		}
	})
	return found
}

// Deadline is when an agent becomes missing next, for the loop's sleep.
func (s *Set) Deadline() int64 {
	if s == nil {
		return 1<<63 - 1
	}
	if t, ok := s.exp.Next(); ok {
		return t
	}
	return 1<<63 - 1
}

// Tick reports every agent missing at now: one event line, one log line,
// the gauge, and its recovery command, once per absence.
func (s *Set) Tick(now int64) {
	if s == nil {
		return
	}
	for {
		i, ok := s.exp.PopMissing(now)
		if !ok {
			return
		}
		a := &s.f.Agents[i]
		s.missTotal[i]++
		s.d.Events.Missing(now, a.Name)
		s.d.Log.Warn("declared agent missing: not beating within its expect-within-ms", sink.Str("agent", a.Name),
			sink.Num("expect_within_ms", a.ExpectWithinMs), sink.Str("file", s.f.Path), sink.Num("line", int64(a.Line)))
		s.recoverMissing(a, now)
	}
}

// recoverMissing runs the agent's command (its own, else the global one)
// with {pid} 0, VARTA_AGENT_MISSING=1 and its declared name.
func (s *Set) recoverMissing(a *agents.Agent, now int64) {
	if s.Rec == nil || a.Recovery == nil && s.Rec.Command() == nil {
		s.missRec[missNoCommand]++
		return
	}
	env := []string{"VARTA_AGENT_PID=0", "VARTA_AGENT_MISSING=1", "VARTA_AGENT_NAME=" + a.Name, "VARTA_AGENT_DECLARED=" + a.Name}
	err := s.Rec.RunMissing(a.Recovery, env, now)
	switch {
	case err == nil:
		s.missRec[missStarted]++
	case errors.Is(err, recovery.ErrMissingDryRun):
		s.missRec[missDryRun]++
	case errors.Is(err, recovery.ErrMissingBusy), errors.Is(err, recovery.ErrMissingClosed):
		s.missRec[missBusy]++
		s.d.Log.Warn("a missing agent's recovery command was not run", sink.Str("agent", a.Name), sink.Err(err))
	default:
		s.missRec[missFailed]++
		s.d.Log.Warn("a missing agent's recovery command could not be started", sink.Str("agent", a.Name), sink.Err(err))
	}
}

// CommandFor is the recovery command of the agent in slot sl: its own
// recovery-exec=, or nil for the global one.
func (s *Set) CommandFor(sl *track.Slot) *recovery.Command {
	if i := s.index(sl); i >= 0 {
		return s.f.Agents[i].Recovery
	}
	return nil
}

// Escalation is the escalation ladder's view of slot sl: its declared
// name and own escalate-after= (0: the flag's); ok false when sl is not a
// declared agent's.
func (s *Set) Escalation(sl *track.Slot) (name string, after int, ok bool) {
	if i := s.index(sl); i >= 0 {
		return s.f.Agents[i].Name, s.f.Agents[i].EscalateAfter, true
	}
	return "", 0, false
}

// Reload reads the file again (SIGHUP). A bad file keeps the one in force
// and says why (file and line); a good one takes over: tracked sessions
// keep their declared agent by name (with its threshold now) or lose it,
// and each agent's missing state carries over by name.
func (s *Set) Reload(now int64) {
	if s == nil {
		return
	}
	f, err := agents.Load(s.f.Path)
	if err != nil {
		s.reloads[1]++
		s.d.Log.Error("reloading the agents file failed; the agents declared before stay in force", sink.Err(err))
		return
	}
	s.reloads[0]++
	old := s.f
	s.take(f, s.exp.Reload(f, now))
	// Every kernel-attested session is matched again against the new
	// file, from the name and program path read when it began.
	tr := s.d.Tracker
	clear(s.tracked)
	tr.Each(func(sl *track.Slot) {
		if sl.Origin != track.OriginUDS {
			return
		}
		id := tr.ID(sl.Pid)
		var was int64
		if j := indexIn(old, sl); j >= 0 {
			was = old.Agents[j].ThresholdMs
		}
		sl.Declared = 0
		i := s.match(sl, sl.NameBytes(), s.d.Paths.Get(sl.Exe))
		var thr int64
		if i >= 0 {
			sl.Declared, thr = uint16(i+1), f.Agents[i].ThresholdMs
			s.tracked[i]++
			s.exp.Present(i)
		}
		switch {
		case thr > 0 && thr != was:
			s.threshold(id, sl, thr*1e6)
		case thr == 0 && was > 0:
			s.threshold(id, sl, s.d.Threshold)
		}
	})
	for i := range f.Agents {
		if s.tracked[i] == 0 && s.exp.Tracked(i) {
			s.exp.Exited(i, now) // its process matches no longer: its clock starts now
		}
	}
	for i := range f.Agents {
		if f.Agents[i].Recovery != nil && s.Rec == nil {
			s.d.Log.Warn("recovery-exec= cannot run: recovery was off when the observer started (no --recovery-exec and no "+
				"recovery-exec= in the agents file); restart the observer", sink.Str("agent", f.Agents[i].Name))
		}
	}
	s.d.Log.Info("reloaded the agents file", sink.Str("file", f.Path), sink.Num("agents", int64(len(f.Agents))))
}

// Render writes the varta_declared_* families (none without a file).
func (s *Set) Render(e *promtext.Encoder) {
	if s == nil {
		return
	}
	clear(s.tracked)
	s.d.Tracker.Each(func(sl *track.Slot) {
		if i := s.index(sl); i >= 0 {
			s.tracked[i]++
		}
	})
	ag := s.f.Agents
	e.Family("varta_declared_agent_tracked", "Tracked sessions matched to this declared agent (--agents-file).", promtext.TypeGauge)
	for i := range ag {
		e.Label("name", ag[i].Name)
		e.Uint(uint64(s.tracked[i]))
	}
	e.Family("varta_declared_agent_missing", "1 while this declared agent is missing: not beating within its expect-within-ms.", promtext.TypeGauge)
	for i := range ag {
		e.Label("name", ag[i].Name)
		if s.exp.Missing(i) {
			e.Uint(1)
		} else {
			e.Uint(0)
		}
	}
	e.Family("varta_declared_agent_missing_total", "Times this declared agent was reported missing.", promtext.TypeCounter)
	for i := range ag {
		e.Label("name", ag[i].Name)
		e.Uint(s.missTotal[i])
	}
	e.Family("varta_declared_agent_threshold_seconds", "This declared agent's silence before a stall (its threshold-ms, else --threshold-ms).", promtext.TypeGauge)
	for i := range ag {
		e.Label("name", ag[i].Name)
		thr := s.d.Threshold
		if ag[i].ThresholdMs > 0 {
			thr = ag[i].ThresholdMs * 1e6
		}
		e.Float(float64(thr) / 1e9)
	}
	e.Family("varta_declared_missing_recoveries_total", "Recovery commands for missing declared agents, by result.", promtext.TypeCounter)
	for k, l := range missLabels {
		e.Label("result", l)
		e.Uint(s.missRec[k])
	}
	e.Family("varta_declared_reloads_total", "Reloads of the agents file at SIGHUP, by result (failed: the old file stays).", promtext.TypeCounter)
	e.Label("result", "ok")
	e.Uint(s.reloads[0])
	e.Label("result", "failed")
	e.Uint(s.reloads[1])
}

// String names the file, for the start-up log line.
func (s *Set) String() string {
	if s == nil {
		return "-"
	}
	return s.f.Path + " (" + strconv.Itoa(len(s.f.Agents)) + " agents)"
}
