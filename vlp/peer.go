package vlp

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Peer is a non-blocking datagram socket connected to one address whose
// socket may go away and come back: an observer that restarted, a service
// manager that re-created its notification socket. A datagram socket can
// be connected again at any time, which is how the new one is found: Send
// does that when the peer is gone, and retries once. The Emitter sends
// beats through a Peer; the observer's sd_notify client does too.
//
// A Peer owns its fd from NewPeer until Close, and belongs to one
// goroutine. Send allocates nothing.
type Peer struct {
	fd        int
	addr      unix.Sockaddr
	udp       bool // decides which errors call for connecting again
	connected bool
}

// errClosed is a send on a closed Peer.
var errClosed = errors.New("vlp: emitter closed")

// NewPeer takes ownership of fd, a datagram socket, to send to addr; udp
// says it is a UDP socket (see Send). It does not connect yet: Connect, or
// the first Send, does.
func NewPeer(fd int, addr unix.Sockaddr, udp bool) Peer {
	return Peer{fd: fd, addr: addr, udp: udp}
}

// Fd is the socket, -1 once closed.
func (p *Peer) Fd() int { return p.fd }

// Connect (re)attaches the socket to the address.
func (p *Peer) Connect() error {
	err := unix.Connect(p.fd, p.addr)
	p.connected = err == nil
	return err
}

// Send writes b as one datagram. When the peer is gone it connects again
// and retries once; op names the call that failed ("send" or "connect").
// A full queue is unix.EAGAIN (or ENOBUFS), returned at once: the
// Emitter waits for room itself (Emitter.SetSendWait), sd_notify never does.
func (p *Peer) Send(b []byte) (op string, err error) {
	if p.fd < 0 {
		return "send", errClosed
	}
	op, err = "send", p.write(b)
	if err != nil && p.reconnectable(err) {
		if err = p.Connect(); err != nil {
			op = "connect"
		} else {
			err = p.write(b)
		}
	}
	return op, err
}

// write is one write(2) with EINTR retried; a datagram is sent whole or
// not at all, so a short count means it was too large.
func (p *Peer) write(b []byte) error {
	if !p.connected {
		return unix.ENOTCONN
	}
	for {
		m, err := unix.Write(p.fd, b)
		if err == unix.EINTR {
			continue
		}
		if err == nil && m != len(b) {
			return unix.EMSGSIZE
		}
		return err
	}
}

// reconnectable: for a Unix socket, the peer socket went away (stopped or
// restarted) or we were never connected; connecting again finds the new
// one. A connected UDP socket never needs it: ECONNREFUSED there reports
// an ICMP error for an earlier datagram (the kernel clears it and drops
// this one), so only a socket whose first connect failed retries.
func (p *Peer) reconnectable(err error) bool {
	if p.udp {
		return err == unix.ENOTCONN || err == unix.EDESTADDRREQ
	}
	return err == unix.ECONNREFUSED || err == unix.ENOTCONN || err == unix.EDESTADDRREQ ||
		err == unix.ENOENT || err == unix.EPIPE
}

// Close releases the socket. Safe to call more than once.
func (p *Peer) Close() error {
	if p.fd < 0 {
		return nil
	}
	err := unix.Close(p.fd)
	p.fd = -1
	return err
}
