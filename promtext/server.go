package promtext

import (
	"crypto/sha256"
	"errors"
	"time"
)

// Defaults for the zero fields of Config.
const (
	DefaultConns        = 16
	DefaultMaxHead      = 4 << 10
	DefaultReadTimeout  = 2 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultWriteChunk   = 64 << 10
)

var (
	// ErrFull is returned by Server.Accept when every slot is busy; the
	// caller closes the new fd.
	ErrFull = errors.New("promtext: every connection slot is busy")
	// ErrConfig is returned by NewServer for a nil Render or a negative
	// limit.
	ErrConfig = errors.New("promtext: invalid server config: Render is nil or a limit is negative")
)

// Config configures a Server. Zero limits take the Default values.
type Config struct {
	// Render appends the /metrics body to dst and returns it. Handing back
	// an extension of dst lets the response be written without a copy.
	Render func(dst []byte) []byte
	// Alive answers /healthz: true gives 200 "ok", false 503. Nil means
	// always alive.
	Alive func() bool
	// Token, when not empty, is the bearer token every request must carry
	// (Authorization: Bearer <token>), /healthz included. It is compared
	// byte for byte: trim a token file's trailing newline first.
	Token []byte

	// MaxBody is the largest /metrics body Render is expected to return.
	// A connection's response buffer grows to it at once, on its first
	// /metrics request, instead of doubling as Render appends: doubling
	// leaves garbage of the body's size behind, and the pages of a fresh
	// buffer cost memory only once written. 0: grow as needed.
	MaxBody int

	Conns        int           // connection slots; one more is refused with ErrFull
	MaxHead      int           // request head limit in bytes; a larger head gets 431
	ReadTimeout  time.Duration // from Accept until the head is complete (slowloris)
	WriteTimeout time.Duration // from the complete head until the response is written
	WriteChunk   int           // most bytes Pending offers at once, so one scrape cannot hog a tick
}

// Want is what a Conn needs from the poll loop next. It is also the Conn's
// state; only Want(now) adds the deadline.
type Want uint8

const (
	WantNone  Want = iota // a free slot: do not poll
	WantRead              // poll for POLLIN, read, then Feed
	WantWrite             // poll for POLLOUT, write Pending, then Wrote
	WantClose             // close the fd, then Release the Conn
)

// headerRoom is the space left in front of each response body for the
// status line and headers, so that a body rendered in place needs no copy.
// The longest header this package writes is under 200 bytes.
const headerRoom = 256

// Server is a fixed pool of HTTP/1.x connection slots serving /metrics and
// /healthz. It makes no system calls: the caller's poll loop owns the
// listening socket and every accepted fd (non-blocking, CLOEXEC), and
// drives the slots with now, its clock in nanoseconds:
//
//	// Before poll(2), for i in 0..srv.Slots()-1, c := srv.Conn(i):
//	switch c.Want(now) {
//	case WantRead:  poll c.FD() for POLLIN
//	case WantWrite: poll c.FD() for POLLOUT
//	case WantClose: close(c.FD()); srv.Release(c) // c.Expired(now): timed out
//	}
//	if d, ok := srv.NextDeadline(); ok { timeout = min(timeout, d-now) }
//
//	// After poll(2). Listener POLLIN, a bounded number of times per tick:
//	fd := accept4(lfd, SOCK_NONBLOCK|SOCK_CLOEXEC)
//	if _, err := srv.Accept(fd, now); err != nil { close(fd) } // ErrFull
//
//	// A conn with any revents (POLLIN, POLLOUT, POLLHUP, POLLERR):
//	if c.Want(now) == WantRead {
//		n, err := read(c.FD(), scratch)
//		// EAGAIN, EINTR: skip c this tick; EOF or error: close, Release
//		c.Feed(scratch[:n], now)
//	}
//	if c.Want(now) == WantWrite {
//		n, err := send(c.FD(), c.Pending(), MSG_NOSIGNAL)
//		// EAGAIN, EINTR: skip; another error: close, Release
//		c.Wrote(n)
//	}
//	if c.Want(now) == WantClose { close(c.FD()); srv.Release(c) }
//
// Writing in the same tick as the Feed that completes the head saves a poll
// round, as the socket buffer usually takes the whole response at once.
// Each slot costs at most one read, one write of Config.WriteChunk bytes and
// one render per tick, so the loop's work for metrics is bounded by
// Config.Conns. server_test.go holds a complete loop of this shape.
type Server struct {
	cfg      Config
	hasToken bool
	token    [sha256.Size]byte // digest of Config.Token; comparing digests hides its length
	conns    []Conn
	free     []int32 // free slots, a stack so the warmest response buffer is reused first
	hdr      [headerRoom]byte

	unauthorized uint64 // requests answered 401
}

