package poll

import (
	"os"

	"golang.org/x/sys/unix"
)

// fdHandler is what an fd in the loop's wait is registered with: Ready
// runs on the loop goroutine, in registration order, for each fd the wait
// found ready; arg is what was registered with it.
type fdHandler interface {
	Ready(arg int32, revents int16, now int64)
}

// waiter is the one place the loop's fds are registered and waited on.
// Each iteration the loop clears it, every owner adds the fds it wants
// watched now (an owner's set changes: metrics connections come and go,
// the exit watch's epoll fd is in only while an agent is watched), the
// loop waits, then dispatches. Capacity is fixed at construction and
// counts every fd that can be registered at once.
type waiter interface {
	reset()
	add(fd int, events int16, h fdHandler, arg int32)
	wait(timeout int64) error
	dispatch(now int64)
}

// pollWaiter waits in ppoll(2).
type pollWaiter struct {
	pfds []unix.PollFd
	regs []fdReg // parallel to pfds
	ts   unix.Timespec
}

type fdReg struct {
	h   fdHandler
	arg int32
}

func newPollWaiter(capacity int) *pollWaiter {
	return &pollWaiter{pfds: make([]unix.PollFd, 0, capacity), regs: make([]fdReg, 0, capacity)}
}

func (w *pollWaiter) reset() {
	w.pfds = w.pfds[:0]
	w.regs = w.regs[:0]
}

// add registers fd; more fds than the capacity is a bug in the count
// newObserver made, and panics rather than grow.
func (w *pollWaiter) add(fd int, events int16, h fdHandler, arg int32) {
	if len(w.pfds) == cap(w.pfds) {
		panic("poll: more fds registered than the wait's capacity")
	}
	w.pfds = append(w.pfds, unix.PollFd{Fd: int32(fd), Events: events})
	w.regs = append(w.regs, fdReg{h: h, arg: arg})
}

// wait blocks until a registered fd is ready or timeout ns pass; a signal
// interrupting it is not an error.
func (w *pollWaiter) wait(timeout int64) error {
	w.ts = unix.NsecToTimespec(timeout)
	if _, err := unix.Ppoll(w.pfds, &w.ts, nil); err != nil && err != unix.EINTR {
		return os.NewSyscallError("ppoll", err)
	}
	return nil
}

func (w *pollWaiter) dispatch(now int64) {
	for i := range w.pfds {
		if r := w.pfds[i].Revents; r != 0 {
			w.regs[i].h.Ready(w.regs[i].arg, r, now)
		}
	}
}

// pollIn is readiness to read, for add.
const pollIn = unix.POLLIN
