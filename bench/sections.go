package bench

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"time"
)

// The targets of the performance issue, for a 2-core machine.
const (
	targetIngestRatio = 0.8
	targetStallP99    = 15 * time.Millisecond
	targetIdlePercent = 0.05
	targetHWMKiB      = 8 << 10
	targetBinaryBytes = 2560 << 10
	targetRender      = 2 * time.Millisecond
	targetBeatP99     = 2 * time.Microsecond
)

func ingestSection(r *Report, env *Env, _ string, quick bool) error {
	c := IngestConfig{Senders: 4, Warmup: 500 * time.Millisecond, Window: 1500 * time.Millisecond, Rounds: 13}
	if quick {
		c = IngestConfig{Senders: 4, Warmup: 300 * time.Millisecond, Window: 700 * time.Millisecond, Rounds: 1}
	}
	res, err := MeasureIngest(env, c)
	if err != nil {
		return err
	}
	ratio, ratioEv := res.Watch/res.Baseline, res.WatchEvents/res.Baseline
	perBeat := AllocsPerBeat(res.Allocs, res.Beats, res.Scrapes, res.PerScrape)
	perBeatEv := AllocsPerBeat(res.AllocsEv, res.BeatsEv, res.ScrapesEv, res.PerScrapeEv)
	cell := func(rate, cpu float64, rounds []float64) string {
		return fmt.Sprintf("%sframes/s (rounds %s–%s; %.2f µs receiver CPU per frame)", si(rate),
			si(slices.Min(rounds)), si(slices.Max(rounds)), cpu/1e3)
	}
	r.Rows = append(r.Rows,
		Row{"Ingest, baseline receiver (" + itoa(c.Senders) + " sender processes flat out)", "—",
			cell(res.Baseline, res.BaselineCPU, res.BaselineRounds), "—"},
		Row{"Ingest, varta-watch (same flood)", "—", cell(res.Watch, res.WatchCPU, res.WatchRounds), "—"},
		Row{"Ingest ratio varta-watch / baseline", "≥ 0.80", strconv.FormatFloat(ratio, 'f', 2, 64), verdict(ratio >= targetIngestRatio)},
		Row{"Ingest ratio with `--export-file` (a line per beat)", "≥ 0.80", strconv.FormatFloat(ratioEv, 'f', 2, 64) +
			" (" + cell(res.WatchEvents, res.WatchEventsCPU, res.WatchEventsRounds) + ")", verdict(ratioEv >= targetIngestRatio)},
		Row{"Heap allocations per accepted beat (steady state)", "0", fmt.Sprintf("%.6f, with event file %.6f "+
			"(raw: %d allocs / %d beats and %d / %d, of which %d and %d metrics requests at %.1f allocs each)",
			perBeat, perBeatEv, res.Allocs, res.Beats, res.AllocsEv, res.BeatsEv, res.Scrapes, res.ScrapesEv, res.PerScrape),
			verdict(perBeat < 1e-3 && perBeatEv < 1e-3)},
	)
	r.Notes = append(r.Notes, fmt.Sprintf("Ingest: median of %d rounds (baseline, varta-watch and varta-watch with an event file in turn, "+
		"fresh processes each round), each %s of warm-up then a %s window; senders block (wait for room) so none is lost; "+
		"rate limits off (`--max-beat-rate 0 --global-beat-rate 0`). The baseline is poll.Receiver's recvmmsg loop (same socket "+
		"set-up, same batch of 64) plus vlp.Parse, nothing else. Senders and receiver share the machine's CPUs, unpinned, so a "+
		"receiver's cost shows up as lost sender time.", c.Rounds, c.Warmup, c.Window))
	r.Notes = append(r.Notes, "Allocations: Δ`varta_go_heap_allocs_objects_total` (Go MemStats.Mallocs, tiny allocations included) "+
		"over Δ(sum of `varta_beats_total`) in the same windows, from the observer's own /metrics. Each /metrics request costs the "+
		"observer whatever allocations it makes (none expected), measured on the same observer before the flood and set "+
		"aside; the raw counts are shown. Pass below 0.001 per beat: the runtime folds "+
		"counts in per span, so a delta can lag by a span's worth of objects.")
	return nil
}

