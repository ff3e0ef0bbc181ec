package sink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

const (
	// EventGenerations is how many rotated event files are kept: path.1
	// (newest) to path.5 (oldest), beside the live path.
	EventGenerations = 5

	// eventBufBytes bounds the lines held between flushes, and while the
	// disk is full: about 1500 lines.
	eventBufBytes = 64 << 10

	// eventMaxText bounds a free-text column (an io or ctrunc line's
	// text, before escaping), so a line always fits in eventMaxLine.
	eventMaxText = 128

	// eventMaxLine is the longest line: six columns of at most 20 digits,
	// "mismatch", "namespace_conflict" or eventMaxText bytes escaped (each
	// at most four), plus tabs.
	eventMaxLine = 3*20 + 10 + 8 + 4*eventMaxText + 6

	// EventFlushDelay is how long beat and decode lines wait in the
	// buffer before Due asks for a write: a steady trickle of beats then
	// costs one write(2) per interval instead of one per beat. With 50
	// agents at 1 Hz a write per beat was a sixth of the observer's CPU;
	// every 100 ms, a twentieth, and still 0.4 context switches a beat,
	// since a file write goes through the runtime's system-call hand-over
	// (it may block), which wakes the runtime's monitor thread; every
	// 250 ms, 0.16 (bench/: idle CPU), while a line still shows up in a
	// tail -f within a third of a second. Every other kind is due at
	// once, and a half-full buffer too. The owner's loop wakes for DueAt
	// (plus a slack) only when nothing else woke it first.
	EventFlushDelay = 250 * 1000 * 1000 // ns

	// BatchEventFlushDelay replaces EventFlushDelay for an observer in
	// batch mode (--batch-ms), which trades latency for fewer wakes:
	// each write still wakes the runtime's monitor thread (two context
	// switches), a third of a beat's cost at 100 ms ticks (bench/: idle
	// CPU). Stall, exit and the other urgent kinds still go out at once.
	BatchEventFlushDelay = 1000 * 1000 * 1000 // ns

	// eventFlushBytes makes a busy buffer due before the delay runs out.
	eventFlushBytes = eventBufBytes / 2
)

// The kinds of the second column (cmd/varta-watch/README.md §5): the
// Rust observer's seven, then this observer's own (exit, recovered), which
// SetUpstreamKinds leaves out.
const (
	eventBeat      = "beat"
	eventStall     = "stall"
	eventDecode    = "decode"
	eventIO        = "io"
	eventCtrunc    = "ctrunc"
	eventMismatch  = "mismatch"
	eventEviction  = "eviction"
	eventExit      = "exit"
	eventRecovered = "recovered"
	eventMissing   = "missing"
)

// MismatchReason is the last column of a mismatch line.
type MismatchReason string

const (
	MismatchAuthFailure       MismatchReason = "auth_failure"       // uid not allowed or frame pid != kernel pid
	MismatchOriginConflict    MismatchReason = "origin_conflict"    // a pid seen over two transports
	MismatchNamespaceConflict MismatchReason = "namespace_conflict" // sender in another pid namespace
)

// errEventNoProgress: the kernel accepted a fragment of a line and nothing
// more, without saying why. Treated as a failed write, so Flush cannot spin.
var errEventNoProgress = errors.New("short write left no room for a whole line (disk full or file size limit)")

