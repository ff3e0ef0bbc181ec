package vlp

import (
	"time"

	"golang.org/x/sys/unix"
)

// session is the sender state every transport shares (PROTOCOL.md §3, §4):
// whose session it is, its nonce and its clock. It knows nothing of
// sockets or keys, so the Unix and UDP emitters cannot drift apart.
type session struct {
	start    time.Time // the session clock's origin (monotonic)
	pid      uint32    // the pid the current session belongs to
	nonce    uint64    // last regular nonce sent in this session
	lastTs   uint64    // never let timestamps go backwards
	lastTerm uint64    // timestamp of the last terminal frame
	sentTerm bool
	parent   bool // frames speak for the parent process (DialParent, parent.go)
}

// checkSession reads the pid afresh: a forked child has a new pid and is a
// new session whose nonce restarts at 1. It reports whether a new session
// began, so the caller can refresh whatever else is per session (IV state).
func (s *session) checkSession() bool {
	if s.parent { // the pid is the parent's, fixed by DialParent
		return false
	}
	pid := uint32(unix.Getpid())
	if pid == s.pid {
		return false
	}
	s.pid, s.nonce, s.sentTerm, s.lastTerm = pid, 0, false, 0
	return true
}

// beatFrame returns the next regular frame of the session.
func (s *session) beatFrame(status Status, payload uint32) Frame {
	ts := s.now()
	s.nonce++
	if s.parent && ts > s.nonce { // clock nonces: see DialParent
		s.nonce = ts
	}
	if s.nonce == NonceTerminal { // 2^64-2 is followed by 0 (PROTOCOL.md §4)
		s.nonce = 0
	}
	return Frame{Status: status, Pid: s.pid, Timestamp: ts, Nonce: s.nonce, Payload: payload}
}

// terminalFrame returns a dying-gasp frame whose timestamp is strictly
// greater than any earlier terminal frame's, so the observer accepts a
// repeat. It does not move the regular nonce.
func (s *session) terminalFrame(payload uint32) Frame {
	ts := s.now()
	if s.sentTerm && ts <= s.lastTerm {
		ts = s.lastTerm + 1
	}
	s.sentTerm, s.lastTerm = true, ts
	return Frame{Status: Critical, Pid: s.pid, Timestamp: ts, Nonce: NonceTerminal, Payload: payload}
}

// now is the session clock: monotonic ns since Dial (CLOCK_MONOTONIC
// itself for a parent session), never decreasing and never the reserved
// maximum.
func (s *session) now() uint64 {
	ts := uint64(time.Since(s.start))
	if s.parent {
		ts = monotonicNow()
	}
	if ts < s.lastTs {
		ts = s.lastTs
	}
	if ts == TimestampMax {
		ts--
	}
	s.lastTs = ts
	return ts
}
