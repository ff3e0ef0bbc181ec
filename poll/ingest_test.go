package poll

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestUDSReadBound(t *testing.T) {
	most := batchesPerTick * recvBatch
	for _, tc := range []struct {
		qlen    int
		known   bool
		perPass int
		bounded bool
	}{
		{10, true, 11, true}, // the kernel's default: 10 queued, plus the one let in at the limit
		{512, true, 513, true},
		{most - 1, true, most, true},
		{most, true, most, false}, // more than one iteration may read
		{0, false, most, false},   // /proc/sys unreadable
	} {
		perPass, bounded := udsReadBound(tc.qlen, tc.known)
		if perPass != tc.perPass || bounded != tc.bounded {
			t.Errorf("udsReadBound(%d, %v) = %d, %v, want %d, %v", tc.qlen, tc.known, perPass, bounded, tc.perPass, tc.bounded)
		}
	}
}

// A drain reads at most udsPerPass datagrams from the real socket, and
// says everything queued when it began is read only when it found the
// queue empty, or read a known bound's worth.
func TestDrainStopsAtItsBound(t *testing.T) {
	o := metricsTestObserver(t, 8, nil)
	client, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(client)
	if err := unix.Connect(client, &unix.SockaddrUnix{Name: o.cfg.SocketPath}); err != nil {
		t.Fatal(err)
	}
	queue := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := unix.Write(client, make([]byte, 32)); err != nil {
				t.Fatalf("datagram %d of %d: %v", i+1, n, err)
			}
		}
	}
	drain := func(wantRead uint64, wantAll bool) {
		t.Helper()
		before := o.c.Received
		all := o.drain(o.rx, false, o.clock.now())
		if got := o.c.Received - before; got != wantRead || all != wantAll {
			t.Fatalf("drain read %d and said %v, want %d and %v", got, all, wantRead, wantAll)
		}
	}

	o.udsPerPass, o.udsBound = 4, false // a bound that is not the queue's
	queue(10)
	drain(4, false)
	drain(4, false)
	drain(2, true) // found the queue empty
	drain(0, true)

	o.udsPerPass, o.udsBound = 4, true // as if the queue held at most 4
	queue(4)
	drain(4, true) // a full read: it cannot know the queue is empty, but the bound says so
	drain(0, true)
}