// EventFile is the append-only event file of cmd/varta-watch/README.md §5: one
// tab-separated line per event,
//
//	<observer_ns>\t<kind>\t<pid>\t<nonce>\t<status>\t<payload>\n
//
// with "-" for absent columns. Events are formatted into a fixed buffer
// without allocating and written, whole lines only, by Flush, which the
// owner calls when Due says so: beat and decode lines may wait up to
// EventFlushDelay, every other kind goes out in the same tick. Write errors
// never block or stop the caller: unwritten lines stay buffered up to the
// buffer's bound, later ones are dropped and counted, and writing resumes
// when the disk has room again.
//
// All methods are no-ops on a nil *EventFile, so a disabled exporter needs
// no checks at the call sites. An EventFile is owned by one goroutine.
type EventFile struct {
	path string
	gens [EventGenerations + 1]string // path, path.1 ... path.5
	// out is the open file (out.fd, -1 once closed); when out.stream, a
	// line the output took only part of keeps its rest first in buf.
	out       outFd
	origin    int64 // observer_ns = now - origin
	maxBytes  int64 // 0: unbounded
	size      int64 // bytes in the live file, for rotation
	buf       []byte
	reopenDue bool  // the live path must be reopened (rotation or Reopen failed)
	torn      bool  // the file ends in a fragment that could not be cut off
	since     int64 // caller time the oldest buffered line was added
	delay     int64 // how long beat and decode lines may wait: EventFlushDelay unless set
	urgent    bool  // a buffered line is of a kind that must not wait
	errs      uint64
	dropped   uint64
	syncEvery int   // fdatasync after this many lines; 0: at rotation and Close only
	unsynced  int   // lines written since the last fdatasync
	upstream  bool  // write only the Rust observer's seven kinds
	wall      int64 // the wall time (Unix ns) at origin, added to every time column; 0: observer_ns
	err       error // the last failure, with errCause the raw cause it wraps,
	errCause  error // so a repeated failure does not allocate again
}

// OpenEventFile opens (creating, mode 0600) the event file at path for
// appending. It refuses a symlink, anything but a regular file, and a
// file with more than one hard link. Lines carry now - origin, in the
// caller's clock: origin is the caller's now at open. maxBytes > 0 rotates
// the file before it would grow beyond maxBytes.
func OpenEventFile(path string, maxBytes int64, origin int64) (*EventFile, error) {
	if path == EventStdout {
		return openEventStdout(origin)
	}
	fd, size, err := eventOpen(path)
	if err != nil {
		return nil, err
	}
	e := &EventFile{path: path, out: outFd{fd: fd}, origin: origin, delay: EventFlushDelay, maxBytes: max(maxBytes, 0), size: size,
		buf: make([]byte, 0, eventBufBytes)}
	e.gens[0] = path
	for g := 1; g <= EventGenerations; g++ {
		e.gens[g] = path + "." + strconv.Itoa(g)
	}
	return e, nil
}

// SetSyncEvery makes the file fdatasync'ed after every n lines written
// (--export-file-sync-every); 0, the default, syncs at rotation and Close
// only. Standard output is never synced.
func (e *EventFile) SetSyncEvery(n int) {
	if e != nil && e.path != EventStdout {
		e.syncEvery = max(n, 0)
	}
}

// SetUpstreamKinds limits the file to the Rust observer's seven kinds
// (--export-kinds upstream): this observer's own kinds (exit) are not
// written, for a parser that knows only those.
func (e *EventFile) SetUpstreamKinds(on bool) {
	if e != nil {
		e.upstream = on
	}
}

// SetWallTime makes the first column Unix-epoch nanoseconds instead of
// observer_ns (--export-time wall): wallAtOrigin is the wall time, in Unix
// nanoseconds, at which the caller's clock read origin. The wall time is
// taken once, so a later step of the wall clock does not reorder lines.
func (e *EventFile) SetWallTime(wallAtOrigin int64) {
	if e != nil {
		e.wall = wallAtOrigin
	}
}

// EventStdout as the path writes events to standard output (for a first
// look, or a supervisor that collects stdout); it never rotates or reopens.
const EventStdout = "-"

// openEventStdout writes events to standard output through a handle whose
// writes never block the loop (openOut): a pipe or terminal whose reader
// stops costs buffered, then dropped and counted, lines, never a stall
// raised late.
func openEventStdout(origin int64) (*EventFile, error) {
	o, err := openOut(1)
	switch {
	case err == errNoReader:
		return nil, eventErr("standard output", "is a pipe that nobody reads", "start the reader first, or give --export-file a path", nil)
	case err != nil:
		return nil, eventErr("standard output", "cannot open it for writing",
			"start varta-watch with standard output open, or give --export-file a path", err)
	}
	return &EventFile{path: EventStdout, out: o, origin: origin, delay: EventFlushDelay, buf: make([]byte, 0, eventBufBytes)}, nil
}

