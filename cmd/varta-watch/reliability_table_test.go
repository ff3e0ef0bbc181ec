package main

// Reliability scenario 4 (README.md, Reliability): the pid table exhausted by many
// short-lived agents while a long-lived one beats. capacity_test.go checks
// each eviction rule with two slots, and TestCapacityUnraisedStall the one
// case where the policies differ; here two waves of one-shot agents fill a
// 16-slot table and turn it over.

import (
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// oneShots runs n `varta-beat --count 1` processes, a few at a time, and
// returns the pids whose frame was sent (one refused for a full queue
// exits 1 and is left out).
func oneShots(t *testing.T, socket string, n int) []int {
	t.Helper()
	bin := beatBin(t)
	var mu sync.Mutex
	var pids []int
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(2, runtime.NumCPU()))
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := testbin.Command(bin, "--socket", socket, "--count", "1")
			if err := cmd.Run(); err == nil {
				mu.Lock()
				pids = append(pids, cmd.Process.Pid)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return pids
}

// TestReliabilityTableExhaustion (scenario 4), under both policies: 200
// one-shot agents (40 under emulation) in two waves against a 16-slot
// table, while one agent beats at 10 Hz throughout. The live agent is
// never evicted and never stalls; a slot is evicted only after 10× the
// threshold of silence (strict: only after its stall was raised); every
// one-shot frame is either tracked or counted as capacity exceeded.
func TestReliabilityTableExhaustion(t *testing.T) {
	if testing.Short() {
		// TestCapacityLiveAndStalled covers eviction and refusal quickly.
		t.Skip("slow: 200 agent processes and 10 s of eviction age; run without -short")
	}
	for _, policy := range []string{"strict", "balanced"} {
		t.Run(policy, func(t *testing.T) {
			t.Parallel()
			tableExhaustion(t, policy)
		})
	}
}

func tableExhaustion(t *testing.T, policy string) {
	const capacity, threshold = 16, 500 * time.Millisecond
	const evictAge = 10 * threshold
	wave := 100
	if emulated() {
		wave = 20 // each varta-beat is a qemu start
	}
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(threshold.Milliseconds(), 10),
		"--tracker-capacity", strconv.Itoa(capacity), "--tracker-eviction-policy", policy,
		"--prom-addr", "127.0.0.1:0")
	live := startTrackedAgents(t, w, 1, 100*time.Millisecond)[0]
	first := oneShots(t, w.socket, wave)
	// The first wave's slots become evictable once silent for evictAge.
	time.Sleep(evictAge + threshold + time.Second)
	second := oneShots(t, w.socket, wave)
	shots := append(first, second...)
	// The last frames are read once every one-shot pid is tracked or
	// refused (a beat line or a count of capacity exceeded).
	waitFor(t, 30*time.Second, func() bool {
		shot := map[string]bool{}
		for _, p := range shots {
			shot[strconv.Itoa(p)] = true
		}
		in := map[string]bool{}
		for _, c := range w.eventLines() {
			if len(c) == 6 && c[1] == "beat" && shot[c[2]] {
				in[c[2]] = true
			}
		}
		return len(in)+int(w.scrape()["varta_tracker_capacity_exceeded_total"]) >= len(shots)
	}, "every one-shot frame tracked or refused")
	// Read all before the live agent stops: then it would stall.
	lines := w.eventLines()
	m := w.scrape()
	liveReport := live.stop(30 * time.Second)

	isShot := map[int]bool{}
	for _, p := range shots {
		isShot[p] = true
	}
	lastBeat, stalled := map[int]int64{}, map[int]bool{}
	tracked, evictions := map[int]bool{}, 0
	for _, c := range lines {
		if len(c) != 6 {
			t.Fatalf("bad event line %q", c)
		}
		ns, _ := strconv.ParseInt(c[0], 10, 64)
		pid, _ := strconv.Atoi(c[2])
		switch c[1] {
		case "beat":
			lastBeat[pid], stalled[pid] = ns, false
			if isShot[pid] {
				tracked[pid] = true
			}
		case "stall":
			stalled[pid] = true
			if pid == live.pid {
				t.Errorf("the live agent %d stalled (its longest gap between delivered beats: %d ms)",
					pid, liveReport["max_gap_ms"])
			}
		case "eviction":
			evictions++
			switch silent := time.Duration(ns - lastBeat[pid]); {
			case pid == live.pid:
				t.Errorf("the live agent %d was evicted", pid)
			case !isShot[pid]:
				t.Errorf("evicted pid %d is not one of ours", pid)
			case silent < evictAge:
				t.Errorf("pid %d evicted after %v of silence, want at least %v", pid, silent, evictAge)
			case policy == "strict" && !stalled[pid]:
				t.Errorf("strict evicted pid %d before its stall was raised", pid)
			}
		}
	}
	exceeded := m["varta_tracker_capacity_exceeded_total"]
	if int(exceeded)+len(tracked) != len(shots) {
		t.Errorf("of %d one-shot frames %d were tracked and %v refused as capacity exceeded; want every one either",
			len(shots), len(tracked), exceeded)
	}
	if evictions == 0 || exceeded == 0 || m["varta_tracker_evicted_total"] != float64(evictions) {
		t.Errorf("%d eviction events, varta_tracker_evicted_total %v, capacity exceeded %v; want evictions counted and both non-zero",
			evictions, m["varta_tracker_evicted_total"], exceeded)
	}
	if tr := m["varta_watch_pids_tracked"]; tr != capacity {
		t.Errorf("%v pids tracked at the end, want a full table of %d", tr, capacity)
	}
	key := `varta_beats_total{pid="` + strconv.Itoa(live.pid) + `"}`
	t.Logf("%s: %d one-shot agents sent a frame into a %d-slot table: %d tracked, %v refused (capacity exceeded), %d evicted; "+
		"the live agent delivered %d beats, %v accepted, longest gap %d ms, 0 stalls",
		policy, len(shots), capacity, len(tracked), exceeded, evictions, liveReport["sent"], m[key], liveReport["max_gap_ms"])
}
