package main

// Helper processes for the reliability scenarios (reliability_*_test.go):
// the test binary runs itself again with $VARTA_TEST_ROLE set, and init
// runs that role instead of the tests. Floods and agents so come from
// processes of their own, with pids the kernel reports for them, and a
// role is stopped by closing its stdin (or by its own time bound, so a
// crashed test leaves nothing behind). Under emulation the role runs
// through $VARTA_TEST_EMULATOR like the commands, via testbin.Command.

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

const roleEnv = "VARTA_TEST_ROLE"

// roleMaxLife bounds every helper, whatever happens to the test.
const roleMaxLife = 3 * time.Minute

func init() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	var code int
	switch role {
	case "flood":
		code = floodRole(os.Args[1:])
	case "agent":
		code = agentRole(os.Args[1:])
	case "spinflood":
		code = spinFloodRole(os.Args[1:])
	case "libagent":
		code = libAgentRole(os.Args[1:])
	default:
		os.Stderr.WriteString("unknown " + roleEnv + " " + strconv.Quote(role) + "\n")
		code = 2
	}
	os.Exit(code)
}

// stdinClosed returns a flag set once stdin reaches EOF (the test closed
// its end, or died).
func stdinClosed() *atomic.Bool {
	var closed atomic.Bool
	go func() {
		io.Copy(io.Discard, os.Stdin)
		closed.Store(true)
	}()
	return &closed
}

// report writes the role's result: one line of key=value pairs.
func report(kv ...any) {
	var b []byte
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, kv[i].(string)...)
		b = append(b, '=')
		switch v := kv[i+1].(type) {
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case uint64:
			b = strconv.AppendUint(b, v, 10)
		}
	}
	os.Stdout.Write(append(b, '\n'))
}

func roleFail(msg string, err error) int {
	os.Stderr.WriteString(msg + ": " + err.Error() + "\n")
	return 1
}

// dialFlood connects a non-blocking datagram socket to path, with a send
// buffer that takes 65535-byte datagrams.
func dialFlood(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("connect", err)
	}
	return fd, nil
}

// garbage classes, each counted by the observer under its own metric.
const (
	classTruncated = iota // length != 32: varta_truncated_datagrams_total
	classDecode           // 32 bytes that fail to decode: varta_decode_errors_total
	classSpoof            // a valid frame claiming a pid not ours: varta_frame_auth_failures_total
	numClasses
)

var classNames = [numClasses]string{"truncated", "decode", "spoof"}

// garbage makes hostile datagrams: random bytes of random length,
// well-formed frames with a bad CRC, a frame for every decode error kind,
// and valid frames claiming other pids.
type garbage struct {
	rng   *rand.Rand
	noise []byte // random bytes, sliced for random datagrams
	frame []byte
	own   uint32 // never claimed: that frame would be a real beat
	kind  int    // next decode kind
}

func newGarbage(seed uint64) *garbage {
	g := &garbage{rng: rand.New(rand.NewPCG(seed, uint64(os.Getpid()))), noise: make([]byte, 128<<10),
		frame: make([]byte, 0, vlp.Size), own: uint32(os.Getpid())}
	for i := range g.noise {
		g.noise[i] = byte(g.rng.Uint32())
	}
	return g
}

// next returns a datagram and its class; it is valid until the next call.
func (g *garbage) next() ([]byte, int) {
	switch g.rng.IntN(8) {
	case 0, 1: // any length 0..65535
		n := g.rng.IntN(1 << 16)
		off := g.rng.IntN(len(g.noise) - n + 1)
		if n == vlp.Size {
			return g.noise[off : off+n], classDecode // BadMagic but for a 2^-56 chance
		}
		return g.noise[off : off+n], classTruncated
	case 2: // short
		n := g.rng.IntN(vlp.Size)
		return g.noise[:n], classTruncated
	case 3: // 32 random bytes
		off := g.rng.IntN(len(g.noise) - vlp.Size)
		return g.noise[off : off+vlp.Size], classDecode
	case 4: // well-formed, bad CRC
		b := g.valid(g.own)
		b[28+g.rng.IntN(4)] ^= byte(1 + g.rng.IntN(255))
		return b, classDecode
	case 5, 6: // every decode kind in turn
		g.kind = (g.kind + 1) % len(vlp.DecodeErrors)
		return badFrame(g.valid(g.own), vlp.DecodeErrors[g.kind]), classDecode
	default: // valid, claiming another pid
		pid := g.own
		for pid == g.own {
			pid = 2 + g.rng.Uint32N(spoofRange()) // a pid some process could have: an auth failure
		}
		return g.valid(pid), classSpoof
	}
}

