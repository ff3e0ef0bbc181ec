package wait

import (
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
)

// Handler is what an fd in the loop's wait is registered with: Ready
// runs on the loop goroutine for each fd the wait found ready; arg is what
// was registered with it, revents the poll(2) bits (the epoll bits have
// the same values).
type Handler interface {
	Ready(arg int32, revents int16, now int64)
}

// Body is what a Waiter drives: Prepare registers the fds wanted now
// (Reset, then Add) and says until when the loop may sleep (a time on the
// loop's clock; one not after now means work is due now) or that it must
// stop; Finish is the iteration's work after a wait, starting with
// Dispatch.
type Body interface {
	Prepare() (deadline int64, stop bool)
	Finish()
}

// Waiter is the one place the loop's fds are registered and waited on.
// Each pass the loop re-declares every fd it wants watched (an owner's set
// changes: metrics connections come and go, the exit watch's epoll fd is
// in only while an agent is watched); the waiter keeps its kernel state in
// step. Capacity is fixed at construction and counts every fd that can be
// registered at once.
type Waiter interface {
	Reset()
	// Add registers fd for events (In, Out) with its handler; gen tells a
	// new fd from a closed one that had the same number (0 for fds that
	// live as long as the loop).
	Add(fd int, events int16, gen uint32, h Handler, arg int32)
	Run(b Body) error
	Dispatch(now int64)
	// Wakes counts the times the loop woke from a sleep.
	Wakes() uint64
	Close()
}

// The poll bits Add takes.
const (
	In  = unix.POLLIN
	Out = unix.POLLOUT
)

// Clock is the loop's clock: ns, never running backwards. Boottime says
// it counts suspended time (CLOCK_BOOTTIME), so the timer must too.
type Clock interface {
	Now() int64
	Boottime() bool
}

// epollWaiter keeps every fd of the loop in one private epoll set, and
// hands only that epoll fd to the Go runtime (os.NewFile + SyscallConn):
// the loop's goroutine parks in the runtime's netpoller, like any Go
// network code, instead of in a blocking system call of its own. A
// blocking ppoll costs several thread switches per wake (the runtime hands
// the P to another thread while the call blocks, and takes it back
// after); a park in the netpoller costs about one. Inside RawConn.Read,
// epoll_wait(…, 0) and the socket calls are raw system calls, which never
// block and so need no hand-over either.
//
// The netpoller's own timers have millisecond resolution; stall deadlines
// need better, so a timerfd in the set wakes the loop at the next
// deadline, to the nanosecond.
//
// Each wake does all the work there is: it dispatches what epoll_wait
// returned, runs the iteration, and asks again without sleeping until
// nothing is ready and nothing is due (run). Registration is kept in step
// by difference: a pass that declares the same fds as the last costs no
// system call.
type epollWaiter struct {
	ep       int
	file     *os.File        // ep, for the runtime's netpoller
	rc       syscall.RawConn // nil: wait in epoll_wait(2) ourselves
	timer    int             // timerfd, always in the set
	armed    int64           // the timer's deadline on the clock's scale, 0 = disarmed
	clock    Clock
	log      *sink.Logger
	regs     []epollReg // slot = epoll data; fixed capacity
	events   []unix.EpollEvent
	ready    int // events from the last epoll_wait
	ev       unix.EpollEvent
	its      unix.ItimerSpec
	body     Body
	readFn   func(uintptr) bool
	stopped  bool
	err      error
	nwakes   uint64
	scratch  [8]byte
	blocking bool // the runtime would not poll ep: epoll_wait(2) blocks instead
}

type epollReg struct {
	fd     int
	events uint32
	gen    uint32
	h      Handler
	arg    int32
	used   bool
	seen   bool // declared in this pass
}

// timerSlot is the timerfd's epoll data: it has no handler.
const timerSlot = -1

