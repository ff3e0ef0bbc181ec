package main

// Reliability scenarios 1 and 10 (README.md, Reliability): garbage floods from
// several processes while good agents beat, and SIGTERM in the middle of
// one.

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// floodRound runs n flood helpers for d and returns their summed reports.
func floodRound(t *testing.T, socket string, n int, d time.Duration, seed int) map[string]int64 {
	t.Helper()
	hs := startFlooders(t, socket, n, d, seed)
	sum := map[string]int64{}
	for _, h := range hs {
		for k, v := range h.result(d + time.Minute) {
			sum[k] += v
		}
	}
	return sum
}

func startFlooders(t *testing.T, socket string, n int, d time.Duration, seed int) []*helper {
	t.Helper()
	hs := make([]*helper, n)
	for i := range hs {
		hs[i] = startHelper(t, "flood", socket, strconv.Itoa(seed*1000+i), strconv.FormatInt(d.Milliseconds(), 10))
	}
	return hs
}

func garbageSent(r map[string]int64) int64 { return r["truncated"] + r["decode"] + r["spoof"] }

// garbageCounted is what the observer counted of the flooders' classes.
func garbageCounted(m map[string]float64) (truncated, decode, auth float64) {
	for _, k := range vlp.DecodeErrors {
		decode += m[`varta_decode_errors_total{kind="`+k.Label()+`"}`]
	}
	// A spoofed pid at or above pid_max is refused before the credentials
	// are checked, in its own family; any other is an auth failure.
	return m["varta_truncated_datagrams_total"], decode, m["varta_frame_auth_failures_total"] +
		m["varta_frame_rejected_pid_above_max_total"]
}

