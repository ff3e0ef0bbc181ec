package promtext

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testLoop is a minimal single-goroutine poll(2) loop over a loopback TCP
// listener, driving a Server the way poll/ is meant to (see Server's doc).
type testLoop struct {
	t       *testing.T
	srv     *Server
	lfd     int
	port    int
	sndbuf  int // SO_SNDBUF of accepted sockets when > 0
	start   time.Time
	stop    atomic.Bool
	done    chan struct{}
	expired atomic.Int64 // connections closed at a deadline
	refused atomic.Int64 // connections closed for want of a slot
}

func startLoop(t *testing.T, cfg Config, sndbuf int) *testLoop {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		unix.Close(lfd)
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 16); err != nil {
		unix.Close(lfd)
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		unix.Close(lfd)
		t.Fatal(err)
	}
	l := &testLoop{t: t, srv: newServer(t, cfg), lfd: lfd, port: sa.(*unix.SockaddrInet4).Port,
		sndbuf: sndbuf, start: time.Now(), done: make(chan struct{})}
	go l.run()
	t.Cleanup(func() {
		l.stop.Store(true)
		<-l.done
		for i := range l.srv.Slots() {
			if c := l.srv.Conn(i); c.Want(0) != WantNone {
				l.close(c)
			}
		}
		unix.Close(lfd)
	})
	return l
}

func (l *testLoop) now() int64 { return int64(time.Since(l.start)) }

func (l *testLoop) run() {
	defer close(l.done)
	fds := make([]unix.PollFd, 0, 1+l.srv.Slots())
	conns := make([]*Conn, 0, l.srv.Slots())
	scratch := make([]byte, 512) // small, so that heads take several reads
	for !l.stop.Load() {
		now := l.now()
		fds = append(fds[:0], unix.PollFd{Fd: int32(l.lfd), Events: unix.POLLIN})
		conns = conns[:0]
		for i := range l.srv.Slots() {
			c := l.srv.Conn(i)
			var ev int16
			switch c.Want(now) {
			case WantRead:
				ev = unix.POLLIN
			case WantWrite:
				ev = unix.POLLOUT
			case WantClose:
				l.close(c)
				continue
			default:
				continue
			}
			fds = append(fds, unix.PollFd{Fd: int32(c.FD()), Events: ev})
			conns = append(conns, c)
		}
		timeout := 5 * time.Millisecond // also how soon stop is noticed
		if d, ok := l.srv.NextDeadline(); ok {
			timeout = max(0, min(timeout, time.Duration(d-now)))
		}
		ms := int((timeout + time.Millisecond - 1) / time.Millisecond) // round up: never spin early
		if _, err := unix.Poll(fds, ms); err != nil && err != unix.EINTR {
			l.t.Errorf("poll: %v", err)
			return
		}
		now = l.now()
		if fds[0].Revents&unix.POLLIN != 0 {
			l.accept(now)
		}
		for k, c := range conns {
			if fds[k+1].Revents != 0 {
				l.service(c, now, scratch)
			}
		}
	}
}

// accept takes at most a few connections per iteration: a bound per tick.
func (l *testLoop) accept(now int64) {
	for range 4 {
		fd, _, err := unix.Accept4(l.lfd, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		if err != nil {
			return // EAGAIN: the backlog is empty
		}
		if l.sndbuf > 0 {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, l.sndbuf)
		}
		if _, err := l.srv.Accept(fd, now); err != nil {
			l.refused.Add(1)
			unix.Close(fd)
		}
	}
}

// service does at most one read and one write for c.
func (l *testLoop) service(c *Conn, now int64, scratch []byte) {
	if c.Want(now) == WantRead {
		n, err := unix.Read(c.FD(), scratch)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil || n == 0: // error or EOF before a whole head
			l.close(c)
			return
		}
		c.Feed(scratch[:n], now)
	}
	if c.Want(now) == WantWrite {
		n, err := unix.SendmsgN(c.FD(), c.Pending(), nil, nil, unix.MSG_NOSIGNAL)
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil:
			l.close(c)
			return
		}
		c.Wrote(n)
	}
	if c.Want(now) == WantClose {
		l.close(c)
	}
}