// NewEpoll returns the netpoller-parked Waiter for capacity fds, its
// deadlines on c; log takes its one warning (a fallback).
func NewEpoll(capacity int, c Clock, log *sink.Logger) (_ Waiter, err error) {
	w := &epollWaiter{ep: -1, timer: -1, clock: c, log: log, regs: make([]epollReg, capacity),
		events: make([]unix.EpollEvent, capacity+1)}
	defer func() {
		if err != nil {
			w.Close()
		}
	}()
	if w.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	clockID := unix.CLOCK_MONOTONIC
	if c.Boottime() {
		clockID = unix.CLOCK_BOOTTIME
	}
	if w.timer, err = unix.TimerfdCreate(clockID, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		return nil, os.NewSyscallError("timerfd_create", err)
	}
	w.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: timerSlot}
	if err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_ADD, w.timer, &w.ev); err != nil {
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// A non-blocking fd is what os.NewFile hands to the runtime poller.
	if err = unix.SetNonblock(w.ep, true); err != nil {
		return nil, os.NewSyscallError("fcntl", err)
	}
	w.file = os.NewFile(uintptr(w.ep), "varta-watch epoll")
	if rc, err := w.file.SyscallConn(); err == nil {
		w.rc = rc
	}
	w.readFn = w.wake
	return w, nil
}

func (w *epollWaiter) Reset() {
	for i := range w.regs {
		w.regs[i].seen = false
	}
}

func (w *epollWaiter) Add(fd int, events int16, gen uint32, h Handler, arg int32) {
	free := -1
	for i := range w.regs {
		r := &w.regs[i]
		switch {
		case !r.used:
			if free < 0 {
				free = i
			}
			continue
		case r.fd != fd || r.seen:
			continue
		}
		r.seen, r.h, r.arg = true, h, arg
		if r.gen != gen { // the fd was closed and its number reused
			w.ctl(unix.EPOLL_CTL_DEL, i)
			r.gen, r.events = gen, uint32(events)
			w.ctl(unix.EPOLL_CTL_ADD, i)
		} else if r.events != uint32(events) {
			r.events = uint32(events)
			w.ctl(unix.EPOLL_CTL_MOD, i)
		}
		return
	}
	if free < 0 {
		panic("poll: more fds registered than the wait's capacity")
	}
	w.regs[free] = epollReg{fd: fd, events: uint32(events), gen: gen, h: h, arg: arg, used: true, seen: true}
	w.ctl(unix.EPOLL_CTL_ADD, free)
}

// commit drops the fds the pass did not declare.
func (w *epollWaiter) commit() {
	for i := range w.regs {
		if r := &w.regs[i]; r.used && !r.seen {
			w.ctl(unix.EPOLL_CTL_DEL, i) // fails harmlessly when the owner closed it already
			*r = epollReg{}
		}
	}
}

// ctl applies slot i to the epoll set. An ADD that finds the fd there
// already (a DEL that failed) becomes a MOD. Failures are kept for run to
// return: a loop that cannot watch its own socket must not pretend to.
func (w *epollWaiter) ctl(op int, i int) {
	r := &w.regs[i]
	w.ev = unix.EpollEvent{Events: r.events, Fd: int32(i)}
	err := unix.EpollCtl(w.ep, op, r.fd, &w.ev)
	switch {
	case err == nil, op == unix.EPOLL_CTL_DEL:
	case op == unix.EPOLL_CTL_ADD && err == unix.EEXIST:
		if err = unix.EpollCtl(w.ep, unix.EPOLL_CTL_MOD, r.fd, &w.ev); err != nil && w.err == nil {
			w.err = os.NewSyscallError("epoll_ctl", err)
		}
	default:
		if w.err == nil {
			w.err = os.NewSyscallError("epoll_ctl", err)
		}
	}
}

// Run drives b until it asks to stop or the wait fails.
func (w *epollWaiter) Run(b Body) error {
	w.body = b
	if w.rc != nil {
		if err := w.rc.Read(w.readFn); err != nil && !w.stopped && w.err == nil {
			// The runtime would not poll the epoll fd (an unusual
			// kernel or emulator): wait in epoll_wait(2) instead.
			w.log.Warn("the Go runtime does not poll the loop's epoll fd; waiting in epoll_wait(2) instead, at more CPU per wake",
				sink.Err(err))
			w.blocking = true
			w.wake(0)
		}
	} else {
		w.blocking = true
		w.wake(0)
	}
	return w.err
}

