package reuse

import (
	"math"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/track"
)

const (
	// TickNs is one clock tick of /proc/PID/stat's start time. USER_HZ is
	// part of the kernel's ABI, 100 on every architecture Go supports on
	// Linux, whatever HZ the kernel was built with.
	TickNs = 10_000_000

	// slackNs widens every comparison beyond the error measured when the
	// two clocks were sampled: the kernel takes the stamp and the start
	// time from one timekeeper, so this is margin, not a known error.
	slackNs = 1_000_000

	// stepNs is how far the offset between the clocks may move between
	// two samples before it counts as a step of the wall clock. Both
	// clocks advance at one rate (NTP slews them together, a suspend
	// adds the same time to both), so only a step moves it at all.
	stepNs = 1_000_000

	// maxSpread is the widest pair of wall-clock reads around a boottime
	// read that is kept without trying again (a thread preempted between
	// them); sampleTries bounds the tries, the narrowest pair winning.
	maxSpread   = 200_000
	sampleTries = 4
)

// Verdict is what a frame's queue time says about its sender.
type Verdict uint8

const (
	// After: queued after the pid's current process started, so sent by it.
	After Verdict = iota
	// Recycled: queued before it started: sent by a predecessor, now dead.
	Recycled
	// Unverifiable: too close to the start to tell, or the clocks cannot
	// be trusted for this frame (a step of the wall clock, no stamp).
	Unverifiable
)

// Judge decides from a frame's queue time (CLOCK_BOOTTIME ns, converted
// with an error of at most errNs) and the start of the pid's current
// process (clock ticks, as /proc shows it: the start falls somewhere in
// [ticks, ticks+1) × TickNs). nowBoot is the boottime at which the
// conversion was sampled, after the frame was queued: a frame that seems
// queued later than that was converted across an unseen clock step.
func Judge(queuedBoot, errNs, nowBoot int64, startTicks uint64) Verdict {
	if startTicks >= math.MaxInt64/TickNs-1 || errNs < 0 || errNs > math.MaxInt64/4 {
		return Unverifiable
	}
	start, m := int64(startTicks)*TickNs, errNs+slackNs
	switch {
	case queuedBoot > nowBoot+m:
		return Unverifiable
	case queuedBoot+m < start:
		return Recycled
	case queuedBoot-m >= start+TickNs:
		return After
	}
	return Unverifiable
}

// offset is CLOCK_REALTIME − CLOCK_BOOTTIME at one sample, what turns a
// receive stamp into the clock of start times, and its error bound.
type offset struct {
	off, err int64
	boot     int64 // CLOCK_BOOTTIME at the sample
}

// pending is a start time Check read for a frame that opens a session,
// handed to the tracker's StartTime call for the same pid.
type pending struct {
	pid   uint32
	start uint64
	proc  track.Proc
	ok    bool
}

// Guard judges Unix-socket frames before the tracker sees them.
type Guard struct {
	start   func(uint32) (uint64, track.Proc)
	gettime func(clockid int32, ts *unix.Timespec) error
	ts      unix.Timespec // reused so the syscall's argument never escapes

	cur, prev  offset // the latest sample; the last one before a step
	sampleOK   bool   // cur is usable
	sampleCall uint64 // the receive call whose batch cur was sampled for
	stepOpen   bool   // frames queued before a seen step may still be unread
	stepCall   uint64 // the receive call whose batch saw the step
	steps      uint64
	pend       pending

	recycled, unverifiable uint64
}

// New returns a Guard reading start times with start (the observer's
// /proc reader). Call it before the socket exists: its first sample of
// the clocks then predates every frame, so a step before the first frame
// is read is seen too.
func New(start func(uint32) (uint64, track.Proc)) *Guard {
	return newGuard(start, clockGettime)
}