func eventErr(path, problem, hint string, err error) error {
	return &sysfile.Error{What: "event file", Path: path, Problem: problem, Hint: hint, Err: err}
}

func eventOpen(path string) (fd int, size int64, err error) {
	// O_NONBLOCK: a FIFO planted at the path must not hang the open.
	fd, err = unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|
		unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	switch err {
	case nil:
	case unix.EISDIR:
		return -1, 0, eventErr(path, "is a directory, not a regular file", "give the path of a regular file", nil)
	case unix.ELOOP:
		return -1, 0, eventErr(path, "is a symlink, which is never followed", "give the real file's path", nil)
	case unix.ENOENT:
		return -1, 0, eventErr(path, "cannot create it", "create the directory "+filepath.Dir(path)+" first", os.NewSyscallError("open", err))
	case unix.EACCES, unix.EPERM, unix.EROFS:
		return -1, 0, eventErr(path, "cannot open it for appending", "run as a user that may write there, or choose another path", os.NewSyscallError("open", err))
	default:
		return -1, 0, eventErr(path, "cannot open it for appending", "", os.NewSyscallError("open", err))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, 0, eventErr(path, "cannot inspect it", "", os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, 0, eventErr(path, "is "+sysfile.Kind(st.Mode)+", not a regular file", "give the path of a regular file", nil)
	}
	if st.Nlink != 1 {
		unix.Close(fd)
		return -1, 0, eventErr(path, "has "+strconv.FormatUint(uint64(st.Nlink), 10)+" hard links, it must have exactly one",
			"remove the extra links or choose another path", nil)
	}
	return fd, st.Size, nil
}

// Beat records an accepted beat.
func (e *EventFile) Beat(now int64, pid uint32, nonce uint64, status vlp.Status, payload uint32) {
	if b, ok := e.begin(now, eventBeat); ok {
		b = eventUint(b, uint64(pid))
		b = eventUint(b, nonce)
		b = eventText(b, status.String())
		e.end(eventUint(b, uint64(payload)))
	}
}

// Stall records a raised stall with the pid's last accepted nonce.
func (e *EventFile) Stall(now int64, pid uint32, nonce uint64) {
	if b, ok := e.begin(now, eventStall); ok {
		b = eventUint(b, uint64(pid))
		b = eventUint(b, nonce)
		b = eventText(b, vlp.Stall.String())
		e.endUrgent(eventText(b, ""))
	}
}

// Decode records a frame that failed to decode. The payload column names
// the error as the Rust observer writes it, with the offending values
// read from frame (the 32 bytes decoded; nil or short: the name alone):
// BadMagic, BadVersion, BadCrc { expected: C, actual: S } (C computed, S
// carried), BadStatus(B), StallOnWire, BadPid(P), BadTimestamp(T),
// BadNonce { nonce: N, status: Ok|Degraded|Critical }.
func (e *EventFile) Decode(now int64, err vlp.Error, frame []byte) {
	if b, ok := e.begin(now, eventDecode); ok {
		e.end(appendDecodeText(append(eventAbsent(b, 3), '\t'), err, frame))
	}
}

// appendDecodeText appends the Rust Debug form of a decode error.
func appendDecodeText(b []byte, err vlp.Error, f []byte) []byte {
	b = append(b, err.Name()...)
	if len(f) < vlp.Size {
		return b
	}
	switch err {
	case vlp.ErrBadCrc:
		b = append(b, " { expected: "...)
		b = strconv.AppendUint(b, uint64(vlp.Checksum(f[:28])), 10)
		b = append(b, ", actual: "...)
		b = strconv.AppendUint(b, uint64(binary.LittleEndian.Uint32(f[28:])), 10)
		b = append(b, " }"...)
	case vlp.ErrBadStatus:
		b = strconv.AppendUint(append(b, '('), uint64(f[3]), 10)
		b = append(b, ')')
	case vlp.ErrBadPid:
		b = strconv.AppendUint(append(b, '('), uint64(binary.LittleEndian.Uint32(f[4:])), 10)
		b = append(b, ')')
	case vlp.ErrBadTimestamp:
		b = strconv.AppendUint(append(b, '('), binary.LittleEndian.Uint64(f[8:]), 10)
		b = append(b, ')')
	case vlp.ErrBadNonce:
		b = append(b, " { nonce: "...)
		b = strconv.AppendUint(b, binary.LittleEndian.Uint64(f[16:]), 10)
		b = append(b, ", status: "...)
		switch vlp.Status(f[3]) {
		case vlp.Ok:
			b = append(b, "Ok"...)
		case vlp.Degraded:
			b = append(b, "Degraded"...)
		case vlp.Critical:
			b = append(b, "Critical"...)
		default:
			b = append(b, "Stall"...)
		}
		b = append(b, " }"...)
	}
	return b
}

// IO records an I/O problem of the observer, the error's text in the
// payload column (escaped, cut at 128 bytes).
func (e *EventFile) IO(now int64, what string) {
	if b, ok := e.begin(now, eventIO); ok {
		e.endUrgent(eventText(eventAbsent(b, 3), what))
	}
}

// Ctrunc records a datagram whose control data the kernel cut short
// (MSG_CTRUNC), what in the payload column (escaped, cut at 128 bytes).
func (e *EventFile) Ctrunc(now int64, what string) {
	if b, ok := e.begin(now, eventCtrunc); ok {
		e.endUrgent(eventText(eventAbsent(b, 3), what))
	}
}

// Mismatch records a sender whose identity did not check out.
func (e *EventFile) Mismatch(now int64, pid uint32, reason MismatchReason) {
	if b, ok := e.begin(now, eventMismatch); ok {
		b = eventAbsent(eventUint(b, uint64(pid)), 2)
		e.endUrgent(eventText(b, string(reason)))
	}
}

// Eviction records a pid evicted from the full table.
func (e *EventFile) Eviction(now int64, pid uint32) {
	if b, ok := e.begin(now, eventEviction); ok {
		e.endUrgent(eventAbsent(eventUint(b, uint64(pid)), 3))
	}
}

// Exit records an agent found dead (its pid gone) with the nonce, status
// and payload of its last accepted frame (the terminal marker for a dying
// gasp).
func (e *EventFile) Exit(now int64, pid uint32, nonce uint64, status vlp.Status, payload uint32) {
	if e != nil && e.upstream {
		return
	}
	if b, ok := e.begin(now, eventExit); ok {
		b = eventUint(eventUint(b, uint64(pid)), nonce)
		b = eventText(b, status.String())
		e.endUrgent(eventUint(b, uint64(payload)))
	}
}

// Recovered records a stalled agent that beats again: the nonce and
// status of the beat that ended the stall, and how long it was silent, in
// milliseconds, in the last column.
func (e *EventFile) Recovered(now int64, pid uint32, nonce uint64, status vlp.Status, silentMs int64) {
	if e != nil && e.upstream {
		return
	}
	if b, ok := e.begin(now, eventRecovered); ok {
		b = eventUint(eventUint(b, uint64(pid)), nonce)
		b = eventText(b, status.String())
		e.endUrgent(eventUint(b, uint64(max(silentMs, 0))))
	}
}

// Missing records a declared agent (--agents-file) not beating within its
// expect-within-ms: no process, so the pid column is 0 and the nonce and
// status columns are absent ("-"); the last column is its declared name.
func (e *EventFile) Missing(now int64, agent string) {
	if e != nil && e.upstream {
		return
	}
	if b, ok := e.begin(now, eventMissing); ok {
		e.endUrgent(eventText(eventAbsent(eventUint(b, 0), 2), agent))
	}
}

// begin starts a line after making sure a whole one fits; when the buffer
// cannot be emptied the event is dropped and counted.
func (e *EventFile) begin(now int64, kind string) ([]byte, bool) {
	if e == nil || e.out.fd < 0 {
		return nil, false
	}
	if cap(e.buf)-len(e.buf) < eventMaxLine {
		e.Flush()
		if cap(e.buf)-len(e.buf) < eventMaxLine {
			e.dropped++
			return nil, false
		}
	}
	if len(e.buf) == 0 {
		e.since = now
	}
	b := strconv.AppendInt(e.buf, max(now-e.origin, 0)+e.wall, 10)
	return append(append(b, '\t'), kind...), true
}

func (e *EventFile) end(b []byte) { e.buf = append(b, '\n') }

// endUrgent ends a line of a kind that is written in the same tick.
func (e *EventFile) endUrgent(b []byte) {
	e.end(b)
	e.urgent = true
}

// Due reports whether the buffered lines should be written now (by
// Flush): an urgent kind is buffered, the buffer is half full, or the
// oldest line has waited the flush delay. The loop asks every tick.
func (e *EventFile) Due(now int64) bool {
	if e == nil || len(e.buf) == 0 {
		return false
	}
	return e.urgent || len(e.buf) >= eventFlushBytes || now-e.since >= e.delay
}

// SetFlushDelay sets how long beat and decode lines may wait in the
// buffer (EventFlushDelay by default; BatchEventFlushDelay in batch mode).
func (e *EventFile) SetFlushDelay(ns int64) {
	if e != nil && ns > 0 {
		e.delay = ns
	}
}

// DueAt is when the buffered lines become due without any more being
// added, so an owner that sleeps until its next deadline can wake for
// them; false when nothing is buffered.
func (e *EventFile) DueAt() (int64, bool) {
	if e == nil || len(e.buf) == 0 {
		return 0, false
	}
	if e.urgent || len(e.buf) >= eventFlushBytes {
		return e.since, true
	}
	return e.since + e.delay, true
}

func eventUint(b []byte, v uint64) []byte { return strconv.AppendUint(append(b, '\t'), v, 10) }

func eventAbsent(b []byte, n int) []byte {
	for range n {
		b = append(b, '\t', '-')
	}
	return b
}

// eventText appends a text column: "-" when empty, else the first
// eventMaxText bytes of s escaped as the Rust observer does, so the line
// keeps its six columns: backslash as \\, TAB \t, LF \n, CR \r, any other
// byte below 0x20 and 0x7f as \xNN (lowercase hex).
func eventText(b []byte, s string) []byte {
	if s == "" {
		return append(b, '\t', '-')
	}
	const digits = "0123456789abcdef"
	b = append(b, '\t')
	for i := 0; i < len(s) && i < eventMaxText; i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c < 0x20 || c == 0x7f:
			b = append(b, '\\', 'x', digits[c>>4], digits[c&15])
		default:
			b = append(b, c)
		}
	}
	return b
}

