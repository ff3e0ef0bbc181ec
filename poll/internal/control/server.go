package control

import (
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/exitwatch"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/wait"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/recovery/resetreason"
)

// Limits of the control socket.
const (
	// MaxConns is how many clients are served at once: status is an
	// operator's command, not a scrape target.
	MaxConns = 4
	// RequestMax bounds a request line, newline included.
	RequestMax = 64
	// OutCap is each connection's response buffer: a status response is
	// rendered into it a chunk at a time as the client reads.
	OutCap = 8 << 10
	// Timeout bounds a connection's whole exchange, from accept to the
	// last byte of the response read: a client that stops reading is cut
	// off then. A status of 65536 agents is a few MB, read in well
	// under a second by a client that reads.
	Timeout = 5 * time.Second
	// acceptsPerTick bounds the connections taken per loop iteration.
	acceptsPerTick = 4
	// fillsPerReady bounds how many buffers one ready event renders and
	// writes, so a fast reader of a huge table still yields the loop.
	fillsPerReady = 4
	// acceptPause keeps the listener out of the wait after accept(2)
	// failed for want of a descriptor or memory: the queued connection
	// keeps it readable, and polling it again at once would spin the loop.
	acceptPause = int64(100 * time.Millisecond)
)

// Mode is the control socket's file mode: the owner only (root passes the
// file mode anyway; SO_PEERCRED admits our uid and 0 only).
const Mode = 0o600

// Config is what the server reads and acts on; every pointer is owned by
// the observer loop, as the Server is.
type Config struct {
	Path     string            // the socket; "" serves none (bookkeeping only)
	Tracker  *track.Tracker    // the pid table
	Exits    *exitwatch.Watch  // nil without exit detection
	Exited   *track.Slot       // the slot --on-exit recover removed last, for recovery's hooks
	Rec      *recovery.Manager // nil without a recovery command
	Eligible func(track.Origin) bool
	Clock    func() int64 // the observer's clock, ns
	Start    int64        // the observer clock at start
	Version  string
	Log      *sink.Logger
	// Reset, if set, is the reset-reason file's record for the summary
	// (--reset-reason-file); ok false without one.
	Reset func() (resetreason.File, bool)
	// Declared, if set, lists the declared agents (--agents-file) for the
	// rows of those missing.
	Declared Declared
}

// Declared is the declared agents as status shows them: Missing(i) is
// agent i's name and whether it is missing now, for i below Len.
type Declared interface {
	Len() int
	Missing(i int) (name string, missing bool)
	Name(sl *track.Slot) string
}

type phase uint8

const (
	free phase = iota
	reading
	writing
)

// conn is one connection slot.
type conn struct {
	fd       int
	gen      uint32 // bumped when the slot's fd is closed
	phase    phase
	deadline int64
	req      [RequestMax]byte
	reqN     int
	out      []byte // capacity OutCap, rendered and not yet written
	off      int    // written of out
	resp     respKind
	started  bool   // the header (or the JSON opening) is rendered
	done     bool   // the whole response is rendered
	cursor   uint32 // status: the rows rendered so far are those of pids ≤ cursor
	rows     int    // status: rows rendered
	mcur     int    // status: declared agents looked at for missing rows, after the pids
	paused   int    // status: paused agents among them
}

// Server is the control socket. Its zero value serves nothing and its
// hooks (Hook) answer "not paused"; Listen makes it serve.
type Server struct {
	cfg   Config
	ready bool
	ln    *listen.StreamUDS
	uid   uint32
	conns []conn
	c     Counts
	// snap is every tracked pid in increasing order, taken when a status
	// request arrives (one sort, as a metrics scrape does); connections
	// stream from it by their pid cursor, so a newer snapshot taken for
	// another request serves them too. Its room is the table's capacity.
	snap []uint32
	// nextDenyLog rate-limits the log line of refused peers to one a
	// second: a local user's loop must not flood the log.
	nextDenyLog int64
	pausedUntil int64 // the listener is out of the wait until then (acceptPause)
}

// Counts are the server's totals, for the metrics.
type Counts struct {
	Requests [numReqs]uint64 // served requests, by kind (reqLabels)
	Busy     uint64          // connections refused: every slot taken
	Denied   uint64          // connections refused: the peer's uid is neither ours nor root
	Expired  uint64          // connections cut off at Timeout
	NoFds    uint64          // accept(2) failures for want of a descriptor or memory
	Paused   uint64          // agents whose recovery a pause held
	Resumed  uint64          // agents a resume released
	Released uint64          // held recoveries run at resume (the agent still stalled)
}

// Listen binds the socket (unless cfg.Path is "") and makes the Server
// serve. Call it once, after the observer's own socket is bound (which
// refuses to start a second observer), with every table in cfg made.
func (s *Server) Listen(cfg Config) error {
	s.cfg, s.ready, s.uid = cfg, true, uint32(os.Geteuid())
	if cfg.Path == "" {
		return nil
	}
	ln, err := listen.ListenStream(cfg.Path, Mode, MaxConns)
	if err != nil {
		return err
	}
	s.ln = ln
	s.snap = make([]uint32, 0, cfg.Tracker.Capacity())
	s.conns = make([]conn, MaxConns)
	for i := range s.conns {
		s.conns[i] = conn{fd: -1, out: make([]byte, 0, OutCap)}
	}
	cfg.Log.Info("serving the control socket", sink.Str("path", cfg.Path))
	return nil
}

// MaxFds is the most fds Register adds: the listener and every slot.
func (s *Server) MaxFds() int {
	if s.ln == nil {
		return 0
	}
	return 1 + MaxConns
}

