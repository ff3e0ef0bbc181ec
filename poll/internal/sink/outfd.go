package sink

import (
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// outFd is a handle on an inherited output (standard output or error)
// whose writes never wait for a reader: the loop must not stop because a
// log collector, a pipeline or a terminal stopped reading.
type outFd struct {
	fd     int
	sock   bool // a socket (a supervisor's stream): sent with MSG_DONTWAIT
	stream bool // a pipe, socket or terminal: no seeking, no cutting back
	// probe: a pipe or terminal that could not be reopened (no /proc, or
	// a terminal another user owns) and so stays blocking: each write
	// first asks poll(2) whether there is room, and writes at most
	// PIPE_BUF bytes, which a pipe with room takes without waiting.
	probe bool
}

// pipeBuf is PIPE_BUF: the largest write a pipe takes atomically.
const pipeBuf = 4096

// openOut opens inherited fd (1 or 2) for non-blocking writes. A regular
// file is only duplicated: its writes do not wait for a reader. A pipe,
// FIFO or terminal is opened afresh through /proc/self/fd/N, which gives
// a new open file description, so its O_NONBLOCK does not reach the other
// processes sharing the inherited one; where that is refused (no /proc,
// a terminal another user owns) a duplicate is probed before each write.
// A socket cannot be reopened that way; it keeps a duplicate and every
// send carries MSG_DONTWAIT.
func openOut(fd int) (outFd, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return outFd{fd: -1}, os.NewSyscallError("fstat", err)
	}
	o := outFd{fd: -1}
	var err error
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG, unix.S_IFSOCK:
		o.sock = st.Mode&unix.S_IFMT == unix.S_IFSOCK
		o.stream = o.sock
		if o.fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3); err != nil {
			return outFd{fd: -1}, os.NewSyscallError("fcntl", err)
		}
	default:
		o.stream = true
		path := procFdDir + strconv.Itoa(fd)
		o.fd, err = unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err == unix.ENXIO {
			return outFd{fd: -1}, errNoReader
		}
		if err != nil {
			o.probe = true
			if o.fd, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3); err != nil {
				return outFd{fd: -1}, os.NewSyscallError("fcntl", err)
			}
		}
	}
	return o, nil
}

// procFdDir is where an inherited fd is reopened from; tests point it
// elsewhere to exercise the fallback for a machine without /proc.
var procFdDir = "/proc/self/fd/"

// errNoReader: the inherited output is a pipe whose reading end is closed.
var errNoReader = errors.New("a pipe that nobody reads")

// write is write(2), or send(2) without waiting on a socket, with EINTR
// retried once; EAGAIN when the reader is behind. n is never negative.
func (o outFd) write(p []byte) (int, error) {
	write := unix.Write
	if o.sock {
		write = sendNow
	}
	if o.probe {
		pfd := [1]unix.PollFd{{Fd: int32(o.fd), Events: unix.POLLOUT}}
		if n, err := unix.Poll(pfd[:], 0); err != nil || n == 0 || pfd[0].Revents&unix.POLLOUT == 0 {
			return 0, unix.EAGAIN
		}
		p = p[:min(len(p), pipeBuf)]
	}
	n, err := write(o.fd, p)
	if err == unix.EINTR {
		n, err = write(o.fd, p)
	}
	return max(n, 0), err
}

// sendNow sends p on a connected socket without blocking and without
// SIGPIPE; EAGAIN when the peer's buffer is full.
func sendNow(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(n), nil
}

// LogOutput is standard error for the observer's log lines, opened with
// OpenLogOutput so that writing never blocks: a line the reader has no
// room for is dropped and counted (varta_log_lines_dropped_total) instead
// of stopping the loop, or the self-watchdog that would report it. Safe
// for the loop and the self-watchdog goroutine to use together: each
// Write is one system call.
type LogOutput struct {
	out     outFd
	dropped atomic.Uint64
}

// OpenLogOutput opens inherited fd (2 for standard error) for log lines.
func OpenLogOutput(fd int) (*LogOutput, error) {
	o, err := openOut(fd)
	if err != nil {
		return nil, err
	}
	return &LogOutput{out: o}, nil
}

// Write writes p, one log line, whole or not at all as far as the reader
// allows; a line that finds no room is counted and reported written, so
// callers never retry into a blocked reader.
func (l *LogOutput) Write(p []byte) (int, error) {
	n, err := l.out.write(p)
	switch {
	case err == unix.EAGAIN:
		l.dropped.Add(1)
		return len(p), nil
	case err != nil:
		return n, err
	case n < len(p): // a socket took part of the line: end it so the next starts on its own line
		if n > 0 && p[n-1] != '\n' {
			l.out.write(logNewline)
		}
		l.dropped.Add(1)
		return len(p), nil
	}
	return n, nil
}

var logNewline = []byte{'\n'}

// Dropped is the number of lines that found no room.
func (l *LogOutput) Dropped() uint64 { return l.dropped.Load() }