// Flush writes the buffered lines, rotating first when the file would
// grow beyond its bound. Call it once per tick; begin calls it too when
// the buffer is nearly full. It writes whole lines only: if the kernel
// takes part of a line (disk full), the fragment is cut off again and the
// line stays buffered. On failure it returns the error (also kept in Err
// and counted in Errors) and keeps the lines for the next Flush.
func (e *EventFile) Flush() error {
	if e == nil || e.out.fd < 0 {
		return nil
	}
	if e.reopenDue {
		e.reopenLive() // on failure, keep appending to the old file
	}
	for len(e.buf) > 0 {
		p := e.buf
		if e.maxBytes > 0 && !e.reopenDue && e.size+int64(len(p)) > e.maxBytes {
			switch fit := eventWhole(p, e.maxBytes-e.size); {
			case fit > 0:
				p = p[:fit]
			case e.size == 0: // a line longer than maxBytes goes alone
				p = p[:bytes.IndexByte(p, '\n')+1]
			case e.rotate() == nil && e.size == 0:
				continue
			}
			// Otherwise rotation failed (or found a non-empty file): append
			// anyway rather than lose lines.
		}
		if err := e.write(p); err != nil {
			return err
		}
	}
	e.urgent = false
	if e.syncEvery > 0 && e.unsynced >= e.syncEvery {
		return e.sync()
	}
	return nil
}

