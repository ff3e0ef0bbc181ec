package upstats

import (
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
)

func newTestLoop(t *testing.T, cfg Config) *Loop {
	t.Helper()
	tr := track.NewTracker(track.TrackerConfig{Capacity: 4, Threshold: int64(time.Second)})
	return New(cfg, time.Second, Sources{Tracker: tr, Log: sink.NewLogger(nil)})
}

// TestLoopStagesAndBudgets: each Mark gives the time since the previous
// one to its stage, every stage is observed once per iteration, an
// iteration over its budget is counted, and a gap between iterations
// longer than the loop's longest sleep plus JumpSlack is a forward jump.
func TestLoopStagesAndBudgets(t *testing.T) {
	l := newTestLoop(t, Config{IterationBudget: 20 * time.Millisecond})
	now := int64(time.Hour)
	l.Begin(now, 0)
	time.Sleep(30 * time.Millisecond)
	l.Mark(StagePoll)
	l.Mark(StageRecoveryReap)
	l.End()
	if l.iterOver != 1 {
		t.Errorf("a 30 ms iteration over a 20 ms budget: %d counted, want 1", l.iterOver)
	}
	if s := l.stage[StagePoll].Sum(); s < 0.03 {
		t.Errorf("poll stage took %v s, want the 30 ms slept", s)
	}
	if s := l.stage[StageRecoveryReap].Sum(); s > 0.01 {
		t.Errorf("recovery stage took %v s, want about nothing", s)
	}
	for i, h := range l.stage {
		if h.Count() != 1 {
			t.Errorf("stage %s observed %d times in one iteration", StageLabels[i], h.Count())
		}
	}
	l.Begin(now+int64(time.Second+JumpSlack), 3) // just within the bound
	l.End()
	if l.jumps != 0 || l.iterOver != 1 {
		t.Errorf("jumps %d, over budget %d; want 0 and still 1", l.jumps, l.iterOver)
	}
	l.Begin(now+2*int64(time.Second+JumpSlack)+1, 3)
	l.End()
	if l.jumps != 1 || l.regressions != 3 {
		t.Errorf("jumps %d, regressions %d; want 1 and 3", l.jumps, l.regressions)
	}
	if l.src.Tracker.PidMax() == 0 {
		t.Error("pid_max was never read into the tracker")
	}
}

// TestLoopNoAllocs: an iteration's timing and a whole render allocate
// nothing once the encoder's buffer has grown.
func TestLoopNoAllocs(t *testing.T) {
	l := newTestLoop(t, Config{})
	var e promtext.Encoder
	var buf []byte
	e.Reset(buf)
	l.Render(&e)
	buf = e.Bytes()
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	now := int64(time.Hour)
	allocs := testing.AllocsPerRun(50, func() {
		now += int64(time.Millisecond)
		l.Begin(now, 0)
		l.Mark(StagePoll)
		l.End()
		e.Reset(buf[:0])
		l.Render(&e)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per iteration and render, want 0", allocs)
	}
	body := string(e.Bytes())
	for _, want := range []string{`varta_observer_stage_seconds_bucket{stage="serve_pending",le="+Inf"} 51`,
		`varta_signal_handler_install_total{mode="direct"}`, `varta_prom_connections_dropped_total{reason="ip_table_full"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("render lacks %s", want)
		}
	}
}
