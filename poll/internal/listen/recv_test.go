package listen

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/testutil"
	"github.com/varta-go/varta/vlp"
)

// The test binary doubles as a tiny datagram sender in a child process, so
// credentials are checked against a pid other than our own.
const (
	sockHelperEnv = "VARTA_POLL_TEST_HELPER" // helper mode
	sockHelperArg = "VARTA_POLL_TEST_ARG"    // its argument
)

func init() {
	switch os.Getenv(sockHelperEnv) {
	case "":
	case "send":
		os.Exit(sockHelperSend(os.Getenv(sockHelperArg)))
	default:
		os.Exit(3)
	}
}

// sockHelperSend sends three datagrams to the socket at path, says "sent"
// on stdout and stays alive until stdin closes, so its pid cannot be
// reused while the parent checks it.
func sockHelperSend(path string) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 4
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		return 5
	}
	for i := range 3 {
		if _, err := unix.Write(fd, []byte("child "+strconv.Itoa(i))); err != nil {
			return 6
		}
	}
	os.Stdout.WriteString("sent\n")
	var b [1]byte
	os.Stdin.Read(b[:])
	return 0
}

// sockStartChild starts the test binary in helper mode and returns it with
// its stdin and stdout.
func sockStartChild(t *testing.T, mode, arg string) (*exec.Cmd, *os.File, *bufio.Reader) {
	t.Helper()
	start := func(argv ...string) (*exec.Cmd, *os.File, *bufio.Reader, error) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), sockHelperEnv+"="+mode, sockHelperArg+"="+arg)
		cmd.Stderr = os.Stderr
		inR, inW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		outR, outW, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdin, cmd.Stdout = inR, outW
		err = cmd.Start()
		inR.Close()
		outW.Close()
		if err != nil {
			inW.Close()
			outR.Close()
			return nil, nil, nil, err
		}
		t.Cleanup(func() { outR.Close() })
		return cmd, inW, bufio.NewReader(outR), nil
	}
	cmd, in, out, err := start(testutil.SelfArgv()...)
	if errors.Is(err, syscall.ENOEXEC) {
		emu, lerr := testutil.LookEmulator()
		if lerr != nil {
			t.Skipf("cannot re-exec the test binary (%v) and no qemu-user emulator found: %v", err, lerr)
		}
		cmd, in, out, err = start(emu, os.Args[0])
	}
	if err != nil {
		t.Fatalf("start helper: %v", err)
	}
	return cmd, in, out
}

