package poll

import (
	"errors"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"

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

// promServer owns the metrics listening socket and its accepted fds; the
// HTTP protocol itself is promtext.Server's.
type promServer struct {
	lfd     int
	srv     *promtext.Server
	scratch []byte
	conns   []*promtext.Conn // conns polled this iteration, parallel to pfds
	refused uint64           // connections closed because every slot was busy
	// acceptFailed counts accept(2) failures for want of a resource;
	// acceptErr is the latest, for the loop to log; pausedUntil is when
	// the listener is polled again after one.
	acceptFailed uint64
	acceptErr    error
	pausedUntil  int64
	expired      uint64 // connections closed at a read or write deadline
	addr         string // the bound address, with the real port when :0 was asked
}

// boundAddr reports the listener's address as bound (port 0 resolved).
func boundAddr(fd int, asked string) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return asked
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return asked
}

// ParseListenAddr checks an IP:PORT listen address; [::1]:9100 for IPv6.
func ParseListenAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, errors.New("want IP:PORT such as 127.0.0.1:9100 or [::1]:9100, got " + s)
	}
	return ap, nil
}

func listenTCP(addr string) (int, error) {
	ap, err := ParseListenAddr(addr)
	if err != nil {
		return -1, err
	}
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ap.Addr().Is4() || ap.Addr().Is4In6() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().Unmap().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, errors.New("metrics address " + addr + ": " + os.NewSyscallError("bind", err).Error() + bindHint(err, "exporter"))
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("listen", err)
	}
	return fd, nil
}

func newPromServer(cfg *MetricsConfig, render func([]byte) []byte, alive func() bool) (*promServer, error) {
	srv, err := promtext.NewServer(promtext.Config{Render: render, Alive: alive, Token: cfg.Token})
	if err != nil {
		return nil, err
	}
	lfd, err := listenTCP(cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &promServer{lfd: lfd, srv: srv, scratch: make([]byte, 1024), addr: boundAddr(lfd, cfg.Addr),
		conns: make([]*promtext.Conn, 0, srv.Slots())}, nil
}

// addPollFds appends the listener and every connection that waits for I/O,
// closing connections that are done or timed out.
func (p *promServer) addPollFds(fds []unix.PollFd, now int64) []unix.PollFd {
	ev := int16(unix.POLLIN)
	if now < p.pausedUntil {
		ev = 0 // the entry stays so connections keep their places in fds
	}
	fds = append(fds, unix.PollFd{Fd: int32(p.lfd), Events: ev})
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
		fds = append(fds, unix.PollFd{Fd: int32(c.FD()), Events: ev})
		p.conns = append(p.conns, c)
	}
	return fds
}

// serve handles what poll reported; fds starts at the listener's entry.
func (p *promServer) serve(fds []unix.PollFd, now int64) {
	if fds[0].Revents&unix.POLLIN != 0 {
		p.accept(now)
	}
	for k, c := range p.conns {
		if fds[k+1].Revents != 0 {
			p.service(c, now)
		}
	}
}

func (p *promServer) accept(now int64) {
	for i := 0; i < acceptsPerTick; i++ {
		fd, err := accept4(p.lfd)
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
		// Cap the kernel's send buffer: a client that never reads would
		// otherwise pin megabytes of kernel memory until the write deadline.
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, scrapeSndBuf)
		if _, err := p.srv.Accept(fd, now); err != nil {
			p.refused++
			unix.Close(fd)
		}
	}
}

// accept4 takes one queued connection without asking for the peer's
// address: unix.Accept4 would allocate a Sockaddr for it on every scrape,
// and nothing here uses it.
func accept4(lfd int) (int, error) {
	fd, _, e := unix.Syscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// resetLinger makes close(2) send a reset and drop unsent data; package
// level so passing it to the kernel allocates nothing.
var resetLinger = unix.Linger{Onoff: 1, Linger: 0}

// service does at most one read and one write for c.
func (p *promServer) service(c *promtext.Conn, now int64) {
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
func (p *promServer) close(c *promtext.Conn, now int64) {
	if c.Expired(now) {
		p.expired++
		unix.SetsockoptLinger(c.FD(), unix.SOL_SOCKET, unix.SO_LINGER, &resetLinger)
	}
	unix.Close(c.FD())
	p.srv.Release(c)
}

// nextDeadline is the earliest connection deadline, or the end of an
// accept pause if that comes first.
func (p *promServer) nextDeadline(now int64) (int64, bool) {
	d, ok := p.srv.NextDeadline()
	if p.pausedUntil > now && (!ok || p.pausedUntil < d) {
		return p.pausedUntil, true
	}
	return d, ok
}

// takeAcceptErr returns the accept failure since the last call, if any.
func (p *promServer) takeAcceptErr() error {
	err := p.acceptErr
	p.acceptErr = nil
	return err
}

func (p *promServer) shutdown() {
	for i := 0; i < p.srv.Slots(); i++ {
		if c := p.srv.Conn(i); c.Want(0) != promtext.WantNone {
			unix.Close(c.FD())
			p.srv.Release(c)
		}
	}
	unix.Close(p.lfd)
}
