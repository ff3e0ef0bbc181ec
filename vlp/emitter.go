package vlp

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Drops: Beat and Terminal return these when a frame could not be delivered
// for a reason that must not kill the agent. The emitter stays usable; the
// next beat tries again (reconnecting when the observer came back).
var (
	ErrQueueFull  = errors.New("vlp: send queue full, beat dropped (observer busy: raise net.unix.max_dgram_qlen for a Unix socket, or beat less often)")
	ErrNoObserver = errors.New("vlp: no observer listening (socket path missing, or the UDP port refused an earlier datagram), beat dropped")
)

// IsDrop reports whether err is one of the drops above.
func IsDrop(err error) bool { return err == ErrQueueFull || err == ErrNoObserver }

// Emitter sends heartbeats over a connected datagram socket: a Unix socket
// (Dial) or UDP, plain or sealed (DialUDP). It owns its socket fd
// (CLOEXEC, non-blocking) until Close. Both transports share one session
// (nonce, clock, fork detection); UDP adds the secure envelope.
type Emitter struct {
	session
	peer    Peer    // the socket to the observer; connects again when it restarts
	udp     bool    // a UDP emitter (DialUDP)
	sec     *sealer // nil: frames go out as 32-byte plaintext
	dropped uint64
	buf     [MasterSize]byte // the datagram being sent; the largest kind fits
}

// Dial creates an emitter for the observer socket at path. A missing
// observer is not an error here: agents may start first, and Beat reports
// ErrNoObserver until one appears.
func Dial(path string) (*Emitter, error) {
	if len(path) == 0 || len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return nil, errors.New("vlp: socket path must be 1 to 107 bytes: " + path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	e := &Emitter{peer: NewPeer(fd, &unix.SockaddrUnix{Name: path}, false)}
	e.start = time.Now()
	e.refresh()
	e.connect()
	return e, nil
}

// connect (re)attaches the socket to the observer.
func (e *Emitter) connect() error { return e.peer.Connect() }

// Close releases the socket.
func (e *Emitter) Close() error { return e.peer.Close() }

// Dropped counts frames that could not be delivered.
func (e *Emitter) Dropped() uint64 { return e.dropped }

// Beat sends one regular frame. It never blocks and never allocates. A full
// queue or an absent observer is a drop (ErrQueueFull, ErrNoObserver).
func (e *Emitter) Beat(status Status, payload uint32) error {
	if status > Critical {
		return ErrBadStatus
	}
	if err := e.refresh(); err != nil {
		return err
	}
	return e.send(e.beatFrame(status, payload))
}

// Terminal sends the dying-gasp frame: Critical with NonceTerminal. Its
// timestamp is strictly greater than any earlier terminal frame's, so the
// observer accepts a repeat. It does not move the regular nonce.
func (e *Emitter) Terminal(payload uint32) error {
	if err := e.refresh(); err != nil {
		return err
	}
	return e.send(e.terminalFrame(payload))
}

// refresh starts a new session when the pid changed (a forked child) and
// gives it fresh IV state, and for a master key a fresh agent key: the
// child must never reuse its parent's (key, nonce) pairs.
func (e *Emitter) refresh() error {
	if e.parent {
		return e.checkParent()
	}
	if !e.checkSession() || e.sec == nil {
		return nil
	}
	if err := e.sec.newSession(e.pid); err != nil {
		e.pid = 0 // try again on the next frame rather than send unsealable ones
		return err
	}
	return nil
}

func (e *Emitter) send(f Frame) error {
	if e.peer.Fd() < 0 {
		return errClosed
	}
	n := Size
	if e.sec != nil {
		n = e.sec.seal(&e.buf, f)
	} else {
		Encode((*[Size]byte)(e.buf[:Size]), f)
	}
	op, err := e.peer.Send(e.buf[:n])
	if err == nil {
		return nil
	}
	e.dropped++
	switch err {
	case unix.EAGAIN, unix.ENOBUFS:
		return ErrQueueFull
	case unix.ECONNREFUSED, unix.ENOENT, unix.ENOTCONN, unix.EDESTADDRREQ:
		return ErrNoObserver
	}
	return os.NewSyscallError(op, err)
}
