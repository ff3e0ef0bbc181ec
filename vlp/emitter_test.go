package vlp

import (
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// receiver is a real observer-side socket bound at path.
type receiver struct {
	t  *testing.T
	fd int
}

func listen(t *testing.T, path string) *receiver {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	r := &receiver{t: t, fd: fd}
	t.Cleanup(func() { r.close() })
	return r
}

func (r *receiver) close() {
	if r.fd >= 0 {
		unix.Close(r.fd)
		r.fd = -1
	}
}

// next returns the next queued frame, failing the test when none is queued.
func (r *receiver) next() Frame {
	r.t.Helper()
	var b [64]byte
	n, err := unix.Read(r.fd, b[:])
	if err != nil {
		r.t.Fatalf("read: %v", err)
	}
	f, err := Decode(b[:n])
	if err != nil {
		r.t.Fatalf("Decode(%x) = %v", b[:n], err)
	}
	return f
}

func (r *receiver) empty() bool {
	var b [64]byte
	_, err := unix.Read(r.fd, b[:])
	return err == unix.EAGAIN
}

func dialT(t *testing.T, path string) *Emitter {
	t.Helper()
	e, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestEmitterSequence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	var lastTs uint64
	for i := uint64(1); i <= 5; i++ {
		if err := e.Beat(Degraded, uint32(i*10)); err != nil {
			t.Fatalf("Beat %d: %v", i, err)
		}
		f := r.next()
		if f.Nonce != i || f.Pid != uint32(os.Getpid()) || f.Status != Degraded || f.Payload != uint32(i*10) {
			t.Errorf("frame %d = %+v, want nonce %d pid %d", i, f, i, os.Getpid())
		}
		if f.Timestamp < lastTs {
			t.Errorf("timestamp went back: %d after %d", f.Timestamp, lastTs)
		}
		lastTs = f.Timestamp
	}
	if err := e.Beat(Stall, 0); !errors.Is(err, ErrBadStatus) {
		t.Errorf("Beat(Stall) = %v, want ErrBadStatus", err)
	}
}

func TestEmitterNonceWrap(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	e.checkSession()
	e.nonce = NonceTerminal - 2
	for _, want := range []uint64{NonceTerminal - 1, 0, 1} {
		if err := e.Beat(Ok, 0); err != nil {
			t.Fatal(err)
		}
		if f := r.next(); f.Nonce != want {
			t.Errorf("nonce = %d, want %d", f.Nonce, want)
		}
	}
}

func TestEmitterForkedSessionRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	e.Beat(Ok, 0)
	e.Beat(Ok, 0)
	r.next()
	r.next()
	e.pid = 12345 // what a forked child sees: the remembered pid is not its own
	if err := e.Beat(Ok, 0); err != nil {
		t.Fatal(err)
	}
	if f := r.next(); f.Nonce != 1 || f.Pid != uint32(os.Getpid()) {
		t.Errorf("after fork frame = %+v, want nonce 1 and the fresh pid", f)
	}
}

func TestEmitterTerminal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	e.Beat(Ok, 0)
	r.next()
	var prev uint64
	for i := 0; i < 3; i++ {
		if err := e.Terminal(99); err != nil {
			t.Fatal(err)
		}
		f := r.next()
		if !f.Terminal() || f.Payload != 99 {
			t.Errorf("Terminal frame = %+v", f)
		}
		if i > 0 && f.Timestamp <= prev {
			t.Errorf("terminal timestamp %d not above %d", f.Timestamp, prev)
		}
		prev = f.Timestamp
	}
	e.Beat(Ok, 0)
	if f := r.next(); f.Nonce != 2 {
		t.Errorf("beat after terminal has nonce %d, want 2", f.Nonce)
	}
}

func TestEmitterDrops(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	e := dialT(t, path)
	if err := e.Beat(Ok, 0); err != ErrNoObserver {
		t.Fatalf("Beat with no observer = %v, want ErrNoObserver", err)
	}
	r := listen(t, path)
	var full int
	for i := 0; i < 100; i++ {
		if err := e.Beat(Ok, 0); err == ErrQueueFull {
			full++
		} else if err != nil {
			t.Fatalf("Beat %d = %v", i, err)
		}
	}
	if full == 0 || e.Dropped() != uint64(full)+1 {
		t.Errorf("queue-full drops = %d, Dropped() = %d", full, e.Dropped())
	}
	if f := r.next(); f.Nonce != 2 {
		t.Errorf("first delivered nonce = %d, want 2 (nonce 1 was dropped)", f.Nonce)
	}
}

