package promtext

import (
	"bytes"
	"errors"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.prom from the encoder's output")

// renderGolden writes every feature the format has: an unlabelled counter
// and gauge, per-pid families, a string-labelled family, escaped label
// values and HELP text, the special floats, negative integers, and
// histograms with and without labels.
func renderGolden(e *Encoder) {
	e.Family("varta_watch_uptime_seconds", "Seconds since the observer started.", TypeGauge)
	e.Float(12.5)
	e.Family("varta_truncated_datagrams_total", "Datagrams longer than a frame.", TypeCounter)
	e.Uint(0)
	e.Family("varta_beats_total", "Beats accepted, per pid.", TypeCounter)
	for _, p := range []struct{ pid, beats uint64 }{{7, 1}, {1234, 18446744073709551615}, {56789, 42}} {
		e.LabelUint("pid", p.pid)
		e.Uint(p.beats)
	}
	e.Family("varta_decode_errors_total", "Datagrams rejected by the decoder, by kind.", TypeCounter)
	for _, k := range []string{"bad_magic", "bad_crc"} {
		e.Label("kind", k)
		e.Uint(3)
	}
	e.Family("varta_build_info", `Build of the observer: a "quoted" word, a \ backslash`+"\nand a second line.", TypeGauge)
	e.Label("version", `v1.2 "rc" C:\tmp`+"\nnext")
	e.Label("goarch", "arm")
	e.Uint(1)
	e.Family("varta_example_values", "Special and negative values.", TypeGauge)
	for _, v := range []struct {
		name string
		v    float64
	}{{"nan", math.NaN()}, {"pos_inf", math.Inf(1)}, {"neg_inf", math.Inf(-1)}, {"tiny", 1e-9}, {"huge", 3e20}} {
		e.Label("case", v.name)
		e.Float(v.v)
	}
	e.Label("case", "negative_int")
	e.Int(-5)
	bounds := []float64{0.001, 0.01, 0.1, 1}
	h, _ := NewHistogram(bounds)
	empty, _ := NewHistogram(bounds)
	for _, v := range []float64{0.0005, 0.001, 0.002, 0.05, 0.5, 3} {
		h.Observe(v)
	}
	e.Family("varta_observer_iteration_seconds", "Time spent in one loop iteration.", TypeHistogram)
	e.Histogram(h)
	e.Family("varta_recovery_duration_seconds", "Run time of recovery children, by outcome.", TypeHistogram)
	e.Label("outcome", "reaped")
	e.Histogram(h)
	e.Label("outcome", "killed")
	e.Histogram(empty)
}

func TestGolden(t *testing.T) {
	var e Encoder
	renderGolden(&e)
	if err := e.Err(); err != nil {
		t.Fatalf("Err() = %v, want nil", err)
	}
	got := e.Bytes()
	path := filepath.Join("testdata", "golden.prom")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("exposition differs from %s (run with -update to see the diff in git)\ngot:\n%s", path, got)
	}
	// Rendering again into the same buffer must give the same bytes.
	e.Reset(got)
	renderGolden(&e)
	if !bytes.Equal(e.Bytes(), want) {
		t.Errorf("second render into a reused buffer differs:\n%s", e.Bytes())
	}
}

