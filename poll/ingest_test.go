package poll

import (
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
)

func TestUDSReadBound(t *testing.T) {
	most := batchesPerTick * recvBatch
	for _, tc := range []struct {
		qlen         int
		known, batch bool
		perPass      int
		bounded      bool
	}{
		{10, true, false, 11, true}, // the kernel's default: 10 queued, plus the one let in at the limit
		{512, true, false, 513, true},
		{most - 1, true, false, most, true},
		{most, true, false, most, false}, // more than one drain may read
		{0, false, false, most, false},   // /proc/sys unreadable
		{10, true, true, most, true},     // --batch-ms: a tick reads what the waiting agents refill too
		{most, true, true, most, false},
	} {
		perPass, bounded := udsReadBound(tc.qlen, tc.known, tc.batch)
		if perPass != tc.perPass || bounded != tc.bounded {
			t.Errorf("udsReadBound(%d, %v, %v) = %d, %v, want %d, %v", tc.qlen, tc.known, tc.batch, perPass, bounded, tc.perPass, tc.bounded)
		}
	}
}

// A drain reads at most udsPerPass datagrams from the real socket, asking
// each call for no more than is left of it, and says everything queued
// when it began is read only when it found the queue empty, or read a
// known bound's worth; then it tells the receiver, for the pid-reuse
// guard's EmptiedBefore.
func TestDrainStopsAtItsBound(t *testing.T) {
	o := metricsTestObserver(t, 8, nil)
	o.rx = listen.NewReceiver(o.uds.Fd(), 4) // so that a drain's bound spans batches
	client, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
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
			if _, err := unix.Write(client, make([]byte, 32)); err == unix.EAGAIN {
				t.Skipf("the socket's queue took only %d datagrams (net.unix.max_dgram_qlen below 9?)", i)
			} else if err != nil {
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

	o.udsPerPass, o.udsBound = 6, false // a bound that is not the queue's: 4, then 2
	queue(10)
	drain(6, false)
	drain(4, true) // 4, then a call that finds the queue empty
	drain(0, true)

	o.udsPerPass, o.udsBound = 6, true // as if the queue held at most 6
	queue(10)
	first := o.rx.Calls() + 1
	drain(6, true) // full reads: it cannot see the queue empty, but the bound says all is read
	if _, err := o.rx.Recv(); err != nil {
		t.Fatal(err)
	}
	if got := o.rx.EmptiedBefore(); got != first {
		t.Errorf("EmptiedBefore() after a bounded drain = %d, want its first call %d", got, first)
	}
}