// spoofRange is how many pids from 2 up a spoof may claim: those below
// this host's pid_max (a pid at or above it is refused before the
// credentials are checked, in a family of its own).
var spoofRange = sync.OnceValue(func() uint32 {
	b, err := os.ReadFile("/proc/sys/kernel/pid_max")
	if v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 32); err == nil && perr == nil && v > 3 {
		return uint32(v) - 2
	}
	return 1<<15 - 2 // the smallest pid_max a kernel defaults to
})

func (g *garbage) valid(pid uint32) []byte {
	g.frame = vlp.Append(g.frame[:0], vlp.Frame{Status: vlp.Status(g.rng.IntN(3)), Pid: pid,
		Timestamp: g.rng.Uint64N(1 << 62), Nonce: 1 + g.rng.Uint64N(1<<62), Payload: g.rng.Uint32()})
	return g.frame
}

// badFrame edits the valid frame b so that it fails to decode with kind,
// resealing the CRC where the check comes after it.
func badFrame(b []byte, kind vlp.Error) []byte {
	switch kind {
	case vlp.ErrBadMagic:
		b[0] = 'X'
	case vlp.ErrBadVersion:
		b[2] = 1
	case vlp.ErrBadCrc:
		b[31] ^= 0x80
		return b
	case vlp.ErrBadStatus:
		b[3] = 9
	case vlp.ErrStallOnWire:
		b[3] = byte(vlp.Stall)
	case vlp.ErrBadPid:
		copy(b[4:8], []byte{1, 0, 0, 0})
	case vlp.ErrBadTimestamp:
		copy(b[8:16], bytes.Repeat([]byte{0xff}, 8))
	case vlp.ErrBadNonce:
		b[3] = byte(vlp.Ok)
		copy(b[16:24], bytes.Repeat([]byte{0xff}, 8))
	}
	sum := vlp.Checksum(b[:28])
	b[28], b[29], b[30], b[31] = byte(sum), byte(sum>>8), byte(sum>>16), byte(sum>>24)
	return b
}

// floodRole: flood SOCKET SEED MS sends garbage as fast as the observer
// takes it (waiting in poll(2) while its queue is full) for MS
// milliseconds, or until stdin closes or the observer is gone, then
// reports the datagrams the kernel accepted, by class.
func floodRole(args []string) int {
	if len(args) != 3 {
		os.Stderr.WriteString("usage: flood SOCKET SEED MS\n")
		return 2
	}
	seed, _ := strconv.ParseUint(args[1], 10, 64)
	ms, _ := strconv.ParseInt(args[2], 10, 64)
	fd, err := dialFlood(args[0])
	if err != nil {
		return roleFail("flood", err)
	}
	stop, end := stdinClosed(), time.Now().Add(min(time.Duration(ms)*time.Millisecond, roleMaxLife))
	g := newGarbage(seed)
	var sent [numClasses]int64
	var full, gone int64
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	for i := 0; gone == 0; i++ {
		if i%64 == 0 && (stop.Load() || time.Now().After(end)) {
			break
		}
		b, class := g.next()
		for {
			_, err := unix.Write(fd, b)
			if err == nil {
				sent[class]++
				break
			}
			if err == unix.EAGAIN {
				full++
				unix.Poll(pfd, 100)
				if stop.Load() || time.Now().After(end) {
					break
				}
				continue
			}
			if err == unix.EINTR {
				continue
			}
			// ECONNREFUSED, ENOENT, EPIPE: the observer went away.
			gone = 1
			break
		}
	}
	report(classNames[0], sent[0], classNames[1], sent[1], classNames[2], sent[2], "full", full, "gone", gone)
	return 0
}

