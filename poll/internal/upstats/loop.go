package upstats

import (
	"time"

	"github.com/varta-go/varta/promtext"
)

// Stage is a part of one loop iteration, named as upstream names its
// stages (StageLabels); the observer maps its own steps onto them.
type Stage uint8

const (
	StageDrainPending Stage = iota // due stalls and exits: raised, reported, handed to recovery
	StagePoll                      // the ready fds: datagrams read, decoded, tracked; signals
	StageMaintenance               // replay-table expiry, --state-file saves, audit-error and accept-error checks
	StageRecoveryReap              // recovery's Tick: timeouts, wait4 reaps, deferred spawns
	StageServePending              // the metrics endpoint's connections (timed inside scrape)
	StageHousekeeping              // event-file flush, watchdogs, heartbeat file
	NumStages
)

// StageLabels are upstream's stage label values, in Stage order.
var StageLabels = [NumStages]string{"drain_pending", "poll", "maintenance", "recovery_reap", "serve_pending", "housekeeping"}

// Bounds are upstream's bucket bounds, in seconds, of every loop
// histogram and of the audit fdatasync one.
var Bounds = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1}

// JumpSlack is how much longer than the loop's longest sleep
// (--read-timeout-ms) two adjacent iterations may be apart before the
// gap counts as a forward clock jump: upstream's 5 s.
const JumpSlack = 5 * time.Second

// Config is the loop's budgets.
type Config struct {
	IterationBudget time.Duration // --iteration-budget-ms
	ScrapeBudget    time.Duration // --scrape-budget-ms
	EvictionWindow  int           // --eviction-scan-window, served as configured
	MaxSleep        time.Duration // --read-timeout-ms: the longest the loop waits
}

// Loop times the observer's iterations. The zero Loop is not usable: call
// New.
type Loop struct {
	cfg   Config
	base  time.Time
	start int64 // monotonic ns at Begin
	mark  int64 // monotonic ns at the last Mark
	acc   [NumStages]int64
	src   Sources
	mem   memStats

	iter, serve *promtext.Histogram
	stage       [NumStages]*promtext.Histogram

	iterOver, scrapeOver uint64
	lastTick             int64 // observer clock at the last Begin; 0 before the first
	jumps, regressions   uint64
	pidMaxAt             int64 // observer clock of the last pid_max read
}

// New returns a Loop rendering the counters of src; maxSleep is the
// longest the loop waits (Config.MaxSleep, when that is not set).
func New(cfg Config, maxSleep time.Duration, src Sources) *Loop {
	if cfg.MaxSleep == 0 {
		cfg.MaxSleep = maxSleep
	}
	l := &Loop{cfg: cfg, base: time.Now(), src: src}
	l.iter, l.serve = hist(), hist()
	l.mem.init()
	for i := range l.stage {
		l.stage[i] = hist()
	}
	return l
}

func hist() *promtext.Histogram {
	h, err := promtext.NewHistogram(Bounds)
	if err != nil {
		panic(err) // Bounds are increasing constants
	}
	return h
}

func (l *Loop) mono() int64 { return int64(time.Since(l.base)) }

// Begin starts an iteration at now, on the observer's clock; regressions
// is how often that clock has had to hold a reading back so far.
func (l *Loop) Begin(now int64, regressions uint64) {
	if l.lastTick != 0 && now-l.lastTick > int64(l.cfg.MaxSleep+JumpSlack) {
		l.jumps++
	}
	l.lastTick, l.regressions = now, regressions
	l.refreshPidMax(now)
	l.start = l.mono()
	l.mark = l.start
	l.acc = [NumStages]int64{}
}

// Mark ends stage st: the time since the last Mark (or Begin) is its.
func (l *Loop) Mark(st Stage) {
	t := l.mono()
	l.acc[st] += t - l.mark
	l.mark = t
}

// End ends the iteration: what followed the last Mark is housekeeping;
// the metrics endpoint's time moves from the poll stage, where its fds
// were dispatched, to serve_pending. Every stage is observed once per
// iteration, the endpoint's time only in iterations that served it.
func (l *Loop) End() {
	l.Mark(StageHousekeeping)
	if l.src.Prom != nil {
		if ns, ok := l.src.Prom.TakeServed(); ok {
			ns = min(ns, l.acc[StagePoll])
			l.acc[StagePoll] -= ns
			l.acc[StageServePending] += ns
			l.serve.Observe(float64(ns) / 1e9)
			if l.cfg.ScrapeBudget > 0 && ns > int64(l.cfg.ScrapeBudget) {
				l.scrapeOver++
			}
		}
	}
	for i, h := range l.stage {
		h.Observe(float64(l.acc[i]) / 1e9)
	}
	total := l.mark - l.start
	l.iter.Observe(float64(total) / 1e9)
	if l.cfg.IterationBudget > 0 && total > int64(l.cfg.IterationBudget) {
		l.iterOver++
	}
}

// Iteration is the iteration-time histogram.
func (l *Loop) Iteration() *promtext.Histogram { return l.iter }
