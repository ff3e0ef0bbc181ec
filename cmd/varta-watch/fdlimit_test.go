package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// TestOutOfFdsIsNotDeath: an observer that cannot open /proc/PID/stat
// because it has no file descriptor left must not take that for the
// agent's death. Live agents, stopped so that they stall, are reported as
// stalls it cannot verify: no "agent exited" line, no exit event, no
// recovery against a guess.
func TestOutOfFdsIsNotDeath(t *testing.T) {
	if os.Getenv("VARTA_TEST_EMULATOR") != "" {
		t.Skip("prlimit(2) on an emulated process limits the emulator's own fds too")
	}
	w := startWatch(t, "--threshold-ms", "300", "--prom-addr", "127.0.0.1:0", "--recovery-exec", "/bin/true")
	const agents = 8
	var pids []int
	for range agents {
		cmd := testbin.Command(beatBin(t), "--socket", w.socket, "--count", "100000", "--interval-ms", "50")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGCONT)
			cmd.Process.Kill()
			cmd.Wait()
		})
		pids = append(pids, cmd.Process.Pid)
	}
	if got := w.waitMetric("varta_watch_pids_tracked", agents, 10*time.Second); got != agents {
		t.Fatalf("%v agents tracked, want %d", got, agents)
	}
	// No fd left: the soft limit at the lowest fd number free now, so
	// every number below it is taken and any new fd fails with EMFILE.
	// The scrape above leaves a metrics connection that the observer
	// closes a moment later, freeing a low number: read until it holds
	// still.
	lowestFree := func() int {
		ents, err := os.ReadDir("/proc/" + strconv.Itoa(w.cmd.Process.Pid) + "/fd")
		if err != nil {
			t.Skip(err)
		}
		open := map[int]bool{}
		for _, e := range ents {
			n, _ := strconv.Atoi(e.Name())
			open[n] = true
		}
		free := 0
		for open[free] {
			free++
		}
		return free
	}
	free := lowestFree()
	for range 50 {
		time.Sleep(100 * time.Millisecond)
		next := lowestFree()
		if next == free {
			break
		}
		free = next
	}
	var lim unix.Rlimit
	if err := unix.Prlimit(w.cmd.Process.Pid, unix.RLIMIT_NOFILE, nil, &lim); err != nil {
		t.Skip("prlimit:", err)
	}
	lim.Cur = uint64(free)
	if err := unix.Prlimit(w.cmd.Process.Pid, unix.RLIMIT_NOFILE, &lim, nil); err != nil {
		t.Skip("prlimit:", err)
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP) // alive, but silent
	}
	if w.waitLog(`msg="cannot tell whether a stalled agent's pid still names its process`, 5*time.Second) == "" {
		t.Fatalf("no unverifiable stall logged:\n%s", w.logText())
	}
	time.Sleep(500 * time.Millisecond) // every agent's stall is due by now; the bug showed as exits here
	if log := w.logText(); strings.Contains(log, `msg="agent exited"`) {
		t.Errorf("live agents reported as exited while the observer was out of fds:\n%s", log)
	}
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == "exit" {
			t.Errorf("exit event for a live agent: %v", c)
		}
	}
}