func (l *testLoop) close(c *Conn) {
	if c.Expired(l.now()) {
		// A peer that does not read gets a reset, so the kernel drops the
		// unsent response now rather than hold it for a while.
		l.expired.Add(1)
		unix.SetsockoptLinger(c.FD(), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	unix.Close(c.FD())
	l.srv.Release(c)
}

// dial connects a blocking client socket; rcvbuf > 0 shrinks its receive
// buffer first. Reads time out after 3 s so a broken server fails the test
// instead of hanging it.
func (l *testLoop) dial(t *testing.T, rcvbuf int) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if rcvbuf > 0 {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
	}
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 3})
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: l.port, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd
}

func send(t *testing.T, fd int, s string) {
	t.Helper()
	for len(s) > 0 {
		n, err := unix.Write(fd, []byte(s))
		if err != nil {
			t.Fatalf("write: %v", err)
		}
		s = s[n:]
	}
}

// readAll reads until EOF, a reset or the 3 s receive timeout; err is nil
// only for a clean EOF.
func readAll(fd int) (string, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return string(out), err
		}
		if n == 0 {
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
}

func (l *testLoop) get(t *testing.T, req string) response {
	t.Helper()
	fd := l.dial(t, 0)
	send(t, fd, req)
	raw, err := readAll(fd)
	if err != nil {
		t.Fatalf("reading the response: %v (got %q)", err, raw)
	}
	return parseResponse(t, raw, strings.HasPrefix(req, "HEAD"))
}

func TestSocketRequests(t *testing.T) {
	l := startLoop(t, Config{Token: []byte(testToken), Alive: func() bool { return true }}, 0)
	auth := "Authorization: Bearer " + testToken + "\r\n"
	tests := []struct {
		name   string
		req    string
		status int
		body   string
	}{
		{"metrics", "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + "\r\n", 200, testBody},
		{"HTTP/1.0", "GET /metrics HTTP/1.0\r\n" + auth + "\r\n", 200, testBody},
		{"HEAD", "HEAD /metrics HTTP/1.1\r\n" + auth + "\r\n", 200, ""},
		{"healthz", "GET /healthz HTTP/1.1\r\n" + auth + "\r\n", 200, "ok\n"},
		{"not found", "GET /nope HTTP/1.1\r\n" + auth + "\r\n", 404, "Not Found\n"},
		{"method", "PUT /metrics HTTP/1.1\r\n" + auth + "\r\n", 405, "Method Not Allowed\n"},
		{"token missing", "GET /metrics HTTP/1.1\r\n\r\n", 401, "Unauthorized\n"},
		{"token wrong", "GET /metrics HTTP/1.1\r\nAuthorization: Bearer guess\r\n\r\n", 401, "Unauthorized\n"},
		{"malformed", "GET /metrics\r\n\r\n", 400, "Bad Request\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := l.get(t, tt.req)
			if r.status != tt.status || r.body != tt.body {
				t.Errorf("%q: %d %q, want %d %q", tt.req, r.status, r.body, tt.status, tt.body)
			}
		})
	}
}

func TestSocketSplitWrites(t *testing.T) {
	l := startLoop(t, Config{}, 0)
	fd := l.dial(t, 0)
	req := "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: trickle\r\n\r\n"
	for i := range len(req) {
		send(t, fd, req[i:i+1])
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // let the loop see partial heads
		}
	}
	raw, err := readAll(fd)
	if err != nil {
		t.Fatal(err)
	}
	if r := parseResponse(t, raw, false); r.status != 200 || r.body != testBody {
		t.Errorf("trickled request: %d %q, want 200 %q", r.status, r.body, testBody)
	}
}

