package promtext

import (
	"crypto/sha256"
	"crypto/subtle"
	"strconv"
)

// Conn is one connection slot: the request read so far, then the response
// still to write. Its methods are called by the poll loop; see Server.
type Conn struct {
	srv      *Server
	slot     int32
	fd       int
	state    Want
	status   int   // response status, 0 until the head is answered
	deadline int64 // read deadline while reading, write deadline while writing
	head     []byte
	buf      []byte // headerRoom bytes, then the body; reused, grown to the largest response
	out      []byte // the part of buf still to write
}

// FD returns the fd given to Accept, or -1 for a free slot.
func (c *Conn) FD() int { return c.fd }

// Status returns the status code of the response, or 0 while the request
// is incomplete. A Conn closed with status 0 never sent a whole head.
func (c *Conn) Status() int { return c.status }

// Want reports what c needs next at time now: WantClose once its read or
// write deadline has passed, else its state.
func (c *Conn) Want(now int64) Want {
	if c.Expired(now) {
		return WantClose
	}
	return c.state
}

// Deadline is when the connection's current phase times out (reading
// the head, or writing the response), in the caller's ns.
func (c *Conn) Deadline() int64 { return c.deadline }

// Expired reports whether c's deadline passed before its response was
// written: the head did not arrive within ReadTimeout (slowloris), or the
// peer did not take the response within WriteTimeout. The loop may count
// it, and may close with SO_LINGER 0 so that the kernel drops the unsent
// bytes at once instead of keeping them for a peer that does not read.
func (c *Conn) Expired(now int64) bool {
	return (c.state == WantRead || c.state == WantWrite) && now >= c.deadline
}

// Feed takes bytes read from the socket. When they complete the request
// head, Feed answers it (calling Render or Alive) and c wants to write;
// bytes after the head, and bytes fed in any other state, are ignored. A
// head that fills Config.MaxHead without ending is answered with 431; if
// the client is still sending then, closing the fd with input unread makes
// the kernel send a reset, which may overtake the 431. Scrapers send small
// heads, so the responder does not linger to drain.
func (c *Conn) Feed(p []byte, now int64) {
	if c.state != WantRead {
		return
	}
	old := len(c.head)
	p = p[:min(len(p), cap(c.head)-old)]
	c.head = append(c.head, p...)
	if end := headEnd(c.head, old); end >= 0 {
		r := parseHead(c.head[:end])
		c.srv.respond(c, &r, now)
	} else if len(c.head) == cap(c.head) {
		c.srv.respond(c, &request{status: 431}, now)
	}
}

// Pending returns the next bytes to write: at most Config.WriteChunk of
// the response, or nil when c is not writing.
func (c *Conn) Pending() []byte {
	if c.state != WantWrite {
		return nil
	}
	return c.out[:min(len(c.out), c.srv.cfg.WriteChunk)]
}

// Wrote records that n bytes of Pending were written. Once the whole
// response is out, c wants to close: every response says Connection: close.
func (c *Conn) Wrote(n int) {
	if c.state != WantWrite || n <= 0 {
		return
	}
	c.out = c.out[min(n, len(c.out)):]
	if len(c.out) == 0 {
		c.state = WantClose
	}
}

// respond builds the whole response to r in c.buf and starts writing it.
func (s *Server) respond(c *Conn, r *request, now int64) {
	status := s.status(r)
	body := c.buf[headerRoom:headerRoom]
	ctype := "text/plain; charset=utf-8"
	switch {
	case status == 200 && r.route == routeMetrics:
		if len(c.buf) < headerRoom+s.cfg.MaxBody {
			c.buf = make([]byte, headerRoom+s.cfg.MaxBody)
			body = c.buf[headerRoom:headerRoom]
		}
		body, ctype = s.cfg.Render(body), ContentType
	case status == 200:
		body = append(body, "ok\n"...)
	default:
		body = append(body, statusText(status)...)
		body = append(body, '\n')
	}
	body = c.placeBody(body)
	hdr := appendHeader(s.hdr[:0], status, ctype, len(body))
	start, end := headerRoom-len(hdr), headerRoom+len(body)
	copy(c.buf[start:], hdr)
	if r.method == methodHead {
		end = headerRoom
	}
	c.out, c.status = c.buf[start:end], status
	c.state, c.deadline = WantWrite, now+int64(s.cfg.WriteTimeout)
}

// placeBody makes sure body sits at c.buf[headerRoom:]. A body appended in
// place is already there; one that outgrew c.buf (or that Render built
// elsewhere) is copied, into a buffer grown to the new body's capacity so
// the next render of that size fits in place.
func (c *Conn) placeBody(body []byte) []byte {
	if len(body) == 0 || &body[0] == &c.buf[headerRoom] {
		return body
	}
	if headerRoom+len(body) > len(c.buf) {
		c.buf = make([]byte, headerRoom+cap(body))
	}
	return c.buf[headerRoom : headerRoom+copy(c.buf[headerRoom:], body)]
}

// status decides the answer: a malformed head first, then the method, the
// token (so that without it no path is told from another), then the route.
func (s *Server) status(r *request) int {
	switch {
	case r.status != 0:
		return r.status
	case r.method == methodOther:
		return 405
	case s.hasToken && !s.authorized(r):
		s.unauthorized++
		return 401
	case r.route == routeMetrics:
		return 200
	case r.route == routeHealthz:
		if s.cfg.Alive == nil || s.cfg.Alive() {
			return 200
		}
		return 503
	}
	return 404
}

// authorized compares the bearer token with the configured one in
// constant time; comparing SHA-256 digests keeps the token's length secret
// too, which ConstantTimeCompare alone would leak.
func (s *Server) authorized(r *request) bool {
	tok, ok := bearerToken(r.auth)
	if !ok {
		return false
	}
	sum := sha256.Sum256(tok)
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

func appendHeader(dst []byte, status int, ctype string, n int) []byte {
	dst = append(dst, "HTTP/1.1 "...)
	dst = strconv.AppendInt(dst, int64(status), 10)
	dst = append(dst, ' ')
	dst = append(dst, statusText(status)...)
	dst = append(dst, "\r\nContent-Type: "...)
	dst = append(dst, ctype...)
	dst = append(dst, "\r\nContent-Length: "...)
	dst = strconv.AppendInt(dst, int64(n), 10)
	dst = append(dst, "\r\nConnection: close\r\n"...)
	switch status {
	case 401:
		dst = append(dst, "WWW-Authenticate: Bearer\r\n"...)
	case 405:
		dst = append(dst, "Allow: GET, HEAD\r\n"...)
	}
	return append(dst, "\r\n"...)
}

func statusText(status int) string {
	switch status {
	case 200:
		return "OK"
	case 400:
		return "Bad Request"
	case 401:
		return "Unauthorized"
	case 404:
		return "Not Found"
	case 405:
		return "Method Not Allowed"
	case 431:
		return "Request Header Fields Too Large"
	case 503:
		return "Service Unavailable"
	case 505:
		return "HTTP Version Not Supported"
	}
	return "Internal Server Error"
}
