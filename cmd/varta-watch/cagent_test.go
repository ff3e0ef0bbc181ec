package main

// The C agent client (vlp/c/varta.h) against a real observer: the
// example an operator compiles with cc is tracked and its silence
// stalled, a forked child is a session of its own, and an agent finds a
// restarted observer by itself. Its wire and emitter semantics are tested
// in vlp/cagent_test.go.

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildCAgent compiles vlp/c/<src> with the system C compiler under the
// flags CI holds the header to, or skips when there is none (CI sets
// VARTA_REQUIRE_CC, so it fails there instead). Under qemu-user it skips:
// the host suite runs these.
func buildCAgent(t *testing.T, src string) string {
	t.Helper()
	if emulated() {
		t.Skip("C agent tests run in the host suite, not under " + os.Getenv("VARTA_TEST_EMULATOR"))
	}
	cc, err := exec.LookPath("cc")
	if err != nil {
		if os.Getenv("VARTA_REQUIRE_CC") != "" {
			t.Fatalf("VARTA_REQUIRE_CC is set but there is no cc on PATH: %v", err)
		}
		t.Skip("no cc on PATH, so the C agent client (vlp/c) is not tested: install gcc")
	}
	bin := filepath.Join(t.TempDir(), strings.TrimSuffix(filepath.Base(src), ".c"))
	args := []string{"-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", "-o", bin,
		filepath.Join("..", "..", "vlp", "c", src)}
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("cc %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return bin
}

// lockedBuffer collects a child's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startC starts a compiled C agent and stops it (by its pid) at the end.
func startC(t *testing.T, bin string, args ...string) (*exec.Cmd, *lockedBuffer) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd, out
}

// beatNonce matches a beat event of pid with the given nonce.
func beatNonce(pid int, nonce string) func([]string) bool {
	return func(c []string) bool { return kindPid("beat", pid)(c) && c[3] == nonce }
}

// TestCExampleTrackedAndStalled: vlp/c/example.c beats five times, is
// tracked (five beat events for its pid, nonces 1 to 5), goes quiet while
// alive and is stalled; SIGTERM makes it send its dying gasp, which the
// observer accepts as a terminal frame, and exit 0.
func TestCExampleTrackedAndStalled(t *testing.T) {
	t.Parallel() // waits out a threshold
	bin := buildCAgent(t, "example.c")
	w := startWatch(t, "--threshold-ms", "300")
	cmd, out := startC(t, bin, w.socket, "5", "20")
	pid := cmd.Process.Pid
	if w.waitEvent(10*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall for the C example (pid %d):\n%s\nexample: %s", pid, w.logText(), out.String())
	}
	for i := 1; i <= 5; i++ {
		if w.waitEvent(time.Second, beatNonce(pid, strconv.Itoa(i))) == nil {
			t.Errorf("no beat event with nonce %d for pid %d: %v", i, pid, w.eventLines())
		}
	}
	if n := count(w.eventLines(), "beat", pid); n != 5 {
		t.Errorf("%d beat events from the example, want 5", n)
	}
	if n := count(w.eventLines(), "exit", pid); n != 0 {
		t.Errorf("the example is stalled, not gone: %d exit events", n)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Errorf("example after SIGTERM: %v\n%s", err, out.String())
	}
	if c := w.waitEvent(5*time.Second, beatNonce(pid, "18446744073709551615")); c == nil || c[4] != "critical" {
		t.Errorf("no terminal frame (critical, nonce 2^64-1) from the example: %v\n%s", w.eventLines(), out.String())
	}
	if s := out.String(); s != "" {
		t.Errorf("example printed %q, want nothing (no beat dropped)", s)
	}
}

// TestCAgentForkTracked: a C agent's forked child is its own agent to the
// observer: its frames carry its pid (the kernel's credentials agree) and
// start at nonce 1, and the parent's session carries on.
func TestCAgentForkTracked(t *testing.T) {
	bin := buildCAgent(t, filepath.Join("testdata", "agent.c"))
	w := startWatch(t, "--threshold-ms", "5000")
	cmd, out := startC(t, bin, w.socket, "beats:2", "fork", "beats:2")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("agent: %v\n%s", err, out.String())
	}
	parent, child := cmd.Process.Pid, 0
	for _, l := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "fork" && f[1] != "pid="+strconv.Itoa(parent) {
			child, _ = strconv.Atoi(strings.TrimPrefix(f[1], "pid="))
		}
	}
	if child == 0 {
		t.Fatalf("no child pid in the agent's output:\n%s", out.String())
	}
	for _, want := range []struct{ pid, nonce int }{{parent, 1}, {parent, 2}, {parent, 3}, {parent, 4}, {child, 1}, {child, 2}} {
		if w.waitEvent(5*time.Second, beatNonce(want.pid, strconv.Itoa(want.nonce))) == nil {
			t.Errorf("no beat of pid %d with nonce %d (parent %d, child %d): %v\n%s", want.pid, want.nonce, parent, child, w.eventLines(), w.logText())
		}
	}
}

// TestCAgentObserverRestart: a C agent beating every 20 ms keeps beating
// while its observer stops and a new one starts on the same socket path;
// the new observer tracks it (its beats go on, with higher nonces) without
// the agent being restarted.
func TestCAgentObserverRestart(t *testing.T) {
	bin := buildCAgent(t, "example.c")
	dir := t.TempDir()
	start := func(events string) *watcher {
		w := newWatcher(t, dir)
		w.events = filepath.Join(dir, events)
		w.startArgs([]string{"--socket", w.socket, "--export-file", w.events, "--threshold-ms", "5000"})
		return w
	}
	first := start("events1.tsv")
	cmd, out := startC(t, bin, first.socket, "100000", "20")
	pid := cmd.Process.Pid
	if first.waitEvent(10*time.Second, beatNonce(pid, "3")) == nil {
		t.Fatalf("first observer never saw nonce 3 from pid %d:\n%s", pid, out.String())
	}
	first.signal(syscall.SIGTERM)
	if code := first.wait(10 * time.Second); code != 0 {
		t.Fatalf("first observer exited %d", code)
	}
	last := 0
	for _, c := range first.eventLines() {
		if kindPid("beat", pid)(c) {
			n, _ := strconv.Atoi(c[3])
			last = max(last, n)
		}
	}
	time.Sleep(100 * time.Millisecond) // a few beats find no observer
	second := start("events2.tsv")
	var got []string
	waitFor(t, 10*time.Second, func() bool {
		got = nil
		for _, c := range second.eventLines() {
			if kindPid("beat", pid)(c) {
				got = append(got, c[3])
			}
		}
		return len(got) >= 3
	}, "three beats of the C agent at the restarted observer")
	if n, _ := strconv.Atoi(got[0]); n <= last+1 {
		t.Errorf("first nonce at the new observer %d, want above %d+1 (beats were dropped while none listened)", n, last)
	}
	if !strings.Contains(out.String(), "dropped: Connection refused") {
		t.Errorf("the agent reported no dropped beat while no observer listened:\n%s", out.String())
	}
}
