package bench

import (
	"cmp"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The targets of the performance issue, for a 2-core machine.
const (
	targetIngestRatio = 0.8
	targetStallP99    = 15 * time.Millisecond
	targetIdlePercent = 0.05
	targetIdleRatio   = 1.5 // varta-watch's CPU per beat over the C floor's
	targetBatchRatio  = 2.0 // the same with a 100 ms tick on both sides
	targetHWMKiB      = 5 << 10
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
	r.Notes = append(r.Notes, "Allocations: Δ`varta_go_heap_allocs_objects_total` (Go runtime/metrics heap allocations, tiny ones included) "+
		"over Δ(sum of `varta_beats_total`) in the same windows, from the observer's own /metrics. Each /metrics request costs the "+
		"observer whatever allocations it makes (none expected), measured on the same observer before the flood and set "+
		"aside; the raw counts are shown. Pass below 0.001 per beat: the runtime folds "+
		"counts in per span, so a delta can lag by a span's worth of objects.")
	return nil
}

func stallSection(r *Report, env *Env, _ string, quick bool) error {
	// 1200 and 600 stalls: a p99 is then the 12th and 6th worst. On this
	// VM about 3 wakes in 1000 come 1–7 ms late whichever observer runs
	// (pooled over 10 rounds, 14 of 4799 stalls for one build and 15 of
	// 4800 for the next), so with 480 stalls the p99 fell among them in
	// one round out of five.
	idle := StallConfig{Threshold: 20 * time.Millisecond, Agents: 8, Cycles: 150}
	loaded := StallConfig{Threshold: 20 * time.Millisecond, Agents: 4, Cycles: 150, Flood: 2}
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

// idleKinds are the receivers the idle section runs, in the order of
// each round: interleaved, so that a machine's drift hits them alike.
var idleKinds = []struct {
	name  string
	kind  IdleReceiver
	batch int
}{
	{"varta-watch", IdleWatch, 0},
	{"Go baseline receiver (ppoll + recvmmsg)", IdleBaseline, 0},
	{"C floor: poll(2) + timerfd, recvmmsg 64, CRC checked", IdleCFloor, 0},
	{"varta-watch --batch-ms 100", IdleWatch, 100},
	{"C floor, 100 ms tick", IdleCFloor, 100},
}

func idleSection(r *Report, env *Env, _ string, quick bool) error {
	c, rounds := IdleConfig{Agents: 50, Warmup: 3 * time.Second, Window: 15 * time.Second}, 5
	if quick {
		c, rounds = IdleConfig{Agents: 50, Warmup: time.Second, Window: 3 * time.Second}, 1
	}
	res := make([][]IdleResult, len(idleKinds))
	for round := range rounds {
		for i, k := range idleKinds {
			if k.kind == IdleCFloor && env.CFloor == "" {
				continue
			}
			kc := c
			kc.BatchMs = k.batch
			env.logf("idle round %d: %s", round+1, k.name)
			one, err := MeasureIdle(env, kc, k.kind)
			if err != nil {
				return fmt.Errorf("%s: %w", k.name, err)
			}
			res[i] = append(res[i], one)
		}
	}
	med := make([]IdleResult, len(idleKinds))
	perBeat := make([]float64, len(idleKinds)) // median µs of CPU per beat
	for i := range idleKinds {
		if len(res[i]) > 0 {
			med[i], perBeat[i] = medianIdle(res[i])
		}
	}
	cell := func(i int) string {
		if len(res[i]) == 0 {
			return "not measured: " + ErrNoCC.Error()
		}
		m := med[i]
		beats := float64(max(m.Frames, 1))
		s := fmt.Sprintf("%.1f µs/beat, %.3f %% of a core, %.2f context switches/beat", perBeat[i], m.Percent,
			float64(m.Switches)/beats)
		if m.Wakes >= 0 {
			s += fmt.Sprintf(", %.2f wakes/beat", float64(m.Wakes)/beats)
		}
		return s + fmt.Sprintf(" (%d beats in %.0f s; %d lost)", m.Frames, m.Wall.Seconds(), m.Lost)
	}
	ratio := func(a, b int, target float64) Row {
		name := fmt.Sprintf("CPU per beat, %s / %s", idleKinds[a].name, idleKinds[b].name)
		if len(res[b]) == 0 {
			return Row{name, fmt.Sprintf("≤ %.1f", target), "not measured: " + ErrNoCC.Error(), "—"}
		}
		// Each round's two receivers ran one after the other, so their
		// ratio sees the same state of the machine; a VM's cost per wake
		// drifts by a factor of three within minutes here, which a ratio of
		// medians taken from different rounds would carry.
		var qs []float64
		for k := range min(len(res[a]), len(res[b])) {
			qs = append(qs, res[a][k].perBeat()/res[b][k].perBeat())
		}
		q := median(qs)
		each := make([]string, len(qs))
		for k, v := range qs {
			each[k] = strconv.FormatFloat(v, 'f', 2, 64)
		}
		return Row{name, fmt.Sprintf("≤ %.1f", target), strconv.FormatFloat(q, 'f', 2, 64) +
			" (median of the rounds' ratios: " + strings.Join(each, ", ") + ")", verdict(q <= target)}
	}
	r.Rows = append(r.Rows,
		Row{fmt.Sprintf("Observer CPU, %d agents at 1 Hz (%s)", c.Agents, idleKinds[0].name), "≤ 0.05 %", cell(0), verdict(med[0].Percent <= targetIdlePercent)},
		Row{idleKinds[1].name + ", same load", "—", cell(1), "—"},
		Row{idleKinds[2].name + ", same load (this machine's floor)", "—", cell(2), "—"},
		ratio(0, 2, targetIdleRatio),
		Row{idleKinds[3].name + ", same load", "0 lost", cell(3), verdict(len(res[3]) > 0 && med[3].Lost == 0)},
		Row{idleKinds[4].name + ", same load", "—", cell(4), "—"},
		ratio(3, 4, targetBatchRatio),
	)
	r.Notes = append(r.Notes, fmt.Sprintf("Idle CPU: %d round(s), each receiver in turn with fresh processes, medians shown, "+
		"and each ratio the median of the rounds' own ratios (the two receivers of a round ran minutes apart at most); "+
		"per receiver %s of warm-up, then the receiver's process CPU clock (clock_gettime on its CPUCLOCK_SCHED: ns, all "+
		"threads) and context switches (/proc/PID/status, all threads) over a %s window. varta-watch runs with "+
		"`--threshold-ms 5000 --export-file F --prom-addr 127.0.0.1:0` (scraped only at the window's edges) and default "+
		"limits; wakes/beat is its own varta_loop_wakes_total. The Go baseline is the thinnest ppoll receiver; the C floor "+
		"(bench/cfloor/floor.c, built in the run with the system C compiler) is one thread in poll(2) on the socket and a "+
		"timerfd re-armed per wake, recvmmsg 64 with SO_PASSCRED, CRC-32C checked; in tick mode it polls only a periodic "+
		"timerfd and drains the socket on each tick. Lost: beats the agents could not queue (EAGAIN), whole run; this "+
		"machine's net.unix.max_dgram_qlen is %s.", rounds, c.Warmup, c.Window, readTrim("/proc/sys/net/unix/max_dgram_qlen")))
	return nil
}

// perBeat is the receiver's CPU per beat in µs.
func (r IdleResult) perBeat() float64 { return r.CPU.Seconds() * 1e6 / float64(max(r.Frames, 1)) }

// medianIdle returns the result with the median CPU per beat, and that
// median in µs.
func medianIdle(rs []IdleResult) (IdleResult, float64) {
	sorted := slices.Clone(rs)
	slices.SortFunc(sorted, func(a, b IdleResult) int { return cmp.Compare(a.perBeat(), b.perBeat()) })
	m := sorted[len(sorted)/2]
	return m, m.perBeat()
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
	target, pass := "< 5 MiB", verdict(res.HWM < targetHWMKiB)
	if res.Tracked < 4096 {
		target, pass = "(< 5 MiB at 4096)", "—"
	}
	r.Rows = append(r.Rows,
		Row{"Peak RSS (VmHWM), " + itoa(res.Tracked) + " tracked agents", target,
			fmt.Sprintf("%s (VmRSS %s: anon %s, file %s; heap allocated %s, stacks %s, %d GC cycles, %d threads)", mib(res.HWM<<10), mib(res.RSS<<10),
				mib(res.Anon<<10), mib(res.File<<10), mib(int64(res.AllocBytes)), mib(int64(res.StackBytes)), res.GCCycles, res.Threads), pass},
		Row{"/metrics scrape over loopback, " + itoa(res.Tracked) + " pids, p50 (max)", "—",
			ms(res.ScrapeP50) + " (" + ms(res.ScrapeMax) + ")", "—"},
	)
	r.Notes = append(r.Notes, fmt.Sprintf("RSS: `--tracker-capacity %d --export-file F --prom-addr`, %d distinct agent processes "+
		"(each delivers one beat and exits, %d at a time, %.1f s in all), then %d full scrapes; VmHWM from /proc/PID/status.",
		c.Agents, c.Agents, c.Wave, res.Spawn.Seconds(), c.Scrapes))
	big := RSSConfig{Agents: 65536, Scrapes: 5, UDP: true}
	if quick {
		big.Agents, big.Scrapes = 8192, 2
	}
	res, err = MeasureRSS(env, big)
	if err != nil {
		return err
	}
	r.Rows = append(r.Rows,
		Row{"Peak RSS (VmHWM), " + itoa(res.Tracked) + " tracked agents over plain UDP", "—",
			fmt.Sprintf("%s (VmRSS %s: anon %s, file %s; heap allocated %s, stacks %s, %d GC cycles, %d threads)", mib(res.HWM<<10),
				mib(res.RSS<<10), mib(res.Anon<<10), mib(res.File<<10), mib(int64(res.AllocBytes)), mib(int64(res.StackBytes)), res.GCCycles, res.Threads), "—"})
	r.Notes = append(r.Notes, fmt.Sprintf("RSS at %d: the same observer with `--udp-addr 127.0.0.1:0 --i-accept-plaintext-udp` and "+
		"rate limits off, its table filled with plain UDP frames from the harness (a UDP frame's pid is only a claim, so no "+
		"process stands behind each, and no pidfd is opened), then %d full scrapes.", big.Agents, big.Scrapes))
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
		"(the streamed exposition's 64 KiB pieces, appended into one buffer) over a full 4096-pid table (5 per-pid families "+
		"plus health, recovery and runtime families), 0 allocs/op.")
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