// recvTestSocket binds a UDS in a fresh directory and returns it with a
// Receiver and a connected, blocking client socket.
func recvTestSocket(t testing.TB, batch int) (*UDS, *Receiver, int) {
	t.Helper()
	u, err := ListenUDS(filepath.Join(t.TempDir(), "s"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	return u, NewReceiver(u.Fd(), batch), recvTestClient(t, u.Path())
}

func recvTestClient(t testing.TB, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	// Room for the 64 KiB datagram of TestRecvLengths.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<18)
	return fd
}

// recvOne receives exactly one datagram that is already queued.
func recvOne(t *testing.T, r *Receiver) {
	t.Helper()
	n, err := r.Recv()
	if n != 1 || err != nil {
		t.Fatalf("Recv() = %d, %v, want 1, nil", n, err)
	}
}

func TestRecvEmpty(t *testing.T) {
	_, r, _ := recvTestSocket(t, 8)
	if n, err := r.Recv(); n != 0 || err != nil {
		t.Fatalf("Recv() on an empty socket = %d, %v, want 0, nil", n, err)
	}
}

func TestRecvLengths(t *testing.T) {
	_, r, client := recvTestSocket(t, 8)
	for _, size := range []int{0, 1, 31, 32, 33, 64, 65, 1000, 65535} {
		msg := make([]byte, size)
		for i := range msg {
			msg[i] = byte(i*7 + size)
		}
		if _, err := unix.Write(client, msg); err != nil {
			t.Fatalf("send %d bytes: %v", size, err)
		}
		recvOne(t, r)
		if got := r.Len(0); got != size {
			t.Errorf("Len(0) = %d, want %d (MSG_TRUNC must report the real length)", got, size)
		}
		want := msg[:min(size, RecvDataBytes)]
		if got := r.Data(0); !bytes.Equal(got, want) {
			t.Errorf("Data(0) of a %d-byte datagram = %x, want %x", size, got, want)
		}
		if got, want := r.Truncated(0), size > RecvDataBytes; got != want {
			t.Errorf("Truncated(0) of a %d-byte datagram = %v, want %v", size, got, want)
		}
	}
}

func TestRecvCredSelf(t *testing.T) {
	_, r, client := recvTestSocket(t, 8)
	unix.Write(client, []byte("x"))
	recvOne(t, r)
	pid, uid, gid, ok := r.Cred(0)
	if !ok || pid != uint32(os.Getpid()) || uid != uint32(os.Getuid()) || gid != uint32(os.Getgid()) {
		t.Fatalf("Cred(0) = %d, %d, %d, %v, want %d, %d, %d, true",
			pid, uid, gid, ok, os.Getpid(), os.Getuid(), os.Getgid())
	}
	if r.CtrlTruncated(0) {
		t.Error("CtrlTruncated(0) = true for a plain datagram")
	}
}

func TestRecvCredChild(t *testing.T) {
	u, r, _ := recvTestSocket(t, 8)
	cmd, in, out := sockStartChild(t, "send", u.Path())
	defer func() {
		in.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}()
	if line, err := out.ReadString('\n'); line != "sent\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	n, err := r.Recv()
	if n != 3 || err != nil {
		t.Fatalf("Recv() = %d, %v, want 3, nil", n, err)
	}
	for i := range n {
		pid, uid, gid, ok := r.Cred(i)
		if !ok || pid != uint32(cmd.Process.Pid) || uid != uint32(os.Getuid()) || gid != uint32(os.Getgid()) {
			t.Errorf("Cred(%d) = %d, %d, %d, %v, want the child %d, %d, %d, true",
				i, pid, uid, gid, ok, cmd.Process.Pid, os.Getuid(), os.Getgid())
		}
		if want := "child " + strconv.Itoa(i); string(r.Data(i)) != want {
			t.Errorf("Data(%d) = %q, want %q", i, r.Data(i), want)
		}
	}
}

func recvCountFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

func TestRecvClosesPassedFds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fds    int
		closed uint64 // what reaches us; the kernel drops the rest
		ctrunc bool
	}{
		{"one", 1, 1, false},
		{"fill", recvMaxFds, recvMaxFds, false},
		{"overflow", recvMaxFds + 4, recvMaxFds, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ctrunc && testutil.Emulated() {
				t.Skip("qemu-user translates control data itself: it leaks the fds that do not fit and " +
					"sets no MSG_CTRUNC; the kernel's behaviour is checked by native runs")
			}
			_, r, client := recvTestSocket(t, 4)
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(p[0])
			pass := make([]int, tc.fds)
			for i := range pass {
				pass[i] = p[1]
			}
			err := unix.Sendmsg(client, []byte("x"), unix.UnixRights(pass...), nil, 0)
			unix.Close(p[1])
			if err != nil {
				t.Fatal(err)
			}
			before := recvCountFds(t)
			recvOne(t, r)
			if after := recvCountFds(t); after != before {
				t.Errorf("open fds went from %d to %d across Recv: passed fds leaked", before, after)
			}
			if got := r.ClosedFds(); got != tc.closed {
				t.Errorf("ClosedFds() = %d, want %d", got, tc.closed)
			}
			if got := r.CtrlTruncated(0); got != tc.ctrunc {
				t.Errorf("CtrlTruncated(0) = %v, want %v", got, tc.ctrunc)
			}
			if _, _, _, ok := r.Cred(0); !ok {
				t.Error("Cred(0) missing next to SCM_RIGHTS")
			}
			// Every copy of the write end is gone, so the read end sees EOF.
			var b [1]byte
			if n, err := unix.Read(p[0], b[:]); n != 0 || err != nil {
				t.Errorf("read of the pipe = %d, %v, want EOF: a passed write end is still open", n, err)
			}
		})
	}
}