// TestPromtool has Prometheus's own linter parse and check the golden file.
func TestPromtool(t *testing.T) {
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed")
	}
	f, err := os.Open(filepath.Join("testdata", "golden.prom"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = f
	if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func TestEncoderMisuse(t *testing.T) {
	tests := []struct {
		name string
		do   func(e *Encoder)
		err  error
		out  string
	}{
		{"row before any family", func(e *Encoder) { e.Uint(1) }, ErrSequence, " 1\n"},
		{"bad family name", func(e *Encoder) { e.Family("1x", "h", TypeGauge) }, ErrBadName,
			"# HELP 1x h\n# TYPE 1x gauge\n"},
		{"bad label name", func(e *Encoder) { e.Family("m", "h", TypeGauge); e.Label("a-b", "v"); e.Uint(1) },
			ErrBadName, "# HELP m h\n# TYPE m gauge\nm{a-b=\"v\"} 1\n"},
		{"reserved label name", func(e *Encoder) { e.Family("m", "h", TypeGauge); e.LabelUint("__pid", 1); e.Uint(1) },
			ErrBadName, "# HELP m h\n# TYPE m gauge\nm{__pid=\"1\"} 1\n"},
		{"family twice", func(e *Encoder) { e.Family("m", "h", TypeGauge); e.Family("m", "h", TypeGauge) },
			ErrDuplicateFamily, "# HELP m h\n# TYPE m gauge\n# HELP m h\n# TYPE m gauge\n"},
		{"unfinished row is dropped", func(e *Encoder) { e.Family("a", "h", TypeGauge); e.Label("k", "v"); e.Family("b", "h", TypeGauge) },
			ErrSequence, "# HELP a h\n# TYPE a gauge\n# HELP b h\n# TYPE b gauge\n"},
		{"value in histogram family", func(e *Encoder) { e.Family("m", "h", TypeHistogram); e.Uint(1) },
			ErrSequence, "# HELP m h\n# TYPE m histogram\nm 1\n"},
		{"histogram in gauge family", func(e *Encoder) {
			e.Family("m", "h", TypeGauge)
			e.Histogram(&Histogram{counts: make([]uint64, 1)})
		}, ErrSequence, "# HELP m h\n# TYPE m gauge\nm_bucket{le=\"+Inf\"} 0\nm_sum 0\nm_count 0\n"},
		{"le label in histogram", func(e *Encoder) {
			e.Family("m", "h", TypeHistogram)
			e.Label("le", "1")
			e.Histogram(&Histogram{counts: make([]uint64, 1)})
		}, ErrBadName, "# HELP m h\n# TYPE m histogram\nm_bucket{le=\"1\",le=\"+Inf\"} 0\nm_sum{le=\"1\"} 0\nm_count{le=\"1\"} 0\n"},
		{"first error kept", func(e *Encoder) { e.Uint(1); e.Family("1x", "h", TypeGauge) }, ErrSequence,
			" 1\n# HELP 1x h\n# TYPE 1x gauge\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Encoder
			tt.do(&e)
			if err := e.Err(); !errors.Is(err, tt.err) {
				t.Errorf("Err() = %v, want %v", err, tt.err)
			}
			if got := string(e.Bytes()); got != tt.out {
				t.Errorf("Bytes() = %q, want %q", got, tt.out)
			}
			e.Reset(nil)
			if err := e.Err(); err != nil {
				t.Errorf("after Reset, Err() = %v, want nil", err)
			}
		})
	}
}

// pidRow is what the observer keeps per pid, for the 4096-pid render.
type pidRow struct {
	pid, beats, stalls, status uint64
	age                        float64
}

func makePidRows(n int) []pidRow {
	rows := make([]pidRow, n)
	for i := range rows {
		rows[i] = pidRow{
			pid:    uint64(300 + 7*i),
			beats:  uint64(i) * 1009,
			stalls: uint64(i % 5),
			status: uint64(i % 4),
			age:    float64(i%1000) * 0.0137,
		}
	}
	return rows
}

// renderPids renders the four per-pid families of cmd/varta-watch/README.md §7.
func renderPids(e *Encoder, dst []byte, rows []pidRow) []byte {
	e.Reset(dst)
	e.Family("varta_beats_total", "Beats accepted, per pid.", TypeCounter)
	for i := range rows {
		e.LabelUint("pid", rows[i].pid)
		e.Uint(rows[i].beats)
	}
	e.Family("varta_stalls_total", "Stalls raised, per pid.", TypeCounter)
	for i := range rows {
		e.LabelUint("pid", rows[i].pid)
		e.Uint(rows[i].stalls)
	}
	e.Family("varta_status", "Last status: 0 ok, 1 degraded, 2 critical, 3 stall.", TypeGauge)
	for i := range rows {
		e.LabelUint("pid", rows[i].pid)
		e.Uint(rows[i].status)
	}
	e.Family("varta_last_beat_age_seconds", "Seconds since the last accepted beat.", TypeGauge)
	for i := range rows {
		e.LabelUint("pid", rows[i].pid)
		e.Float(rows[i].age)
	}
	return e.Bytes()
}

var sink []byte

func TestNoAllocs(t *testing.T) {
	rows := makePidRows(4096)
	var e Encoder
	sink = renderPids(&e, nil, rows) // warm-up: the buffer grows once
	if err := e.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	if n := bytes.Count(sink, []byte("\n")); n != 4*(4096+2) {
		t.Fatalf("rendered %d lines, want %d", n, 4*(4096+2))
	}
	if got := testing.AllocsPerRun(20, func() { sink = renderPids(&e, sink, rows) }); got != 0 {
		t.Errorf("render of 4096 pids into a reused buffer: %v allocs, want 0", got)
	}

	h, _ := NewHistogram([]float64{0.001, 0.01, 0.1, 1})
	tests := []struct {
		name string
		f    func()
	}{
		{"Observe", func() { h.Observe(0.05) }},
		{"AppendHistogram", func() { sink = AppendHistogram(sink[:0], "h", h) }},
		{"labelled Histogram", func() {
			e.Reset(sink)
			e.Family("h", "help", TypeHistogram)
			e.Label("outcome", "reaped")
			e.Histogram(h)
			sink = e.Bytes()
		}},
		{"AppendLabelValue escaping", func() { sink = AppendLabelValue(sink[:0], "a\\b\"c\nd") }},
		{"AppendFloat", func() { sink = AppendFloat(sink[:0], 0.1234) }},
	}
	for _, tt := range tests {
		if got := testing.AllocsPerRun(100, tt.f); got != 0 {
			t.Errorf("%s: %v allocs, want 0", tt.name, got)
		}
	}
}

// TestNoForbiddenImports keeps the package off the dependencies the
// observer's binary must not carry through it: fmt, reflect and
// encoding/json cost the static board binaries size, and net/http would
// bring a server the loop does not own. A test, not a habit, keeps them out.
func TestNoForbiddenImports(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not on PATH")
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "fmt", "reflect", "encoding/json", "net", "net/http":
			t.Errorf("promtext depends on %s", dep)
		}
	}
}

func BenchmarkRender4096Pids(b *testing.B) {
	rows := makePidRows(4096)
	var e Encoder
	sink = renderPids(&e, nil, rows)
	b.SetBytes(int64(len(sink)))
	b.ReportAllocs()
	for b.Loop() {
		sink = renderPids(&e, sink, rows)
	}
}

func BenchmarkAppendFloat(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = AppendFloat(sink[:0], 12.3456)
	}
}

func BenchmarkAppendLabelValue(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sink = AppendLabelValue(sink[:0], "bad_magic")
	}
}

func BenchmarkHistogramObserve(b *testing.B) {
	h, _ := NewHistogram([]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1})
	b.ReportAllocs()
	v := 0.0
	for b.Loop() {
		h.Observe(v)
		v += 0.00001
	}
}
