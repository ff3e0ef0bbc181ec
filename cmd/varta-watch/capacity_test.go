package main

import (
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// A full pid table (cmd/varta-watch/README.md §3, poll.Policy): strict evicts only a
// slot whose stall was raised and which has been silent for 10× the
// threshold; balanced also evicts a slot silent that long whose stall has
// not been raised yet; otherwise the new pid is dropped and counted.

const (
	capThreshold = 100 * time.Millisecond
	evictAfter   = 10 * capThreshold // poll.EvictionFactor × threshold
)

// agent is a varta-beat process beating until stopped.
type agent struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
}

func startAgent(t *testing.T, socket string, every time.Duration) *agent {
	t.Helper()
	cmd := testbin.AgentCommand(beatBin(t), "--socket", socket, "--count", "1000000",
		"--interval-ms", strconv.FormatInt(every.Milliseconds(), 10))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	a := &agent{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() { cmd.Wait(); close(a.done) }()
	t.Cleanup(a.stop)
	return a
}

// stop kills the agent and reaps it: after stop it sends nothing more.
func (a *agent) stop() {
	a.cmd.Process.Kill()
	<-a.done
}

// oneShot sends one beat from a new varta-beat process, which exits; its
// pid stays in the table until stalled out or evicted.
func oneShot(t *testing.T, socket string) int {
	t.Helper()
	cmd := testbin.Command(beatBin(t), "--socket", socket, "--count", "1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat: %v\n%s", err, out)
	}
	return cmd.Process.Pid
}

// startFull starts an observer with room for two pids.
func startFull(t *testing.T, policy string) *watcher {
	return startWatch(t, "--threshold-ms", strconv.FormatInt(capThreshold.Milliseconds(), 10),
		"--tracker-capacity", "2", "--tracker-eviction-policy", policy, "--prom-addr", "127.0.0.1:0")
}

func waitBeat(t *testing.T, w *watcher, pid int) {
	t.Helper()
	if w.waitEvent(10*time.Second, kindPid("beat", pid)) == nil {
		t.Fatalf("no beat event for pid %d:\n%s", pid, w.logText())
	}
}

// TestCapacityLiveAndStalled, under both policies: live agents are never
// evicted and a new pid is dropped and counted; an agent that stalled and
// then stayed silent for 10× the threshold gives way to a new one.
func TestCapacityLiveAndStalled(t *testing.T) {
	t.Parallel() // waits out the 1 s eviction age; judges events and counters only
	for _, policy := range []string{"strict", "balanced"} {
		t.Run(policy, func(t *testing.T) {
			if testing.Short() && policy != "strict" {
				t.Skip("slow: one policy is enough for -short; run without -short for balanced")
			}
			w := startFull(t, policy)
			live := startAgent(t, w.socket, 20*time.Millisecond)
			quits := startAgent(t, w.socket, 20*time.Millisecond)
			waitBeat(t, w, live.pid)
			waitBeat(t, w, quits.pid)

			dropped := oneShot(t, w.socket)
			if got := w.waitMetric("varta_tracker_capacity_exceeded_total", 1, 5*time.Second); got != 1 {
				t.Fatalf("capacity exceeded = %v with two live agents and a third pid, want 1", got)
			}
			if n := count(w.eventLines(), "beat", dropped); n != 0 {
				t.Errorf("dropped pid %d has %d beat events", dropped, n)
			}

			quits.stop()
			if w.waitEvent(5*time.Second, kindPid("stall", quits.pid)) == nil {
				t.Fatalf("no stall for the stopped agent %d:\n%s", quits.pid, w.logText())
			}
			// Stalled but silent for less than 10× the threshold: not yet
			// evictable. A frame from this process arrives at once.
			dialRaw(t, w.socket).frame(vlp.Frame{Pid: ourPid(), Nonce: 1})
			if got := w.waitMetric("varta_tracker_capacity_exceeded_total", 2, 5*time.Second); got != 2 {
				t.Fatalf("capacity exceeded = %v with a freshly stalled slot, want 2:\n%s", got, w.logText())
			}
			// The stall came ≥ 1 threshold after its last beat; wait out the
			// rest of the 10× with margin.
			time.Sleep(evictAfter - capThreshold + 200*time.Millisecond)
			newcomer := startAgent(t, w.socket, 20*time.Millisecond)
			ev := w.waitEvent(10*time.Second, func(c []string) bool { return len(c) == 6 && c[1] == "eviction" })
			if ev == nil || ev[2] != strconv.Itoa(quits.pid) {
				t.Fatalf("eviction event %v, want one for the stalled pid %d:\n%s", ev, quits.pid, w.logText())
			}
			waitBeat(t, w, newcomer.pid)

			// Full again with two live agents: the next pid is dropped.
			late := oneShot(t, w.socket)
			if got := w.waitMetric("varta_tracker_capacity_exceeded_total", 3, 5*time.Second); got != 3 {
				t.Fatalf("capacity exceeded = %v after the fifth pid, want 3", got)
			}
			m := w.scrape()
			if m["varta_tracker_evicted_total"] != 1 || m["varta_watch_pids_tracked"] != 2 {
				t.Errorf("evicted %v, tracked %v; want 1 and 2", m["varta_tracker_evicted_total"], m["varta_watch_pids_tracked"])
			}
			for _, c := range w.eventLines() {
				if len(c) == 6 && c[1] == "eviction" && c[2] != strconv.Itoa(quits.pid) {
					t.Errorf("unexpected eviction %v (live %d, newcomer %d)", c, live.pid, newcomer.pid)
				}
			}
			if n := count(w.eventLines(), "beat", late); n != 0 {
				t.Errorf("dropped pid %d has %d beat events", late, n)
			}
		})
	}
}