// agentRole: agent SOCKET INTERVAL_MS beats through a vlp.Emitter every
// interval until stdin closes. A beat refused with ErrQueueFull is tried
// again until the next one is due (the default net.unix.max_dgram_qlen of
// 10 fills at once under a flood). It reports its beats delivered
// (sent), the last delivered nonce, the periods in which none got through
// (missed), the longest time between two delivered beats (max_gap_ms) and
// how much of that gap the agent itself was off the CPU (max_gap_off_ms:
// the sum of its oversleeps, time it asked to sleep through but did not
// get back; on a loaded machine that, not the observer, can make a gap).
func agentRole(args []string) int {
	if len(args) != 2 {
		os.Stderr.WriteString("usage: agent SOCKET INTERVAL_MS\n")
		return 2
	}
	ms, _ := strconv.ParseInt(args[1], 10, 64)
	every := time.Duration(ms) * time.Millisecond
	e, err := vlp.Dial(args[0])
	if err != nil {
		return roleFail("agent", err)
	}
	defer e.Close()
	stop, end := stdinClosed(), time.Now().Add(roleMaxLife)
	var sent, attempts, missed, lastOK int64
	var maxGap, maxGapOff, off time.Duration
	var last time.Time
	sleep := func(d time.Duration) { // time.Sleep, counting the oversleep in off
		t0 := time.Now()
		time.Sleep(d)
		off += max(time.Since(t0)-d-time.Millisecond, 0)
	}
	due := time.Now()
	for !stop.Load() && time.Now().Before(end) {
		due = due.Add(every)
		for {
			err := e.Beat(vlp.Ok, uint32(sent))
			attempts++ // the emitter's nonce: one per Beat, delivered or not
			if err == nil {
				now := time.Now()
				if gap := now.Sub(last); !last.IsZero() && gap > maxGap {
					maxGap, maxGapOff = gap, off
				}
				sent, lastOK, last, off = sent+1, attempts, now, 0
				break
			}
			if err != vlp.ErrQueueFull || time.Until(due) < time.Millisecond || stop.Load() {
				missed++
				break
			}
			sleep(200 * time.Microsecond)
		}
		if d := time.Until(due); d > 0 {
			sleep(d)
		} else {
			due = time.Now() // late: do not burst to catch up
		}
	}
	report("sent", sent, "last_nonce", lastOK, "missed", missed, "max_gap_ms", maxGap.Milliseconds(),
		"max_gap_off_ms", maxGapOff.Milliseconds())
	return 0
}

// helper is a running role process.
type helper struct {
	t      testing.TB
	cmd    *exec.Cmd
	pid    int
	stdin  io.WriteCloser
	stdout bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	err    error
}

// testBinary is this test binary, to run again as a helper.
var testBinary, _ = filepath.Abs(os.Args[0])

func startHelper(t testing.TB, role string, args ...string) *helper {
	t.Helper()
	h := &helper{t: t, cmd: testbin.Command(testBinary, args...), done: make(chan struct{})}
	h.cmd.Env = append(os.Environ(), roleEnv+"="+role)
	h.cmd.Stdout, h.cmd.Stderr = &h.stdout, &h.stderr
	var err error
	if h.stdin, err = h.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.pid = h.cmd.Process.Pid
	go func() {
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		select {
		case <-h.done:
		default:
			h.cmd.Process.Kill()
			<-h.done
		}
	})
	return h
}

// result waits up to d for the helper to end by itself (stdin left open)
// and returns its report.
func (h *helper) result(d time.Duration) map[string]int64 {
	h.t.Helper()
	select {
	case <-h.done:
	case <-time.After(d):
		h.cmd.Process.Kill()
		<-h.done
		h.t.Fatalf("helper %d still running after %v; stderr:\n%s", h.pid, d, h.stderr.String())
	}
	if h.err != nil {
		h.t.Fatalf("helper %d: %v; stderr:\n%s", h.pid, h.err, h.stderr.String())
	}
	out := map[string]int64{}
	for _, kv := range strings.Fields(h.stdout.String()) {
		k, v, _ := strings.Cut(kv, "=")
		out[k], _ = strconv.ParseInt(v, 10, 64)
	}
	return out
}

// stop closes the helper's stdin and returns its report.
func (h *helper) stop(d time.Duration) map[string]int64 {
	h.t.Helper()
	h.stdin.Close()
	return h.result(d)
}

// startTrackedAgents starts n agent helpers beating every interval and waits
// until the observer tracks each of them.
func startTrackedAgents(t *testing.T, w *watcher, n int, every time.Duration) []*helper {
	t.Helper()
	hs := make([]*helper, n)
	for i := range hs {
		hs[i] = startHelper(t, "agent", w.socket, strconv.FormatInt(every.Milliseconds(), 10))
	}
	for _, h := range hs {
		key := `varta_beats_total{pid="` + strconv.Itoa(h.pid) + `"}`
		if w.waitMetric(key, 1, 60*time.Second) < 1 {
			t.Fatalf("agent %d never tracked; its stderr:\n%s\nobserver:\n%s", h.pid, h.stderr.String(), w.logText())
		}
	}
	return hs
}

// vmRSS returns the resident set of process pid in KiB.
func vmRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS line %q", l)
			}
			return kb
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}
