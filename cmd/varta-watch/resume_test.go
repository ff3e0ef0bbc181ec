package main

import (
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestAgentBeatsAgain: a stalled agent that beats again is logged with
// how long it was silent, counted, and written as a recovered event.
func TestAgentBeatsAgain(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "200", "--prom-addr", "127.0.0.1:0")
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	if w.waitEvent(5*time.Second, kindPid("stall", int(ourPid()))) == nil {
		t.Fatalf("no stall:\n%s", w.logText())
	}
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 2})
	line := w.waitLog(`msg="agent beats again after its stall" pid=`+strconv.Itoa(int(ourPid())), 5*time.Second)
	m := regexp.MustCompile(`silent_ms=(\d+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("no line for the agent beating again:\n%s", w.logText())
	}
	if ms, _ := strconv.Atoi(m[1]); ms < 200 {
		t.Errorf("silent_ms=%d, want at least the 200 ms threshold", ms)
	}
	if got := w.waitMetric("varta_agents_recovered_total", 1, 5*time.Second); got != 1 {
		t.Errorf("varta_agents_recovered_total = %v, want 1", got)
	}
	ev := w.waitEvent(5*time.Second, kindPid("recovered", int(ourPid())))
	if ev == nil {
		t.Fatalf("no recovered event in the event file:\n%q", w.eventLines())
	}
	if ms, err := strconv.Atoi(ev[5]); err != nil || ms < 200 || ev[3] != "2" || ev[4] != "ok" {
		t.Errorf("recovered event %q: want nonce 2, status ok, silent ms >= 200", ev)
	}
}

// TestRecoveredNotUpstream: --export-kinds upstream leaves the recovered
// event out, as it does exit, for a parser that knows only upstream's
// seven kinds.
func TestRecoveredNotUpstream(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "150", "--export-kinds", "upstream")
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	if w.waitEvent(5*time.Second, kindPid("stall", int(ourPid()))) == nil {
		t.Fatalf("no stall:\n%s", w.logText())
	}
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 2})
	if w.waitEvent(5*time.Second, func(c []string) bool { return len(c) == 6 && c[1] == "beat" && c[3] == "2" }) == nil {
		t.Fatalf("no second beat:\n%q", w.eventLines())
	}
	w.waitLog(`msg="agent beats again after its stall"`, 5*time.Second)
	w.signal(syscall.SIGTERM)
	w.wait(10 * time.Second)
	for _, c := range w.eventLines() {
		if c[1] == "recovered" || c[1] == "exit" {
			t.Errorf("--export-kinds upstream wrote %q", c)
		}
	}
}

// TestExportTimeWall: --export-time wall writes Unix-epoch nanoseconds in
// the first column, between the wall times before start and after the line.
func TestExportTimeWall(t *testing.T) {
	before := time.Now().UnixNano()
	w := startWatch(t, "--threshold-ms", "5000", "--export-time", "wall")
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	ev := w.waitEvent(5*time.Second, kindPid("beat", int(ourPid())))
	after := time.Now().UnixNano()
	if ev == nil {
		t.Fatalf("no beat:\n%s", w.logText())
	}
	ns, err := strconv.ParseInt(ev[0], 10, 64)
	if err != nil || ns < before || ns > after {
		t.Errorf("first column %q: want Unix ns between %d and %d", ev[0], before, after)
	}
}
