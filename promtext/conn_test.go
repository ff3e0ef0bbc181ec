package promtext

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

const testToken = "s3cret-token"

var testBody = "# HELP m h\n# TYPE m gauge\nm 1\n"

func renderTest(dst []byte) []byte { return append(dst, testBody...) }

func newServer(t testing.TB, cfg Config) *Server {
	t.Helper()
	if cfg.Render == nil {
		cfg.Render = renderTest
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	return s
}

// drain runs one request through a slot without sockets: everything is fed
// at once and the response is written in Pending-sized steps.
func drain(t testing.TB, s *Server, req string) (status int, raw string) {
	t.Helper()
	c, err := s.Accept(42, 0)
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	defer s.Release(c)
	c.Feed([]byte(req), 1)
	var out []byte
	for c.Want(2) == WantWrite {
		p := c.Pending()
		out = append(out, p...)
		c.Wrote(len(p))
	}
	if w := c.Want(2); w != WantClose {
		t.Fatalf("after the response, Want = %d, want WantClose", w)
	}
	return c.Status(), string(out)
}

// reasons spells out the reason phrases (RFC 9110 §15, RFC 6585 §5) of the
// statuses the server may send, rather than asking the code under test.
var reasons = map[int]string{
	200: "OK",
	400: "Bad Request",
	401: "Unauthorized",
	404: "Not Found",
	405: "Method Not Allowed",
	431: "Request Header Fields Too Large",
	503: "Service Unavailable",
	505: "HTTP Version Not Supported",
}

type response struct {
	status int
	header map[string]string // names lower-cased
	body   string
}

// parseResponse reads what the server wrote, checking the framing every
// response shares: status line, Content-Length, Connection: close.
func parseResponse(t testing.TB, raw string, head bool) response {
	t.Helper()
	top, body, ok := strings.Cut(raw, "\r\n\r\n")
	if !ok {
		t.Fatalf("no end of header in %q", raw)
	}
	lines := strings.Split(top, "\r\n")
	var r response
	code, ok := strings.CutPrefix(lines[0], "HTTP/1.1 ")
	if !ok || len(code) < 4 {
		t.Fatalf("status line %q", lines[0])
	}
	r.status, _ = strconv.Atoi(code[:3])
	if want, ok := reasons[r.status]; !ok || code[4:] != want {
		t.Errorf("status line %q, want one of the reasons of RFC 9110 / RFC 6585 (%q)", lines[0], want)
	}
	r.header = map[string]string{}
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("header line %q", l)
		}
		r.header[strings.ToLower(k)] = v
	}
	n, err := strconv.Atoi(r.header["content-length"])
	if err != nil || head && body != "" || !head && n != len(body) {
		t.Errorf("Content-Length %q with a %d-byte body (head=%v)", r.header["content-length"], len(body), head)
	}
	if r.header["connection"] != "close" {
		t.Errorf("Connection = %q, want close", r.header["connection"])
	}
	r.body = body
	return r
}

