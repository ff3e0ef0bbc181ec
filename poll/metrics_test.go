package poll

import (
	"bytes"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// metricsTestObserver builds an observer through newObserver, with the
// optional parts that add families switched on (event file, metrics
// listener on a loopback port; not recovery, whose children stalls would
// spawn), and a tracker whose process start times come from starts
// instead of /proc, so that tests choose which pids look recycled. A pid
// missing from starts has no process.
func metricsTestObserver(t testing.TB, capacity int, starts map[uint32]uint64) *observer {
	t.Helper()
	dir := t.TempDir()
	o, err := newObserver(Config{
		SocketPath: filepath.Join(dir, "obs.sock"), SocketMode: 0o600,
		Threshold: time.Second, ReadTimeout: 100 * time.Millisecond,
		TrackerCapacity: capacity, ExportFile: filepath.Join(dir, "events.tsv"),
		Metrics: &MetricsConfig{Addr: "127.0.0.1:0"},
		Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	o.tr = track.NewTracker(track.TrackerConfig{Capacity: capacity, Threshold: int64(o.cfg.Threshold),
		StartTime: func(pid uint32) (uint64, track.Proc) {
			if st, ok := starts[pid]; ok {
				return st, track.ProcAlive
			}
			return 0, track.ProcGone
		}})
	return o
}

// testBeat runs one kernel-attested frame for pid through the loop's tracking
// step.
func (o *observer) testBeat(pid uint32, nonce uint64, status vlp.Status, now int64) {
	o.track(vlp.Frame{Status: status, Pid: pid, Nonce: nonce}, track.OriginUDS, now)
}

// samplePids returns the pid label of every row of family in exposition
// order, checking that the family's rows are contiguous.
func samplePids(t *testing.T, expo []byte, family string) []uint64 {
	t.Helper()
	prefix := []byte(family + `{pid="`)
	var pids []uint64
	seen, ended := false, false
	for _, line := range bytes.Split(expo, []byte("\n")) {
		if !bytes.HasPrefix(line, prefix) {
			ended = ended || seen && len(line) > 0 && line[0] != '#'
			continue
		}
		if ended {
			t.Fatalf("%s: rows are not contiguous", family)
		}
		seen = true
		rest := line[len(prefix):]
		end := bytes.IndexByte(rest, '"')
		pid, err := strconv.ParseUint(string(rest[:end]), 10, 32)
		if err != nil {
			t.Fatalf("%s: bad pid label in %q", family, line)
		}
		pids = append(pids, pid)
	}
	return pids
}

var pidFamilies = []string{"varta_beats_total", "varta_stalls_total", "varta_status", "varta_last_beat_age_seconds"}

func checkPidRows(t *testing.T, o *observer, want []uint64) {
	t.Helper()
	o.render = o.renderMetrics(o.render[:0])
	if err := o.enc.Err(); err != nil {
		t.Fatalf("renderMetrics: encoder misuse: %v", err)
	}
	for _, fam := range pidFamilies {
		if got := samplePids(t, o.render, fam); !slices.Equal(got, want) {
			t.Errorf("%s rows for pids %v, want %v", fam, got, want)
		}
	}
}

// TestRenderMetricsPids: every per-pid family lists every tracked pid in
// numeric (not lexical) order, and a pid retired as recycled or evicted
// for a newcomer leaves every family.
func TestRenderMetricsPids(t *testing.T) {
	starts := map[uint32]uint64{}
	o := metricsTestObserver(t, 6, starts)
	now := o.clock.now()
	for _, pid := range []uint32{100, 9, 4194304, 2, 10, 65536} {
		starts[pid] = 7
		o.testBeat(pid, 1, vlp.Ok, now)
	}
	checkPidRows(t, o, []uint64{2, 9, 10, 100, 65536, 4194304})

	// Pid 10 now names another process: at its deadline it is retired.
	starts[10] = 8
	now += int64(o.cfg.Threshold)
	o.raiseStalls(now)
	if o.c.Retired != 1 || o.c.Stalls != 5 {
		t.Fatalf("retired %d, stalls %d; want 1 and 5", o.c.Retired, o.c.Stalls)
	}
	checkPidRows(t, o, []uint64{2, 9, 100, 65536, 4194304})

	// Beats re-arm 2 and 100 and a new pid fills the table. After ten
	// thresholds of silence the next new pid evicts the stalled slot
	// that stalled first: 9, the first of the stalled pids to beat.
	o.testBeat(2, 2, vlp.Degraded, now)
	o.testBeat(100, 2, vlp.Critical, now)
	o.testBeat(11, 1, vlp.Ok, now)
	if o.tr.Len() != 6 {
		t.Fatalf("tracked %d pids, want a full table of 6", o.tr.Len())
	}
	now += EvictionFactor * int64(o.cfg.Threshold)
	o.testBeat(12, 1, vlp.Ok, now)
	if o.c.Evictions != 1 || o.tr.Lookup(9) != nil {
		t.Fatalf("evictions %d, pid 9 tracked %v; want 1 and evicted", o.c.Evictions, o.tr.Lookup(9) != nil)
	}
	checkPidRows(t, o, []uint64{2, 11, 12, 100, 65536, 4194304})

	// Effective status: 3 while a stall is latched, else the last sent.
	o.raiseStalls(now)
	o.render = o.renderMetrics(o.render[:0])
	for pid, st := range map[uint32]string{2: "3", 12: "0", 65536: "3"} {
		row := `varta_status{pid="` + strconv.Itoa(int(pid)) + `"} ` + st + "\n"
		if !bytes.Contains(o.render, []byte(row)) {
			t.Errorf("exposition lacks %q", row)
		}
	}
}

// metricsTestFull returns an observer tracking 4096 pids, spread over the
// pid space and arriving out of pid order, a quarter of them stalled.
func metricsTestFull(t testing.TB) *observer {
	const n = 4096
	starts := map[uint32]uint64{}
	o := metricsTestObserver(t, n, starts)
	now := o.clock.now()
	for i := range n {
		pid := uint32(2 + (i*7919)%n*97) // a permutation of 2+97k, k < n
		starts[pid] = uint64(i)
		o.testBeat(pid, uint64(i+1), vlp.Status(i%3), now+int64(i))
		if i == n/4 {
			o.raiseStalls(now + int64(i) + int64(o.cfg.Threshold))
		}
	}
	if o.tr.Len() != n || o.c.Stalls == 0 {
		t.Fatalf("tracked %d pids with %d stalls, want %d and some", o.tr.Len(), o.c.Stalls, n)
	}
	o.st.Begin(now, 0)
	o.st.End()
	o.recHist.Observe(0.2)
	o.render = o.renderMetrics(o.render) // warm-up: buffers grow once
	return o
}

var renderSink []byte

// TestRenderMetricsNoAllocs: a scrape of a full 4096-pid table renders
// with zero allocations once the buffers are warm: the pid order is
// sorted in the tracker's scratch into the observer's own.
func TestRenderMetricsNoAllocs(t *testing.T) {
	o := metricsTestFull(t)
	if err := o.enc.Err(); err != nil {
		t.Fatalf("renderMetrics: encoder misuse: %v", err)
	}
	for _, fam := range pidFamilies {
		if pids := samplePids(t, o.render, fam); len(pids) != 4096 || !slices.IsSorted(pids) {
			t.Fatalf("%s: %d rows, sorted %v; want 4096 sorted", fam, len(pids), slices.IsSorted(pids))
		}
	}
	allocs := testing.AllocsPerRun(20, func() {
		o.render = o.renderMetrics(o.render[:0])
		renderSink = o.render
	})
	if allocs != 0 {
		t.Errorf("renderMetrics of 4096 pids: %v allocs per scrape, want 0", allocs)
	}
}

// BenchmarkRenderMetrics4096Pids is one /metrics body for a full 4096-pid
// table through the observer's own renderer.
func BenchmarkRenderMetrics4096Pids(b *testing.B) {
	o := metricsTestFull(b)
	b.SetBytes(int64(len(o.render)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		o.render = o.renderMetrics(o.render[:0])
	}
	renderSink = o.render
}
