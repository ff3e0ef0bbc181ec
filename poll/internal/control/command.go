package control

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
)

// The request kinds, counted apart.
const (
	reqStatus = iota
	reqPause
	reqResume
	reqBad
	numReqs
)

var reqLabels = [numReqs]string{"status", "pause", "resume", "bad"}

// handle answers a request line: a status response is set up to stream,
// anything else is answered in c.out at once.
func (s *Server) handle(c *conn, line []byte, now int64) {
	verb, arg, _ := bytes.Cut(line, []byte{' '})
	switch {
	case string(line) == "status":
		s.c.Requests[reqStatus]++
		c.resp = respText
		s.snap = s.cfg.Tracker.AppendSortedPids(s.snap[:0])
	case string(line) == "status json":
		s.c.Requests[reqStatus]++
		c.resp = respJSON
		s.snap = s.cfg.Tracker.AppendSortedPids(s.snap[:0])
	case string(verb) == "pause" && len(arg) > 0:
		s.c.Requests[reqPause]++
		c.out = append(c.out, s.pause(string(arg), true, now)...)
	case string(verb) == "resume" && len(arg) > 0:
		s.c.Requests[reqResume]++
		c.out = append(c.out, s.pause(string(arg), false, now)...)
	default:
		s.c.Requests[reqBad]++
		c.out = append(c.out, "error: unknown request "+strconv.Quote(string(line))+
			"; want status, status json, pause NAME|PID or resume NAME|PID\n"...)
	}
}

// pause holds (on) or releases the recovery of the agents target names:
// a pid (all digits) or a process name as status shows it, every agent
// of that name. It returns the reply line: "ok: ..." or "error: ...".
//
// Pausing is monit's unmonitor for one agent: its beats, stalls, events
// and status go on as usual, but a stall's recovery is held (counted
// skipped_paused, audited refused with reason paused, logged). Resuming
// is monit's monitor: watching resumes as things are now, so an agent
// still stalled whose recovery was held, and whose process is still the
// one that stalled, gets that recovery at once. One whose process has
// gone meanwhile (stopped for the maintenance) does not: its successor,
// if any, is a new agent and beats for itself.
func (s *Server) pause(target string, on bool, now int64) string {
	tr := s.cfg.Tracker
	var matched, changed, released int
	var first uint32
	apply := func(sl *track.Slot) {
		matched++
		if first == 0 {
			first = sl.Pid
		}
		if sl.Paused == on {
			return
		}
		sl.Paused = on
		changed++
		if !on && s.release(sl, now) {
			released++
		}
	}
	if pid, err := strconv.ParseUint(target, 10, 32); err == nil {
		if sl := tr.Lookup(uint32(pid)); sl != nil {
			apply(sl)
		}
	} else if len(target) > track.NameMax {
		return "error: " + strconv.Quote(target) + " is neither a pid nor a process name (at most " +
			itoa(track.NameMax) + " bytes, as status shows it)\n"
	} else {
		name := []byte(target)
		tr.Each(func(sl *track.Slot) {
			if bytes.Equal(sl.NameBytes(), name) {
				apply(sl)
			}
		})
	}
	verb := "paused"
	if !on {
		verb = "resumed"
	}
	if matched == 0 {
		return "error: no tracked agent is " + strconv.Quote(target) + " (a pid, or a name as varta-watch status shows it)\n"
	}
	if on {
		s.c.Paused += uint64(changed)
	} else {
		s.c.Resumed += uint64(changed)
		s.c.Released += uint64(released)
	}
	fs := []sink.Field{sink.Str("agent", target), sink.Num("matched", int64(matched)), sink.Num("changed", int64(changed))}
	if matched == 1 {
		fs = append(fs, sink.Num("pid", int64(first)))
	}
	if !on {
		fs = append(fs, sink.Num("recovery_released", int64(released)))
	}
	s.cfg.Log.Info("recovery "+verb+" through the control socket", fs...)
	reply := "ok: " + verb + " " + itoa(uint64(changed)) + " of " + itoa(uint64(matched)) + " agents matching " + strconv.Quote(target)
	if changed < matched {
		reply += " (the others were " + verb + " already)"
	}
	if released > 0 {
		reply += "; " + itoa(uint64(released)) + " still stalled, recovery run now"
	}
	return reply + "\n"
}

