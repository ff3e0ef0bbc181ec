package recovery

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// testWait bounds every poll-until loop: generous, and more so under
// qemu-user (VARTA_TEST_EMULATOR), where every fork is emulated and other
// packages' tests compete for the same CPUs.
var testWait = func() time.Duration {
	if os.Getenv("VARTA_TEST_EMULATOR") != "" {
		return 60 * time.Second
	}
	return 10 * time.Second
}()

func now() int64 { return monotonicNow() }

// shCmd is a Command running script with /bin/sh -c; the pid arrives as
// $0. Tests build Commands directly where the script needs spaces, which
// the whitespace-splitting parser cannot carry.
func shCmd(script string) Command {
	return Command{Path: "/bin/sh", Args: []string{"sh", "-c", script, PidPlaceholder}}
}

// newTestManager makes a Manager that is shut down and closed when the
// test ends, with a check that no zombie child is left.
func newTestManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	if cfg.Capacity == 0 {
		cfg.Capacity = 8
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(time.Second); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoZombies(t)
	})
	return m
}

// tickUntil runs Tick every millisecond or so until cond holds.
func tickUntil(t *testing.T, m *Manager, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(testWait)
	for {
		m.Tick(now())
		if cond() {
			return
		}
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s (outstanding %d, deferred %d, counts %v)",
				what, m.Outstanding(), m.Deferred(), m.Counts())
		}
		time.Sleep(time.Millisecond)
	}
}

// waitFor polls cond without ticking.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(testWait)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type procInfo struct {
	state byte
	ppid  int
	pgrp  int
}

// readStat parses /proc/PID/stat; comm may hold spaces and parentheses,
// so the fields are taken after the last ')'.
func readStat(pid int) (procInfo, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 3 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgrp, _ := strconv.Atoi(f[2])
	return procInfo{state: f[0][0], ppid: ppid, pgrp: pgrp}, true
}

func allPids() []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

// zombieChildren lists zombies whose parent is this test process.
func zombieChildren() []int {
	var out []int
	me := os.Getpid()
	for _, pid := range allPids() {
		if pi, ok := readStat(pid); ok && pi.state == 'Z' && pi.ppid == me {
			out = append(out, pid)
		}
	}
	return out
}

func assertNoZombies(t *testing.T) {
	t.Helper()
	if z := zombieChildren(); len(z) > 0 {
		t.Errorf("zombie children of the test process: %v", z)
	}
}

// liveInGroup lists processes of group pgid that are not zombies.
func liveInGroup(pgid int) []int {
	var out []int
	for _, pid := range allPids() {
		if pi, ok := readStat(pid); ok && pi.pgrp == pgid && pi.state != 'Z' && pi.state != 'X' {
			out = append(out, pid)
		}
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// auditColumns names the columns of each audit record kind, in order
// (cmd/varta-watch/README.md §6).
var auditColumns = map[string][]string{
	"boot":     {"seq", "wallclock_ms", "observer_ns", "kind", "daemon_pid", "prev_chain", "reason", "chain"},
	"spawn":    {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "child_pid", "mode", "program", "source", "template_len", "chain"},
	"complete": {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "child_pid", "outcome", "exit_code", "signal", "duration_ns", "stdout_len", "stderr_len", "truncated", "chain"},
	"refused":  {"seq", "wallclock_ms", "observer_ns", "kind", "agent_pid", "reason", "chain"},
}

// field returns the column named key of an audit record.
func field(rec, key string) (string, bool) {
	cols := strings.Split(rec, "\t")
	names := auditColumns[kindOf(rec)]
	if len(names) != len(cols) {
		return "", false
	}
	for i, n := range names {
		if n == key {
			return cols[i], true
		}
	}
	return "", false
}

func kindOf(rec string) string {
	c := strings.Split(rec, "\t")
	if len(c) < 4 {
		return ""
	}
	return c[3]
}

// collect returns an OnComplete that copies each Completion into *dst.
func collect(dst *[]Completion) func(*Completion) {
	return func(c *Completion) {
		cc := *c
		cc.Captured = append([]byte(nil), c.Captured...)
		*dst = append(*dst, cc)
	}
}

func tempPath(t *testing.T, name string) string {
	return filepath.Join(t.TempDir(), name)
}

// lowerFsize lowers RLIMIT_FSIZE to n (Go ignores SIGXFSZ, so writes past
// it fail with EFBIG) and returns the function that restores it.
func lowerFsize(t *testing.T, n uint64) (restore func()) {
	t.Helper()
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	lim := old
	lim.Cur = n
	if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &lim); err != nil {
		t.Skipf("setrlimit(RLIMIT_FSIZE): %v", err)
	}
	return func() {
		if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
			t.Fatalf("restoring RLIMIT_FSIZE: %v", err)
		}
	}
}

func mkfifo(path string) error { return unix.Mkfifo(path, 0o600) }