// sync makes the written lines durable (fdatasync). A failure is counted
// and kept like a failed write; the lines are already written.
func (e *EventFile) sync() error {
	e.unsynced = 0
	for {
		err := unix.Fdatasync(e.out.fd)
		switch err {
		case unix.EINTR:
			continue
		case nil, unix.EINVAL: // EINVAL: not a file that can be synced
			return nil
		}
		e.errs++
		e.err, e.errCause = eventErr(e.path, "cannot sync", "", os.NewSyscallError("fdatasync", err)), nil
		return e.err
	}
}

// eventWhole is the length of the whole lines of p within limit bytes.
func eventWhole(p []byte, limit int64) int {
	if limit <= 0 {
		return 0
	}
	return bytes.LastIndexByte(p[:min(int64(len(p)), limit)], '\n') + 1
}

var eventNewline = []byte{'\n'}

// write appends p (whole lines) and drops what was written from the buffer.
func (e *EventFile) write(p []byte) error {
	if e.torn { // end the fragment an earlier partial write left behind
		if _, err := e.out.write(eventNewline); err != nil {
			return e.fail(err)
		}
		e.torn = false
		e.size++
	}
	n, err := e.out.write(p)
	if n > 0 && p[n-1] != '\n' && !e.out.stream {
		// A file that took part of a line (disk full) is cut back to
		// whole lines. A pipe, socket or terminal cannot be cut, and need
		// not be: the rest of the line stays first in the buffer.
		whole := bytes.LastIndexByte(p[:n], '\n') + 1
		e.untear(n - whole)
		n = whole
	} else {
		e.size += int64(n)
	}
	if e.syncEvery > 0 && n > 0 {
		e.unsynced += bytes.Count(p[:n], eventNewline)
	}
	if n == len(e.buf) {
		e.buf = e.buf[:0]
	} else {
		e.buf = e.buf[:copy(e.buf, e.buf[n:])]
	}
	if err == nil && n == 0 {
		err = errEventNoProgress
	}
	if err != nil {
		return e.fail(err)
	}
	return nil
}

