package main

// Reliability scenario 7 (README.md, Reliability), the socket and agent half: the
// observer is killed with SIGKILL under load and started again. (The
// audit log's sequence across the crash is recovery_test.go's.)

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// socketID names the socket file at path: its inode, which the file
// system may reuse at once, and its change time, which it may not.
func socketID(t *testing.T, path string) string {
	t.Helper()
	ino := socketIno(t, path)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(ino, 10) + "@" + strconv.FormatInt(st.Ctim.Nano(), 10)
}

// TestReliabilityKill9Restart: with agents beating and a flooder sending,
// SIGKILL leaves the socket file behind; a new observer on the same path
// replaces the stale socket, and the running agents' emitters find it by
// themselves: each agent is tracked again, continuing its own nonce
// sequence (the same process, never restarted).
func TestReliabilityKill9Restart(t *testing.T) {
	if testing.Short() {
		// TestStaleSocketReplaced covers the stale socket quickly.
		t.Skip("slow: 10 agent processes and a flooder across a restart; run without -short")
	}
	agents := 10
	if emulated() {
		agents = 4
	}
	dir := t.TempDir()
	start := func(events string) *watcher {
		w := newWatcher(t, dir)
		w.events = filepath.Join(dir, events)
		w.startArgs([]string{"--socket", w.socket, "--export-file", w.events, "--threshold-ms", "1000",
			"--prom-addr", "127.0.0.1:0"})
		return w
	}
	first := start("events1.tsv")
	hs := startTrackedAgents(t, first, agents, 100*time.Millisecond)
	fl := startFlooders(t, first.socket, 1, time.Minute, 7)
	if got := first.waitMetric("varta_truncated_datagrams_total", 1000, 30*time.Second); got < 1000 {
		t.Fatalf("the flood has not started: %v truncated datagrams", got)
	}
	bound := socketID(t, first.socket)
	first.kill()
	killed := time.Now()
	if got := socketID(t, first.socket); got != bound {
		t.Fatalf("socket %s after SIGKILL, want the stale %s", got, bound)
	}
	fl[0].stop(30 * time.Second)       // it stops by itself once the socket refuses
	time.Sleep(500 * time.Millisecond) // downtime: the agents miss beats (asserted below)

	second := start("events2.tsv")
	restarted := time.Now()
	if socketID(t, second.socket) == bound {
		t.Fatal("the new observer kept the stale socket")
	}
	lastNonce := func(lines [][]string, pid int) uint64 {
		var n uint64
		for _, c := range lines {
			if kindPid("beat", pid)(c) {
				n, _ = strconv.ParseUint(c[3], 10, 64)
			}
		}
		return n
	}
	before := first.eventLines()
	var slowest time.Duration
	for _, h := range hs {
		if second.waitEvent(30*time.Second, kindPid("beat", h.pid)) == nil {
			t.Fatalf("agent %d never beat to the restarted observer:\n%s", h.pid, second.logText())
		}
		slowest = max(slowest, time.Since(restarted))
	}
	after := second.eventLines()
	var missed int64
	for _, h := range hs {
		r := h.stop(30 * time.Second)
		missed += r["missed"]
		if old, now := lastNonce(before, h.pid), lastNonce(after, h.pid); now <= old {
			t.Errorf("agent %d: nonce %d after the restart, %d before: not the same session", h.pid, now, old)
		}
	}
	if missed == 0 {
		t.Error("no agent missed a beat while no observer was running")
	}
	t.Logf("%d agents and a flooder; SIGKILL, restart %v later: stale socket replaced, every agent tracked again within %v of the restart (%d beats missed meanwhile)",
		agents, restarted.Sub(killed).Round(time.Millisecond), slowest.Round(time.Millisecond), missed)
}
