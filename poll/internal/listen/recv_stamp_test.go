package listen

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// realNs is CLOCK_REALTIME now, the clock of the kernel's receive stamps.
func realNs(t *testing.T) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
		t.Fatal(err)
	}
	return ts.Nano()
}

// The stamp is the time of sendmsg, not of the receive: a datagram read
// long after it was sent still says when it was queued.
func TestRecvQueuedIsSendTime(t *testing.T) {
	_, r, client := recvTestSocket(t, 8)
	before := realNs(t)
	unix.Write(client, []byte("x"))
	after := realNs(t)
	time.Sleep(50 * time.Millisecond)
	recvOne(t, r)
	q, ok := r.Queued(0)
	if !ok {
		t.Fatal("Queued(0) missing: the socket is not stamping datagrams")
	}
	// A kernel stamping in microseconds (SO_TIMESTAMP, under qemu-user)
	// rounds down by up to one.
	if q < before-1000 || q > after {
		t.Fatalf("Queued(0) = %d, want within the send call [%d, %d] (read %v later)",
			q, before, after, time.Duration(realNs(t)-q))
	}
}

// The timestamp fits next to credentials and a full load of passed fds:
// the control buffer has room for all three.
func TestRecvQueuedNextToFds(t *testing.T) {
	_, r, client := recvTestSocket(t, 2)
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	pass := make([]int, recvMaxFds)
	for i := range pass {
		pass[i] = p[1]
	}
	err := unix.Sendmsg(client, []byte("x"), unix.UnixRights(pass...), nil, 0)
	unix.Close(p[1])
	if err != nil {
		t.Fatal(err)
	}
	recvOne(t, r)
	if _, ok := r.Queued(0); !ok {
		t.Error("Queued(0) missing next to SCM_RIGHTS")
	}
	if r.CtrlTruncated(0) || r.ClosedFds() != recvMaxFds {
		t.Errorf("CtrlTruncated(0) = %v, ClosedFds() = %d, want false, %d", r.CtrlTruncated(0), r.ClosedFds(), recvMaxFds)
	}
}

// EmptiedBefore names the last call before the current one that drained
// the queue: a datagram queued before that call cannot be read later.
func TestRecvEmptiedBefore(t *testing.T) {
	_, r, client := recvTestSocket(t, 4)
	if queued := recvFill(t, client, 10); queued != 10 {
		t.Skipf("net.unix.max_dgram_qlen lets only %d datagrams queue, the test needs 10", queued)
	}
	for _, want := range []struct {
		n              int
		calls, emptied uint64
	}{
		{4, 1, 0}, {4, 2, 0}, {2, 3, 0}, // the third call drains the queue
		{0, 4, 3}, // so the fourth call knows it
		{0, 5, 4},
	} {
		n, err := r.Recv()
		if n != want.n || err != nil || r.Calls() != want.calls || r.EmptiedBefore() != want.emptied {
			t.Fatalf("Recv() = %d, %v; Calls() = %d, EmptiedBefore() = %d; want %d, nil; %d, %d",
				n, err, r.Calls(), r.EmptiedBefore(), want.n, want.calls, want.emptied)
		}
	}
	// A failed call is no evidence of an empty queue.
	bad := NewReceiver(-1, 1)
	if _, err := bad.Recv(); err == nil || bad.Calls() != 0 {
		t.Fatalf("a failed Recv counted as call %d (err %v)", bad.Calls(), err)
	}
}

func TestParseStamp(t *testing.T) {
	words := func(ws ...uint64) []byte {
		b := make([]byte, 0, 16)
		for _, w := range ws {
			b = binary.NativeEndian.AppendUint64(b, w)
		}
		return b
	}
	words32 := func(a, b uint32) []byte {
		return binary.NativeEndian.AppendUint32(binary.NativeEndian.AppendUint32(nil, a), b)
	}
	for _, tc := range []struct {
		name string
		d    []byte
		want int64
		ok   bool
	}{
		{"64-bit", words(1_700_000_000, 5), 1_700_000_000_000_000_005, true},
		{"32-bit", words32(1_700_000_000, 999_999_999), 1_700_000_000_999_999_999, true},
		{"negative seconds", words(^uint64(0), 0), 0, false},
		{"nanoseconds out of range", words(1, 1_000_000_000), 0, false},
		{"seconds past int64 ns", words(1<<62, 0), 0, false},
		{"wrong length", []byte{1, 2, 3}, 0, false},
	} {
		if got, ok := parseStamp(tc.d, 1); got != tc.want || ok != tc.ok {
			t.Errorf("%s: parseStamp = %d, %v, want %d, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
	// A timeval: microseconds.
	if got, ok := parseStamp(words(7, 999_999), 1000); got != 7_999_999_000 || !ok {
		t.Errorf("parseStamp of a timeval = %d, %v, want 7999999000, true", got, ok)
	}
	if _, ok := parseStamp(words(7, 1_000_000), 1000); ok {
		t.Error("parseStamp took a timeval with a million microseconds")
	}
}