// untear cuts the last k bytes (a line fragment) off the file; if that is
// impossible (an append-only inode), the next write ends the fragment
// with a newline so the following lines stay whole.
func (e *EventFile) untear(k int) {
	var st unix.Stat_t
	if unix.Fstat(e.out.fd, &st) == nil && st.Size >= int64(k) && unix.Ftruncate(e.out.fd, st.Size-int64(k)) == nil {
		e.size = st.Size - int64(k)
		return
	}
	e.torn = true
}

func (e *EventFile) fail(cause error) error {
	e.errs++
	if e.err == nil || cause != e.errCause {
		e.errCause = cause
		hint := ""
		switch cause {
		case unix.ENOSPC, unix.EDQUOT:
			hint = "free disk space"
		case unix.EFBIG, errEventNoProgress:
			hint = "free disk space, or rotate with a maximum size below the file size limit"
		case unix.EAGAIN:
			hint = "its reader is not keeping up: a stopped pipe or a paused terminal"
		}
		if errno, ok := cause.(unix.Errno); ok {
			cause = os.NewSyscallError("write", errno)
		}
		e.err = eventErr(e.path, "write failed, lines stay buffered and are retried", hint, cause)
	}
	return e.err
}

// rotate shifts path.4 to path.5 ... path to path.1 (path.5 is replaced)
// and opens a fresh live file. The old file is synced first.
func (e *EventFile) rotate() error {
	e.sync() // a failure is counted; rotating still bounds the file
	for g := EventGenerations; g >= 1; g-- {
		if err := unix.Rename(e.gens[g-1], e.gens[g]); err != nil && err != unix.ENOENT {
			e.errs++
			e.err, e.errCause = eventErr(e.gens[g-1], "cannot rotate it to "+e.gens[g]+", appending beyond the size bound",
				"let the observer's user rename files in "+filepath.Dir(e.path), os.NewSyscallError("rename", err)), nil
			return e.err
		}
	}
	return e.reopenLive()
}