// clockGettime reads the wall clock through the runtime's vDSO call (no
// system call), other clocks with clock_gettime(2): the two wall-clock
// reads of a sample then cost little and bracket the boottime read
// tightly.
func clockGettime(id int32, ts *unix.Timespec) error {
	if id == unix.CLOCK_REALTIME {
		*ts = unix.NsecToTimespec(time.Now().UnixNano())
		return nil
	}
	return unix.ClockGettime(id, ts)
}

func newGuard(start func(uint32) (uint64, track.Proc), gettime func(int32, *unix.Timespec) error) *Guard {
	g := &Guard{start: start, gettime: gettime}
	g.cur, g.sampleOK = g.read()
	return g
}

// Recycled counts frames dropped because they were queued before the
// pid's current process started (varta_tracker_pid_recycle_total); 0 for
// a nil Guard, so the metrics render for an observer without a socket.
func (g *Guard) Recycled() uint64 {
	if g == nil {
		return 0
	}
	return g.recycled
}

// Unverifiable counts frames whose sender could not be told from the
// pid's current process (varta_tracker_pid_unverifiable_total); 0 for a
// nil Guard.
func (g *Guard) Unverifiable() uint64 {
	if g == nil {
		return 0
	}
	return g.unverifiable
}

// Steps counts wall-clock steps seen between two samples.
func (g *Guard) Steps() uint64 { return g.steps }

// StartTime is the tracker's start-time reader (track.TrackerConfig): the
// start time Check just read for the frame being observed, else /proc.
// A session Check found unverifiable gets ProcUnknown: the tracker then
// raises its stalls as unverifiable, which recovery never acts on.
//
// Only a frame that opens a session leaves a start time pending, and the
// tracker reads it in the same Observe; if Observe refuses the frame
// first (rate or capacity), the pid is not tracked from this socket, so
// no stall asks for it before the next Check clears it.
func (g *Guard) StartTime(pid uint32) (uint64, track.Proc) {
	if g.pend.ok && g.pend.pid == pid {
		g.pend.ok = false
		return g.pend.start, g.pend.proc
	}
	return g.start(pid)
}

// Dropped-frame messages for the log.
const (
	msgRecycled     = "dropped a frame queued before its pid's current process started: its sender exited and the pid was reused"
	msgUnverifiable = "dropped a frame that cannot be told from its pid's current process (queued within a clock tick of its start, or across a wall-clock step)"
)

// Check judges message i of rx's batch, a kernel-attested frame to be
// tracked as pid, before tr sees it. It returns "" when the frame may go
// to the tracker, else why it was dropped.
//
// A frame for a verified session (the tracker holds its process's start
// time) costs a comparison: datagrams are read in the order they were
// queued, and the session's first verified frame was queued after that
// start, so later ones are too; only one that is not (a wall-clock step)
// gets the full check. The full check, for a frame that opens a session
// or joins an unverified one, reads /proc and the two clocks (once per
// batch).
func (g *Guard) Check(rx *listen.Receiver, i int, tr *track.Tracker, pid uint32) string {
	g.pend.ok = false
	s := tr.Lookup(pid)
	opens := s == nil || s.Origin != track.OriginUDS
	if !opens {
		switch {
		case s.HasStartTime:
			if g.clearlyAfter(rx, i, s.StartTime) {
				return ""
			}
		case !s.StartUnknown:
			// The session's process was gone when it began (a one-shot
			// sender): its stall retires whoever holds the pid then.
			return ""
		}
	}
	cur, proc := g.start(pid)
	if proc != track.ProcAlive {
		// Nobody holds the pid, or /proc cannot say: nobody to confuse
		// the sender with, or the tracker's own unknown-start handling.
		return ""
	}
	switch g.judge(rx, i, cur) {
	case Recycled:
		g.recycled++
		return msgRecycled
	case Unverifiable:
		switch {
		case !opens && !s.HasStartTime:
			return "" // joins a session that is unverified already
		case opens:
			g.unverifiable++
			g.pend = pending{pid: pid, start: cur, proc: track.ProcUnknown, ok: true}
			return ""
		case cur == s.StartTime:
			// The verified session's own process still holds the pid:
			// the clocks were too coarse to place this frame (a sample
			// whose reads were far apart, under load), and it was
			// queued after what was read before it.
			return ""
		}
		g.unverifiable++
		return msgUnverifiable
	}
	// Sent by the process that holds the pid now. An unverified session
	// is closed and this frame opens a verified one in its place: the
	// tracker then reads this start time, and the observer starts what a
	// verified session gets (the exit watch's pidfd, the name read again).
	if !opens && !s.HasStartTime {
		tr.Remove(pid)
		opens = true
	}
	if opens {
		g.pend = pending{pid: pid, start: cur, proc: track.ProcAlive, ok: true}
	}
	return ""
}

