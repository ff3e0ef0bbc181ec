package bench

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	Child() // senders and baseline receivers re-execute this test binary
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// benchEnv builds varta-watch once per test binary, as the report does.
func benchEnv(tb testing.TB) *Env {
	tb.Helper()
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if buildDir, buildErr = os.MkdirTemp("", "varta-bench-"); buildErr != nil {
			return
		}
		buildBin, buildErr = BuildObserver(root, buildDir)
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return &Env{Bin: buildBin, Dir: tb.TempDir(), Log: tb.Logf}
}

func TestPct(t *testing.T) {
	v := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		name string
		p    float64
		want int64
	}{
		{"p50", 50, 5}, {"p90", 90, 9}, {"p99", 99, 10}, {"p100", 100, 10}, {"p0", 0, 1}, {"p10", 10, 1}, {"p11", 11, 2},
	} {
		if got := pct(v, tc.p); got != tc.want {
			t.Errorf("%s: pct(1..10, %v) = %d, want %d", tc.name, tc.p, got, tc.want)
		}
	}
	if got := pct(nil, 50); got != 0 {
		t.Errorf("pct(nil, 50) = %d, want 0", got)
	}
}

func TestParseMetrics(t *testing.T) {
	body := []byte(`# HELP varta_beats_total x
# TYPE varta_beats_total counter
varta_beats_total{pid="12"} 3
varta_beats_total{pid="40"} 4
varta_go_heap_allocs_objects_total 1234
varta_build_info{version="a b",goarch="amd64"} 1
varta_watch_uptime_seconds 1.5e+00
`)
	m := parseMetrics(body)
	for name, want := range map[string]float64{"varta_beats_total": 7, "varta_go_heap_allocs_objects_total": 1234,
		"varta_build_info": 1, "varta_watch_uptime_seconds": 1.5} {
		if m[name] != want {
			t.Errorf("parseMetrics: %s = %v, want %v", name, m[name], want)
		}
	}
}

func TestStallLatencies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.tsv")
	lines := "" +
		"1000000\tbeat\t12\t1\tok\t0\n" +
		"1500000\tbeat\t99\t1\tok\t0\n" + // not one of ours
		"21100000\tstall\t12\t1\tstall\t-\n" + // 20 ms threshold + 0.1 ms
		"30000000\tbeat\t12\t2\tok\t0\n" +
		"30000001\tdecode\t-\t-\t-\tBadMagic\n" +
		"52000000\tstall\t12\t2\tstall\t-\n" + // + 2 ms
		"53000000\tstall\t99\t1\tstall\t-\n"
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := stallLatencies(path, []int{12}, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{100000, 2000000}; !slices.Equal(got, want) {
		t.Errorf("stallLatencies = %v, want %v", got, want)
	}
}

// TestSenderBaseline runs the two child roles over a real socket: a
// blocking sender delivers exactly its count, and the baseline receiver
// sees every frame.
func TestSenderBaseline(t *testing.T) {
	b, err := StartBaseline(filepath.Join(t.TempDir(), "b.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	l, err := StartLoad(2, SenderConfig{Socket: b.Socket, Block: true, Count: 500})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := l.Wait(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := Total(rs); got.Delivered != 1000 || got.Errors != 0 {
		t.Errorf("senders delivered %d with %d errors, want 1000 and 0", got.Delivered, got.Errors)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := b.Frames()
		if err != nil {
			t.Fatal(err)
		}
		if n == 1000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("baseline received %d frames, want 1000", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkIngest pushes at least 2^20 frames (or b.N, if larger) from
// four flat-out sender processes through the real socket into the real
// varta-watch binary, and reports accepted frames/s and the observer's
// heap allocations per accepted beat (from its own /metrics). ns/op is
// per accepted frame.
func BenchmarkIngest(b *testing.B) {
	env := benchEnv(b)
	o, err := StartObserver(env.Bin, env.Dir, false, floodArgs...)
	if err != nil {
		b.Fatal(err)
	}
	defer o.Stop()
	perScrape, err := o.AllocsPerScrape(10)
	if err != nil {
		b.Fatal(err)
	}
	ingest(b, o.Socket, o.readCounts, perScrape)
}

// BenchmarkIngestBaseline is the same flood into the baseline receiver:
// the machine's ceiling for BenchmarkIngest.
func BenchmarkIngestBaseline(b *testing.B) {
	env := benchEnv(b)
	r, err := StartBaseline(filepath.Join(env.Dir, "base.sock"))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Stop()
	ingest(b, r.Socket, func() (counts, error) {
		n, err := r.Frames()
		return counts{at: time.Now(), frames: n}, err
	}, -1)
}

// ingest floods socket and reports frames/s; with perScrape ≥ 0 also the
// observer's allocations per accepted beat, net of the metrics requests
// the benchmark itself makes (perScrape allocations each).
func ingest(b *testing.B, socket string, read func() (counts, error), perScrape float64) {
	frames := uint64(max(b.N, 1<<20))
	l, err := StartLoad(4, SenderConfig{Socket: socket, Block: true})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Stop()
	var c0, c counts
	for c0.frames < 10000 { // warm-up
		time.Sleep(50 * time.Millisecond)
		if c0, err = read(); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for c = c0; c.frames-c0.frames < frames; {
		time.Sleep(200 * time.Millisecond)
		if c, err = read(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := c.frames - c0.frames
	rate := float64(n) / c.at.Sub(c0.at).Seconds()
	b.ReportMetric(rate, "frames/s")
	b.ReportMetric(1e9/rate, "ns/op")
	if perScrape >= 0 {
		b.ReportMetric(AllocsPerBeat(c.allocs-c0.allocs, n, c.scrapes-c0.scrapes, perScrape), "allocs/beat")
	}
}

// BenchmarkStallLatency raises at least 100 stalls (b.N if larger) and
// reports how long after its deadline each was raised, from the event
// file: p50 and p99 in ms.
func BenchmarkStallLatency(b *testing.B) {
	env := benchEnv(b)
	const agents = 4
	c := StallConfig{Threshold: 20 * time.Millisecond, Agents: agents, Cycles: (max(b.N, 100) + agents - 1) / agents}
	res, err := MeasureStalls(env, c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(res.Stalls), "stalls")
	b.ReportMetric(res.P50.Seconds()*1e3, "p50-ms")
	b.ReportMetric(res.P99.Seconds()*1e3, "p99-ms")
}
