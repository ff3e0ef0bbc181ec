package main

import (
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestAgentBeatsAgain: a stalled agent that beats again is logged with
// how long it was silent and counted.
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
}
