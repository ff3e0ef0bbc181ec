package vlp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDialParent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	var last uint64
	for range 2 { // two helpers in a row, as a shell loop runs them
		e, err := DialParent(path)
		if err != nil {
			t.Fatal(err)
		}
		for range 3 {
			if err := e.Beat(Ok, 1); err != nil {
				t.Fatal(err)
			}
			f := r.next()
			if f.Pid != uint32(os.Getppid()) {
				t.Errorf("frame pid %d, want our parent %d", f.Pid, os.Getppid())
			}
			if f.Nonce <= last || f.Nonce < f.Timestamp {
				t.Errorf("nonce %d (timestamp %d) after %d: want rising CLOCK_MONOTONIC nonces", f.Nonce, f.Timestamp, last)
			}
			last = f.Nonce
		}
		if err := e.Terminal(2); err != nil {
			t.Fatal(err)
		}
		if f := r.next(); !f.Terminal() || f.Pid != uint32(os.Getppid()) || f.Timestamp < last {
			t.Errorf("dying gasp %+v, want a terminal frame for our parent timed after the beats", f)
		}
		e.Close()
	}
}

func TestParentGone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e, err := DialParent(path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.pid++ // as if we had been re-parented since
	if err := e.Beat(Ok, 0); !errors.Is(err, ErrParentGone) || IsDrop(err) {
		t.Errorf("Beat after a change of parent = %v, want ErrParentGone (not a drop)", err)
	}
	if err := e.Terminal(0); !errors.Is(err, ErrParentGone) {
		t.Errorf("Terminal after a change of parent = %v, want ErrParentGone", err)
	}
	if !r.empty() {
		t.Error("a frame was sent for a parent we no longer have")
	}
}

func TestWaitDelivered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if !e.WaitDelivered(0) {
		t.Error("WaitDelivered with nothing sent = false")
	}
	if err := e.Beat(Ok, 0); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if e.WaitDelivered(50 * time.Millisecond) {
		t.Error("WaitDelivered = true while the frame sits unread in the observer's queue")
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Errorf("WaitDelivered gave up after %v, before its bound", took)
	}
	fd, read := r.fd, make(chan struct{})
	go func() {
		defer close(read)
		time.Sleep(20 * time.Millisecond)
		var b [64]byte
		unix.Read(fd, b[:])
	}()
	if !e.WaitDelivered(5 * time.Second) {
		t.Error("WaitDelivered = false after the observer read the frame")
	}
	<-read
}