// Unauthorized counts the requests answered 401: the bearer token was
// missing or wrong.
func (s *Server) Unauthorized() uint64 { return s.unauthorized }

// NewServer allocates every slot and request buffer of cfg.
func NewServer(cfg Config) (*Server, error) {
	if cfg.Render == nil || cfg.Conns < 0 || cfg.MaxHead < 0 || cfg.MaxBody < 0 || cfg.ReadTimeout < 0 ||
		cfg.WriteTimeout < 0 || cfg.WriteChunk < 0 {
		return nil, ErrConfig
	}
	cfg.Conns = orDefault(cfg.Conns, DefaultConns)
	cfg.MaxHead = orDefault(cfg.MaxHead, DefaultMaxHead)
	cfg.ReadTimeout = orDefault(cfg.ReadTimeout, DefaultReadTimeout)
	cfg.WriteTimeout = orDefault(cfg.WriteTimeout, DefaultWriteTimeout)
	cfg.WriteChunk = orDefault(cfg.WriteChunk, DefaultWriteChunk)

	s := &Server{cfg: cfg, conns: make([]Conn, cfg.Conns), free: make([]int32, cfg.Conns)}
	if len(cfg.Token) > 0 {
		s.hasToken, s.token = true, sha256.Sum256(cfg.Token)
	}
	s.cfg.Token = nil // only the digest is kept
	const firstBody = 1 << 10
	heads := make([]byte, cfg.Conns*cfg.MaxHead)
	bufs := make([]byte, cfg.Conns*(headerRoom+firstBody))
	for i := range s.conns {
		h, b := i*cfg.MaxHead, i*(headerRoom+firstBody)
		s.conns[i] = Conn{
			srv: s, slot: int32(i), fd: -1,
			head: heads[h:h:(h + cfg.MaxHead)],
			buf:  bufs[b:(b + headerRoom + firstBody):(b + headerRoom + firstBody)],
		}
		s.free[cfg.Conns-1-i] = int32(i) // slot 0 on top
	}
	return s, nil
}

func orDefault[T int | time.Duration](v, def T) T {
	if v == 0 {
		return def
	}
	return v
}

// Slots returns the number of connection slots.
func (s *Server) Slots() int { return len(s.conns) }

// Conn returns slot i, 0 <= i < Slots(); a free slot's Want is WantNone.
func (s *Server) Conn(i int) *Conn { return &s.conns[i] }

// Active returns the number of slots in use.
func (s *Server) Active() int { return len(s.conns) - len(s.free) }

// Accept takes a free slot for the accepted socket fd at time now, in
// nanoseconds on the loop's monotonic clock. It returns ErrFull when no
// slot is free; the caller then closes fd. The Server never closes fd.
func (s *Server) Accept(fd int, now int64) (*Conn, error) {
	n := len(s.free)
	if n == 0 {
		return nil, ErrFull
	}
	c := &s.conns[s.free[n-1]]
	s.free = s.free[:n-1]
	c.fd, c.state, c.status = fd, WantRead, 0
	c.head, c.out = c.head[:0], nil
	c.deadline = now + int64(s.cfg.ReadTimeout)
	return c, nil
}

// Release returns c's slot to the pool once the caller has closed its fd.
// Releasing a free slot does nothing.
func (s *Server) Release(c *Conn) {
	if c.srv != s || c.state == WantNone {
		return
	}
	c.state, c.fd, c.out = WantNone, -1, nil
	s.free = append(s.free, c.slot)
}

// NextDeadline returns the earliest deadline of a reading or writing
// connection, to bound the loop's poll timeout; ok is false when there is
// none.
func (s *Server) NextDeadline() (deadline int64, ok bool) {
	for i := range s.conns {
		c := &s.conns[i]
		if (c.state == WantRead || c.state == WantWrite) && (!ok || c.deadline < deadline) {
			deadline, ok = c.deadline, true
		}
	}
	return deadline, ok
}
