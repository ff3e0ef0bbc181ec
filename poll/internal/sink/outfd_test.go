package sink

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestLogOutputNeverBlocks: log lines to a standard error nobody reads (a
// stuck collector) must not block the writer. Lines that find no room are
// counted and the rest arrive whole; once the reader drains, lines get
// through again; and the inherited descriptor itself is left blocking, as
// the processes sharing it expect.
func TestLogOutputNeverBlocks(t *testing.T) {
	t.Run("pipe", func(t *testing.T) {
		r, w := smallPipe(t)
		logToStoppedReader(t, r, w)
	})
	t.Run("pipe without /proc", func(t *testing.T) {
		// The reopen fails (as without /proc, or for a terminal another
		// user owns): the shared, blocking descriptor is probed with
		// poll(2) before each write instead.
		defer func(d string) { procFdDir = d }(procFdDir)
		procFdDir = "/nonexistent/fd/"
		r, w := smallPipe(t)
		logToStoppedReader(t, r, w)
	})
	t.Run("socket", func(t *testing.T) {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
		logToStoppedReader(t, fds[0], fds[1])
	})
}

// smallPipe is a pipe of the smallest size the kernel allows (a page), so
// a few dozen log lines fill it.
func smallPipe(t *testing.T) (r, w int) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, 4096); err != nil {
		t.Fatal(err)
	}
	return p[0], p[1]
}

func logToStoppedReader(t *testing.T, r, w int) {
	defer unix.Close(r)
	defer unix.Close(w)
	l, err := OpenLogOutput(w)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(l.out.fd)
	line := []byte("varta-watch: level=warn msg=\"agent stalled\" pid=4242 silent_ms=2000 " + strings.Repeat("x", 60) + "\n")
	const lines = 2000 // about 270 KB: far more than the output holds
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range lines {
			if n, err := l.Write(line); n != len(line) || err != nil {
				t.Errorf("Write = %d, %v; want %d, nil", n, err, len(line))
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Write blocked on an output nobody reads")
	}
	if l.Dropped() == 0 || l.Dropped() >= lines {
		t.Fatalf("%d of %d lines dropped; want some dropped and some through", l.Dropped(), lines)
	}
	if fl, err := unix.FcntlInt(uintptr(w), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("the inherited descriptor's flags are %#x, %v: O_NONBLOCK leaked to it", fl, err)
	}

	got := drain(t, r)
	if int(l.Dropped())+bytes.Count(got, []byte("\n")) != lines {
		t.Errorf("%d lines through + %d dropped != %d written", bytes.Count(got, []byte("\n")), l.Dropped(), lines)
	}
	for i, g := range bytes.SplitAfter(got, []byte("\n")) {
		if len(g) > 0 && !bytes.Equal(g, line) {
			t.Fatalf("line %d arrived as %q, want the whole line", i+1, g)
		}
	}
	before := l.Dropped()
	if n, err := l.Write(line); n != len(line) || err != nil || l.Dropped() != before {
		t.Fatalf("after the reader drained: Write = %d, %v, dropped %d → %d", n, err, before, l.Dropped())
	}
	if got := drain(t, r); !bytes.Equal(got, line) {
		t.Fatalf("after the reader drained, read %q, want the line", got)
	}
}

// drain reads everything r holds now, without waiting for more.
func drain(t *testing.T, r int) []byte {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		pfd := []unix.PollFd{{Fd: int32(r), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 100); err != nil || n == 0 {
			return out
		}
		n, err := unix.Read(r, buf)
		if err != nil || n <= 0 {
			return out
		}
		out = append(out, buf[:n]...)
	}
}