// TestEmitterReconnects replaces the observer's socket file, as a restart
// does; the next beat must reach the new observer without a new Dial.
func TestEmitterReconnects(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	old := listen(t, path)
	e := dialT(t, path)
	if err := e.Beat(Ok, 0); err != nil {
		t.Fatal(err)
	}
	old.close()
	os.Remove(path)
	if err := e.Beat(Ok, 0); err != ErrNoObserver {
		t.Errorf("Beat while observer is down = %v, want ErrNoObserver", err)
	}
	fresh := listen(t, path)
	if err := e.Beat(Ok, 7); err != nil {
		t.Fatalf("Beat after restart = %v", err)
	}
	if f := fresh.next(); f.Payload != 7 || f.Nonce != 3 {
		t.Errorf("after restart frame = %+v, want payload 7 nonce 3", f)
	}
	if !fresh.empty() {
		t.Errorf("a frame was delivered twice")
	}
}

func TestDialBadPath(t *testing.T) {
	long := string(make([]byte, 200))
	for _, p := range []string{"", long} {
		if _, err := Dial(p); err == nil {
			t.Errorf("Dial(%d-byte path) succeeded", len(p))
		}
	}
}

func TestBeatNoAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	var b [Size]byte
	n := testing.AllocsPerRun(1000, func() {
		sinkErr = e.Beat(Ok, 1)
		unix.Read(r.fd, b[:])
	})
	if n != 0 || sinkErr != nil {
		t.Errorf("Beat: %v allocs/op (err %v), want 0", n, sinkErr)
	}
}

// BenchmarkBeat measures one Beat into a real observer socket drained by a
// blocking reader goroutine; a drop when the reader lags is a valid outcome.
func BenchmarkBeat(b *testing.B) {
	path := filepath.Join(b.TempDir(), "obs.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		b.Fatal(err)
	}
	// A receive timeout lets the reader notice the end of the benchmark.
	tv := unix.Timeval{Usec: 20000}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		b.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		var buf [Size]byte
		for !stop.Load() {
			unix.Read(fd, buf[:])
		}
	}()
	e, err := Dial(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Beat(Ok, 1); err != nil && err != ErrQueueFull {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	e.Close()
	stop.Store(true)
	<-done
	unix.Close(fd)
}

// TestBeatWaitsForRoom: with the queue full, Beat waits for the observer
// to read instead of dropping, and returns once it has sent; with no
// reader it gives up after the send wait; with a wait of 0 it drops at
// once, as it used to. The wait allocates nothing.
func TestBeatWaitsForRoom(t *testing.T) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	e := dialT(t, path)
	fill := func() {
		e.SetSendWait(0)
		for e.Beat(Ok, 0) == nil {
		}
	}
	fill()
	e.SetSendWait(2 * time.Second)
	fd, read := r.fd, make(chan struct{})
	go func() {
		defer close(read)
		time.Sleep(50 * time.Millisecond)
		var b [Size]byte
		unix.Read(fd, b[:]) // room for one
	}()
	defer func() { <-read }() // done with fd before the cleanup closes it
	t0 := time.Now()
	if err := e.Beat(Ok, 9); err != nil {
		t.Fatalf("Beat with a reader coming = %v, want it to wait and send", err)
	}
	if d := time.Since(t0); d < 30*time.Millisecond || d > time.Second {
		t.Errorf("Beat took %v, want about the reader's 50 ms", d)
	}
	if e.Waited() == 0 {
		t.Error("Waited() = 0 after a wait")
	}
	e.SetSendWait(30 * time.Millisecond)
	t0 = time.Now()
	if err := e.Beat(Ok, 0); err != ErrQueueFull {
		t.Fatalf("Beat into a queue nobody reads = %v, want ErrQueueFull", err)
	}
	if d := time.Since(t0); d < 30*time.Millisecond || d > 500*time.Millisecond {
		t.Errorf("Beat gave up after %v, want the 30 ms send wait", d)
	}
	e.SetSendWait(0)
	t0 = time.Now()
	if err := e.Beat(Ok, 0); err != ErrQueueFull || time.Since(t0) > 10*time.Millisecond {
		t.Errorf("Beat with no send wait = %v after %v, want ErrQueueFull at once", err, time.Since(t0))
	}
	e.SetSendWait(time.Millisecond)
	if n := testing.AllocsPerRun(20, func() { sinkErr = e.Beat(Ok, 1) }); n != 0 || sinkErr != ErrQueueFull {
		t.Errorf("Beat waiting for room: %v allocs/op (err %v), want 0", n, sinkErr)
	}
}