func TestRespond(t *testing.T) {
	alive := true
	open := newServer(t, Config{Alive: func() bool { return alive }})
	locked := newServer(t, Config{Token: []byte(testToken)})
	bearer := "Authorization: Bearer " + testToken + "\r\n"
	tests := []struct {
		name   string
		srv    *Server
		dead   bool // Alive reports false
		req    string
		status int
		body   string // "" skips the check
		extra  string // a header that must be present, "Name: value"
	}{
		{"metrics", open, false, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200, testBody, "Content-Type: " + ContentType},
		{"metrics with query", open, false, "GET /metrics?name[]=up HTTP/1.1\r\n\r\n", 200, testBody, ""},
		{"HTTP/1.0", open, false, "GET /metrics HTTP/1.0\r\n\r\n", 200, testBody, ""},
		{"later 1.x minor", open, false, "GET /metrics HTTP/1.2\r\n\r\n", 200, testBody, ""},
		{"bare LF lines", open, false, "GET /metrics HTTP/1.1\nHost: x\n\n", 200, testBody, ""},
		{"leading empty line", open, false, "\r\nGET /metrics HTTP/1.1\r\n\r\n", 200, testBody, ""},
		{"healthz", open, false, "GET /healthz HTTP/1.1\r\n\r\n", 200, "ok\n", "Content-Type: text/plain; charset=utf-8"},
		{"healthz not alive", open, true, "GET /healthz HTTP/1.1\r\n\r\n", 503, "", ""},
		{"unknown path", open, false, "GET / HTTP/1.1\r\n\r\n", 404, "Not Found\n", ""},
		{"trailing slash", open, false, "GET /metrics/ HTTP/1.1\r\n\r\n", 404, "", ""},
		{"POST", open, false, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n", 405, "", "Allow: GET, HEAD"},
		{"lower-case method", open, false, "get /metrics HTTP/1.1\r\n\r\n", 405, "", "Allow: GET, HEAD"},
		{"HTTP/2", open, false, "GET /metrics HTTP/2.0\r\n\r\n", 505, "", ""},
		{"no version", open, false, "GET /metrics\r\n\r\n", 400, "", ""},
		{"bad version", open, false, "GET /metrics HTTP/1.1x\r\n\r\n", 400, "", ""},
		{"double space", open, false, "GET  /metrics HTTP/1.1\r\n\r\n", 400, "", ""},
		{"space in target", open, false, "GET /met rics HTTP/1.1\r\n\r\n", 400, "", ""},
		{"not origin-form", open, false, "GET http://x/metrics HTTP/1.1\r\n\r\n", 400, "", ""},
		{"header without colon", open, false, "GET /metrics HTTP/1.1\r\nHost\r\n\r\n", 400, "", ""},
		{"space before colon", open, false, "GET /metrics HTTP/1.1\r\nHost : x\r\n\r\n", 400, "", ""},
		{"obsolete folding", open, false, "GET /metrics HTTP/1.1\r\nX-A: 1\r\n  2\r\n\r\n", 400, "", ""},
		{"binary junk", open, false, "\x00\x01\x02\r\n\r\n", 400, "", ""},
		{"empty head", open, false, "\n\n", 400, "", ""},
		{"token ignored when not configured", open, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n", 200, testBody, ""},

		{"token missing", locked, false, "GET /metrics HTTP/1.1\r\n\r\n", 401, "", "WWW-Authenticate: Bearer"},
		{"token wrong", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer nope\r\n\r\n", 401, "", "WWW-Authenticate: Bearer"},
		{"token prefix", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n", 401, "", ""},
		{"token longer", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + testToken + "x\r\n\r\n", 401, "", ""},
		{"token empty", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer \r\n\r\n", 401, "", ""},
		{"basic scheme", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Basic " + testToken + "\r\n\r\n", 401, "", ""},
		{"scheme glued to token", locked, false, "GET /metrics HTTP/1.1\r\nAuthorization: Bearer" + testToken + "\r\n\r\n", 401, "", ""},
		{"token right", locked, false, "GET /metrics HTTP/1.1\r\n" + bearer + "\r\n", 200, testBody, ""},
		{"header name and scheme in any case", locked, false, "GET /metrics HTTP/1.1\r\naUTHORIZATION:   bEaReR   " + testToken + " \t\r\n\r\n", 200, testBody, ""},
		{"two Authorization headers", locked, false, "GET /metrics HTTP/1.1\r\n" + bearer + bearer + "\r\n", 400, "", ""},
		{"healthz needs the token", locked, false, "GET /healthz HTTP/1.1\r\n\r\n", 401, "", ""},
		{"healthz with token", locked, false, "GET /healthz HTTP/1.1\r\n" + bearer + "\r\n", 200, "ok\n", ""},
		{"unknown path hidden behind token", locked, false, "GET /secret HTTP/1.1\r\n\r\n", 401, "", ""},
		{"unknown path with token", locked, false, "GET /secret HTTP/1.1\r\n" + bearer + "\r\n", 404, "", ""},
		{"method checked before token", locked, false, "DELETE /metrics HTTP/1.1\r\n\r\n", 405, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alive = !tt.dead
			status, raw := drain(t, tt.srv, tt.req)
			r := parseResponse(t, raw, false)
			if status != tt.status || r.status != tt.status {
				t.Errorf("Status() = %d, response status %d; want %d\n%s", status, r.status, tt.status, raw)
			}
			if tt.body != "" && r.body != tt.body {
				t.Errorf("body = %q, want %q", r.body, tt.body)
			}
			if tt.extra != "" {
				k, v, _ := strings.Cut(tt.extra, ": ")
				if got := r.header[strings.ToLower(k)]; got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHeadMethod(t *testing.T) {
	s := newServer(t, Config{})
	_, raw := drain(t, s, "HEAD /metrics HTTP/1.1\r\n\r\n")
	r := parseResponse(t, raw, true)
	if r.status != 200 || r.header["content-length"] != strconv.Itoa(len(testBody)) {
		t.Errorf("HEAD /metrics: status %d, Content-Length %q; want 200, %d", r.status, r.header["content-length"], len(testBody))
	}
}

func TestFeedByteByByte(t *testing.T) {
	s := newServer(t, Config{})
	req := "GET /metrics HTTP/1.1\r\nHost: localhost\r\nUser-Agent: test\r\n\r\n"
	c, _ := s.Accept(3, 0)
	for i := range len(req) {
		if w := c.Want(1); w != WantRead {
			t.Fatalf("after %d bytes, Want = %d, want WantRead", i, w)
		}
		c.Feed([]byte{req[i]}, 1)
	}
	if c.Want(1) != WantWrite || c.Status() != 200 {
		t.Fatalf("after the whole head: Want %d, Status %d; want WantWrite, 200", c.Want(1), c.Status())
	}
	// Anything more (a pipelined request, a body) is ignored.
	before := string(c.Pending())
	c.Feed([]byte("GET /x HTTP/1.1\r\n\r\n"), 1)
	if string(c.Pending()) != before {
		t.Error("Feed after the head changed the response")
	}
}

func TestOversizedHead(t *testing.T) {
	s := newServer(t, Config{MaxHead: 128})
	tests := []struct {
		name   string
		req    string
		status int
	}{
		{"just fits", "GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", 128-30) + "\r\n\r\n", 200},
		{"one byte over", "GET /metrics HTTP/1.1\r\nX: " + strings.Repeat("a", 128-29) + "\r\n\r\n", 431},
		{"endless", "GET /metrics HTTP/1.1\r\n" + strings.Repeat("X: y\r\n", 1000), 431},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if status, raw := drain(t, s, tt.req); status != tt.status {
				t.Errorf("a %d-byte head with MaxHead 128: status %d, want %d\n%s", len(tt.req), status, tt.status, raw)
			}
		})
	}
}

func TestDeadlines(t *testing.T) {
	const ms = int64(time.Millisecond)
	s := newServer(t, Config{ReadTimeout: 100 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	if _, ok := s.NextDeadline(); ok {
		t.Error("NextDeadline with no connections: ok")
	}

	slow, _ := s.Accept(3, 1000*ms)
	slow.Feed([]byte("GET /metrics HTTP/1.1\r\n"), 1050*ms)
	if w := slow.Want(1099 * ms); w != WantRead {
		t.Errorf("head incomplete before the read deadline: Want = %d, want WantRead", w)
	}
	if w := slow.Want(1100 * ms); w != WantClose || !slow.Expired(1100*ms) || slow.Status() != 0 {
		t.Errorf("at the read deadline: Want %d, Expired %v, Status %d; want WantClose, true, 0", w, slow.Expired(1100*ms), slow.Status())
	}

	stuck, _ := s.Accept(4, 1010*ms)
	if d, _ := s.NextDeadline(); d != 1100*ms {
		t.Errorf("NextDeadline = %d, want %d (the slow reader's)", d, 1100*ms)
	}
	s.Release(slow)
	stuck.Feed([]byte("GET /metrics HTTP/1.1\r\n\r\n"), 1020*ms)
	stuck.Wrote(10) // the peer takes 10 bytes, then nothing more
	if d, _ := s.NextDeadline(); d != 1320*ms {
		t.Errorf("NextDeadline = %d, want %d (write deadline)", d, 1320*ms)
	}
	if w := stuck.Want(1319 * ms); w != WantWrite {
		t.Errorf("before the write deadline: Want = %d, want WantWrite", w)
	}
	if w := stuck.Want(1320 * ms); w != WantClose || !stuck.Expired(1320*ms) {
		t.Errorf("at the write deadline: Want %d, Expired %v; want WantClose, true", w, stuck.Expired(1320*ms))
	}
}

func TestWriteChunk(t *testing.T) {
	big := strings.Repeat("x", 10000)
	s := newServer(t, Config{WriteChunk: 1000, Render: func(dst []byte) []byte { return append(dst, big...) }})
	c, _ := s.Accept(3, 0)
	c.Feed([]byte("GET /metrics HTTP/1.1\r\n\r\n"), 0)
	var out []byte
	for c.Want(0) == WantWrite {
		p := c.Pending()
		if len(p) > 1000 || len(p) == 0 {
			t.Fatalf("Pending() returned %d bytes, want 1..1000", len(p))
		}
		out = append(out, p[:len(p)/2+1]...) // a short write
		c.Wrote(len(p)/2 + 1)
	}
	if r := parseResponse(t, string(out), false); r.body != big {
		t.Errorf("body of %d bytes, want %d", len(r.body), len(big))
	}
	if c.Expired(0) {
		t.Error("a written response is Expired")
	}
}

func TestRenderElsewhere(t *testing.T) {
	// Render may ignore dst; the body is then copied into the slot.
	own := []byte(strings.Repeat("y", 5000))
	s := newServer(t, Config{Render: func([]byte) []byte { return own }})
	for range 2 {
		if r := parseResponse(t, mustDrain(t, s), false); r.body != string(own) {
			t.Fatalf("body of %d bytes, want %d", len(r.body), len(own))
		}
	}
}

func mustDrain(t testing.TB, s *Server) string {
	t.Helper()
	_, raw := drain(t, s, "GET /metrics HTTP/1.1\r\n\r\n")
	return raw
}

func TestSlots(t *testing.T) {
	s := newServer(t, Config{Conns: 2})
	a, _ := s.Accept(10, 0)
	b, _ := s.Accept(11, 0)
	if _, err := s.Accept(12, 0); !errors.Is(err, ErrFull) {
		t.Fatalf("third Accept on 2 slots: %v, want ErrFull", err)
	}
	if s.Active() != 2 || a.FD() != 10 || b.FD() != 11 {
		t.Errorf("Active %d, FDs %d %d; want 2, 10, 11", s.Active(), a.FD(), b.FD())
	}
	s.Release(a)
	s.Release(a) // a double release must not free the slot twice
	if s.Active() != 1 || a.FD() != -1 || a.Want(0) != WantNone {
		t.Errorf("after Release: Active %d, FD %d, Want %d; want 1, -1, WantNone", s.Active(), a.FD(), a.Want(0))
	}
	c, err := s.Accept(13, 0)
	if err != nil || c != a {
		t.Errorf("Accept after Release: %p, %v; want the released slot %p", c, err, a)
	}
	if _, err := s.Accept(14, 0); !errors.Is(err, ErrFull) {
		t.Errorf("Accept with both slots busy after a double Release: %v, want ErrFull", err)
	}
	other := newServer(t, Config{Conns: 1})
	other.Release(b) // a Conn of another server is not ours to free
	if other.Active() != 0 || b.Want(0) != WantRead {
		t.Error("Release of a foreign Conn changed it")
	}
}

func TestNewServerConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  error
	}{
		{"defaults", Config{Render: renderTest}, nil},
		{"no render", Config{}, ErrConfig},
		{"negative conns", Config{Render: renderTest, Conns: -1}, ErrConfig},
		{"negative head", Config{Render: renderTest, MaxHead: -1}, ErrConfig},
		{"negative read timeout", Config{Render: renderTest, ReadTimeout: -1}, ErrConfig},
		{"negative write timeout", Config{Render: renderTest, WriteTimeout: -1}, ErrConfig},
		{"negative chunk", Config{Render: renderTest, WriteChunk: -1}, ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewServer(tt.cfg)
			if !errors.Is(err, tt.err) {
				t.Fatalf("NewServer error = %v, want %v", err, tt.err)
			}
			if err == nil && (s.Slots() != DefaultConns || s.cfg.MaxHead != DefaultMaxHead) {
				t.Errorf("Slots %d, MaxHead %d; want defaults", s.Slots(), s.cfg.MaxHead)
			}
		})
	}
}

func TestHeaderFitsRoom(t *testing.T) {
	for _, st := range []int{200, 400, 401, 404, 405, 431, 503, 505, 999} {
		h := appendHeader(nil, st, ContentType, int(^uint(0)>>1))
		if len(h) > headerRoom {
			t.Errorf("header for %d is %d bytes, more than headerRoom %d", st, len(h), headerRoom)
		}
	}
}

func TestHeadEnd(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int
	}{
		{"crlf", "GET / HTTP/1.1\r\n\r\nrest", 18},
		{"lf", "GET / HTTP/1.1\n\nrest", 16},
		{"mixed", "GET / HTTP/1.1\r\n\nrest", 17},
		{"incomplete", "GET / HTTP/1.1\r\n\r", -1},
		{"cr cr is not a blank line", "GET / HTTP/1.1\r\r\n", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := headEnd([]byte(tt.in), 0); got != tt.want {
				t.Errorf("headEnd(%q) = %d, want %d", tt.in, got, tt.want)
			}
		})
	}
}

func TestServeNoAllocs(t *testing.T) {
	rows := makePidRows(4096)
	var e Encoder
	s := newServer(t, Config{Token: []byte(testToken), Render: func(dst []byte) []byte { return renderPids(&e, dst, rows) }})
	req := []byte("GET /metrics HTTP/1.1\r\nAuthorization: Bearer " + testToken + "\r\n\r\n")
	serve := func() {
		c, _ := s.Accept(3, 0)
		c.Feed(req, 0)
		for c.Want(0) == WantWrite {
			c.Wrote(len(c.Pending()))
		}
		s.Release(c)
	}
	serve() // warm-up: the slot's buffer grows to the exposition
	if got := testing.AllocsPerRun(20, serve); got != 0 {
		t.Errorf("serving a 4096-pid /metrics: %v allocs per request, want 0", got)
	}
	if !bytes.Contains(s.Conn(0).buf, []byte(`varta_last_beat_age_seconds{pid="28965"}`)) {
		t.Error("the slot's buffer does not hold the exposition")
	}
}

func BenchmarkServeMetrics4096Pids(b *testing.B) {
	rows := makePidRows(4096)
	var e Encoder
	s := newServer(b, Config{Render: func(dst []byte) []byte { return renderPids(&e, dst, rows) }})
	req := []byte("GET /metrics HTTP/1.1\r\nHost: localhost:9090\r\nAccept: text/plain\r\n\r\n")
	serve := func() {
		c, _ := s.Accept(3, 0)
		c.Feed(req, 0)
		for c.Want(0) == WantWrite {
			c.Wrote(len(c.Pending()))
		}
		s.Release(c)
	}
	serve() // warm-up: the slot's buffer grows to the exposition
	b.ReportAllocs()
	for b.Loop() {
		serve()
	}
}

func BenchmarkServeHealthz(b *testing.B) {
	s := newServer(b, Config{Token: []byte(testToken)})
	req := []byte("GET /healthz HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer " + testToken + "\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		c, _ := s.Accept(3, 0)
		c.Feed(req, 0)
		c.Wrote(len(c.Pending()))
		s.Release(c)
	}
}

// FuzzFeed feeds any bytes, in chunks of any size, and checks that the
// responder never panics, never overruns its head buffer, and that whatever
// it answers is a well-framed response.
func FuzzFeed(f *testing.F) {
	f.Add([]byte("GET /metrics HTTP/1.1\r\nAuthorization: Bearer "+testToken+"\r\n\r\n"), uint8(3))
	f.Add([]byte("HEAD /healthz?x HTTP/1.0\n\n"), uint8(1))
	f.Add([]byte("\r\nPOST / HTTP/2.0\r\nA : b\r\n\r\n"), uint8(0))
	s := newServer(f, Config{MaxHead: 256, Token: []byte(testToken)})
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		c, _ := s.Accept(3, 0)
		defer s.Release(c)
		step := int(chunk) + 1
		for len(in) > 0 && c.Want(0) == WantRead {
			n := min(step, len(in))
			c.Feed(in[:n], 0)
			in = in[n:]
		}
		if len(c.head) > 256 {
			t.Fatalf("head holds %d bytes, MaxHead is 256", len(c.head))
		}
		if c.Want(0) != WantWrite {
			return
		}
		raw := string(c.out)
		_, body, _ := strings.Cut(raw, "\r\n\r\n")
		r := parseResponse(t, raw, body == "") // an empty body is a HEAD's
		if r.status != c.Status() {
			t.Errorf("response status %d, Status() %d", r.status, c.Status())
		}
	})
}

// TestMaxBodyGrowsOnce: with MaxBody, the first /metrics request makes the
// slot's buffer that large and Render appends in place; a body growing by
// appending would instead reallocate at every doubling and leave each old
// buffer behind as garbage.
func TestMaxBodyGrowsOnce(t *testing.T) {
	const maxBody = 200 << 10
	size := 150 << 10
	grown := 0
	line := []byte(strings.Repeat("z", 99) + "\n")
	s := newServer(t, Config{MaxBody: maxBody, Render: func(dst []byte) []byte {
		before := cap(dst)
		for range size / 100 {
			dst = append(dst, line...)
		}
		if cap(dst) != before {
			grown++
		}
		return dst
	}})
	if r := parseResponse(t, mustDrain(t, s), false); len(r.body) != size {
		t.Fatalf("body of %d bytes, want %d", len(r.body), size)
	}
	if grown != 0 {
		t.Fatalf("Render's buffer was reallocated %d times, want 0 with MaxBody %d", grown, maxBody)
	}
	if n := testing.AllocsPerRun(5, func() { mustDrainQuiet(s) }); n != 0 {
		t.Errorf("a second request of the same size: %v allocations, want 0", n)
	}
}

// mustDrainQuiet runs one /metrics request without the test helpers'
// allocations, for AllocsPerRun.
func mustDrainQuiet(s *Server) {
	c, err := s.Accept(42, 0)
	if err != nil {
		panic(err)
	}
	c.Feed(metricsRequest, 1)
	for c.Want(2) == WantWrite {
		c.Wrote(len(c.Pending()))
	}
	s.Release(c)
}

var metricsRequest = []byte("GET /metrics HTTP/1.1\r\n\r\n")
