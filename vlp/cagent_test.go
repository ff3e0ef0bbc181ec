package vlp

// Tests of the C agent client, c/varta.h: it is compiled with the system
// C compiler (and for armv7 with a cross compiler, run under qemu-arm),
// checked against the conformance vectors, and driven through
// c/testdata/agent.c (host and armv7 builds) against real sockets read
// with this package's decoder. The C files live in vlp/c/, a directory without Go files, so
// the go tool never takes them for cgo source. The observer run (a C
// agent tracked and stalled by varta-watch) is cmd/varta-watch's
// cagent_test.go.

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cFlags are the flags CI holds the header to: strict C99, no warnings.
var cFlags = []string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2"}

// lookC finds a C compiler named name, or skips. Under qemu-user (the
// arm64 and armv7 suites) it skips: the host run already compiled and ran
// everything, including the armv7 build under qemu-arm. CI sets
// VARTA_REQUIRE_CC so that a missing compiler fails there instead.
func lookC(t *testing.T, name string) string {
	t.Helper()
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		t.Skip("C agent tests run in the host suite, not under " + emu)
	}
	cc, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("VARTA_REQUIRE_CC") != "" {
			t.Fatalf("VARTA_REQUIRE_CC is set but %s is not on PATH: %v", name, err)
		}
		t.Skipf("no %s on PATH, so the C agent client (vlp/c) is not tested: install it (Debian: gcc, gcc-arm-linux-gnueabihf)", name)
	}
	return cc
}

// buildC compiles src (a path under vlp/) with cc and cFlags plus extra.
func buildC(t *testing.T, cc, src string, extra ...string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c"))
	args := append(append(append([]string{}, cFlags...), extra...), "-o", bin, src)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cc, strings.Join(args, " "), err, out)
	}
	return bin
}

// vectorLines turns the conformance file into the line format
// c/testdata/vectors.c reads; it returns the lines and how many there are.
func vectorLines(t *testing.T) ([]string, int) {
	v := loadVectors(t)
	var lines []string
	for _, c := range v.CRC {
		in := c.Input
		if in == "" {
			in = "-"
		}
		lines = append(lines, "crc "+c.ID+" "+c.Expected+" "+in)
	}
	for _, c := range v.Frames {
		switch c.Kind {
		case "encode_decode_roundtrip":
			in := c.Inputs
			lines = append(lines, strings.Join([]string{"enc", c.ID, in.Status, strconv.FormatUint(uint64(in.Pid), 10),
				in.Timestamp.String(), in.Nonce.String(), strconv.FormatUint(uint64(in.Payload), 10), c.ExpectedWire}, " "))
		case "decode_error":
			lines = append(lines, "dec "+c.ID+" "+c.Wire+" "+c.ExpectedError)
		default:
			t.Fatalf("unknown vector kind %q", c.Kind)
		}
	}
	if len(lines) != 20 {
		t.Fatalf("%d crc and frame vectors, want 20 (5 + 15)", len(lines))
	}
	return lines, len(lines)
}

// runVectors feeds lines to the checker (argv: how to run it) and returns
// its output and whether it exited 0.
func runVectors(t *testing.T, lines []string, argv ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = strings.NewReader(strings.Join(lines, "\n") + "\n")
	out, err := cmd.CombinedOutput()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run %v: %v", argv, err)
	}
	return string(out), err == nil
}

// checkVectors runs the checker on every vector, then on two broken ones
// (a wrong wire byte, a wrong error name) that it must reject: a checker
// that passes everything would pass the first half too.
func checkVectors(t *testing.T, argv ...string) {
	lines, n := vectorLines(t)
	out, ok := runVectors(t, lines, argv...)
	if want := "checked " + strconv.Itoa(n) + " failed 0\n"; !ok || !strings.HasSuffix(out, want) {
		t.Fatalf("C vector check (want %q at the end, exit 0):\n%s", want, out)
	}
	var broken []string
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "enc frame-ok-minimal "):
			l = l[:len(l)-1] + "b" // the CRC's last nibble: aa -> ab
		case strings.HasPrefix(l, "dec ") && strings.HasSuffix(l, " BadCrc"):
			l = strings.TrimSuffix(l, "BadCrc") + "BadMagic"
		default:
			continue
		}
		broken = append(broken, l)
	}
	out, ok = runVectors(t, broken, argv...)
	if ok || !strings.HasSuffix(out, "checked 2 failed 2\n") {
		t.Fatalf("C vector check passed broken vectors %q:\n%s", broken, out)
	}
}

