package bench

import (
	"fmt"
	"path/filepath"
	"slices"
	"time"
)

// Env is where measurements run: the observer binary under test and a
// scratch directory for sockets and event files.
type Env struct {
	Bin    string // varta-watch
	CFloor string // the C floor receiver; "" when this machine has no C compiler
	Dir    string
	Log    func(format string, args ...any) // progress; may be nil
}

func (e *Env) logf(format string, args ...any) {
	if e.Log != nil {
		e.Log(format, args...)
	}
}

// floodArgs switch the observer's rate limits off: the flood measures
// ingest, not the limiter (which would accept 5000 beats/s by default).
var floodArgs = []string{"--threshold-ms", "5000", "--max-beat-rate", "0", "--global-beat-rate", "0"}

// IngestConfig sizes the flood: Senders processes beating as fast as the
// socket takes frames, blocking (waiting for room) rather than dropping,
// so every frame sent is received and the receiver sets the pace as far
// as it can; each round measures Window after Warmup.
type IngestConfig struct {
	Senders        int
	Warmup, Window time.Duration
	Rounds         int
}

// IngestResult is the median frames/s per receiver over the rounds, and the
// observer's heap allocations over the beats it accepted in the windows.
type IngestResult struct {
	Baseline, Watch, WatchEvents float64
	// The receiver's CPU time per frame (median over rounds), ns.
	BaselineCPU, WatchCPU, WatchEventsCPU float64
	// Frames/s of every round, to show the spread.
	BaselineRounds, WatchRounds, WatchEventsRounds []float64
	Allocs, Beats                                  uint64 // varta-watch without event file, summed over windows
	AllocsEv, BeatsEv                              uint64 // with --export-file
	// The windows' own metrics requests, and what one costs the observer
	// in allocations (measured on it before the flood): the part of
	// Allocs that is not the beats'.
	Scrapes, ScrapesEv     uint64
	PerScrape, PerScrapeEv float64
}

// counts is one reading of a receiver.
type counts struct {
	at             time.Time
	frames, allocs uint64
	scrapes        uint64        // metrics requests made so far
	cpu            time.Duration // the receiver's CPU time
}

// MeasureIngest floods the baseline receiver, varta-watch, and varta-watch
// writing an event line per beat, with the same load, round by round in
// turn so that drift in the machine's speed touches all three alike.
func MeasureIngest(env *Env, c IngestConfig) (IngestResult, error) {
	var r IngestResult
	var base, watch, watchEv, baseCPU, watchCPU, watchEvCPU []float64
	perFrame := func(d counts) float64 { return float64(d.cpu) / float64(d.frames) }
	for round := range c.Rounds {
		rate, d, err := floodBaseline(env, c)
		if err != nil {
			return r, err
		}
		base, baseCPU = append(base, rate), append(baseCPU, perFrame(d))
		for _, events := range []bool{false, true} {
			rate, d, perScrape, err := floodWatch(env, c, events)
			if err != nil {
				return r, err
			}
			if events {
				watchEv, watchEvCPU = append(watchEv, rate), append(watchEvCPU, perFrame(d))
				r.AllocsEv, r.BeatsEv, r.ScrapesEv = r.AllocsEv+d.allocs, r.BeatsEv+d.frames, r.ScrapesEv+d.scrapes
				r.PerScrapeEv = max(r.PerScrapeEv, perScrape)
			} else {
				watch, watchCPU = append(watch, rate), append(watchCPU, perFrame(d))
				r.Allocs, r.Beats, r.Scrapes = r.Allocs+d.allocs, r.Beats+d.frames, r.Scrapes+d.scrapes
				r.PerScrape = max(r.PerScrape, perScrape)
			}
		}
		env.logf("ingest round %d: baseline %.0f/s (%.0f ns CPU/frame), varta-watch %.0f/s (%.0f), with event file %.0f/s (%.0f)",
			round+1, base[round], baseCPU[round], watch[round], watchCPU[round], watchEv[round], watchEvCPU[round])
	}
	r.Baseline, r.Watch, r.WatchEvents = median(base), median(watch), median(watchEv)
	r.BaselineCPU, r.WatchCPU, r.WatchEventsCPU = median(baseCPU), median(watchCPU), median(watchEvCPU)
	r.BaselineRounds, r.WatchRounds, r.WatchEventsRounds = base, watch, watchEv
	return r, nil
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func floodBaseline(env *Env, c IngestConfig) (float64, counts, error) {
	b, err := StartBaseline(filepath.Join(env.Dir, "base.sock"))
	if err != nil {
		return 0, counts{}, err
	}
	defer b.Stop()
	return flood(b.Socket, c, func() (counts, error) {
		n, err := b.Frames()
		if err != nil {
			return counts{}, err
		}
		cpu, err := cpuTime(b.Pid())
		return counts{at: time.Now(), frames: n, cpu: cpu}, err
	})
}

func floodWatch(env *Env, c IngestConfig, events bool) (float64, counts, float64, error) {
	o, err := StartObserver(env.Bin, env.Dir, events, floodArgs...)
	if err != nil {
		return 0, counts{}, 0, err
	}
	perScrape, err := o.AllocsPerScrape(10)
	if err != nil {
		o.Stop()
		return 0, counts{}, 0, err
	}
	rate, d, err := flood(o.Socket, c, o.readCounts)
	if serr := o.Stop(); err == nil {
		err = serr
	}
	return rate, d, perScrape, err
}

// AllocsPerBeat is the observer's heap allocations per accepted beat once
// the windows' own metrics requests are set aside (never below 0).
func AllocsPerBeat(allocs, beats, scrapes uint64, perScrape float64) float64 {
	net := max(float64(allocs)-float64(scrapes)*perScrape, 0)
	return net / float64(max(beats, 1))
}

// readCounts scrapes accepted beats and heap allocations.
func (o *Observer) readCounts() (counts, error) {
	m, _, err := o.Scrape()
	at := time.Now()
	if err != nil {
		return counts{}, err
	}
	a, ok := m["varta_go_heap_allocs_objects_total"]
	if !ok {
		return counts{}, fmt.Errorf("observer exports no varta_go_heap_allocs_objects_total")
	}
	cpu, err := cpuTime(o.Pid())
	return counts{at: at, frames: uint64(m["varta_beats_total"]), allocs: uint64(a), scrapes: o.scrapes, cpu: cpu}, err
}

// flood runs the load against socket and returns the receiver's rate over
// the window and the change in its counts.
func flood(socket string, c IngestConfig, read func() (counts, error)) (float64, counts, error) {
	l, err := StartLoad(c.Senders, SenderConfig{Socket: socket, Block: true})
	if err != nil {
		return 0, counts{}, err
	}
	time.Sleep(c.Warmup)
	c0, err := read()
	if err == nil {
		time.Sleep(c.Window)
		var c1 counts
		c1, err = read()
		if err == nil {
			if _, serr := l.Stop(); serr != nil {
				return 0, counts{}, serr
			}
			d := counts{frames: c1.frames - c0.frames, allocs: c1.allocs - c0.allocs, scrapes: c1.scrapes - c0.scrapes, cpu: c1.cpu - c0.cpu}
			if d.frames == 0 {
				return 0, d, fmt.Errorf("no frames received during the window")
			}
			return float64(d.frames) / c1.at.Sub(c0.at).Seconds(), d, nil
		}
	}
	l.Stop()
	return 0, counts{}, err
}
