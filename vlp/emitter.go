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
	ErrQueueFull  = errors.New("vlp: observer queue full, beat dropped (raise net.unix.max_dgram_qlen or beat less often)")
	ErrNoObserver = errors.New("vlp: no observer listening at the socket path, beat dropped")
)

// IsDrop reports whether err is one of the drops above.
func IsDrop(err error) bool { return err == ErrQueueFull || err == ErrNoObserver }

// Emitter sends heartbeats over a connected Unix datagram socket. It owns
// its socket fd (CLOEXEC, non-blocking) until Close.
type Emitter struct {
	fd        int
	connected bool
	addr      unix.SockaddrUnix
	start     time.Time // the session clock's origin (monotonic)
	pid       uint32    // the pid the current session belongs to
	nonce     uint64    // last regular nonce sent in this session
	lastTs    uint64    // never let timestamps go backwards
	lastTerm  uint64    // timestamp of the last terminal frame
	sentTerm  bool
	dropped   uint64
	buf       [Size]byte
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
	e := &Emitter{fd: fd, start: time.Now(), addr: unix.SockaddrUnix{Name: path}}
	e.connect()
	return e, nil
}

// connect (re)attaches the socket to the path; a datagram socket can be
// reconnected at any time, which is how a restarted observer is found.
func (e *Emitter) connect() error {
	err := unix.Connect(e.fd, &e.addr)
	e.connected = err == nil
	return err
}

// Close releases the socket.
func (e *Emitter) Close() error {
	if e.fd < 0 {
		return nil
	}
	err := unix.Close(e.fd)
	e.fd = -1
	return err
}

// Dropped counts frames that could not be delivered.
func (e *Emitter) Dropped() uint64 { return e.dropped }

// Beat sends one regular frame. It never blocks and never allocates. A full
// queue or an absent observer is a drop (ErrQueueFull, ErrNoObserver).
func (e *Emitter) Beat(status Status, payload uint32) error {
	if status > Critical {
		return ErrBadStatus
	}
	e.checkSession()
	e.nonce++
	if e.nonce == NonceTerminal { // 2^64-2 is followed by 0 (SPEC.md §4)
		e.nonce = 0
	}
	return e.send(Frame{Status: status, Pid: e.pid, Timestamp: e.now(), Nonce: e.nonce, Payload: payload})
}

// Terminal sends the dying-gasp frame: Critical with NonceTerminal. Its
// timestamp is strictly greater than any earlier terminal frame's, so the
// observer accepts a repeat. It does not move the regular nonce.
func (e *Emitter) Terminal(payload uint32) error {
	e.checkSession()
	ts := e.now()
	if e.sentTerm && ts <= e.lastTerm {
		ts = e.lastTerm + 1
	}
	e.sentTerm, e.lastTerm = true, ts
	return e.send(Frame{Status: Critical, Pid: e.pid, Timestamp: ts, Nonce: NonceTerminal, Payload: payload})
}

// checkSession reads the pid afresh: a forked child has a new pid and is a
// new session whose nonce restarts at 1.
func (e *Emitter) checkSession() {
	pid := uint32(unix.Getpid())
	if pid != e.pid {
		e.pid, e.nonce, e.sentTerm, e.lastTerm = pid, 0, false, 0
	}
}

// now is the session clock: monotonic ns since Dial, never decreasing and
// never the reserved maximum.
func (e *Emitter) now() uint64 {
	ts := uint64(time.Since(e.start))
	if ts < e.lastTs {
		ts = e.lastTs
	}
	if ts == TimestampMax {
		ts--
	}
	e.lastTs = ts
	return ts
}

func (e *Emitter) send(f Frame) error {
	if e.fd < 0 {
		return errors.New("vlp: emitter is closed")
	}
	Encode(&e.buf, f)
	err := e.write()
	if err == nil {
		return nil
	}
	if reconnectable(err) && e.connect() == nil {
		err = e.write()
		if err == nil {
			return nil
		}
	}
	e.dropped++
	switch err {
	case unix.EAGAIN:
		return ErrQueueFull
	case unix.ECONNREFUSED, unix.ENOENT, unix.ENOTCONN, unix.EDESTADDRREQ:
		return ErrNoObserver
	}
	return os.NewSyscallError("send", err)
}

func (e *Emitter) write() error {
	if !e.connected {
		return unix.ENOTCONN
	}
	for {
		n, err := unix.Write(e.fd, e.buf[:])
		if err == unix.EINTR {
			continue
		}
		if err == nil && n != Size {
			return unix.EMSGSIZE
		}
		return err
	}
}

// reconnectable: the peer socket went away (observer stopped or restarted)
// or we were never connected; connecting again finds a new observer.
func reconnectable(err error) bool {
	return err == unix.ECONNREFUSED || err == unix.ENOTCONN || err == unix.EDESTADDRREQ ||
		err == unix.ENOENT || err == unix.EPIPE
}