// TestCVectors: varta.h reproduces every CRC and frame vector, built with
// the host's cc.
func TestCVectors(t *testing.T) {
	cc := lookC(t, "cc")
	checkVectors(t, buildC(t, cc, "c/testdata/vectors.c"))
}

// TestCVectorsArmv7: the same, cross-compiled for armv7 (32-bit, where a
// u64 field is two registers) and run under qemu-arm.
func TestCVectorsArmv7(t *testing.T) {
	cc := lookC(t, "arm-linux-gnueabihf-gcc")
	qemu := lookC(t, "qemu-arm-static")
	checkVectors(t, qemu, buildC(t, cc, "c/testdata/vectors.c", "-static"))
}

// cAgent is a running c/testdata/agent.c.
type cAgent struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

// step is one line the agent printed: STEP pid=P rc=RC ns=NS.
type step struct {
	name    string
	pid     int
	rc      int
	elapsed time.Duration
}

// agentBuild is how to run agent.c: the compiled file, behind qemu-arm
// for the armv7 build.
type agentBuild []string

// eachBuild runs test with agent.c built for the host and, as a second
// subtest, for armv7 run under qemu-arm (skipped, or failed under
// VARTA_REQUIRE_CC, without the cross compiler and qemu): the same
// semantics on a 32-bit target, where every u64 is two registers.
func eachBuild(t *testing.T, test func(*testing.T, agentBuild)) {
	t.Run("host", func(t *testing.T) {
		test(t, agentBuild{buildC(t, lookC(t, "cc"), "c/testdata/agent.c")})
	})
	t.Run("armv7", func(t *testing.T) {
		cc, qemu := lookC(t, "arm-linux-gnueabihf-gcc"), lookC(t, "qemu-arm-static")
		test(t, agentBuild{qemu, buildC(t, cc, "c/testdata/agent.c", "-static")})
	})
}

// startAgent starts agent.c with socket and steps.
func startAgent(t *testing.T, b agentBuild, socket string, steps ...string) *cAgent {
	t.Helper()
	argv := append(append(append([]string{}, b...), socket), steps...)
	a := &cAgent{t: t, cmd: exec.Command(argv[0], argv[1:]...), lines: make(chan string, 64)}
	a.cmd.Stderr = os.Stderr
	var err error
	if a.in, err = a.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			a.lines <- sc.Text()
		}
		close(a.lines)
	}()
	t.Cleanup(func() {
		a.in.Close()
		a.cmd.Process.Kill() // by the pid we started; a no-op once it exited
		a.cmd.Wait()
	})
	return a
}

// next waits for the agent's next step and checks it is name.
func (a *cAgent) next(name string) step {
	a.t.Helper()
	select {
	case l, ok := <-a.lines:
		if !ok {
			a.t.Fatalf("agent exited before step %s", name)
		}
		f := strings.Fields(l)
		var s step
		if len(f) == 4 && f[0] == name {
			s.name = f[0]
			pid, e1 := strconv.Atoi(strings.TrimPrefix(f[1], "pid="))
			rc, e2 := strconv.Atoi(strings.TrimPrefix(f[2], "rc="))
			ns, e3 := strconv.ParseInt(strings.TrimPrefix(f[3], "ns="), 10, 64)
			if e1 == nil && e2 == nil && e3 == nil {
				s.pid, s.rc, s.elapsed = pid, rc, time.Duration(ns)
				return s
			}
		}
		a.t.Fatalf("agent printed %q, want step %s", l, name)
	case <-time.After(10 * time.Second):
		a.t.Fatalf("agent printed nothing for step %s in 10 s", name)
	}
	return step{}
}

// ok is next for a step that must succeed.
func (a *cAgent) ok(name string) step {
	a.t.Helper()
	s := a.next(name)
	if s.rc != 0 {
		a.t.Fatalf("step %s: rc %d, want 0", name, s.rc)
	}
	return s
}