// wake is one wake-up: passes of prepare, a non-blocking look at the
// set, and the iteration's work, until nothing is ready and nothing is
// due; then it arms the timer and returns false, and the runtime parks
// the goroutine until the epoll fd is readable. true ends run.
func (w *epollWaiter) wake(uintptr) bool {
	w.nwakes++
	for {
		deadline, stop := w.body.Prepare()
		w.commit()
		if stop || w.err != nil {
			w.stopped = true
			return true
		}
		n, errno := epollWaitRaw(w.ep, w.events, 0)
		if errno != 0 && errno != unix.EINTR {
			w.err = os.NewSyscallError("epoll_wait", errno)
			return true
		}
		if now := w.clock.Now(); n == 0 && deadline > now {
			w.arm(deadline, now)
			if !w.blocking {
				return false
			}
			if n, errno = epollWaitBlocking(w.ep, w.events); errno != 0 && errno != unix.EINTR {
				w.err = os.NewSyscallError("epoll_wait", errno)
				return true
			}
			w.nwakes++
		}
		w.ready = max(n, 0)
		w.body.Finish()
	}
}

// arm sets the timer to fire at deadline, unless it is armed for that
// moment already: a pass whose next deadline did not move (most beats do
// not move it) makes no system call.
func (w *epollWaiter) arm(deadline, now int64) {
	if deadline == w.armed {
		return
	}
	w.armed = deadline
	w.its = unix.ItimerSpec{Value: unix.NsecToTimespec(min(deadline-now, 1<<62))}
	timerfdSetRaw(w.timer, &w.its)
}

// Dispatch hands each event of the last wait to its fd's handler.
func (w *epollWaiter) Dispatch(now int64) {
	for _, e := range w.events[:w.ready] {
		if e.Fd == timerSlot {
			readRaw(w.timer, w.scratch[:]) // the expiry count; reading it re-arms the level
			w.armed = 0
			continue
		}
		if r := &w.regs[e.Fd]; r.used {
			r.h.Ready(r.arg, int16(e.Events), now)
		}
	}
	w.ready = 0
}

func (w *epollWaiter) Wakes() uint64 { return w.nwakes }

func (w *epollWaiter) Close() {
	if w.timer >= 0 {
		unix.Close(w.timer)
		w.timer = -1
	}
	if w.file != nil {
		w.file.Close() // closes ep
		w.file = nil
	} else if w.ep >= 0 {
		unix.Close(w.ep)
	}
	w.ep = -1
}

// The raw system calls of the wait. Each is on an epoll, timer or pipe fd
// and cannot block (timeout 0, non-blocking fds), so none needs the
// runtime's entersyscall/exitsyscall hand-over, which costs thread
// switches on every call.

func epollWaitRaw(ep int, events []unix.EpollEvent, msec int) (int, unix.Errno) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(ep), uintptr(unsafe.Pointer(&events[0])),
		uintptr(len(events)), uintptr(msec), 0, 0)
	return int(n), e
}

// epollWaitBlocking is the fallback when the runtime cannot poll the epoll
// fd: it blocks, so it goes through the runtime (Syscall6).
func epollWaitBlocking(ep int, events []unix.EpollEvent) (int, unix.Errno) {
	n, err := unix.EpollWait(ep, events, -1)
	if err != nil {
		return 0, err.(unix.Errno)
	}
	return n, 0
}

func timerfdSetRaw(fd int, its *unix.ItimerSpec) {
	unix.RawSyscall6(unix.SYS_TIMERFD_SETTIME, uintptr(fd), 0, uintptr(unsafe.Pointer(its)), 0, 0, 0)
}

func readRaw(fd int, b []byte) (int, unix.Errno) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	return int(n), e
}