// release runs the recovery a pause held, for an agent still stalled
// whose process is still the one that stalled (see pause).
func (s *Server) release(sl *track.Slot, now int64) bool {
	rec := s.cfg.Rec
	if rec == nil || !sl.Stalled || sl.LastOutcome != uint8(recovery.OutcomeSkippedPaused)+1 {
		return false
	}
	if sl.Origin == track.OriginUDS {
		if st, ok := listen.ProcStartTime(sl.Pid); !ok || st != sl.StartTime {
			return false
		}
	}
	eligible := s.cfg.Eligible != nil && s.cfg.Eligible(sl.Origin)
	rec.OnStall(int32(sl.Pid), sl.StartTime, eligible, now)
	return true
}

// Hook connects recovery to the server: Held (pause), OnOutcome (the
// per-agent counts status shows) and, with DryRun, OnDryRun (the log
// line). Call it before recovery.New; the hooks work from Listen on.
func (s *Server) Hook(rc *recovery.Config) {
	rc.Held, rc.OnOutcome = s.held, s.outcome
	if rc.DryRun {
		rc.OnDryRun = s.dryRun
	}
}

// slot is the tracked slot of pid, or the one --on-exit recover removed
// just before handing its exit to recovery.
func (s *Server) lookup(pid int32) *track.Slot {
	if !s.ready || pid <= 0 {
		return nil
	}
	if sl := s.cfg.Tracker.Lookup(uint32(pid)); sl != nil {
		return sl
	}
	if x := s.cfg.Exited; x != nil && x.Pid == uint32(pid) {
		return x
	}
	return nil
}

func (s *Server) held(pid int32) bool {
	sl := s.lookup(pid)
	return sl != nil && sl.Paused
}

func (s *Server) outcome(pid int32, o recovery.Outcome) {
	sl := s.lookup(pid)
	if sl == nil {
		return
	}
	switch o {
	case recovery.OutcomeSpawned:
		sl.Recoveries++
	case recovery.OutcomeSkippedPaused:
		sl.Held++
		s.cfg.Log.Warn("agent stalled while its recovery is paused; recovery held", sink.Num("pid", int64(pid)),
			sink.Bytes("name", sl.NameBytes()))
	}
	sl.LastOutcome = uint8(o) + 1
}

func (s *Server) dryRun(pid int32, argv []string) {
	fs := []sink.Field{sink.Num("pid", int64(pid)), sink.Str("argv", strings.Join(argv, " "))}
	if sl := s.lookup(pid); sl != nil {
		fs = append(fs, sink.Bytes("name", sl.NameBytes()))
	}
	s.cfg.Log.Warn("would run the recovery command (--recovery-dry-run: nothing run)", fs...)
}

// RenderMetrics appends the control socket's and pause's families; none
// before Listen.
func (s *Server) RenderMetrics(e *promtext.Encoder) {
	if !s.ready {
		return
	}
	paused := 0
	s.cfg.Tracker.Each(func(sl *track.Slot) {
		if sl.Paused {
			paused++
		}
	})
	e.Family("varta_recovery_paused_agents", "Tracked agents whose recovery is paused now (varta-watch pause).", promtext.TypeGauge)
	e.Uint(uint64(paused))
	e.Family("varta_recovery_pause_changes_total", "Agents paused and resumed through the control socket, by action.", promtext.TypeCounter)
	e.Label("action", "pause")
	e.Uint(s.c.Paused)
	e.Label("action", "resume")
	e.Uint(s.c.Resumed)
	e.Family("varta_recovery_released_total", "Held recoveries run at resume because the agent was still stalled.", promtext.TypeCounter)
	e.Uint(s.c.Released)
	e.Family("varta_control_requests_total", "Control socket requests served, by request.", promtext.TypeCounter)
	for i, l := range reqLabels {
		e.Label("request", l)
		e.Uint(s.c.Requests[i])
	}
	e.Family("varta_control_connections_refused_total", "Control socket connections refused, by reason: busy (every slot taken), uid (neither the observer's uid nor root), deadline (cut off at the 5 s deadline), no_fds (not accepted for want of a descriptor or memory).", promtext.TypeCounter)
	e.Label("reason", "busy")
	e.Uint(s.c.Busy)
	e.Label("reason", "uid")
	e.Uint(s.c.Denied)
	e.Label("reason", "deadline")
	e.Uint(s.c.Expired)
	e.Label("reason", "no_fds")
	e.Uint(s.c.NoFds)
}