func TestSocketOversizedHead(t *testing.T) {
	l := startLoop(t, Config{MaxHead: 1024}, 0)
	fd := l.dial(t, 0)
	// Exactly MaxHead bytes and no blank line: the server has read all of
	// it when it answers, so closing cannot turn into a reset that would
	// race the 431 to the client.
	send(t, fd, "GET /metrics HTTP/1.1\r\n"+strings.Repeat("X-Pad: 0123456789abcdef\r\n", 60)[:1024-23])
	raw, err := readAll(fd)
	if err != nil {
		t.Fatal(err)
	}
	if r := parseResponse(t, raw, false); r.status != 431 {
		t.Errorf("oversized head: status %d, want 431", r.status)
	}
}

// TestSocketSlowloris: a client that never finishes its head is cut off at
// the read deadline, with no response, while others are still served.
func TestSocketSlowloris(t *testing.T) {
	const readTimeout = 150 * time.Millisecond
	l := startLoop(t, Config{ReadTimeout: readTimeout}, 0)
	slow := l.dial(t, 0)
	begin := time.Now()
	send(t, slow, "GET /metrics HTTP/1.1\r\nHost: slow\r\n")
	if r := l.get(t, "GET /healthz HTTP/1.1\r\n\r\n"); r.status != 200 {
		t.Errorf("healthz beside a slow client: %d, want 200", r.status)
	}
	raw, err := readAll(slow)
	waited := time.Since(begin)
	if raw != "" || !(err == nil || errors.Is(err, unix.ECONNRESET)) {
		t.Errorf("slow client got %q, %v; want nothing and the connection closed", raw, err)
	}
	if waited < readTimeout {
		t.Errorf("slow client cut off after %v, before the %v read deadline", waited, readTimeout)
	}
	if n := l.expired.Load(); n != 1 {
		t.Errorf("%d connections expired, want 1", n)
	}
}

// TestSocketNeverReads: a client that sends its request but never reads the
// response is closed at the write deadline instead of holding a slot.
func TestSocketNeverReads(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	body := strings.Repeat("x", 4<<20) // far more than both socket buffers
	l := startLoop(t, Config{
		WriteTimeout: writeTimeout, Conns: 2,
		Render: func(dst []byte) []byte { return append(dst, body...) },
	}, 4096)
	lazy := l.dial(t, 4096)
	begin := time.Now()
	send(t, lazy, "GET /metrics HTTP/1.1\r\n\r\n")
	for l.expired.Load() == 0 && time.Since(begin) < 3*time.Second {
		time.Sleep(5 * time.Millisecond)
	}
	if waited := time.Since(begin); l.expired.Load() != 1 || waited < writeTimeout {
		t.Fatalf("after %v, %d connections expired; want 1, no sooner than %v", waited, l.expired.Load(), writeTimeout)
	}

	// Both slots are free again: the stuck one was released.
	for range 2 {
		fd := l.dial(t, 0)
		send(t, fd, "GET /healthz HTTP/1.1\r\n\r\n")
		defer func() {
			raw, err := readAll(fd)
			if err != nil || !strings.Contains(raw, "200 OK") {
				t.Errorf("request after the stuck client: %q, %v; want 200", raw, err)
			}
		}()
	}
	raw, err := readAll(lazy)
	if len(raw) >= len(body) {
		t.Errorf("client that never read got all %d bytes (%v)", len(raw), err)
	}
}

func TestSocketFull(t *testing.T) {
	l := startLoop(t, Config{Conns: 1}, 0)
	holder := l.dial(t, 0)
	send(t, holder, "GET /metrics HTTP/1.1\r\n") // takes the only slot and waits
	extra := l.dial(t, 0)
	raw, err := readAll(extra)
	if raw != "" || !(err == nil || errors.Is(err, unix.ECONNRESET)) {
		t.Errorf("connection beyond capacity got %q, %v; want closed at once", raw, err)
	}
	if n := l.refused.Load(); n != 1 {
		t.Errorf("%d connections refused, want 1", n)
	}
	send(t, holder, "\r\n")
	raw, err = readAll(holder)
	if err != nil || !strings.Contains(raw, "200 OK") {
		t.Errorf("the slot holder: %q, %v; want 200", raw, err)
	}
}