// clearlyAfter is the verified session's test, on the latest sample
// without taking a new one. A frame without a stamp (none is expected:
// ListenUDS stamps every datagram) passes: it was queued after the
// session's verified first frame.
func (g *Guard) clearlyAfter(rx *listen.Receiver, i int, startTicks uint64) bool {
	q, ok := rx.Queued(i)
	if !ok {
		return true
	}
	if !g.sampleOK || startTicks >= math.MaxInt64/TickNs-1 {
		return false
	}
	return q-g.cur.off-g.cur.err-slackNs >= int64(startTicks+1)*TickNs
}

// judge converts message i's stamp with a fresh sample and decides. While
// frames queued before a seen wall-clock step may still be in the batch,
// the frame is judged with the offsets before and after the step, and
// only a verdict both agree on stands.
func (g *Guard) judge(rx *listen.Receiver, i int, startTicks uint64) Verdict {
	q, ok := rx.Queued(i)
	if !ok || !g.sample(rx.Calls(), rx.EmptiedBefore()) {
		return Unverifiable
	}
	v := Judge(q-g.cur.off, g.cur.err, g.cur.boot, startTicks)
	if g.stepOpen && Judge(q-g.prev.off, g.prev.err, g.cur.boot, startTicks) != v {
		return Unverifiable
	}
	return v
}

// sample takes the clocks' offset once per receive call (call is
// rx.Calls()), and notes a wall-clock step when it moved. A step stays
// open until a receive call made after it found the queue empty
// (emptiedBefore, rx.EmptiedBefore()): only then is every datagram
// queued before the step read.
func (g *Guard) sample(call, emptiedBefore uint64) bool {
	if g.stepOpen && emptiedBefore > g.stepCall {
		g.stepOpen = false
	}
	if g.sampleCall == call && call != 0 {
		return g.sampleOK
	}
	o, ok := g.read()
	g.sampleCall = call
	if !ok {
		g.sampleOK = false
		return false
	}
	if g.sampleOK {
		if d := o.off - g.cur.off; d > o.err+g.cur.err+stepNs || -d > o.err+g.cur.err+stepNs {
			g.prev, g.stepOpen, g.stepCall = g.cur, true, call
			g.steps++
		}
	}
	g.cur, g.sampleOK = o, true
	return true
}

// read samples the offset: wall clock, boottime, wall clock, the
// boottime read taken as the midpoint's, half the spread as the error.
func (g *Guard) read() (offset, bool) {
	best := offset{err: math.MaxInt64}
	for range sampleTries {
		if g.gettime(unix.CLOCK_REALTIME, &g.ts) != nil {
			return best, false
		}
		r1 := g.ts.Nano()
		if g.gettime(unix.CLOCK_BOOTTIME, &g.ts) != nil {
			return best, false
		}
		b := g.ts.Nano()
		if g.gettime(unix.CLOCK_REALTIME, &g.ts) != nil {
			return best, false
		}
		spread := g.ts.Nano() - r1
		if spread < 0 {
			continue // the wall clock stepped back between the reads
		}
		if o := (offset{off: r1 + spread/2 - b, err: spread/2 + 1, boot: b}); o.err < best.err {
			best = o
		}
		if spread <= maxSpread {
			break
		}
	}
	return best, best.err != math.MaxInt64
}
