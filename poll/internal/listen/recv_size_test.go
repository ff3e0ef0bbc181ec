package listen

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecvSizeTruncation: a receiver with a larger buffer takes datagrams
// up to its size whole and reports a longer one truncated with its real
// length (MSG_TRUNC), its first size bytes kept.
func TestRecvSizeTruncation(t *testing.T) {
	u, _, client := recvTestSocket(t, 4)
	r := NewReceiverSize(u.Fd(), 4, 4096)
	for _, size := range []int{1, 64, 65, 4096, 4097, 60000} {
		msg := bytes.Repeat([]byte{'k'}, size)
		if _, err := unix.Write(client, msg); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
		recvOne(t, r)
		if got, want := r.Truncated(0), size > 4096; got != want {
			t.Errorf("Truncated(0) of %d bytes = %v, want %v", size, got, want)
		}
		if r.Len(0) != size || len(r.Data(0)) != min(size, 4096) {
			t.Errorf("%d bytes: Len %d, Data %d bytes", size, r.Len(0), len(r.Data(0)))
		}
	}
}

// TestRecvKeepFds: with SetKeepFds a passed pipe end stays open until
// CloseKeptFds, then is closed (its reader sees EOF).
func TestRecvKeepFds(t *testing.T) {
	u, _, client := recvTestSocket(t, 4)
	r := NewReceiverSize(u.Fd(), 4, 256)
	r.SetKeepFds(true)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	if _, err := unix.Write(client, []byte("WATCHDOG=1")); err != nil {
		t.Fatal(err)
	}
	err := unix.Sendmsg(client, []byte("BARRIER=1"), unix.UnixRights(p[1]), nil, 0)
	unix.Close(p[1])
	if err != nil {
		t.Fatal(err)
	}
	if n, err := r.Recv(); n != 2 || err != nil {
		t.Fatalf("Recv = %d, %v, want both datagrams", n, err)
	}
	var b [1]byte
	if _, err := unix.Read(p[0], b[:]); err != unix.EAGAIN {
		t.Fatalf("read of the pipe before CloseKeptFds = %v, want EAGAIN: the passed end was closed early", err)
	}
	r.CloseKeptFds()
	if n, err := unix.Read(p[0], b[:]); n != 0 || err != nil {
		t.Fatalf("read of the pipe after CloseKeptFds = %d, %v, want EOF", n, err)
	}
	if r.ClosedFds() != 1 {
		t.Errorf("ClosedFds = %d, want 1", r.ClosedFds())
	}
	r.CloseKeptFds() // twice: nothing left to close
	if r.ClosedFds() != 1 {
		t.Errorf("ClosedFds after a second CloseKeptFds = %d, want 1", r.ClosedFds())
	}
}
