package poll

import (
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/upstats"
)

// signals turns SIGINT/SIGTERM/SIGHUP into flags the loop reads, and wakes
// the loop through a pipe (for SIGCHLD too). The goroutine started here touches only
// the atomics and the pipe's write end.
type signals struct {
	ch     chan os.Signal
	rfd    int // polled by the loop
	wfd    int
	stop   atomic.Bool
	reopen atomic.Bool
	done   chan struct{}
}

func newSignals() (*signals, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	s := &signals{ch: make(chan os.Signal, 8), rfd: p[0], wfd: p[1], done: make(chan struct{})}
	// Notify, never Ignore: ignored signals would stay ignored in recovery
	// children across execve.
	// SIGCHLD only wakes the loop, so that a recovery child that exited
	// (or was killed at its timeout) is reaped at once: the loop sleeps
	// until its next deadline, and a child's exit is not one.
	signal.Notify(s.ch, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGCHLD)
	upstats.SignalInstalls.Add(1)
	go s.forward()
	return s, nil
}

func (s *signals) forward() {
	defer close(s.done)
	for sig := range s.ch {
		switch sig {
		case syscall.SIGHUP:
			s.reopen.Store(true)
		case syscall.SIGCHLD:
		default:
			s.stop.Store(true)
		}
		s.wake()
	}
}

// wake makes the loop's poll return; a full pipe already guarantees that.
func (s *signals) wake() { unix.Write(s.wfd, []byte{1}) }

// Ready empties the pipe after the wait found it readable; the flags were
// set before the byte was written.
func (s *signals) Ready(int32, int16, int64) {
	var b [64]byte
	for {
		if n, err := unix.Read(s.rfd, b[:]); n <= 0 || err != nil {
			return
		}
	}
}

func (s *signals) close() {
	signal.Stop(s.ch)
	close(s.ch)
	<-s.done
	unix.Close(s.rfd)
	unix.Close(s.wfd)
}
