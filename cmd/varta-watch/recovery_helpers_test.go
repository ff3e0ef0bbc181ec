package main

// Helpers of the recovery tests: agents, the observer, the audit log,
// /proc.

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// patience scales a native deadline for emulation.
func patience(d time.Duration) time.Duration {
	if emulated() {
		return 8 * d
	}
	return d
}

// writeScript writes an executable /bin/sh script and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// beatOnce runs varta-beat to send one frame and exit, and returns its pid:
// an agent that is dead (and reaped) by the time its stall is raised.
func beatOnce(t *testing.T, w *watcher) int {
	t.Helper()
	return beatWith(t, "--socket", w.socket, "--count", "1")
}

// startBeat starts a varta-beat that keeps beating (count frames, interval
// apart) and returns it; the test's cleanup stops and reaps it.
func startBeat(t *testing.T, w *watcher, count int, interval time.Duration) *exec.Cmd {
	t.Helper()
	cmd := testbin.AgentCommand(beatBin(t), "--socket", w.socket, "--count", strconv.Itoa(count),
		"--interval-ms", strconv.FormatInt(interval.Milliseconds(), 10))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// auditRec is one parsed audit log record (cmd/varta-watch/README.md
// §6): seq, wall clock, kind, and the other columns by name in kv
// (observer_ns, daemon_pid, agent_pid, child_pid, reason, chain, ...).
type auditRec struct {
	seq  uint64
	wall time.Time
	kind string
	kv   map[string]string
}

func (r auditRec) int(key string) int {
	v, _ := strconv.Atoi(r.kv[key])
	return v
}

// auditColumns names the columns of each record kind after seq,
// wallclock_ms and kind.
var auditColumns = map[string][]string{
	"boot":     {"observer_ns", "daemon_pid", "prev_chain", "reason", "chain"},
	"spawn":    {"observer_ns", "agent_pid", "child_pid", "mode", "program", "source", "template_len", "chain"},
	"complete": {"observer_ns", "agent_pid", "child_pid", "outcome", "exit_code", "signal", "duration_ns", "stdout_len", "stderr_len", "truncated", "chain"},
	"refused":  {"observer_ns", "agent_pid", "reason", "chain"},
}

// readAudit parses the complete lines of an audit log (the observer may be
// writing the next one).
func readAudit(t *testing.T, path string) []auditRec {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	} else {
		b = nil
	}
	var out []auditRec
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		if n == 1 {
			if sc.Text() != "# varta-watch recovery audit v2" {
				t.Fatalf("audit header %q", sc.Text())
			}
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 4 {
			t.Fatalf("audit line %d: %q", n, sc.Text())
		}
		r := auditRec{kind: cols[3], kv: map[string]string{}}
		names := auditColumns[r.kind]
		if len(cols) != len(names)+3 {
			t.Fatalf("audit line %d: %d columns for %s: %q", n, len(cols), r.kind, sc.Text())
		}
		r.seq, _ = strconv.ParseUint(cols[0], 10, 64)
		ms, _ := strconv.ParseInt(cols[1], 10, 64)
		r.wall = time.UnixMilli(ms)
		r.kv[names[0]] = cols[2]
		for i, name := range names[1:] {
			r.kv[name] = cols[4+i]
		}
		out = append(out, r)
	}
	return out
}