func stallSection(r *Report, env *Env, _ string, quick bool) error {
	idle := StallConfig{Threshold: 20 * time.Millisecond, Agents: 8, Cycles: 60}
	loaded := StallConfig{Threshold: 20 * time.Millisecond, Agents: 4, Cycles: 50, Flood: 2}
	if quick {
		idle.Agents, idle.Cycles = 4, 30
		loaded.Cycles = 25
	}
	for _, c := range []StallConfig{idle, loaded} {
		res, err := MeasureStalls(env, c)
		if err != nil {
			return err
		}
		label := "Stall-detection latency past the deadline, p50 / p99"
		if c.Flood > 0 {
			label += ", under a " + itoa(c.Flood) + "-sender flood"
		}
		r.Rows = append(r.Rows, Row{label + " (" + itoa(res.Stalls) + " stalls)", "p99 ≤ 15 ms",
			ms(res.P50) + " / " + ms(res.P99) + " (max " + ms(res.Max) + ")", verdict(res.P99 <= targetStallP99)})
	}
	r.Notes = append(r.Notes, "Stall latency: `--threshold-ms 20 --export-file`; agents beat, then stay silent 25–45 ms at random, "+
		"so each silence raises one stall at a random phase. Latency = stall line time − the last accepted beat's line time − threshold, "+
		"both from the event file (observer clock); a stall is paired with its beat by pid and nonce.")
	return nil
}

func idleSection(r *Report, env *Env, _ string, quick bool) error {
	c := IdleConfig{Agents: 50, Warmup: 3 * time.Second, Window: 60 * time.Second}
	base := IdleConfig{Agents: 50, Warmup: 3 * time.Second, Window: 20 * time.Second}
	if quick {
		c.Warmup, c.Window = time.Second, 3*time.Second
		base.Warmup, base.Window = time.Second, 2*time.Second
	}
	res, err := MeasureIdle(env, c, false)
	if err != nil {
		return err
	}
	floor, err := MeasureIdle(env, base, true)
	if err != nil {
		return err
	}
	cell := func(res IdleResult) string {
		beats := float64(max(res.Frames, 1))
		return fmt.Sprintf("%.3f %% (%.1f ms CPU in %.1f s, %d beats: %.0f µs and %.1f context switches per beat; /proc stat: %d ticks)",
			res.Percent, res.CPU.Seconds()*1e3, res.Wall.Seconds(), res.Frames, res.CPU.Seconds()*1e6/beats,
			float64(res.Switches)/beats, res.Ticks)
	}
	r.Rows = append(r.Rows,
		Row{fmt.Sprintf("Observer CPU, %d agents at 1 Hz, %s", c.Agents, c.Window), "≤ 0.05 %", cell(res), verdict(res.Percent <= targetIdlePercent)},
		Row{fmt.Sprintf("Baseline receiver CPU, same load, %s (this machine's floor)", base.Window), "—", cell(floor), "—"},
	)
	r.Notes = append(r.Notes, "Idle CPU: the receiver's process CPU clock (clock_gettime on its CPUCLOCK_SCHED: ns resolution, all threads) "+
		"over the window, as a percentage of one CPU; varta-watch runs with `--threshold-ms 5000 --export-file F --prom-addr 127.0.0.1:0` "+
		"(not scraped inside the window), default rate limits and --read-timeout-ms 100. The baseline row is the thinnest Go ppoll "+
		"receiver under the same 50 agents: the cost of waking up once per beat on this machine.")
	return nil
}

func rssSection(r *Report, env *Env, _ string, quick bool) error {
	c := RSSConfig{Agents: 4096, Wave: 32, Scrapes: 20}
	if quick {
		c.Agents, c.Scrapes = 512, 5
	}
	res, err := MeasureRSS(env, c)
	if err != nil {
		return err
	}
	target, pass := "≤ 8 MiB", verdict(res.HWM <= targetHWMKiB)
	if res.Tracked < 4096 {
		target, pass = "(≤ 8 MiB at 4096)", "—"
	}
	r.Rows = append(r.Rows,
		Row{"Peak RSS (VmHWM), " + itoa(res.Tracked) + " tracked agents", target,
			fmt.Sprintf("%s (VmRSS %s: anon %s, file %s; heap allocated %s, %d GC cycles)", mib(res.HWM<<10), mib(res.RSS<<10),
				mib(res.Anon<<10), mib(res.File<<10), mib(int64(res.AllocBytes)), res.GCCycles), pass},
		Row{"/metrics scrape over loopback, " + itoa(res.Tracked) + " pids, p50 (max)", "—",
			ms(res.ScrapeP50) + " (" + ms(res.ScrapeMax) + ")", "—"},
	)
	r.Notes = append(r.Notes, fmt.Sprintf("RSS: `--tracker-capacity %d --export-file F --prom-addr`, %d distinct agent processes "+
		"(each delivers one beat and exits, %d at a time, %.1f s in all), then %d full scrapes; VmHWM from /proc/PID/status.",
		c.Agents, c.Agents, c.Wave, res.Spawn.Seconds(), c.Scrapes))
	return nil
}

