package main

// Reliability scenario 6 (README.md, Reliability): the disk holding the event file
// and the recovery audit log fills up, and later has room again.

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// mountSmall mounts a tmpfs of size bytes at a fresh directory and
// unmounts it at cleanup (after the observer, started later, is killed).
func mountSmall(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a small tmpfs")
	}
	dir := filepath.Join(t.TempDir(), "small")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	opts := "size=" + strconv.Itoa(size) + ",mode=0700"
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v): %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file in dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling %s: %v", dir, err)
			}
			break
		}
	}
	for _, n := range []int{512, 64, 8, 1} { // the last partial page too
		for {
			if _, err := f.Write(chunk[:n]); err != nil {
				break
			}
		}
	}
	return path
}

// TestReliabilityDiskFull (scenario 6): with the event file and the audit
// log on a full file system, the observer keeps raising stalls and
// running recovery, counts the failed writes (varta_io_errors_total) and
// the event lines it had to drop (varta_event_file_dropped_total), and
// logs each kind of failure at most about once a second. When space
// returns, writing resumes: buffered lines are written, the audit log
// records how many records were lost, its hash chain verifies, and no
// line of either file is torn. Every event is either in the file or
// counted as dropped.
func TestReliabilityDiskFull(t *testing.T) {
	if testing.Short() {
		// TestExportStdoutReaderStops covers an output that takes no more
		// lines (buffered, dropped and counted, resumed) quickly.
		t.Skip("slow: fills a tmpfs and waits out the rate-limited logs; run without -short")
	}
	small := mountSmall(t, 256<<10)
	w := newWatcher(t, t.TempDir())
	w.events = filepath.Join(small, "events.tsv")
	audit := filepath.Join(small, "audit.log")
	w.startArgs([]string{"--socket", w.socket, "--export-file", w.events, "--threshold-ms", "100",
		"--prom-addr", "127.0.0.1:0", "--recovery-exec", "true", "--recovery-debounce-ms", "0",
		"--recovery-audit-file", audit})
	b := &beats{r: dialRaw(t, w.socket)}
	stalls := `varta_stalls_total{pid="` + strconv.Itoa(int(ourPid())) + `"}`
	spawned := `varta_recovery_outcomes_total{outcome="spawned"}`
	// stall beats once and waits for the stall it leads to.
	stall := func(n float64) {
		t.Helper()
		b.beat()
		if got := w.waitMetric(stalls, n, 30*time.Second); got < n {
			t.Fatalf("%s = %v, want %v: stalls are no longer raised:\n%s", stalls, got, n, w.logText())
		}
	}
	stall(1)
	spawnedBefore := w.waitMetric(spawned, 1, 30*time.Second)

	filler := fill(t, small)
	full := time.Now()
	period := 3 * time.Second
	if emulated() {
		period = 5 * time.Second
	}
	garbage := vlp.Append(nil, vlp.Frame{Pid: ourPid(), Nonce: 1})
	garbage[0] = 'X' // a BadMagic decode event each
	n := 1.0
	for time.Since(full) < period {
		for range 300 {
			b.r.send(garbage)
		}
		n++
		stall(n)
	}
	m := w.waitMetric(spawned, n, 30*time.Second)
	stallsFull, spawnedFull := n-1, m-spawnedBefore
	during := w.scrape()
	elapsed := time.Since(full)
	eventLogs := logCount(w, `msg="writing the event file failed`)
	auditLogs := logCount(w, `msg="writing the recovery audit log failed`)
	if during["varta_io_errors_total"] == 0 || during["varta_event_file_dropped_total"] == 0 {
		t.Errorf("io errors %v, event lines dropped %v: a full disk went uncounted",
			during["varta_io_errors_total"], during["varta_event_file_dropped_total"])
	}
	if m < n {
		t.Errorf("%s = %v after %v stalls: recovery stopped on a full disk; outcomes %v %v %v", spawned, m, n, during[outcomeKey("skipped_in_flight")], during[outcomeKey("spawn_failed")], during[outcomeKey("debounced")])
	}
	limit := int(elapsed/time.Second) + 2
	if eventLogs == 0 || eventLogs > limit || auditLogs == 0 || auditLogs > limit {
		t.Errorf("%d event-file and %d audit-log failure lines in %v; want each at least 1 and at most %d",
			eventLogs, auditLogs, elapsed.Round(time.Millisecond), limit)
	}

	// Room again: the lines kept in memory, and new ones, reach the file.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	nonce := b.beat()
	if w.waitEvent(30*time.Second, kindPidNonce("beat", nonce)) == nil {
		t.Fatalf("no beat event for nonce %d after space returned:\n%s", nonce, w.logText())
	}
	n++
	if got := w.waitMetric(stalls, n, 30*time.Second); got < n {
		t.Fatalf("%s = %v, want %v", stalls, got, n)
	}
	w.waitMetric(spawned, n, 30*time.Second)
	var data []byte
	var after map[string]float64
	var decode float64
	deadline := time.Now().Add(30 * time.Second)
	for { // every event is a line of the file or counted as dropped
		after = w.scrape()
		_, decode, _ = garbageCounted(after)
		data, _ = os.ReadFile(w.events)
		lines := strings.Count(string(data), "\n")
		total := after[`varta_beats_total{pid="`+strconv.Itoa(int(ourPid()))+`"}`] + after[stalls] + decode +
			after["varta_agents_recovered_total"] // a recovered line each time the stalled agent beats again
		if float64(lines)+after["varta_event_file_dropped_total"] == total {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("%d event lines + %v dropped, want %v events (beats, stalls, decode errors, recovered)",
				lines, after["varta_event_file_dropped_total"], total)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	checkEventLines(t, data)
	auditData, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(auditData), "\n") {
		t.Errorf("audit log does not end in a whole record:\n%s", auditData)
	}
	// The records lost while the disk was full burnt their seqs: the
	// log verifies, and the gap is reported.
	out, err := testbin.Command(watchBin(t), "audit", "verify", audit).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "seqs missing between records") {
		t.Errorf("audit verify: %v\n%s", err, out)
	}
	t.Logf("disk full for %v: %v stalls raised, %v recovery children; io errors %v, event lines dropped %v, "+
		"%d event-file and %d audit-log failure log lines; after: %d event lines, %s",
		elapsed.Round(time.Millisecond), stallsFull, spawnedFull, during["varta_io_errors_total"], during["varta_event_file_dropped_total"],
		eventLogs, auditLogs, strings.Count(string(data), "\n"), strings.TrimSpace(string(out)))
}