// waitAudit re-reads the audit log until cond holds, or fails the test.
func waitAudit(t *testing.T, w *watcher, path, what string, d time.Duration, cond func([]auditRec) bool) []auditRec {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		recs := readAudit(t, path)
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(path)
			t.Fatalf("timed out after %v waiting for %s; audit log:\n%s\nobserver log:\n%s", d, what, b, w.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ofKind returns the records of kind whose key equals val ("" matches any).
func ofKind(recs []auditRec, kind, key, val string) []auditRec {
	var out []auditRec
	for _, r := range recs {
		if r.kind == kind && (key == "" || r.kv[key] == val) {
			out = append(out, r)
		}
	}
	return out
}

func outcomeKey(label string) string {
	switch label {
	case "skipped_in_flight", "skipped_stale", "refused_shutdown", "skipped_paused", "dry_run": // ours, beyond upstream's set
		return `varta_recovery_outcomes_extra_total{outcome="` + label + `"}`
	}
	return `varta_recovery_outcomes_total{outcome="` + label + `"}`
}

// procEntry is what /proc/PID/stat says about one process.
type procEntry struct {
	pid, ppid, pgrp int
	state           byte
}

// procTable reads every process's state, parent and group from /proc.
func procTable() []procEntry {
	ents, _ := os.ReadDir("/proc")
	var out []procEntry
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		i := bytes.LastIndexByte(b, ')') // comm may hold spaces and parentheses
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		out = append(out, procEntry{pid: pid, ppid: ppid, pgrp: pgrp, state: f[0][0]})
	}
	return out
}

// zombiesOf lists the unreaped children of ppid.
func zombiesOf(ppid int) []int {
	var out []int
	for _, p := range procTable() {
		if p.ppid == ppid && p.state == 'Z' {
			out = append(out, p.pid)
		}
	}
	return out
}

// lingeringZombies lists the zombie children of ppid that are zombies
// now and still are after d.
func lingeringZombies(ppid int, d time.Duration) []int {
	first := zombiesOf(ppid)
	if len(first) == 0 {
		return nil
	}
	time.Sleep(d)
	var out []int
	for _, z := range zombiesOf(ppid) {
		if slices.Contains(first, z) {
			out = append(out, z)
		}
	}
	return out
}

// groupLeft lists the processes still in group pgid: live ones, and
// zombies whose parent is parent (the observer, whose job reaping them
// is). A zombie of another parent is not ours to judge: a killed
// grandchild is reparented to init, which in some containers never reaps.
func groupLeft(pgid, parent int) []procEntry {
	var out []procEntry
	for _, p := range procTable() {
		if p.pgrp == pgid && (p.state != 'Z' && p.state != 'X' || p.ppid == parent) {
			out = append(out, p)
		}
	}
	return out
}

// waitGone waits until list returns nothing, failing with what it last saw.
func waitGone[T any](t *testing.T, what string, d time.Duration, list func() []T) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		left := list()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v still %s: %v", d, what, left)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// observerPid is the pid that owns the recovery children: the binary's,
// or under qemu-user the emulator's, which is the same process.
func (w *watcher) observerPid() int { return w.cmd.Process.Pid }

// waitFiles waits until the glob matches at least n files.
func waitFiles(t *testing.T, w *watcher, glob string, n int, d time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		m, _ := filepath.Glob(glob)
		if len(m) >= n {
			sort.Strings(m)
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d files match %s, want %d; observer log:\n%s", d, len(m), glob, n, w.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startWatchLeaky is startWatch for an observer whose parent leaked fds to
// it: files become its fds 3, 4, ... without close-on-exec, as an init
// script's pipe or a shell's redirection would. None may reach a child.
func startWatchLeaky(t *testing.T, files []*os.File, extra ...string) *watcher {
	t.Helper()
	w := newWatcher(t, t.TempDir())
	w.startArgs(w.baseArgs(extra...), files...)
	return w
}

// stopCleanly checks the observer leaves no child unreaped, then stops it
// with SIGTERM and expects a clean exit: outstanding children are killed
// and reaped by the observer, not orphaned. A child that exited a moment
// ago is a zombie until the observer's next turn (longer under qemu); one
// that is still a zombie a second later was not reaped.
func stopCleanly(t *testing.T, w *watcher) {
	t.Helper()
	if z := lingeringZombies(w.observerPid(), patience(time.Second)); len(z) > 0 {
		t.Errorf("zombie children of the observer, unreaped for %v: %v", patience(time.Second), z)
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(patience(10 * time.Second)); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, w.logText())
	}
}

// waitCount waits until the event file holds want events of kind for pid
// and returns how many it holds.
func waitCount(w *watcher, kind string, pid, want int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		n := count(w.eventLines(), kind, pid)
		if n >= want || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// eventTimes indexes the event file: the observer_ns of each (kind, pid)
// event, in file order.
func eventTimes(w *watcher) map[string][]int64 {
	out := map[string][]int64{}
	for _, c := range w.eventLines() {
		if len(c) == 6 {
			ns, _ := strconv.ParseInt(c[0], 10, 64)
			out[c[1]+" "+c[2]] = append(out[c[1]+" "+c[2]], ns)
		}
	}
	return out
}

// killGroupsOf SIGKILLs the process group of every process whose command
// line names prog: recovery children orphaned by a killed observer.
func killGroupsOf(prog string) {
	for _, p := range procTable() {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(p.pid) + "/cmdline")
		if p.pid == p.pgrp && bytes.Contains(b, []byte(prog)) {
			syscall.Kill(-p.pid, syscall.SIGKILL)
		}
	}
}

// restartWatch starts a new observer on w's socket path (a stale socket
// after a crash is replaced) with a fresh event file and extra flags.
func restartWatch(t *testing.T, w *watcher, extra ...string) *watcher {
	t.Helper()
	w2 := newWatcher(t, w.dir)
	w2.events = w.events + ".2"
	w2.startArgs(w2.baseArgs(extra...))
	return w2
}