// Reopen flushes into the current file, then opens path afresh: after
// SIGHUP, when logrotate has moved the file away. On failure the old file
// keeps receiving lines and each Flush retries the open.
func (e *EventFile) Reopen() error {
	if e == nil || e.out.fd < 0 {
		return nil
	}
	e.Flush()
	return e.reopenLive()
}

func (e *EventFile) reopenLive() error {
	if e.path == EventStdout {
		return nil
	}
	fd, size, err := eventOpen(e.path)
	if err != nil {
		e.reopenDue = true
		e.errs++
		e.err, e.errCause = err, nil
		return err
	}
	unix.Close(e.out.fd)
	e.out.fd, e.size, e.reopenDue, e.torn = fd, size, false, false
	return nil
}

// eventCloseWait bounds how long Close waits for a slow reader of a pipe,
// socket or terminal to take the last lines: long enough for a log
// collector that is merely busy, short enough that a stopped one cannot
// hold up the exit.
const eventCloseWait = time.Second

// drain flushes, waiting up to wait in all for the output to take more
// whenever it is full; the Flush error when the buffer is still not empty.
func (e *EventFile) drain(wait time.Duration) error {
	end := time.Now().Add(wait)
	for {
		err := e.Flush()
		left := time.Until(end)
		if len(e.buf) == 0 || left <= 0 || (err != nil && e.errCause != unix.EAGAIN) {
			return err
		}
		ts := unix.NsecToTimespec(int64(left))
		pfd := []unix.PollFd{{Fd: int32(e.out.fd), Events: unix.POLLOUT}}
		if n, perr := unix.Ppoll(pfd, &ts, nil); perr != nil && perr != unix.EINTR || n == 0 {
			return err
		}
	}
}

// Close flushes, fsyncs and closes the file. Lines that still cannot be
// written are counted as dropped. Later events are dropped silently.
func (e *EventFile) Close() error {
	if e == nil || e.out.fd < 0 {
		return nil
	}
	var err error
	if e.out.stream {
		err = e.drain(eventCloseWait)
	} else {
		err = e.Flush()
	}
	e.dropped += uint64(bytes.Count(e.buf, eventNewline))
	e.buf = e.buf[:0]
	if serr := unix.Fsync(e.out.fd); serr != nil && serr != unix.EINVAL && err == nil { // EINVAL: a pipe or tty
		err = eventErr(e.path, "cannot sync", "", os.NewSyscallError("fsync", serr))
	}
	if cerr := unix.Close(e.out.fd); cerr != nil && err == nil {
		err = eventErr(e.path, "cannot close", "", os.NewSyscallError("close", cerr))
	}
	e.out.fd = -1
	return err
}

// Errors counts failed writes, rotations and reopens.
func (e *EventFile) Errors() uint64 {
	if e == nil {
		return 0
	}
	return e.errs
}

// Dropped counts lines lost because the buffer was full while writes
// failed (or still unwritten at Close).
func (e *EventFile) Dropped() uint64 {
	if e == nil {
		return 0
	}
	return e.dropped
}

// Err is the last failure, for a rate-limited log line; nil if none yet.
func (e *EventFile) Err() error {
	if e == nil {
		return nil
	}
	return e.err
}

// Buffered is the number of bytes waiting for Flush.
func (e *EventFile) Buffered() int {
	if e == nil {
		return 0
	}
	return len(e.buf)
}
