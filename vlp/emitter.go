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
	ErrQueueFull  = errors.New("vlp: send queue full (still, after the send wait), beat dropped (observer busy or flooded: raise net.unix.max_dgram_qlen for a Unix socket, or the emitter's SetSendWait)")
	ErrNoObserver = errors.New("vlp: no observer listening (socket path missing, or the UDP port refused an earlier datagram), beat dropped")
)

// IsDrop reports whether err is one of the drops above.
func IsDrop(err error) bool { return err == ErrQueueFull || err == ErrNoObserver }

// DefaultSendWait is how long Beat and Terminal wait, at most, for room in
// a full queue before dropping the frame (SetSendWait). It is well under
// any sensible beat interval (an observer's threshold is at least 10 ms,
// and agents beat several times per threshold) and long enough to ride
// out a flood: under one the observer empties the queue every few
// microseconds, and every dequeue wakes the waiting senders.
const DefaultSendWait = 20 * time.Millisecond

// MaxSendWait bounds SetSendWait: a beat that waits longer than this is
// late anyway.
const MaxSendWait = 10 * time.Second

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
	waited  uint64        // frames that found the queue full and waited for room
	wait    time.Duration // longest wait for room in a full queue (SetSendWait)
	pfd     [1]unix.PollFd
	ts      unix.Timespec
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
	e := &Emitter{peer: NewPeer(fd, &unix.SockaddrUnix{Name: path}, false), wait: DefaultSendWait}
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

// Waited counts frames that found the queue full and waited for room
// (delivered in the end or not): how often the observer was busy or
// flooded when this agent beat.
func (e *Emitter) Waited() uint64 { return e.waited }

// SetSendWait sets how long Beat and Terminal wait, at most, for room when
// the observer's queue is full (default DefaultSendWait; 0 drops at once,
// never blocking; at most MaxSendWait). The wait is poll(2) for POLLOUT on
// the socket, which wakes as soon as the observer reads a datagram, so a
// flood of other senders keeping the queue full cannot starve a
// well-behaved agent: it gets its turn within microseconds of the
// observer's next read. Keep it well under the beat interval.
func (e *Emitter) SetSendWait(d time.Duration) {
	e.wait = min(max(d, 0), MaxSendWait)
}

// SendWait returns the wait SetSendWait set.
func (e *Emitter) SendWait() time.Duration { return e.wait }

// Beat sends one regular frame. It never allocates, and blocks at most the
// send wait (SetSendWait, DefaultSendWait unless set) when the observer's
// queue is full: it waits for room rather than drop the beat. A queue
// still full after the wait, or an absent observer, is a drop
// (ErrQueueFull, ErrNoObserver); an absent observer is never waited for.
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
	if err == unix.EAGAIN && e.wait > 0 {
		op, err = e.waitSend(e.buf[:n])
	}
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

// waitSend retries a frame the full queue refused, waiting in ppoll(2) for
// POLLOUT until the send wait has passed. POLLOUT on a connected Unix
// datagram socket means the peer's queue has room; it is raised for every
// waiting sender when the observer dequeues, so another sender may take
// the room first: then it waits again, within the same deadline. A non-
// blocking socket ignores SO_SNDTIMEO, hence the explicit wait.
func (e *Emitter) waitSend(b []byte) (op string, err error) {
	e.waited++
	deadline := monotonicNow() + uint64(e.wait)
	for {
		now := monotonicNow()
		if now >= deadline {
			return "send", unix.EAGAIN
		}
		e.ts = unix.NsecToTimespec(int64(deadline - now))
		e.pfd[0] = unix.PollFd{Fd: int32(e.peer.Fd()), Events: unix.POLLOUT}
		if _, perr := unix.Ppoll(e.pfd[:], &e.ts, nil); perr != nil && perr != unix.EINTR {
			return "ppoll", perr
		}
		if op, err = e.peer.Send(b); err != unix.EAGAIN {
			return op, err
		}
	}
}
