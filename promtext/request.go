package promtext

import "bytes"

// route is the resource a request names.
type route uint8

const (
	routeOther route = iota
	routeMetrics
	routeHealthz
)

// request is what the responder needs from a request head. Slices alias the
// connection's head buffer, so parsing allocates nothing.
type request struct {
	status  int // non-zero when the head alone decides the answer (400, 505)
	method  int // methodGet, methodHead or methodOther
	route   route
	hasAuth bool   // an Authorization header was present
	http10  bool   // an HTTP/1.0 request: its client may not know chunked bodies
	auth    []byte // its value, trimmed
}

const (
	methodOther = iota
	methodGet
	methodHead
)

// headEnd returns the length of the head in b, up to and including the
// blank line that ends it, or -1 if b holds no blank line yet. Lines may end
// in CRLF or, tolerantly, a bare LF. Only line feeds at or after from are
// examined, so feeding a head one byte at a time stays linear.
func headEnd(b []byte, from int) int {
	for i := from; i < len(b); i++ {
		if b[i] != '\n' {
			continue
		}
		j := i - 1
		if j >= 0 && b[j] == '\r' {
			j--
		}
		if j >= 0 && b[j] == '\n' {
			return i + 1
		}
	}
	return -1
}

// parseHead parses a complete head as found by headEnd.
func parseHead(b []byte) request {
	// RFC 9112 §2.2: ignore empty lines before the request line (some
	// clients send a stray CRLF after a previous request's body).
	for len(b) > 0 && (b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	var r request
	line, rest := nextLine(b)
	r.status = r.parseRequestLine(line)
	for r.status == 0 {
		line, rest = nextLine(rest)
		if len(line) == 0 {
			break
		}
		r.status = r.parseHeader(line)
	}
	return r
}

// nextLine splits b after its first LF, dropping the line ending.
func nextLine(b []byte) (line, rest []byte) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil
	}
	line, rest = b[:i], b[i+1:]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, rest
}

// parseRequestLine reads "METHOD SP target SP HTTP/1.x" and returns 0, or
// the status that answers a bad line.
func (r *request) parseRequestLine(line []byte) int {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 || !isToken(line[:sp]) {
		return 400
	}
	method, rest := line[:sp], line[sp+1:]
	sp = bytes.IndexByte(rest, ' ')
	if sp <= 0 || rest[0] != '/' {
		// Only origin-form targets: nothing proxies a scrape.
		return 400
	}
	target, version := rest[:sp], rest[sp+1:]
	if st := versionStatus(version); st != 0 {
		return st
	}
	r.http10 = version[7] == '0'
	switch string(method) {
	case "GET":
		r.method = methodGet
	case "HEAD":
		r.method = methodHead
	}
	if q := bytes.IndexByte(target, '?'); q >= 0 {
		target = target[:q]
	}
	switch string(target) {
	case "/metrics":
		r.route = routeMetrics
	case "/healthz":
		r.route = routeHealthz
	}
	return 0
}

// versionStatus accepts HTTP/1.0, HTTP/1.1 and, as RFC 9110 §2.5 asks, any
// later 1.x; another major version gets 505 and anything else 400.
func versionStatus(v []byte) int {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' || !isDigit(v[5]) || !isDigit(v[7]) {
		return 400
	}
	if v[5] != '1' {
		return 505
	}
	return 0
}

// parseHeader reads one "name: value" field line and returns 0, or 400.
func (r *request) parseHeader(line []byte) int {
	colon := bytes.IndexByte(line, ':')
	// A leading space is an obsolete line folding and a space before the
	// colon a smuggling vector; RFC 9112 §5 says to reject both, and the
	// token check on the name does.
	if colon <= 0 || !isToken(line[:colon]) {
		return 400
	}
	if asciiEqualFold(line[:colon], "authorization") {
		if r.hasAuth {
			return 400 // two credentials: refuse rather than pick one
		}
		r.hasAuth, r.auth = true, trimOWS(line[colon+1:])
	}
	return 0
}

// bearerToken returns the token of an "Authorization: Bearer <token>"
// value; the scheme name is case-insensitive (RFC 9110 §11.1).
func bearerToken(v []byte) ([]byte, bool) {
	const scheme = "bearer"
	if len(v) <= len(scheme) || !asciiEqualFold(v[:len(scheme)], scheme) || v[len(scheme)] != ' ' {
		return nil, false
	}
	tok := trimOWS(v[len(scheme):])
	return tok, len(tok) > 0
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// asciiEqualFold compares b with the lower-case ASCII string lower,
// ignoring the case of b.
func asciiEqualFold(b []byte, lower string) bool {
	if len(b) != len(lower) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty RFC 9110 token (method and
// field names).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !isTchar(c) {
			return false
		}
	}
	return true
}

func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', isDigit(c):
		return true
	}
	switch c {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
