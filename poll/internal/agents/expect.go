package agents

// Expect follows the declared agents that must be beating within a time
// (expect-within-ms): from the observer's start, and again from each exit
// of the agent's process. One that is not beating by then is missing. It
// is pure: the caller passes the time in and acts on what PopMissing says.
type Expect struct {
	f     *File
	state []expectState
	next  int64 // the earliest due time, or noDeadline
}

type expectState struct {
	due     int64 // when it must be beating by; 0: nothing expected now
	present bool  // a session of it is tracked
	missing bool  // reported missing since it was last present
}

const noDeadline = int64(1<<63 - 1)

// NewExpect starts the clocks of f's agents at now.
func NewExpect(f *File, now int64) *Expect {
	e := &Expect{f: f, state: make([]expectState, len(f.Agents))}
	for i := range e.state {
		e.arm(i, now)
	}
	e.recompute()
	return e
}

func (e *Expect) arm(i int, now int64) {
	if ms := e.f.Agents[i].ExpectWithinMs; ms > 0 {
		e.state[i].due = now + ms*1e6
	} else {
		e.state[i].due = 0
	}
}

func (e *Expect) recompute() {
	e.next = noDeadline
	for i := range e.state {
		if s := &e.state[i]; s.due > 0 && !s.present && !s.missing && s.due < e.next {
			e.next = s.due
		}
	}
}

// Present records that declared agent i is being tracked; it reports
// whether the agent had been reported missing (and is no longer).
func (e *Expect) Present(i int) (wasMissing bool) {
	if e == nil || i < 0 || i >= len(e.state) {
		return false
	}
	s := &e.state[i]
	wasMissing = s.missing
	s.present, s.missing, s.due = true, false, 0
	e.recompute()
	return wasMissing
}

// Exited records that declared agent i's process is gone at now: its clock
// starts again.
func (e *Expect) Exited(i int, now int64) {
	if e == nil || i < 0 || i >= len(e.state) {
		return
	}
	e.state[i].present = false
	e.arm(i, now)
	e.recompute()
}

// Tracked reports whether declared agent i is recorded as tracked
// (Present and not Exited since).
func (e *Expect) Tracked(i int) bool {
	return e != nil && i >= 0 && i < len(e.state) && e.state[i].present
}

// Missing reports whether declared agent i is missing now.
func (e *Expect) Missing(i int) bool {
	return e != nil && i >= 0 && i < len(e.state) && e.state[i].missing
}

// Next is the earliest time an agent becomes missing, for the loop's
// sleep; false when none is expected.
func (e *Expect) Next() (int64, bool) {
	if e == nil || e.next == noDeadline {
		return 0, false
	}
	return e.next, true
}

// PopMissing returns an agent that is missing at now and marks it so; call
// it until false. Each absence is reported once.
func (e *Expect) PopMissing(now int64) (int, bool) {
	if e == nil || now < e.next {
		return -1, false
	}
	for i := range e.state {
		if s := &e.state[i]; s.due > 0 && s.due <= now && !s.present && !s.missing {
			s.missing = true
			e.recompute()
			return i, true
		}
	}
	e.recompute()
	return -1, false
}

// Reload moves to file f (a SIGHUP): an agent kept by name keeps its
// state; a new one's clock starts at now.
func (e *Expect) Reload(f *File, now int64) *Expect {
	n := &Expect{f: f, state: make([]expectState, len(f.Agents))}
	for i := range f.Agents {
		j := -1
		if e != nil {
			j = e.f.Index(f.Agents[i].Name)
		}
		if j >= 0 {
			n.state[i] = e.state[j]
			if f.Agents[i].ExpectWithinMs == 0 {
				n.state[i].due = 0
			} else if n.state[i].due == 0 && !n.state[i].present {
				n.arm(i, now)
			}
			continue
		}
		n.arm(i, now)
	}
	n.recompute()
	return n
}