// recvFill queues datagrams "0", "1", ... without blocking until the
// kernel refuses more (net.unix.max_dgram_qlen) or max is reached.
func recvFill(t *testing.T, client, max int) int {
	t.Helper()
	for i := range max {
		if _, err := unix.SendmsgN(client, []byte(strconv.Itoa(i)), nil, nil, unix.MSG_DONTWAIT); err != nil {
			if err == unix.EAGAIN {
				return i
			}
			t.Fatal(err)
		}
	}
	return max
}

func TestRecvBatch(t *testing.T) {
	_, r, client := recvTestSocket(t, 64)
	queued := recvFill(t, client, 64)
	if queued < 2 {
		t.Fatalf("only %d datagrams could be queued", queued)
	}
	n, err := r.Recv()
	if n != queued || err != nil {
		t.Fatalf("Recv() with %d queued = %d, %v, want all in one call", queued, n, err)
	}
	for i := range n {
		if got, want := string(r.Data(i)), strconv.Itoa(i); got != want {
			t.Errorf("Data(%d) = %q, want %q", i, got, want)
		}
		if _, _, _, ok := r.Cred(i); !ok {
			t.Errorf("Cred(%d) missing", i)
		}
	}
	if got := r.Received(); got != uint64(queued) {
		t.Errorf("Received() = %d, want %d", got, queued)
	}
}

func TestRecvBatchBound(t *testing.T) {
	_, r, client := recvTestSocket(t, 4)
	queued := recvFill(t, client, 10)
	next := 0
	for queued > 0 {
		n, err := r.Recv()
		if want := min(queued, 4); n != want || err != nil {
			t.Fatalf("Recv() = %d, %v, want %d, nil", n, err, want)
		}
		for i := range n {
			if got, want := string(r.Data(i)), strconv.Itoa(next); got != want {
				t.Errorf("Data(%d) = %q, want %q", i, got, want)
			}
			next++
		}
		queued -= n
	}
	if n, err := r.Recv(); n != 0 || err != nil {
		t.Fatalf("Recv() after draining = %d, %v, want 0, nil", n, err)
	}
}

// RecvAtMost reads no more than asked, in order, clamps its limit to
// 1..Batch, and counts the queue as emptied only after a call that
// returned fewer than it asked for (a call that got all it asked for
// cannot know).
func TestRecvAtMost(t *testing.T) {
	_, r, client := recvTestSocket(t, 8)
	if queued := recvFill(t, client, 10); queued != 10 {
		t.Skipf("only %d datagrams could be queued (net.unix.max_dgram_qlen below 9?)", queued)
	}
	next := 0
	read := func(limit, want int) {
		t.Helper()
		n, err := r.RecvAtMost(limit)
		if n != want || err != nil {
			t.Fatalf("RecvAtMost(%d) = %d, %v, want %d, nil", limit, n, err, want)
		}
		for i := range n {
			if got, want := string(r.Data(i)), strconv.Itoa(next); got != want {
				t.Errorf("Data(%d) = %q, want %q", i, got, want)
			}
			next++
		}
	}
	read(100, 8) // clamped down to Batch
	read(-5, 1)  // clamped up to 1
	read(0, 1)   // the last one: the queue is empty now, but this call got all it asked for
	read(3, 0)   // call 4 finds it empty
	if got := r.EmptiedBefore(); got != 0 {
		t.Errorf("EmptiedBefore() = %d at call 4, want 0: no earlier call found the queue empty", got)
	}
	read(1, 0)
	if got := r.EmptiedBefore(); got != 4 {
		t.Errorf("EmptiedBefore() = %d at call 5, want 4", got)
	}
}