// proceed releases the agent from a "line" step.
func (a *cAgent) proceed() {
	a.t.Helper()
	if _, err := io.WriteString(a.in, "go\n"); err != nil {
		a.t.Fatal(err)
	}
	a.ok("line")
}

// errno is what varta.h returns for e.
func errno(e unix.Errno) int { return -int(e) }

// TestCAgentSession: nonces 1, 2, ... with the agent's own pid and
// timestamps that never go back; terminal frames with rising timestamps
// that leave the nonce alone; the observer-only status 3 refused unsent.
func TestCAgentSession(t *testing.T) { eachBuild(t, testCAgentSession) }

func testCAgentSession(t *testing.T, b agentBuild) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	a := startAgent(t, b, path, "beat:0:10", "beat:1:20", "beat:2:30", "term:99", "term:99", "term:98", "beat:3:0", "beat:0:40")
	pid := uint32(a.ok("open").pid)
	var lastTs uint64
	for i, st := range []Status{Ok, Degraded, Critical} {
		a.ok("beat:" + strconv.Itoa(int(st)) + ":" + strconv.Itoa(10*(i+1)))
		f := r.next()
		want := Frame{Status: st, Pid: pid, Timestamp: f.Timestamp, Nonce: uint64(i + 1), Payload: uint32(10 * (i + 1))}
		if f != want || f.Timestamp < lastTs {
			t.Errorf("beat %d = %+v, want %+v with a timestamp from %d on", i+1, f, want, lastTs)
		}
		lastTs = f.Timestamp
	}
	for _, p := range []uint32{99, 99, 98} {
		a.ok("term:" + strconv.Itoa(int(p)))
		f := r.next()
		if !f.Terminal() || f.Pid != pid || f.Payload != p || f.Timestamp <= lastTs {
			t.Errorf("terminal frame %+v: want Critical, nonce 2^64-1, pid %d, payload %d, timestamp above %d", f, pid, p, lastTs)
		}
		lastTs = f.Timestamp
	}
	if s := a.next("beat:3:0"); s.rc != errno(unix.EINVAL) {
		t.Errorf("status 3: rc %d, want -EINVAL", s.rc)
	}
	a.ok("beat:0:40")
	// The next frame in the queue: had status 3 gone out, it would be this
	// one (and fail to decode); had it taken a nonce, this would be 5.
	if f := r.next(); f.Nonce != 4 || f.Payload != 40 {
		t.Errorf("beat after terminal frames = %+v, want nonce 4 (terminals leave it alone)", f)
	}
}

// TestCAgentBadPath: a socket path that does not fit sockaddr_un is
// -EINVAL from varta_open, not a truncated address.
func TestCAgentBadPath(t *testing.T) { eachBuild(t, testCAgentBadPath) }

func testCAgentBadPath(t *testing.T, b agentBuild) {
	a := startAgent(t, b, strings.Repeat("p", 108))
	if s := a.next("open"); s.rc != errno(unix.EINVAL) {
		t.Errorf("varta_open(108-byte path) = %d, want -EINVAL", s.rc)
	}
}

// TestCAgentNonceWrap: after 2^64-2 comes 0, never the terminal nonce.
func TestCAgentNonceWrap(t *testing.T) { eachBuild(t, testCAgentNonceWrap) }

func testCAgentNonceWrap(t *testing.T, b agentBuild) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	a := startAgent(t, b, path, "beat:0:0", "nonce:18446744073709551613", "beats:3")
	a.ok("open")
	a.ok("beat:0:0")
	r.next()
	a.ok("nonce:18446744073709551613")
	a.ok("beats:3")
	for _, want := range []uint64{NonceTerminal - 1, 0, 1} {
		if f := r.next(); f.Nonce != want {
			t.Errorf("nonce %d, want %d", f.Nonce, want)
		}
	}
}

// TestCAgentFork: a forked child notices its new pid and starts its own
// session at nonce 1; the parent's session goes on where it was.
func TestCAgentFork(t *testing.T) { eachBuild(t, testCAgentFork) }

