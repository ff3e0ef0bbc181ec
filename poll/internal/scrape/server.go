package scrape

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/promtext"
)

// acceptsPerTick bounds new metrics connections taken per loop iteration,
// so a connection flood cannot starve beat processing.
const acceptsPerTick = 8

// scrapeSndBuf bounds each metrics connection's kernel send buffer.
const scrapeSndBuf = 256 << 10

// acceptPause is how long the listener stays out of the poll set after
// accept(2) failed for want of a resource (fds, kernel memory): the
// connection still queued keeps the listener readable, so polling it again
// at once would spin the loop until something is freed.
const acceptPause = int64(100 * time.Millisecond)

// Server owns the metrics listening socket and its accepted fds; the HTTP
// protocol itself is promtext.Server's. The observer loop registers the
// fds Fds lists in its wait and hands readiness back through Ready.
type Server struct {
	lfd     int
	srv     *promtext.Server
	scratch []byte
	fds     []Fd             // what Fds returned this iteration
	gens    []uint32         // per connection slot, bumped when its fd is closed
	conns   []*promtext.Conn // the connection of each fds entry after the first
	// acceptFailed counts accept(2) failures for want of a resource;
	// acceptErr is the latest, for the loop to log; pausedUntil is when
	// the listener is polled again after one.
	acceptFailed uint64
	acceptErr    error
	pausedUntil  int64
	expired      uint64 // connections closed at a read or write deadline
	evicted      uint64 // connections without a complete request closed for a newcomer
	addr         string // the bound address, with the real port when :0 was asked

	limit     *ipTable // nil: no per-IP rate limit
	sa        unix.RawSockaddrAny
	salen     uint32
	dropped   [NumDropReasons]uint64
	exhausted uint64 // listener wakes that hit acceptsPerTick with more queued
	servedNs  int64  // time spent in Ready since TakeServed
	served    bool
}

// Fd is one descriptor the server wants watched: poll(2) events, and the
// argument to pass back to Ready.
type Fd struct {
	Fd     int
	Events int16
	Arg    int32
	// Gen tells this fd from an earlier connection's that had the same
	// number: a waiter that keeps registrations must register it afresh.
	Gen uint32
}

// Config is the /metrics endpoint.
type Config struct {
	Addr   string              // IP:PORT, IPv4 or [IPv6]
	Token  []byte              // bearer token; nil means none
	Render func([]byte) []byte // appends the exposition
	Alive  func() bool         // /healthz
	// MaxBody bounds the exposition's size (see promtext.Config.MaxBody).
	MaxBody int
	Limit   RateLimit
}

// New binds the listener and prepares the connection slots.
func New(cfg Config) (*Server, error) {
	srv, err := promtext.NewServer(promtext.Config{Render: cfg.Render, Alive: cfg.Alive, Token: cfg.Token,
		MaxBody: cfg.MaxBody})
	if err != nil {
		return nil, err
	}
	lfd, bound, err := listen.ListenTCP(cfg.Addr)
	if err != nil {
		return nil, err
	}
	p := &Server{lfd: lfd, srv: srv, scratch: make([]byte, 1024), addr: bound,
		fds: make([]Fd, 0, 1+srv.Slots()), conns: make([]*promtext.Conn, 0, srv.Slots()),
		gens: make([]uint32, srv.Slots())}
	if cfg.Limit.PerSec > 0 {
		p.limit = &ipTable{perSec: int64(cfg.Limit.PerSec), burst: int64(max(cfg.Limit.Burst, 1))}
	}
	return p, nil
}

// MaxFds is the most entries Fds returns: the listener and every slot.
func (p *Server) MaxFds() int { return 1 + p.srv.Slots() }

// Addr is the bound address, with the real port when :0 was asked.
func (p *Server) Addr() string { return p.addr }

// Fds lists the listener (unless an accept failure paused it) and every
// connection that waits for I/O, closing connections that are done or
// timed out. The slice is reused by the next call.
func (p *Server) Fds(now int64) []Fd {
	p.fds = p.fds[:0]
	if now >= p.pausedUntil {
		p.fds = append(p.fds, Fd{Fd: p.lfd, Events: unix.POLLIN, Arg: -1})
	}
	p.conns = p.conns[:0]
	for i := 0; i < p.srv.Slots(); i++ {
		c := p.srv.Conn(i)
		var ev int16
		switch c.Want(now) {
		case promtext.WantRead:
			ev = unix.POLLIN
		case promtext.WantWrite:
			ev = unix.POLLOUT
		case promtext.WantClose:
			p.close(c, now)
			continue
		default:
			continue
		}
		p.fds = append(p.fds, Fd{Fd: c.FD(), Events: ev, Arg: int32(len(p.conns)), Gen: p.gens[i]})
		p.conns = append(p.conns, c)
	}
	return p.fds
}

// Ready handles what the wait reported for the entry of Fds with arg.
func (p *Server) Ready(arg int32, revents int16, now int64) {
	t0 := time.Now() // vDSO: no system call; only metrics fds pay for it
	defer p.took(t0)
	switch {
	case arg < 0:
		if revents&unix.POLLIN != 0 {
			p.accept(now)
		}
	case int(arg) < len(p.conns) && revents != 0:
		p.service(p.conns[arg], now)
	}
}

func (p *Server) took(t0 time.Time) {
	p.servedNs += int64(time.Since(t0))
	p.served = true
}

// TakeServed returns the time spent serving metrics fds since the last
// call, and whether any was served.
func (p *Server) TakeServed() (ns int64, any bool) {
	ns, any = p.servedNs, p.served
	p.servedNs, p.served = 0, false
	return ns, any
}