// Register closes the connections past their deadline, then adds the
// listener and every open connection to w, each waiting for what it needs
// next.
func (s *Server) Register(w wait.Waiter, now int64) {
	if s.ln == nil {
		return
	}
	if now >= s.pausedUntil {
		w.Add(s.ln.Fd(), wait.In, 0, s, -1)
	}
	for i := range s.conns {
		c := &s.conns[i]
		if c.phase == free {
			continue
		}
		if now >= c.deadline {
			s.c.Expired++
			s.close(c) // a Unix stream has no reset: the client sees the summary line missing
			continue
		}
		ev := int16(wait.In)
		if c.phase == writing {
			ev = wait.Out
		}
		w.Add(c.fd, ev, c.gen, s, int32(i))
	}
}

// Deadline is the earliest connection deadline or the end of an accept
// pause, or d when that is sooner (or there is none).
func (s *Server) Deadline(d int64) int64 {
	if s.pausedUntil != 0 && s.pausedUntil < d {
		d = s.pausedUntil
	}
	for i := range s.conns {
		if c := &s.conns[i]; c.phase != free && c.deadline < d {
			d = c.deadline
		}
	}
	return d
}

// Ready handles what the wait reported for the listener (arg -1) or a
// connection (wait.Handler).
func (s *Server) Ready(arg int32, revents int16, now int64) {
	switch {
	case arg < 0:
		s.accept(now)
	case int(arg) < len(s.conns) && s.conns[arg].phase != free:
		s.service(&s.conns[arg], revents, now)
	}
}

func (s *Server) accept(now int64) {
	for range acceptsPerTick {
		fd, _, err := unix.Accept4(s.ln.Fd(), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
		switch err {
		case nil:
		case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
			s.c.NoFds++
			s.pausedUntil = now + acceptPause
			return
		default:
			return // EAGAIN: none left; anything else: that client's, gone from the queue
		}
		if cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED); err != nil ||
			cred.Uid != s.uid && cred.Uid != 0 {
			s.c.Denied++
			refuse(fd, "error: only uid "+itoa(uint64(s.uid))+" and root may use the control socket\n")
			if now >= s.nextDenyLog {
				s.nextDenyLog = now + int64(time.Second)
				var uid int64 = -1
				if cred != nil {
					uid = int64(cred.Uid)
				}
				s.cfg.Log.Warn("refused a control socket client of another user", sink.Num("uid", uid),
					sink.Num("refused_total", int64(s.c.Denied)))
			}
			continue
		}
		c := s.slot()
		if c == nil {
			s.c.Busy++
			refuse(fd, "error: busy, "+itoa(MaxConns)+" clients are being served; retry\n")
			continue
		}
		*c = conn{fd: fd, gen: c.gen, phase: reading, deadline: now + int64(Timeout), out: c.out[:0]}
	}
}

// refuse answers a connection that is not served with one line and
// closes it. The request already queued is read first: closing a Unix
// stream socket with unread data resets the peer, which would then lose
// the line.
func refuse(fd int, msg string) {
	var req [RequestMax]byte
	unix.Read(fd, req[:])
	unix.Write(fd, []byte(msg))
	unix.Close(fd)
}

// slot is a free connection slot, or nil.
func (s *Server) slot() *conn {
	for i := range s.conns {
		if s.conns[i].phase == free {
			return &s.conns[i]
		}
	}
	return nil
}

// service reads c's request, or writes its response and renders more
// while the client takes it, a bounded amount per call.
func (s *Server) service(c *conn, revents int16, now int64) {
	if c.phase == reading {
		n, err := unix.Read(c.fd, c.req[c.reqN:])
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
			return
		case err != nil || n == 0 && c.reqN == 0:
			s.close(c)
			return
		}
		c.reqN += n
		line, complete := requestLine(c.req[:c.reqN], n == 0)
		if !complete {
			if c.reqN == len(c.req) {
				c.out = append(c.out, "error: request longer than "+itoa(RequestMax)+" bytes\n"...)
				c.done, c.phase = true, writing
				s.c.Requests[reqBad]++
			}
			return
		}
		s.handle(c, line, now)
		c.phase = writing
	}
	for range fillsPerReady {
		if !c.done && len(c.out) == c.off {
			c.out, c.off = c.out[:0], 0
			s.fill(c, now)
		}
		n, err := unix.Write(c.fd, c.out[c.off:])
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		if err != nil {
			s.close(c) // the client went away
			return
		}
		c.off += n
		if c.off < len(c.out) {
			return // the socket is full: wait until it is writable again
		}
		if c.done {
			s.close(c)
			return
		}
	}
}

// requestLine is the request up to its newline (a carriage return before
// it dropped); at end of stream, whatever came.
func requestLine(b []byte, eof bool) ([]byte, bool) {
	for i, ch := range b {
		if ch == '\n' {
			b = b[:i]
			if len(b) > 0 && b[len(b)-1] == '\r' {
				b = b[:len(b)-1]
			}
			return b, true
		}
	}
	return b, eof
}

func (s *Server) close(c *conn) {
	unix.Close(c.fd)
	c.fd, c.phase = -1, free
	c.gen++
}

// Close closes every connection and the listener, removing the socket
// file; safe on a Server that never listened.
func (s *Server) Close() {
	for i := range s.conns {
		if s.conns[i].phase != free {
			s.close(&s.conns[i])
		}
	}
	s.ln.Close()
	s.ln = nil
}

// Counts returns the server's totals.
func (s *Server) Counts() Counts { return s.c }

// itoa is strconv.FormatUint, for messages.
func itoa(v uint64) string {
	var b [20]byte
	return string(appendUint(b[:0], v))
}
