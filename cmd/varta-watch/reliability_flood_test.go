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
	return m["varta_truncated_datagrams_total"], decode, m["varta_frame_auth_failures_total"]
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
// agent processes beat at 10 Hz. No agent is ever stalled; every garbage
// datagram the kernel accepted is counted, under its class's metric, and
// nothing else is (received = garbage + beats, beats = beats delivered);
// the observer's resident memory after a sustained flood is what it was
// after a first short one; the malformed-frame log stays at ≤ 1 line/s.
//
// The agents retry a beat refused for a full queue until the next is due:
// with the default net.unix.max_dgram_qlen of 10 a flood keeps the queue
// full, and the observer drains it in batches as fast as it can.
func TestReliabilityFlood(t *testing.T) {
	agents, flooders, soak, rssSlack := 20, 3, 5*time.Second, int64(1024)
	if emulated() {
		// Every helper is a qemu process; the translated code cache of
		// the observer's qemu also grows with each new path it runs.
		agents, flooders, soak, rssSlack = 6, 2, 4*time.Second, 8192
	}
	w := startWatch(t, "--threshold-ms", "500", "--prom-addr", "127.0.0.1:0",
		"--export-file-max-bytes", strconv.Itoa(4<<20))
	hs := startTrackedAgents(t, w, agents, 100*time.Millisecond)

	// A first short round brings every path and buffer into use.
	warm := floodRound(t, w.socket, flooders, time.Second, 1)
	waitGarbage(t, w, warm)
	rssBefore := vmRSS(t, w.cmd.Process.Pid)
	logBefore := logCount(w, `msg="dropped a malformed frame"`)
	begin := time.Now()
	sent := floodRound(t, w.socket, flooders, soak, 2)
	m := waitGarbage(t, w, sent)
	flooded := time.Since(begin)
	rssAfter := vmRSS(t, w.cmd.Process.Pid)
	logLines := logCount(w, `msg="dropped a malformed frame"`) - logBefore
	for k, v := range warm {
		sent[k] += v
	}
	stalled := logCount(w, `msg="agent stalled"`)

	var beatsSent, missed, maxGap int64
	for _, h := range hs {
		r := h.stop(30 * time.Second)
		beatsSent, missed, maxGap = beatsSent+r["sent"], missed+r["missed"], max(maxGap, r["max_gap_ms"])
		if n := m[`varta_stalls_total{pid="`+strconv.Itoa(h.pid)+`"}`]; n != 0 {
			t.Errorf("agent %d stalled %v times during the flood (its longest gap between delivered beats %d ms)",
				h.pid, n, r["max_gap_ms"])
		}
	}
	if stalled != 0 {
		t.Errorf("%d stalls raised during the flood:\n%s", stalled, w.logText())
	}
	tr, de, au := garbageCounted(m)
	t.Logf("flood: %d garbage datagrams in %v (%d truncated, %d undecodable, %d spoofed; queue full %d times); "+
		"counted %v, %v, %v; %d agents delivered %d beats (%d periods missed, longest gap %d ms); VmRSS %d KiB before, %d KiB after; %d malformed-frame log lines",
		garbageSent(sent), flooded.Round(time.Millisecond), sent["truncated"], sent["decode"], sent["spoof"], sent["full"],
		tr, de, au, agents, beatsSent, missed, maxGap, rssBefore, rssAfter, logLines)
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
	deadline := time.Now().Add(time.Minute)
	var beats float64
	for {
		m = w.scrape()
		beats = 0
		for _, h := range hs {
			beats += m[`varta_beats_total{pid="`+strconv.Itoa(h.pid)+`"}`]
		}
		if beats >= float64(beatsSent) || time.Now().After(deadline) {
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
	time.Sleep(time.Second) // flood on, agents beating
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
var eventLine = regexp.MustCompile(`^\d+\t(beat|stall|decode|io|ctrunc|mismatch|eviction|exit)\t(\d+|-)\t(\d+|-)\t(ok|degraded|critical|stall|-)\t[^\t]+$`)
