package bench

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// StallConfig: Agents processes each beat, then stay silent for a random
// Threshold+5ms .. Threshold+25ms, Cycles times, so every silence raises
// one stall, at deadlines spread at random against the observer's ticks.
// Flood > 0 adds that many flat-out senders (blocking) to show the
// latency while the observer is saturated.
type StallConfig struct {
	Threshold time.Duration
	Agents    int
	Cycles    int
	Flood     int
}

// StallResult is the stall-detection latency over every stall of the
// cycling agents: stall time − (last accepted beat + threshold), both
// times from the same event file, so both on the observer's own clock.
type StallResult struct {
	Stalls   int
	P50, P99 time.Duration
	Max      time.Duration
}

// MeasureStalls runs the observer with an event file and the agents above.
func MeasureStalls(env *Env, c StallConfig) (StallResult, error) {
	o, err := StartObserver(env.Bin, env.Dir, true, "--threshold-ms", strconv.FormatInt(c.Threshold.Milliseconds(), 10),
		"--max-beat-rate", "0", "--global-beat-rate", "0")
	if err != nil {
		return StallResult{}, err
	}
	defer o.Stop()
	var flood *Load
	if c.Flood > 0 {
		if flood, err = StartLoad(c.Flood, SenderConfig{Socket: o.Socket, Block: true}); err != nil {
			return StallResult{}, err
		}
		defer flood.Stop()
		time.Sleep(200 * time.Millisecond)
	}
	l, err := StartLoad(c.Agents, SenderConfig{Socket: o.Socket, Block: true, Count: c.Cycles,
		SilenceMin: c.Threshold + 5*time.Millisecond, SilenceMax: c.Threshold + 25*time.Millisecond})
	if err != nil {
		return StallResult{}, err
	}
	pids := l.Pids()
	if _, err := l.Wait(time.Duration(c.Cycles)*(c.Threshold+40*time.Millisecond) + 30*time.Second); err != nil {
		return StallResult{}, err
	}
	time.Sleep(c.Threshold + 100*time.Millisecond) // the last silence's stall
	if flood != nil {
		flood.Stop()
	}
	if err := o.Stop(); err != nil {
		return StallResult{}, err
	}
	lat, err := stallLatencies(o.Events, pids, c.Threshold)
	if err != nil {
		return StallResult{}, err
	}
	if len(lat) < c.Agents*c.Cycles*9/10 {
		return StallResult{}, fmt.Errorf("only %d stalls for %d silences", len(lat), c.Agents*c.Cycles)
	}
	p50, p99 := percentiles(lat)
	return StallResult{Stalls: len(lat), P50: time.Duration(p50), P99: time.Duration(p99),
		Max: time.Duration(lat[len(lat)-1])}, nil
}

// stallLatencies pairs each stall of pids with the beat it followed: the
// stall line carries the pid's last accepted nonce, and that beat's line
// its arrival, so latency = stall_ns − beat_ns − threshold.
func stallLatencies(path string, pids []int, threshold time.Duration) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	want := map[string]bool{}
	for _, p := range pids {
		want[strconv.Itoa(p)] = true
	}
	type key struct{ pid, nonce string }
	beats := map[key]int64{}
	var lat []int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		col := strings.Split(sc.Text(), "\t")
		if len(col) != 6 || !want[col[2]] {
			continue
		}
		ns, err := strconv.ParseInt(col[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("event file: bad time in %q", sc.Text())
		}
		k := key{col[2], col[3]}
		switch col[1] {
		case "beat":
			beats[k] = ns
		case "stall":
			b, ok := beats[k]
			if !ok {
				return nil, fmt.Errorf("event file: stall without its beat: %q", sc.Text())
			}
			lat = append(lat, ns-b-int64(threshold))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lat) == 0 {
		return nil, errors.New("event file: no stalls")
	}
	return lat, nil
}