func (p *Server) accept(now int64) {
	for i := 0; ; i++ {
		if i == acceptsPerTick {
			p.exhausted++ // budget spent: whatever else is queued waits for the next wake
			return
		}
		p.salen = uint32(unsafe.Sizeof(p.sa))
		fd, err := accept4(p.lfd, &p.sa, &p.salen)
		switch err {
		case nil:
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			p.acceptFailed++
			p.acceptErr = err
			p.pausedUntil = now + acceptPause
			return
		default:
			// EAGAIN: nothing more queued. Anything else is one client's
			// network error, and that connection has left the queue.
			return
		}
		if p.limit != nil {
			if ok, why := p.limit.allow(peerIP(&p.sa), now); !ok {
				p.dropped[why]++
				unix.Close(fd)
				continue
			}
		}
		// Cap the kernel's send buffer: a client that never reads would
		// otherwise pin megabytes of kernel memory until the write deadline.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, scrapeSndBuf)
		if _, err := p.srv.Accept(fd, now); err != nil && p.evictIdle(now) {
			_, err = p.srv.Accept(fd, now)
		}
		if err != nil {
			p.dropped[DropDrain]++
			unix.Close(fd)
		}
	}
}

// evictIdle makes room for a new connection when every slot is taken: it
// closes the oldest connection that has not yet sent a complete request
// (slowloris holds slots that way, one byte at a time, needing no token),
// and reports whether it found one. A connection whose request is being
// answered is never cut for a newcomer.
func (p *Server) evictIdle(now int64) bool {
	var oldest *promtext.Conn
	for i := 0; i < p.srv.Slots(); i++ {
		c := p.srv.Conn(i)
		if c.Want(now) == promtext.WantRead && (oldest == nil || c.Deadline() < oldest.Deadline()) {
			oldest = c
		}
	}
	if oldest == nil {
		return false
	}
	p.evicted++
	unix.SetsockoptLinger(oldest.FD(), unix.SOL_SOCKET, unix.SO_LINGER, &resetLinger)
	p.close(oldest, now)
	return true
}

// accept4 takes one queued connection, its peer's address into sa (the
// server's own, reused): unix.Accept4 would allocate a Sockaddr on every
// scrape.
func accept4(lfd int, sa *unix.RawSockaddrAny, salen *uint32) (int, error) {
	// Non-blocking, so a raw system call (see listen.Receiver.Recv).
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), uintptr(unsafe.Pointer(sa)), uintptr(unsafe.Pointer(salen)),
		unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// resetLinger makes close(2) send a reset and drop unsent data; package
// level so passing it to the kernel allocates nothing.
var resetLinger = unix.Linger{Onoff: 1, Linger: 0}

// service does at most one read and one write for c.
func (p *Server) service(c *promtext.Conn, now int64) {
	if c.Want(now) == promtext.WantRead {
		n, err := unix.Read(c.FD(), p.scratch)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil || n == 0:
			p.close(c, now)
			return
		}
		c.Feed(p.scratch[:n], now)
	}
	if c.Want(now) == promtext.WantWrite {
		n, err := unix.SendmsgN(c.FD(), c.Pending(), nil, nil, unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil:
			p.close(c, now)
			return
		}
		c.Wrote(n)
	}
	if c.Want(now) == promtext.WantClose {
		p.close(c, now)
	}
}

// close ends a connection; one that timed out is reset (SO_LINGER 0) so
// its unsent response is dropped at once instead of lingering.
func (p *Server) close(c *promtext.Conn, now int64) {
	if c.Expired(now) {
		p.expired++
		unix.SetsockoptLinger(c.FD(), unix.SOL_SOCKET, unix.SO_LINGER, &resetLinger)
	}
	unix.Close(c.FD())
	for i := range p.gens {
		if p.srv.Conn(i) == c {
			p.gens[i]++
		}
	}
	p.srv.Release(c)
}

// NextDeadline is the earliest connection deadline, or the end of an
// accept pause if that comes first.
func (p *Server) NextDeadline(now int64) (int64, bool) {
	d, ok := p.srv.NextDeadline()
	if p.pausedUntil > now && (!ok || p.pausedUntil < d) {
		return p.pausedUntil, true
	}
	return d, ok
}

// TakeAcceptErr returns the accept failure since the last call, if any.
func (p *Server) TakeAcceptErr() error {
	err := p.acceptErr
	p.acceptErr = nil
	return err
}

// Counts are the connections closed at a deadline, not accepted for want
// of fds or memory, and closed before completing a request to make room
// for a newcomer.
func (p *Server) Counts() (expired, acceptFailed, evicted uint64) {
	return p.expired, p.acceptFailed, p.evicted
}

// Dropped counts the connections closed unserved, by reason (DropReasons).
func (p *Server) Dropped() [NumDropReasons]uint64 { return p.dropped }

// Exhausted counts the listener wakes that spent their whole budget of
// acceptsPerTick connections (more may have waited).
func (p *Server) Exhausted() uint64 { return p.exhausted }

// Unauthorized counts the requests refused for a missing or wrong token.
func (p *Server) Unauthorized() uint64 { return p.srv.Unauthorized() }

// Close closes every connection and the listener.
func (p *Server) Close() {
	for i := 0; i < p.srv.Slots(); i++ {
		if c := p.srv.Conn(i); c.Want(0) != promtext.WantNone {
			unix.Close(c.FD())
			p.srv.Release(c)
		}
	}
	unix.Close(p.lfd)
}
