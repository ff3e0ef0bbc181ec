package ops

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/vlp"
)

// NotifySocketEnv names the service manager's notification socket
// (sd_notify(3)): a path, or an abstract name when it starts with '@'.
const NotifySocketEnv = "NOTIFY_SOCKET"

// Notification states the observer sends (cmd/varta-watch/README.md §8).
const (
	NotifyReady    = "READY=1"
	NotifyStopping = "STOPPING=1"
	NotifyWatchdog = "WATCHDOG=1"
)

// Notifier sends sd_notify datagrams to the service manager, best effort.
// A Notifier without a socket (NOTIFY_SOCKET unset), and a nil one, are
// no-ops. It owns its fd (CLOEXEC, non-blocking) until Close and is owned
// by one goroutine.
type Notifier struct {
	peer vlp.Peer // connects again when the manager re-created its socket
	name string
	buf  []byte
}

// NotifyFromEnv reads $NOTIFY_SOCKET and prepares a Notifier for it, then
// unsets the variable so that no child (a recovery command inheriting the
// environment) can speak for the observer. Unset or empty gives a no-op
// Notifier. A value that is neither an absolute path nor '@'-abstract is
// an error.
func NotifyFromEnv() (*Notifier, error) {
	name := os.Getenv(NotifySocketEnv)
	if name == "" {
		return &Notifier{peer: vlp.NewPeer(-1, nil, false)}, nil
	}
	os.Unsetenv(NotifySocketEnv)
	if (name[0] != '/' && name[0] != '@') || len(name) > listen.MaxPath {
		return nil, errors.New(NotifySocketEnv + "=" + name + " is not an absolute socket path or an @abstract name " +
			"of at most " + strconv.Itoa(listen.MaxPath) + " bytes (unset it when not run by a service manager)")
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// SockaddrUnix turns a leading '@' into the abstract namespace's NUL.
	return &Notifier{peer: vlp.NewPeer(fd, &unix.SockaddrUnix{Name: name}, false), name: name,
		buf: make([]byte, 0, 256)}, nil
}

// Enabled reports whether notifications go anywhere.
func (n *Notifier) Enabled() bool { return n != nil && n.peer.Fd() >= 0 }

// Send sends one notification (READY=1, STOPPING=1, WATCHDOG=1,
// STATUS=..., or several separated by '\n'). It never blocks: a full queue
// or an absent manager is an error the caller may log and otherwise
// ignore. A manager that re-created its socket is found again.
func (n *Notifier) Send(state string) error {
	if !n.Enabled() {
		return nil
	}
	n.buf = append(n.buf[:0], state...)
	if _, err := n.peer.Send(n.buf); err != nil {
		return &sysfile.Error{What: "notify socket", Path: n.name, Problem: "cannot send " + state,
			Err: os.NewSyscallError("send", err)}
	}
	return nil
}

// Close releases the socket. Safe to call more than once.
func (n *Notifier) Close() error {
	if !n.Enabled() {
		return nil
	}
	if err := n.peer.Close(); err != nil {
		return os.NewSyscallError("close", err)
	}
	return nil
}
