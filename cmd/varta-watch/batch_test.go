package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestBatchMode: with --batch-ms the sockets are read on a tick, so the
// loop wakes about once a tick however many beats arrive in between; a
// stall is still raised, at most one tick after its deadline and never
// before it; and the observer warns that the kernel's datagram queue is
// too short for the table it was given.
func TestBatchMode(t *testing.T) {
	const thresholdMs, batchMs = 300, 100
	w := startWatch(t, "--threshold-ms", strconv.Itoa(thresholdMs), "--batch-ms", strconv.Itoa(batchMs),
		"--tracker-capacity", "4096", "--prom-addr", "127.0.0.1:0")
	if qlen, ok := readQlen(); ok && qlen < 820 {
		if w.waitLog(`msg="--batch-ms needs a longer socket queue.*need=820`, 5*time.Second) == "" {
			t.Errorf("no warning for net.unix.max_dgram_qlen=%d below the 820 that 4096 agents need:\n%s", qlen, w.logText())
		}
	}
	r := dialRaw(t, w.socket)
	before := w.scrape()
	// 40 beats 20 ms apart: a loop woken per datagram would wake about 40
	// times; one reading on a 100 ms tick, about 8.
	var nonce uint64
	for range 40 {
		nonce++
		r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: nonce})
		time.Sleep(20 * time.Millisecond)
	}
	if got := w.waitMetric(`varta_beats_total{pid="`+strconv.Itoa(int(ourPid()))+`"}`, 40, 2*time.Second); got != 40 {
		t.Fatalf("%v beats accepted, want 40", got)
	}
	after := w.scrape()
	wakes := after["varta_loop_wakes_total"] - before["varta_loop_wakes_total"]
	if wakes > 25 {
		t.Errorf("%v wakes for 40 beats over 0.8 s at --batch-ms %d: the sockets are not read on a tick", wakes, batchMs)
	}
	stall := w.waitEvent(5*time.Second, kindPid("stall", int(ourPid())))
	if stall == nil {
		t.Fatalf("no stall after the beats stopped:\n%s", w.logText())
	}
	var last []string
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == "beat" && c[2] == strconv.Itoa(int(ourPid())) {
			last = c
		}
	}
	beatNs, _ := strconv.ParseInt(last[0], 10, 64)
	stallNs, _ := strconv.ParseInt(stall[0], 10, 64)
	gap := time.Duration(stallNs - beatNs)
	// The beat line is stamped when its tick read it; the stall comes at
	// the first tick at or after that time plus the threshold.
	if gap < thresholdMs*time.Millisecond || gap > (thresholdMs+batchMs+20)*time.Millisecond {
		t.Errorf("stall %v after the last beat was read, want %d ms to %d ms", gap, thresholdMs, thresholdMs+batchMs+20)
	}
}

func readQlen() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen")
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil
}