// waitGarbage waits until the observer has counted as many garbage
// datagrams as were sent (what is queued when the flooders stop is read
// afterwards) and returns that scrape.
func waitGarbage(t *testing.T, w *watcher, sent map[string]int64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		m := w.scrape()
		tr, de, au := garbageCounted(m)
		if tr+de+au >= float64(garbageSent(sent)) || time.Now().After(deadline) {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// logCount counts the observer's log lines matching pattern.
func logCount(w *watcher, pattern string) int {
	return len(regexp.MustCompile("(?m)"+pattern).FindAllStringIndex(w.logText(), -1))
}

// TestReliabilityFlood (scenario 1): flooder processes send garbage at
// full speed (random bytes of random length 0..65535, frames with a bad
// CRC, every decode error kind, valid frames claiming other pids) while 20
// agent processes beat at 10 Hz. Stall detection is not delayed by the
// flood: a canary agent that goes quiet mid-flood is stalled by the first
// loop iteration past its deadline. The beating agents are not stalled
// for want of their beats getting through; every garbage datagram the
// kernel accepted is counted, under its class's metric, and nothing else
// is (received = garbage + beats, beats = beats delivered); the
// observer's resident memory after a sustained flood is what it was after
// a first short one; the malformed-frame log stays at ≤ 1 line/s.
//
// Times are judged in the observer's own clock and progress (the event
// file's observer_ns column), not by the test's wall clock: on a loaded
// machine the observer or an agent may lose the CPU for longer than the
// threshold, and that is no fault of the flood's.
//
// The agents retry a beat refused for a full queue until the next is due:
// with the default net.unix.max_dgram_qlen of 10 a flood keeps the queue
// full, and the observer drains it in batches as fast as it can.
func TestReliabilityFlood(t *testing.T) {
	if testing.Short() {
		// TestDecodeErrorsAndSizes and TestReliabilitySIGTERMFlood cover
		// the counting and a flood quickly.
		t.Skip("slow: 21 agent and 3 flooder processes for 6 s; run without -short")
	}
	const threshold, every = 500 * time.Millisecond, 100 * time.Millisecond
	agents, flooders, soak, rssSlack := 20, 3, 5*time.Second, int64(1024)
	if emulated() {
		// Every helper is a qemu process; the translated code cache of
		// the observer's qemu also grows with each new path it runs.
		agents, flooders, soak, rssSlack = 6, 2, 4*time.Second, 8192
	}
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(threshold.Milliseconds(), 10), "--prom-addr", "127.0.0.1:0",
		"--export-file-max-bytes", strconv.Itoa(4<<20))
	hs := startTrackedAgents(t, w, agents, every)
	canary := startTrackedAgents(t, w, 1, every)[0]

	// A first short round brings every path and buffer into use.
	warm := floodRound(t, w.socket, flooders, time.Second, 1)
	waitGarbage(t, w, warm)
	rssBefore := vmRSS(t, w.cmd.Process.Pid)
	logBefore := logCount(w, `msg="dropped a malformed frame"`)
	begin := time.Now()
	fl := startFlooders(t, w.socket, flooders, soak, 2)
	// Once the flood is on, the canary goes quiet (and exits).
	floodOn := w.scrape()["varta_truncated_datagrams_total"] + 1000
	if got := w.waitMetric("varta_truncated_datagrams_total", floodOn, 30*time.Second); got < floodOn {
		t.Fatalf("the flood has not started: %v truncated datagrams", got)
	}
	canaryReport := canary.stop(30 * time.Second)
	if w.waitEvent(30*time.Second, kindPid("stall", canary.pid)) == nil {
		t.Fatalf("no stall for the canary %d that went quiet during the flood:\n%s", canary.pid, w.logText())
	}
	sent := map[string]int64{}
	for _, h := range fl {
		for k, v := range h.result(soak + time.Minute) {
			sent[k] += v
		}
	}
	m := waitGarbage(t, w, sent)
	flooded := time.Since(begin)
	rssAfter := vmRSS(t, w.cmd.Process.Pid)
	logLines := logCount(w, `msg="dropped a malformed frame"`) - logBefore
	for k, v := range warm {
		sent[k] += v
	}
	lines := allEventLines(t, w) // before the agents stop: then they would stall

	// The canary's stall, in the observer's clock: its deadline is its
	// last beat's time plus the threshold. Every iteration that handled a
	// datagram wrote lines stamped with its start, and the flood's lines
	// must not show one that began at or after the deadline without
	// raising the stall.
	lastBeat, raised := int64(-1), int64(-1)
	for _, c := range lines {
		ns, _ := strconv.ParseInt(c[0], 10, 64)
		switch {
		case raised >= 0:
		case kindPid("beat", canary.pid)(c):
			lastBeat = ns
		case kindPid("stall", canary.pid)(c):
			raised = ns
		}
	}
	if lastBeat < 0 || raised < 0 {
		t.Fatalf("canary %d: last beat at %d ns, stall at %d ns in the event files", canary.pid, lastBeat, raised)
	}
	deadline := lastBeat + int64(threshold)
	late := time.Duration(raised - deadline)
	skipped, floodAfter := map[int64]bool{}, false
	for _, c := range lines {
		ns, _ := strconv.ParseInt(c[0], 10, 64)
		if ns >= deadline && ns < raised {
			skipped[ns] = true
		}
		floodAfter = floodAfter || ns > raised && (c[1] == "decode" || c[1] == "mismatch")
	}
	if late < 0 {
		t.Errorf("canary stalled %v before its deadline", -late)
	}
	if len(skipped) != 0 {
		t.Errorf("the canary's stall was raised %v after its deadline, by the %d-th iteration past it: the flood delayed stall detection",
			late, len(skipped)+1)
	}
	if !floodAfter {
		t.Errorf("the flood was over before the canary's stall (%v after its deadline): the check showed nothing", late)
	}

	// The beating agents: a stall is the flood's fault unless load explains
	// it. The agent's longest gap between delivered beats, less the time it
	// was off the CPU in that gap and the longest stretch in which the
	// observer's loop wrote no line while the agent was silent (it did not
	// run), must stay under the threshold.
	var beatsSent, missed, maxGap int64
	reports := map[int]map[string]int64{}
	for _, h := range hs {
		r := h.stop(30 * time.Second)
		reports[h.pid] = r
		beatsSent, missed, maxGap = beatsSent+r["sent"], missed+r["missed"], max(maxGap, r["max_gap_ms"])
	}
	ours := map[string]bool{strconv.Itoa(canary.pid): true}
	for _, h := range hs {
		ours[strconv.Itoa(h.pid)] = true
	}
	for _, c := range lines {
		if c[1] == "stall" && !ours[c[2]] {
			t.Errorf("stall of pid %s, none of our agents: %q", c[2], c)
		}
	}
	excused := 0
	for _, h := range hs {
		for _, s := range agentStalls(lines, h.pid) {
			r := reports[h.pid]
			gap, off := time.Duration(r["max_gap_ms"])*time.Millisecond, time.Duration(r["max_gap_off_ms"])*time.Millisecond
			if crowded := gap - off - s.hole; crowded >= threshold {
				t.Errorf("agent %d stalled (silent %v in the observer's clock): its longest gap between delivered beats %v, "+
					"of which it was off the CPU %v and the observer's loop stopped %v, leaves %v: the flood crowded it out",
					h.pid, s.silence, gap, off, s.hole, crowded)
			} else {
				excused++
				t.Logf("agent %d stalled, explained by load: its longest gap %v, off the CPU %v, the observer's loop stopped %v",
					h.pid, gap, off, s.hole)
			}
		}
	}
	tr, de, au := garbageCounted(m)
	t.Logf("flood: %d garbage datagrams in %v (%d truncated, %d undecodable, %d spoofed; queue full %d times); "+
		"counted %v, %v, %v; %d agents delivered %d beats (%d periods missed, longest gap %d ms, %d stalls explained by load); "+
		"canary stalled %v after its deadline (observer clock); VmRSS %d KiB before, %d KiB after; %d malformed-frame log lines",
		garbageSent(sent), flooded.Round(time.Millisecond), sent["truncated"], sent["decode"], sent["spoof"], sent["full"],
		tr, de, au, agents, beatsSent, missed, maxGap, excused, late, rssBefore, rssAfter, logLines)
	if tr != float64(sent["truncated"]) || de != float64(sent["decode"]) || au != float64(sent["spoof"]) {
		t.Errorf("counted %v truncated, %v decode errors, %v auth failures; the flooders sent %d, %d, %d",
			tr, de, au, sent["truncated"], sent["decode"], sent["spoof"])
	}
	for _, k := range vlp.DecodeErrors {
		if key := `varta_decode_errors_total{kind="` + k.Label() + `"}`; m[key] == 0 {
			t.Errorf("%s = 0: the flood did not exercise that kind", key)
		}
	}
	if rssAfter > rssBefore+rssSlack {
		t.Errorf("VmRSS grew from %d to %d KiB over the flood, allowed %d KiB", rssBefore, rssAfter, rssSlack)
	}
	if limit := int(flooded/time.Second) + 2; logLines > limit {
		t.Errorf("%d malformed-frame log lines in %v, want at most %d (one a second)", logLines, flooded, limit)
	}

	// The agents have stopped: once their last beats are in, every
	// datagram is accounted for.
	beatsSent += canaryReport["sent"]
	all := append(hs, canary)
	var beats float64
	deadlineWall := time.Now().Add(time.Minute)
	for {
		m = w.scrape()
		beats = 0
		for _, h := range all {
			beats += m[`varta_beats_total{pid="`+strconv.Itoa(h.pid)+`"}`]
		}
		if beats >= float64(beatsSent) || time.Now().After(deadlineWall) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if beats != float64(beatsSent) {
		t.Errorf("%v beats accepted, the agents delivered %d", beats, beatsSent)
	}
	if got, want := m["varta_datagrams_received_total"], float64(garbageSent(sent)+beatsSent); got != want {
		t.Errorf("varta_datagrams_received_total = %v, want %v (garbage and beats)", got, want)
	}
}

// stallGap is a stall of one agent in the observer's clock: the silence
// from its last beat to the stall, and the longest stretch within it in
// which no event line was written (the loop did not run, or had nothing
// to do: under a flood, the former).
type stallGap struct{ silence, hole time.Duration }

func agentStalls(lines [][]string, pid int) []stallGap {
	var out []stallGap
	last, prev, hole := int64(-1), int64(-1), int64(0)
	for _, c := range lines {
		ns, _ := strconv.ParseInt(c[0], 10, 64)
		if last >= 0 {
			hole = max(hole, ns-prev)
		}
		prev = ns
		switch {
		case kindPid("beat", pid)(c):
			last, hole = ns, 0
		case kindPid("stall", pid)(c) && last >= 0:
			out = append(out, stallGap{time.Duration(ns - last), time.Duration(hole)})
			last = -1
		}
	}
	return out
}

// allEventLines returns the lines of the event file's rotated generations
// (path.5, the oldest, to path.1) and of the file itself, split into
// columns.
func allEventLines(t *testing.T, w *watcher) [][]string {
	t.Helper()
	var out [][]string
	for i := 5; i >= 0; i-- {
		p := w.events
		if i > 0 {
			p += "." + strconv.Itoa(i)
		}
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if c := strings.Split(l, "\t"); len(c) == 6 {
				out = append(out, c)
			}
		}
	}
	return out
}

// TestReliabilitySIGTERMFlood (scenario 10): SIGTERM while flooders and
// agents keep the socket busy: the observer exits 0 within the shutdown
// grace, says what it counted, every event of an accepted beat or raised
// stall is in the file as a whole line, and the socket is gone.
func TestReliabilitySIGTERMFlood(t *testing.T) {
	agents, flooders := 5, 3
	if emulated() {
		agents, flooders = 3, 2
	}
	const grace = 5 * time.Second // --shutdown-grace-ms's default
	w := startWatch(t, "--threshold-ms", "500", "--prom-addr", "127.0.0.1:0")
	hs := startTrackedAgents(t, w, agents, 100*time.Millisecond)
	fl := startFlooders(t, w.socket, flooders, time.Minute, 3)
	if got := w.waitMetric("varta_truncated_datagrams_total", 1000, 30*time.Second); got < 1000 {
		t.Fatalf("the flood has not started: %v truncated datagrams", got)
	}
	// Flood on, agents beating: each has beats accepted during the flood.
	before := w.scrape()
	waitFor(t, 30*time.Second, func() bool {
		m := w.scrape()
		for _, h := range hs {
			if k := `varta_beats_total{pid="` + strconv.Itoa(h.pid) + `"}`; m[k] < before[k]+3 {
				return false
			}
		}
		return true
	}, "three beats from every agent through the flood")
	w.signal(syscall.SIGTERM)
	signalled := time.Now()
	code := w.wait(grace + 10*time.Second)
	took := time.Since(signalled)
	var garbage int64
	for _, h := range fl {
		garbage += garbageSent(h.stop(30 * time.Second))
	}
	for _, h := range hs {
		h.stop(30 * time.Second)
	}
	if code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, w.logText())
	}
	if took > grace {
		t.Errorf("exit %v after SIGTERM, want within the %v grace", took, grace)
	}
	if _, err := os.Lstat(w.socket); !os.IsNotExist(err) {
		t.Errorf("socket still there after exit: %v", err)
	}
	stopped := regexp.MustCompile(`msg="stopped" beats=(\d+) stalls=(\d+)`).FindStringSubmatch(w.logText())
	if stopped == nil {
		t.Fatalf("no \"stopped\" line with counts:\n%s", w.logText())
	}
	data, err := os.ReadFile(w.events)
	if err != nil {
		t.Fatal(err)
	}
	kinds := checkEventLines(t, data)
	beats, _ := strconv.Atoi(stopped[1])
	stalls, _ := strconv.Atoi(stopped[2])
	if kinds["beat"] != beats || kinds["stall"] != stalls {
		t.Errorf("event file has %d beat and %d stall lines; the observer accepted %d beats and raised %d stalls",
			kinds["beat"], kinds["stall"], beats, stalls)
	}
	lines := w.eventLines()
	for _, h := range hs {
		if count(lines, "beat", h.pid) == 0 {
			t.Errorf("no beat event for agent %d", h.pid)
		}
	}
	t.Logf("SIGTERM after %d garbage datagrams: exit %d in %v; %d event lines (%d beats, %d stalls, %d decode, %d mismatch)",
		garbage, code, took.Round(time.Millisecond), strings.Count(string(data), "\n"), beats, stalls, kinds["decode"], kinds["mismatch"])
}