// TestCapacityUnraisedStall tells the policies apart: both slots have been
// silent for 10× the threshold but the loop has not raised their stalls
// yet (the observer was stopped with SIGSTOP meanwhile) when a new pid's
// beat is read. Balanced evicts one for it; strict drops the newcomer.
//
// The setup needs the observer stopped within a threshold of the agents'
// last beats; when the event file shows it was not (a stall raised before
// the newcomer was handled), the attempt is repeated.
func TestCapacityUnraisedStall(t *testing.T) {
	if testing.Short() {
		// TestCapacityLiveAndStalled covers both policies' common cases quickly.
		t.Skip("slow: the observer stopped past 10 thresholds, up to three attempts per policy; run without -short")
	}
	for _, policy := range []string{"strict", "balanced"} {
		t.Run(policy, func(t *testing.T) {
			for attempt := 1; attempt <= 3; attempt++ {
				lost := unraisedStall(t, policy)
				if lost == "" {
					return
				}
				t.Logf("attempt %d: %s; retrying", attempt, lost)
			}
			t.Skip("could not stop the observer within a threshold of the agents' last beats in 3 attempts (machine too busy)")
		})
	}
}

// unraisedStall runs one attempt; it returns why the setup did not hold,
// or "" when the attempt counted.
func unraisedStall(t *testing.T, policy string) string {
	t.Helper()
	w := startFull(t, policy)
	a := startAgent(t, w.socket, 10*time.Millisecond)
	b := startAgent(t, w.socket, 10*time.Millisecond)
	waitBeat(t, w, a.pid)
	waitBeat(t, w, b.pid)
	// Freeze the agents first (no reaping in between, which is slow under
	// emulation), give the observer a moment to read their last beats,
	// then freeze it well within a threshold of them.
	a.cmd.Process.Signal(syscall.SIGSTOP)
	b.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(20 * time.Millisecond)
	w.signal(syscall.SIGSTOP)
	stopped := time.Now()
	a.stop()
	b.stop()
	c := oneShot(t, w.socket) // queued in the stopped observer's socket
	time.Sleep(time.Until(stopped.Add(evictAfter + 300*time.Millisecond)))
	w.signal(syscall.SIGCONT)

	// Settled: each old agent is stalled after its last beat, or evicted.
	var h history
	deadline := time.Now().Add(10 * time.Second)
	for {
		h = readHistory(w.eventLines(), a.pid, b.pid, c)
		if h.settled() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("agents %d and %d neither stalled nor evicted after SIGCONT:\n%s", a.pid, b.pid, w.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, pid := range []int{a.pid, b.pid} {
		if h.evicted[pid] >= 0 && h.stalled[pid] >= 0 && h.stalled[pid] < h.evicted[pid] {
			return "pid " + strconv.Itoa(pid) + " stalled before the newcomer was read"
		}
	}
	evicted := 0
	for _, pid := range []int{a.pid, b.pid} {
		if h.evicted[pid] >= 0 {
			evicted++
			if silence := h.ns[h.evicted[pid]] - h.ns[h.lastBeat[pid]]; silence < evictAfter.Nanoseconds() {
				t.Errorf("pid %d evicted after %v of silence, want ≥ %v", pid, time.Duration(silence), evictAfter)
			}
		}
	}
	if evicted == 0 {
		// Both stalls came after SIGCONT. A short silence before one means
		// its last beat was still queued when the observer stopped: that
		// slot was fresh, not silent, when the newcomer was read.
		for _, pid := range []int{a.pid, b.pid} {
			if i := h.stalled[pid]; i >= 0 && h.ns[i]-h.ns[h.lastBeat[pid]] < evictAfter.Nanoseconds() {
				return "pid " + strconv.Itoa(pid) + "'s last beat was read after SIGCONT"
			}
		}
	}
	switch policy {
	case "strict":
		if evicted != 0 {
			t.Errorf("strict evicted a slot whose stall was not raised:\n%s", w.logText())
		}
		if got := w.waitMetric("varta_tracker_capacity_exceeded_total", 1, 5*time.Second); got != 1 {
			t.Errorf("capacity exceeded = %v, want 1", got)
		}
		if h.beat[c] {
			t.Errorf("strict: newcomer %d was tracked", c)
		}
	case "balanced":
		if evicted != 1 || !h.beat[c] {
			t.Errorf("balanced: %d evictions, newcomer tracked %v; want 1 and true:\n%s", evicted, h.beat[c], w.logText())
		}
	}
	return ""
}

// history indexes the event lines that concern the capacity test's pids.
type history struct {
	ns       []int64     // observer_ns per line
	lastBeat map[int]int // line of the pid's last beat
	stalled  map[int]int // line of its first stall after that, or -1
	evicted  map[int]int // line of its eviction, or -1
	beat     map[int]bool
}

func readHistory(lines [][]string, old1, old2, newcomer int) history {
	h := history{lastBeat: map[int]int{}, stalled: map[int]int{}, evicted: map[int]int{}, beat: map[int]bool{}}
	for _, pid := range []int{old1, old2} {
		h.lastBeat[pid], h.stalled[pid], h.evicted[pid] = -1, -1, -1
	}
	for i, c := range lines {
		ns, _ := strconv.ParseInt(c[0], 10, 64)
		h.ns = append(h.ns, ns)
		if len(c) != 6 {
			continue
		}
		pid, _ := strconv.Atoi(c[2])
		if pid == newcomer && c[1] == "beat" {
			h.beat[pid] = true
		}
		if _, ok := h.lastBeat[pid]; !ok {
			continue
		}
		switch c[1] {
		case "beat":
			h.lastBeat[pid], h.stalled[pid] = i, -1
		case "stall":
			if h.stalled[pid] < 0 {
				h.stalled[pid] = i
			}
		case "eviction":
			h.evicted[pid] = i
		}
	}
	return h
}

func (h history) settled() bool {
	for pid := range h.lastBeat {
		if h.stalled[pid] < 0 && h.evicted[pid] < 0 {
			return false
		}
	}
	return true
}
