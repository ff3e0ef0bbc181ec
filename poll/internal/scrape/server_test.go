package scrape

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/promtext"
)

// TestMetricsRequestNoAllocs: a whole /metrics request over real loopback
// TCP (accept, read the head, write the response, close) costs the
// observer no heap allocation once its buffers are warm, so scrapes never
// feed the GC. The client side here uses raw syscalls, which allocate
// nothing either, so AllocsPerRun counts only what the server does.
func TestMetricsRequestNoAllocs(t *testing.T) {
	body := []byte("varta_up 1\n")
	p, err := New(Config{Addr: "127.0.0.1:0",
		Render: func(b []byte) []byte { return append(b, body...) }, Alive: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p.lfd)
	ap := netip.MustParseAddrPort(p.addr)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	req := []byte("GET /metrics HTTP/1.1\r\nHost: varta\r\n\r\n")
	resp := make([]byte, 4096)
	var got int
	var failure string
	scrape := func() {
		got = 0
		cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			failure = "socket: " + err.Error()
			return
		}
		defer unix.Close(cfd)
		if err := unix.Connect(cfd, sa); err != nil {
			failure = "connect: " + err.Error()
			return
		}
		if _, err := unix.Write(cfd, req); err != nil {
			failure = "write: " + err.Error()
			return
		}
		p.accept(0)
		if p.srv.Active() != 1 {
			failure = "the server did not accept the connection"
			return
		}
		for i := 0; i < p.srv.Slots(); i++ {
			c := p.srv.Conn(i)
			for spins := 0; c.Want(0) != promtext.WantNone; spins++ {
				if spins == 10000 {
					failure = "the server never finished the request"
					return
				}
				p.service(c, 0)
			}
		}
		for got < len(resp) {
			n, err := unix.Read(cfd, resp[got:])
			if err != nil || n == 0 {
				break
			}
			got += n
		}
	}
	allocs := testing.AllocsPerRun(20, scrape)
	if failure != "" {
		t.Fatal(failure)
	}
	if r := resp[:got]; !bytes.HasPrefix(r, []byte("HTTP/1.1 200 ")) || !bytes.HasSuffix(r, body) {
		t.Fatalf("response %q: want a 200 carrying %q", r, body)
	}
	if allocs != 0 {
		t.Errorf("one /metrics request: %v allocations, want 0", allocs)
	}
}

