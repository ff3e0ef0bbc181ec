package poll

import (
	"bytes"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/upstats"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

var rtSink []byte

// renderObserver is an observer with just what renderMetrics reads, its
// table holding n pids spread like a busy board's (no sockets).
func renderObserver(tb testing.TB, n int) *observer {
	tb.Helper()
	o := &observer{cfg: Config{Version: "bench", ReadTimeout: 100 * time.Millisecond},
		clock: newClock(ClockMonotonic)}
	o.start = o.clock.now()
	o.tr = track.NewTracker(track.TrackerConfig{Capacity: n, Threshold: int64(time.Hour)})
	o.sorted = make([]track.SlotID, 0, n)
	var err error
	o.st = upstats.New(upstats.Config{}, 0, upstats.Sources{Tracker: o.tr, Log: sink.NewLogger(nil)})
	if o.recHist, err = promtext.NewHistogram(recovery.DurationBounds[:]); err != nil {
		tb.Fatal(err)
	}
	now := o.clock.now()
	for i := 0; i < n; i++ {
		// A stride coprime to the pid range keeps pids distinct and the
		// table's insertion order unsorted, as real arrivals are.
		pid := uint32(300 + (i*7919)%32000)
		f := vlp.Frame{Pid: pid, Nonce: uint64(i + 1), Status: vlp.Status(i % 3)}
		if v := o.tr.Observe(f, track.OriginUDS, now).Verdict; !v.Accepted() {
			tb.Fatalf("Observe(pid %d) = %v", pid, v)
		}
	}
	return o
}

var allocsLine = regexp.MustCompile(`(?m)^varta_go_heap_allocs_objects_total (\d+)$`)

func TestRenderRuntimeStats(t *testing.T) {
	o := renderObserver(t, 1)
	read := func() uint64 {
		rtSink = o.renderMetrics(rtSink[:0])
		m := allocsLine.FindSubmatch(rtSink)
		if m == nil {
			t.Fatalf("no varta_go_heap_allocs_objects_total sample in\n%s", rtSink)
		}
		v, _ := strconv.ParseUint(string(m[1]), 10, 64)
		return v
	}
	before := read()
	// Enough allocations to fill and hand back several spans, which is
	// when the runtime folds them into the total.
	keep := make([]*[64]byte, 0, 100000)
	for range cap(keep) {
		keep = append(keep, new([64]byte))
	}
	after := read()
	if after-before < uint64(len(keep))/2 {
		t.Errorf("allocs counter moved %d after %d allocations", after-before, len(keep))
	}
	for _, fam := range []string{"varta_go_heap_allocs_bytes_total", "varta_go_gc_cycles_total"} {
		if !bytes.Contains(rtSink, []byte("# TYPE "+fam+" counter\n")) {
			t.Errorf("exposition lacks the %s family", fam)
		}
	}
}