func testCAgentFork(t *testing.T, b agentBuild) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	a := startAgent(t, b, path, "beats:2", "fork", "beats:2")
	parent := uint32(a.ok("open").pid)
	a.ok("beats:2")
	child := uint32(a.ok("fork").pid) // the child reports first; the parent waits for it
	a.ok("beats:2")
	a.ok("fork")
	a.ok("beats:2")
	if child == parent {
		t.Fatalf("child pid %d is the parent's", child)
	}
	for _, want := range []struct {
		pid   uint32
		nonce uint64
	}{{parent, 1}, {parent, 2}, {child, 1}, {child, 2}, {parent, 3}, {parent, 4}} {
		if f := r.next(); f.Pid != want.pid || f.Nonce != want.nonce {
			t.Errorf("frame pid %d nonce %d, want pid %d nonce %d (parent %d, child %d)", f.Pid, f.Nonce, want.pid, want.nonce, parent, child)
		}
	}
}

// TestCAgentReconnect: no observer is a drop (-ECONNREFUSED), and once
// one listens the next beat reaches it; when it goes away and a new one
// binds the same path (a restart), the beat after that reaches the new
// one without the agent doing anything.
func TestCAgentReconnect(t *testing.T) { eachBuild(t, testCAgentReconnect) }

func testCAgentReconnect(t *testing.T, b agentBuild) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	a := startAgent(t, b, path, "beat:0:1", "line", "beat:0:2", "line", "beat:0:3", "line", "beat:0:4")
	a.ok("open")
	if s := a.next("beat:0:1"); s.rc != errno(unix.ECONNREFUSED) {
		t.Errorf("beat with no observer: rc %d, want -ECONNREFUSED", s.rc)
	}
	old := listen(t, path)
	a.proceed()
	a.ok("beat:0:2")
	if f := old.next(); f.Nonce != 2 || f.Payload != 2 {
		t.Errorf("first delivered frame %+v, want nonce 2 (nonce 1 was dropped)", f)
	}
	old.close()
	os.Remove(path)
	a.proceed()
	if s := a.next("beat:0:3"); s.rc != errno(unix.ECONNREFUSED) {
		t.Errorf("beat while the observer is down: rc %d, want -ECONNREFUSED", s.rc)
	}
	fresh := listen(t, path)
	a.proceed()
	a.ok("beat:0:4")
	if f := fresh.next(); f.Nonce != 4 || f.Payload != 4 {
		t.Errorf("after the restart: %+v, want nonce 4 payload 4", f)
	}
	if !fresh.empty() {
		t.Error("a frame was delivered twice")
	}
}

// TestCAgentSendWait: with the queue full a beat waits for the observer
// to read and is sent then (the flood protection); with no reader it
// gives up after the send wait, and with a wait of 0 at once.
func TestCAgentSendWait(t *testing.T) { eachBuild(t, testCAgentSendWait) }

func testCAgentSendWait(t *testing.T, b agentBuild) {
	path := filepath.Join(t.TempDir(), "obs.sock")
	r := listen(t, path)
	a := startAgent(t, b, path, "fill", "wait:2000", "beat:0:9", "wait:30", "beat:0:0", "wait:0", "beat:0:0")
	a.ok("open")
	if s := a.next("fill"); s.rc != errno(unix.EAGAIN) {
		t.Fatalf("filling the queue ended with rc %d, want -EAGAIN", s.rc)
	}
	a.ok("wait:2000")
	time.Sleep(50 * time.Millisecond)
	var buf [Size]byte
	if _, err := unix.Read(r.fd, buf[:]); err != nil { // room for one
		t.Fatal(err)
	}
	if s := a.ok("beat:0:9"); s.elapsed < 30*time.Millisecond || s.elapsed > 1500*time.Millisecond {
		t.Errorf("beat into a full queue took %v, want about the reader's 50 ms", s.elapsed)
	}
	a.ok("wait:30")
	if s := a.next("beat:0:0"); s.rc != errno(unix.EAGAIN) || s.elapsed < 29*time.Millisecond || s.elapsed > 500*time.Millisecond {
		t.Errorf("beat into a queue nobody reads: rc %d after %v, want -EAGAIN after the 30 ms send wait", s.rc, s.elapsed)
	}
	a.ok("wait:0")
	if s := a.next("beat:0:0"); s.rc != errno(unix.EAGAIN) || s.elapsed > 10*time.Millisecond {
		t.Errorf("beat with no send wait: rc %d after %v, want -EAGAIN at once", s.rc, s.elapsed)
	}
}