func TestNewReceiverClamps(t *testing.T) {
	for _, tc := range []struct{ in, want int }{{-1, 1}, {0, 1}, {1, 1}, {64, 64}, {RecvMaxBatch + 1, RecvMaxBatch}} {
		if got := NewReceiver(-1, tc.in).Batch(); got != tc.want {
			t.Errorf("NewReceiver(-1, %d).Batch() = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestRecvError(t *testing.T) {
	r := NewReceiver(-1, 1)
	_, err := r.Recv()
	var se *os.SyscallError
	if !errors.As(err, &se) || se.Syscall != "recvmmsg" || !errors.Is(err, unix.EBADF) {
		t.Fatalf("Recv() on a bad fd = %v, want recvmmsg: EBADF", err)
	}
}

var recvSink struct {
	n   int
	pid uint32
	f   vlp.Frame
}

func TestRecvNoAllocs(t *testing.T) {
	_, r, client := recvTestSocket(t, 64)
	var frame [vlp.Size]byte
	vlp.Encode(&frame, vlp.Frame{Status: vlp.Ok, Pid: uint32(os.Getpid()), Timestamp: 1, Nonce: 1})
	var bad int
	allocs := testing.AllocsPerRun(200, func() {
		unix.Write(client, frame[:])
		unix.Write(client, frame[:])
		// Two calls at most: under qemu-user the second datagram is
		// sometimes not yet readable when the first call is made.
		got := 0
		for try := 0; try < 2 && got < 2; try++ {
			n, err := r.Recv()
			if err != nil {
				break
			}
			got += n
			for i := range n {
				recvSink.f, _ = vlp.Parse(r.Data(i))
				recvSink.pid, _, _, _ = r.Cred(i)
				recvSink.n += r.Len(i)
			}
		}
		if got != 2 {
			bad++
		}
		recvSink.n, _ = r.Recv() // empty: EAGAIN
	})
	if bad > 0 {
		t.Fatalf("%d runs did not receive both datagrams", bad)
	}
	if allocs != 0 {
		t.Fatalf("Recv allocates %v times per batch, want 0", allocs)
	}
}

// BenchmarkRecv pushes frames from a sender goroutine through a bound
// socket; the receiver polls and drains batches like the loop does.
func BenchmarkRecv(b *testing.B) {
	_, r, client := recvTestSocket(b, 64)
	var frame [vlp.Size]byte
	vlp.Encode(&frame, vlp.Frame{Status: vlp.Ok, Pid: uint32(os.Getpid()), Timestamp: 1, Nonce: 1})
	done := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	go func() {
		for range b.N {
			if _, err := unix.Write(client, frame[:]); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	pfd := []unix.PollFd{{Fd: int32(r.Fd()), Events: unix.POLLIN}}
	got, calls := 0, 0
	for got < b.N {
		n, err := r.Recv()
		if err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			unix.Poll(pfd, 1000)
			continue
		}
		for i := range n {
			recvSink.f, _ = vlp.Parse(r.Data(i))
			recvSink.pid, _, _, _ = r.Cred(i)
		}
		got += n
		calls++
	}
	b.StopTimer()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(got)/float64(calls), "frames/recv")
}

// BenchmarkRecvBatch8 runs both sides in one goroutine: eight frames are
// queued, then one Recv takes them all. ns/op is per frame, send included;
// recv-ns/frame is the Recv call alone.
func BenchmarkRecvBatch8(b *testing.B) {
	_, r, client := recvTestSocket(b, 64)
	var frame [vlp.Size]byte
	vlp.Encode(&frame, vlp.Frame{Status: vlp.Ok, Pid: uint32(os.Getpid()), Timestamp: 1, Nonce: 1})
	var inRecv time.Duration
	b.ReportAllocs()
	for i := 0; i < b.N; i += 8 {
		for range 8 {
			unix.Write(client, frame[:])
		}
		t0 := time.Now()
		n, err := r.Recv()
		inRecv += time.Since(t0)
		if n != 8 || err != nil {
			b.Fatalf("Recv() = %d, %v, want 8", n, err)
		}
		for i := range n {
			recvSink.f, _ = vlp.Parse(r.Data(i))
			recvSink.pid, _, _, _ = r.Cred(i)
		}
	}
	b.ReportMetric(float64(inRecv)/float64(b.N), "recv-ns/frame")
}
