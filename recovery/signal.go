package recovery

import (
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// signalRetry is how long a timed-out child whose SIGKILL could not be
// delivered waits before the next attempt: often enough to stop it soon
// once it can be signalled, rarely enough not to flood the log.
const signalRetry = int64(time.Second)

// SignalError is a signal the manager could not deliver to a recovery
// child's process group. Signalling our own child fails with EPERM once it
// has taken another real and saved uid (a set-uid program that switched
// to its owner, say). ESRCH, the group already gone, counts as delivered
// and is never reported. errors.Is(err, syscall.EPERM) sees the errno.
type SignalError struct {
	Child  int            // the child's pid, also its process group id
	Agent  int32          // the stalled agent the child was recovering
	Signal syscall.Signal // SIGKILL (timeout, end of shutdown) or SIGTERM (shutdown)
	Err    error          // the errno of kill(2), e.g. syscall.EPERM
}

func (e *SignalError) Error() string {
	return "recovery: cannot send " + signalName(e.Signal) + " to the process group of child " +
		strconv.Itoa(e.Child) + " (recovering agent " + strconv.Itoa(int(e.Agent)) + "): " +
		os.NewSyscallError("kill", e.Err).Error()
}

func (e *SignalError) Unwrap() error { return e.Err }

// signalGroup sends sig to the process group pgid. ESRCH (the group is
// already gone) is success. A pgid below 2 is refused with EINVAL: kill(2)
// would read -1 as every process we may signal and 0 as our own group.
func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid < 2 {
		return unix.EINVAL
	}
	for {
		switch err := unix.Kill(-pgid, sig); err {
		case nil, unix.ESRCH:
			return nil
		case unix.EINTR:
			continue
		default:
			return err
		}
	}
}

// signal sends sig to child c's process group and reports whether it was
// delivered. A failure is counted, kept as the manager's last signal
// failure and on the child (its Completion carries it), and never lost.
func (m *Manager) signal(c *child, sig syscall.Signal) bool {
	err := m.kill(c.pid, sig)
	if err == nil {
		return true
	}
	e := &SignalError{Child: c.pid, Agent: c.agent, Signal: sig, Err: err}
	c.sigErr = e
	m.sigFailed++
	m.sigLast = e
	return false
}

// SignalFailures returns how many signals to recovery children's process
// groups could not be delivered, and the last such failure (a
// *SignalError). A timed-out child whose SIGKILL failed is tried again
// every second until it is delivered or the child exits; its Completion's
// SignalErr names the last failure.
func (m *Manager) SignalFailures() (failed uint64, last error) {
	if m.sigLast == nil {
		return m.sigFailed, nil
	}
	return m.sigFailed, m.sigLast
}