// checkEventLines fails the test for any line of data that is not whole
// and counts the kinds. A whole line ends in a newline, has six
// tab-separated columns of the shapes cmd/varta-watch/README.md §5 gives, and an
// observer_ns no smaller than the line before: a torn fragment glued to
// the next line shows as a wrong shape, or as digits prepended to its
// timestamp.
func checkEventLines(t *testing.T, data []byte) map[string]int {
	t.Helper()
	kinds := map[string]int{}
	if len(data) == 0 {
		return kinds
	}
	if data[len(data)-1] != '\n' {
		t.Errorf("event file ends in a torn line: %q", data[max(0, len(data)-80):])
	}
	bad, last, prev := 0, uint64(0), ""
	for i, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		c := strings.Split(l, "\t")
		ns, err := strconv.ParseUint(c[0], 10, 64)
		switch {
		case !eventLine.MatchString(l) || err != nil:
			if bad++; bad <= 5 {
				t.Errorf("event line %d is torn: %q", i+1, l)
			}
			continue
		case ns < last:
			if bad++; bad <= 5 {
				t.Errorf("event line %d has an earlier time than line %d, a torn line glued to the next? %q then %q", i+1, i, prev, l)
			}
		}
		last, prev = ns, l
		kinds[c[1]]++
	}
	if bad > 5 {
		t.Errorf("... %d such lines in all", bad)
	}
	return kinds
}

// eventLine is the shape of every event line (cmd/varta-watch/README.md §5).
var eventLine = regexp.MustCompile(`^\d+\t(beat|stall|decode|io|ctrunc|mismatch|eviction|exit|recovered)\t(\d+|-)\t(\d+|-)\t(ok|degraded|critical|stall|-)\t[^\t]+$`)
