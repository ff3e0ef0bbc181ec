package vlp

import (
	"errors"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// ErrParentGone: the process a parent emitter speaks for is no longer our
// parent (it exited and we were re-parented to init or a subreaper).
// Frames would now name someone else, so none is sent.
var ErrParentGone = errors.New("vlp: our parent process exited; no frame is sent on behalf of whoever adopted us")

// DialParent is Dial for a helper that beats on behalf of its parent
// process: `varta-beat --parent` run from a shell script's loop, so that
// the observer tracks the shell as one agent. Frames carry getppid() as
// their pid; the observer accepts them only with --allow-parent-beats and
// only after checking, in /proc, that the parent of the kernel-reported
// sender is that pid.
//
// Each helper is a new process, so a nonce counting from 1 would repeat
// across runs and be dropped as a replay. A parent session uses
// CLOCK_MONOTONIC nanoseconds (system-wide, rising) as nonces, and as
// timestamps, which dying gasps are ordered by: successive helpers of one
// parent send rising nonces, and the observer's usual replay rules hold
// for the parent's pid. Before each frame the parent is checked again;
// once it has changed every frame fails with ErrParentGone.
//
// Only Unix sockets: over UDP no one could verify the claim.
func DialParent(path string) (*Emitter, error) {
	ppid := unix.Getppid()
	if ppid < firstUserPid {
		return nil, errors.New("vlp: no parent to beat for (getppid() = " + strconv.Itoa(ppid) +
			": orphaned, or the parent lives outside our pid namespace)")
	}
	e, err := Dial(path)
	if err != nil {
		return nil, err
	}
	e.parent = true
	e.pid, e.nonce, e.sentTerm, e.lastTerm, e.lastTs = uint32(ppid), 0, false, 0, 0
	return e, nil
}

func (e *Emitter) checkParent() error {
	if uint32(unix.Getppid()) != e.pid {
		return ErrParentGone
	}
	return nil
}

// monotonicNow is CLOCK_MONOTONIC in ns.
func monotonicNow() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts) != nil {
		return 0
	}
	return uint64(ts.Nano())
}

// WaitDelivered waits until the observer has taken every frame sent so far
// off its socket's queue, or d has passed, and reports whether it has. A
// datagram on a Unix socket stays charged to its sender until the receiver
// dequeues it, so the sender's unsent-bytes count (ioctl SIOCOUTQ) reaching
// 0 means the observer has read it. A parent-beat helper waits for this
// before exiting, because the observer checks the sender's parent in /proc
// after receiving: a helper that is gone (and reaped) by then is refused.
// For a Unix-socket emitter; false on error.
func (e *Emitter) WaitDelivered(d time.Duration) bool {
	if e.peer.Fd() < 0 || e.udp {
		return false
	}
	deadline := time.Now().Add(d)
	for {
		n, err := unix.IoctlGetInt(e.peer.Fd(), unix.SIOCOUTQ)
		switch {
		case err != nil:
			return false
		case n == 0:
			return true
		case time.Now().After(deadline):
			return false
		}
		time.Sleep(time.Millisecond)
	}
}