// TestMetricsAcceptPausesWithoutFds: when accept(2) fails for want of a
// file descriptor the queued connection keeps the listener readable, so
// the listener must leave the poll set for a while instead of waking the
// loop at once, over and over (a busy loop at 100 % CPU until an fd is
// freed). The failure is counted and reported for the log; once the pause
// is over, and an fd is free again, the connection is taken.
func TestMetricsAcceptPausesWithoutFds(t *testing.T) {
	p, err := New(Config{Addr: "127.0.0.1:0",
		Render: func(b []byte) []byte { return b }, Alive: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer unix.Close(p.lfd)
	ap := netip.MustParseAddrPort(p.addr)
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	if err := unix.Connect(cfd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatal(err)
	}

	// Lower the soft fd limit to the lowest free fd number: no new fd fits.
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	free, err := unix.Dup(cfd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(free)
	low := orig
	low.Cur = uint64(free)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	const now = int64(1e9)
	p.accept(now)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}

	if p.acceptFailed != 1 || p.srv.Active() != 0 {
		t.Fatalf("accept without a free fd: %d failures counted, %d connections; want 1 and 0", p.acceptFailed, p.srv.Active())
	}
	if err := p.TakeAcceptErr(); err != unix.EMFILE {
		t.Errorf("reported error %v, want EMFILE", err)
	}
	if err := p.TakeAcceptErr(); err != nil {
		t.Errorf("the error is reported twice: %v", err)
	}
	if fds := p.Fds(now + acceptPause - 1); len(fds) != 0 {
		t.Errorf("listener polled during the pause: %+v, want nothing", fds)
	}
	if d, ok := p.NextDeadline(now); !ok || d != now+acceptPause {
		t.Errorf("next deadline %d, %v; want the pause's end %d so the loop wakes to resume", d, ok, now+acceptPause)
	}
	fds := p.Fds(now + acceptPause)
	if len(fds) != 1 || fds[0].Events != unix.POLLIN || fds[0].Fd != p.lfd {
		t.Fatalf("after the pause the wait gets %+v, want the listener for POLLIN", fds)
	}
	p.accept(now + acceptPause)
	if p.srv.Active() != 1 {
		t.Fatalf("after the pause the queued connection was not taken (%d active)", p.srv.Active())
	}
}

// TestSlowlorisGivesWay: connections that hold every slot without ever
// completing a request (one byte, then nothing) give way, oldest first,
// to a newcomer; the newcomer's complete request is answered.
func TestSlowlorisGivesWay(t *testing.T) {
	p, err := New(Config{Addr: "127.0.0.1:0", Render: func(b []byte) []byte { return append(b, "m 1\n"...) },
		Alive: func() bool { return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ap := netip.MustParseAddrPort(p.addr)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	dial := func(msg string) int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		if err := unix.Connect(fd, sa); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(fd, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		return fd
	}
	// pump runs the server's share of loop iterations at time now.
	pump := func(now int64) {
		for range 4 {
			for _, f := range p.Fds(now) {
				p.Ready(f.Arg, unix.POLLIN|unix.POLLOUT, now)
			}
		}
	}
	var now int64 = 1e9
	for range p.srv.Slots() {
		dial("G") // a slowloris head
		p.accept(now)
		now += 1000
	}
	pump(now)
	if p.srv.Active() != p.srv.Slots() {
		t.Fatalf("%d of %d slots taken by the slow clients", p.srv.Active(), p.srv.Slots())
	}
	good := dial("GET /metrics HTTP/1.1\r\n\r\n")
	p.accept(now)
	pump(now)
	unix.SetNonblock(good, false)
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(good, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 512)
	n, err := unix.Read(good, buf)
	if err != nil || !strings.HasPrefix(string(buf[:max(n, 0)]), "HTTP/1.1 200") {
		t.Fatalf("the complete request got %q, %v; want a 200 answer", buf[:max(n, 0)], err)
	}
	if _, _, evicted := p.Counts(); evicted != 1 {
		t.Errorf("%d connections evicted, want 1 (the oldest slow one)", evicted)
	}
}

// TestRateLimit: with a per-source-IP bucket of burst 2 and 1 token a
// second, four connections from 127.0.0.1 at once get two served and two
// closed unserved (rate_limit); a second later one more is served. A
// source finding the IP table full of live sources is closed unserved
// (ip_table_full), and an entry a minute stale makes room again.
func TestRateLimit(t *testing.T) {
	p, err := New(Config{Addr: "127.0.0.1:0", Limit: RateLimit{PerSec: 1, Burst: 2},
		Render: func(b []byte) []byte { return append(b, "varta_up 1\n"...) }})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ap := netip.MustParseAddrPort(p.addr)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	dial := func(n int) {
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Connect(fd, sa); err != nil {
				t.Fatal(err)
			}
		}
	}
	const sec = int64(1e9)
	dial(4)
	p.accept(10 * sec)
	if d := p.Dropped(); d[DropRateLimit] != 2 || p.srv.Active() != 2 {
		t.Fatalf("4 connections at once with burst 2: dropped %v, %d served; want 2 rate_limit, 2 served", d, p.srv.Active())
	}
	dial(1)
	p.accept(11 * sec)
	if d := p.Dropped(); d[DropRateLimit] != 2 || p.srv.Active() != 3 {
		t.Fatalf("a second later: dropped %v, %d served; want still 2 rate_limit, 3 served", d, p.srv.Active())
	}
	// Fill the table with other live sources, as a horizontal flood would.
	for i := range p.limit.ents {
		if e := &p.limit.ents[i]; !e.used {
			*e = ipState{ip: [16]byte{0: 0xfd, 15: byte(i), 14: byte(i >> 8)}, milli: 1000, refill: 11 * sec, used: true}
		}
	}
	loop := [16]byte{10: 0xff, 11: 0xff, 12: 127, 15: 1}
	for i := range p.limit.ents {
		if p.limit.ents[i].ip == loop {
			p.limit.ents[i].ip[0] = 0xfe // 127.0.0.1 forgotten: it is a new source now
		}
	}
	dial(1)
	p.accept(12 * sec)
	if d := p.Dropped(); d[DropIPTableFull] != 1 {
		t.Fatalf("a new source with the table full of live ones: dropped %v, want 1 ip_table_full", d)
	}
	dial(1)
	p.accept(12*sec + ipTTL)
	if d := p.Dropped(); d[DropIPTableFull] != 1 || d[DropRateLimit] != 2 {
		t.Fatalf("once the others went stale: dropped %v, want no new drop", d)
	}
}

// TestPeerIP: IPv4 peers are mapped into IPv6, IPv6 ones kept.
func TestPeerIP(t *testing.T) {
	var sa unix.RawSockaddrAny
	a4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
	a4.Family, a4.Addr = unix.AF_INET, [4]byte{192, 0, 2, 7}
	if got := peerIP(&sa); got != [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 7} {
		t.Errorf("IPv4 peer: %v", got)
	}
	a6 := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
	a6.Family, a6.Addr = unix.AF_INET6, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 9}
	if got := peerIP(&sa); got != a6.Addr {
		t.Errorf("IPv6 peer: %v", got)
	}
}
