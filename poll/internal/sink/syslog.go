package sink

import (
	"bytes"
	"strconv"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// SyslogPath is where syslog daemons (BusyBox syslogd, rsyslog,
// syslog-ng, journald) take local messages.
const SyslogPath = "/dev/log"

// SyslogOutput sends log lines to the local syslog daemon (--log-syslog),
// one datagram per line in the BSD format every local daemon reads:
// "<PRI>varta-watch[PID]: level=... msg=...", facility daemon, the
// severity from the line's level. The daemon stamps the time and host.
//
// A send never blocks: a daemon that does not keep up costs a dropped,
// counted line. A daemon that restarted (its socket replaced) is
// reconnected at the next line, at most once a second.
type SyslogOutput struct {
	path     string
	fd       int
	prefix   []byte // "varta-watch[PID]: "
	buf      []byte
	retryAt  int64 // unix ns before which a lost connection is not retried
	dropped  atomic.Uint64
	nowNanos func() int64
}

// OpenSyslog connects to the syslog socket at path. The error names the
// path and says what to do: no daemon listening is the usual cause.
func OpenSyslog(path string, pid int, now func() int64) (*SyslogOutput, error) {
	s := &SyslogOutput{path: path, fd: -1, nowNanos: now, buf: make([]byte, 0, 512)}
	s.prefix = append(strconv.AppendInt([]byte("varta-watch["), int64(pid), 10), "]: "...)
	if err := s.connect(); err != nil {
		return nil, &sysfile.Error{What: "syslog socket (--log-syslog)", Path: path, Problem: "no syslog daemon takes messages there",
			Hint: "start syslogd (BusyBox: syslogd), or log to standard error without --log-syslog", Err: err}
	}
	return s, nil
}

func (s *SyslogOutput) connect() error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: s.path}); err != nil {
		unix.Close(fd)
		return err
	}
	s.fd = fd
	return nil
}

// The syslog priority is facility*8 + severity; facility 3 is daemon.
const (
	syslogDaemon  = 3 << 3
	syslogErr     = 3
	syslogWarning = 4
	syslogInfo    = 6
)

// loggerPrefix is how Logger starts a line without a timestamp.
var loggerPrefix = []byte("varta-watch: ")

// Write sends p, one line from a Logger, as one syslog message. It reports
// the line written whether or not the daemon took it: a line that found no
// room, or no daemon, is counted in Dropped, never retried.
func (s *SyslogOutput) Write(p []byte) (int, error) {
	body := bytes.TrimSuffix(bytes.TrimPrefix(p, loggerPrefix), []byte{'\n'})
	b := append(s.buf[:0], '<')
	b = strconv.AppendInt(b, int64(syslogDaemon+severity(body)), 10)
	b = append(append(b, '>'), s.prefix...)
	b = append(b, body...)
	s.buf = b
	if s.fd < 0 && !s.reconnect() {
		s.dropped.Add(1)
		return len(p), nil
	}
	_, err := unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
	if err == unix.ECONNREFUSED || err == unix.ENOTCONN {
		// The daemon restarted and its socket is a new one: connect to it
		// and send this line once more.
		unix.Close(s.fd)
		s.fd = -1
		if s.reconnect() {
			_, err = unix.SendmsgN(s.fd, b, nil, nil, unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		}
	}
	if err != nil || s.fd < 0 {
		s.dropped.Add(1)
	}
	return len(p), nil
}

// reconnect tries the daemon's socket again, at most once a second.
func (s *SyslogOutput) reconnect() bool {
	now := s.nowNanos()
	if now < s.retryAt {
		return false
	}
	s.retryAt = now + 1e9
	return s.connect() == nil
}

// severity reads the level a Logger line starts with.
func severity(body []byte) int {
	switch {
	case bytes.HasPrefix(body, []byte("level=error")):
		return syslogErr
	case bytes.HasPrefix(body, []byte("level=warn")):
		return syslogWarning
	}
	return syslogInfo
}

// Dropped is the number of lines the daemon did not take.
func (s *SyslogOutput) Dropped() uint64 { return s.dropped.Load() }

// Close closes the connection.
func (s *SyslogOutput) Close() error {
	if s.fd < 0 {
		return nil
	}
	err := unix.Close(s.fd)
	s.fd = -1
	return err
}