func renderSection(r *Report, _ *Env, root string, quick bool) error {
	bt := "3s"
	if quick {
		bt = "100x"
	}
	ns, err := GoBenchmark(root, "./poll/", "BenchmarkRenderMetrics4096Pids", bt)
	if err != nil {
		return err
	}
	d := time.Duration(ns)
	r.Rows = append(r.Rows, Row{"/metrics render, 4096 pids", "≤ 2 ms", ms(d), verdict(d <= targetRender)})
	r.Notes = append(r.Notes, "Render: `go test -run '^$' -bench BenchmarkRenderMetrics4096Pids ./poll/`, the observer's own renderMetrics "+
		"over a full 4096-pid table (4 per-pid families plus health, recovery and runtime families), 0 allocs/op.")
	return nil
}

func beatSection(r *Report, env *Env, _ string, quick bool) error {
	tight, paced := BeatConfig{Calls: 200000}, BeatConfig{Calls: 5000, Rate: 1000}
	if quick {
		tight.Calls, paced.Calls = 20000, 500
	}
	for _, c := range []BeatConfig{tight, paced} {
		how := "back to back"
		if c.Rate > 0 {
			how = fmt.Sprintf("paced at %.0f Hz (receiver asleep between beats)", c.Rate)
		}
		for _, baseline := range []bool{false, true} {
			c.Baseline = baseline
			res, err := MeasureBeat(env, c)
			if err != nil {
				return err
			}
			metric, target, pass := "`Beat()` latency p50 / p99, "+how, "p99 ≤ 2 µs", verdict(time.Duration(res.P99) <= targetBeatP99)
			if baseline {
				metric, target, pass = "`Beat()` into the baseline receiver, "+how+" (this machine's floor)", "—", "—"
			}
			r.Rows = append(r.Rows, Row{metric, target, fmt.Sprintf("%.2f / %.2f µs (p99.9 %.1f µs; %d delivered, %d dropped)",
				float64(res.P50)/1e3, float64(res.P99)/1e3, float64(res.P999)/1e3, res.Delivered, res.Dropped), pass})
		}
	}
	r.Notes = append(r.Notes, "Beat(): one agent process against a running varta-watch that drains the socket, then the same "+
		"calls against the baseline receiver; each call timed with time.Now/time.Since (that clock pair costs about "+
		strconv.FormatInt(clockFloor(), 10)+" ns here and is included); percentiles over delivered beats, dropped ones "+
		"(queue full) counted apart.")
	return nil
}

func sizeSection(r *Report, env *Env, root string, _ bool) error {
	dir := tmpSub(env, "dist")
	defer os.RemoveAll(dir)
	sizes, err := BinarySizes(root, dir)
	if err != nil {
		return err
	}
	for _, t := range releaseTargets {
		target, pass := "—", "—"
		if t != "linux-amd64" {
			target, pass = "≤ 2.5 MiB", verdict(sizes[t] <= targetBinaryBytes)
		}
		r.Rows = append(r.Rows, Row{"Static stripped varta-watch, " + t, target,
			fmt.Sprintf("%s (%d bytes)", mib(sizes[t]), sizes[t]), pass})
	}
	r.Notes = append(r.Notes, "Sizes: `bash .ci/build-release` (CGO_ENABLED=0, -trimpath, -ldflags \"-s -w\"); static checked with readelf.")
	return nil
}

// clockFloor is the cost of a time.Now/time.Since pair in this process.
func clockFloor() int64 { return clockCost() }
