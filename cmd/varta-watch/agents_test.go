package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// beatExe is varta-beat's program path as /proc/PID/exe shows it: under
// qemu-user, the emulator's.
func beatExe(t *testing.T) string {
	t.Helper()
	bin := beatBin(t)
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		var err error
		if bin, err = exec.LookPath(emu); err != nil {
			t.Fatal(err)
		}
	}
	p, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAgentsFileMissingThenAppears is the done-when of a declared agent
// that never starts: it is reported missing within its expect-within-ms
// (event line, log line, gauge, status row) and its own recovery command
// runs with {pid} 0, VARTA_AGENT_MISSING=1 and its declared name, audited
// with source missing; once it beats, it is no longer missing.
func TestAgentsFileMissingThenAppears(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	audit := filepath.Join(dir, "audit")
	own := writeScript(t, dir, "own", `echo "$1 $VARTA_AGENT_MISSING $VARTA_AGENT_NAME" >> `+marker+"\n")
	file := filepath.Join(dir, "agents.conf")
	sock := filepath.Join(dir, "obs.sock")
	write(t, file, "# a worker that must be up within 400 ms\nghost exe="+beatExe(t)+" arg="+sock+
		" expect-within-ms=400 recovery-exec=\""+own+" {pid}\"\n")
	w := startWatchIn(t, dir, "--threshold-ms", "5000", "--agents-file", file, "--recovery-audit-file", audit,
		"--prom-addr", "127.0.0.1:0", "--control-socket", filepath.Join(dir, "ctl.sock"))
	ev := w.waitEvent(patience(10*time.Second), func(c []string) bool { return len(c) > 1 && c[1] == "missing" })
	if ev == nil || len(ev) != 6 || ev[2] != "0" || ev[3] != "-" || ev[4] != "-" || ev[5] != "ghost" {
		t.Fatalf("missing event %q, want pid 0, nonce and status absent, name ghost; log:\n%s", ev, w.logText())
	}
	if ns, _ := strconv.ParseInt(ev[0], 10, 64); ns < 400e6 || time.Duration(ns) > patience(3*time.Second) {
		t.Errorf("reported missing at observer_ns %d, want from 400 ms on (expect-within-ms) and soon after", ns)
	}
	if w.waitLog(`level=warn msg="declared agent missing: not beating within its expect-within-ms" agent=ghost expect_within_ms=400`, patience(5*time.Second)) == "" {
		t.Errorf("no missing log line:\n%s", w.logText())
	}
	w.waitMetric(`varta_declared_agent_missing{name="ghost"}`, 1, patience(5*time.Second))
	waitFor(t, patience(10*time.Second), func() bool {
		b, _ := os.ReadFile(marker)
		return string(b) == "0 1 ghost\n"
	}, "the missing agent's own command writing \"0 1 ghost\"")
	recs := waitAudit(t, w, audit, "the missing command's spawn and complete", patience(10*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "spawn", "source", "missing")) == 1 && len(ofKind(r, "complete", "", "")) == 1
	})
	if sp := ofKind(recs, "spawn", "source", "missing")[0]; sp.kv["agent_pid"] != "0" || sp.kv["program"] != own {
		t.Errorf("spawn record %v, want agent_pid 0 and program %s", sp.kv, own)
	}
	if st, _, _ := ctl(t, "status", "--control-socket", filepath.Join(dir, "ctl.sock")); !strings.Contains(st, "missing") ||
		!strings.Contains(st, "ghost") {
		t.Errorf("status does not show ghost missing:\n%s", st)
	}
	m := w.scrape()
	if m[`varta_declared_missing_recoveries_total{result="started"}`] != 1 || m[outcomeKey("spawned")] != 0 {
		t.Errorf("missing recoveries %v, spawned %v: want 1 and 0 (a missing agent's run is not a stall's)",
			m[`varta_declared_missing_recoveries_total{result="started"}`], m[outcomeKey("spawned")])
	}
	pid := startBeat(t, w, 1000, 50*time.Millisecond).Process.Pid
	if w.waitLog(`msg="declared agent is no longer missing" agent=ghost pid=`+itoa(pid), patience(10*time.Second)) == "" {
		t.Fatalf("no 'no longer missing' line for pid %d:\n%s", pid, w.logText())
	}
	if w.waitLog(`msg="tracking a new agent" pid=`+itoa(pid)+` name=`+agentComm()+` agent="ghost"`, patience(5*time.Second)) == "" {
		t.Errorf("the tracking line does not name the declared agent:\n%s", w.logText())
	}
	w.waitMetric(`varta_declared_agent_missing{name="ghost"}`, 0, patience(5*time.Second))
	w.waitMetric(`varta_declared_agent_tracked{name="ghost"}`, 1, patience(5*time.Second))
	stopCleanly(t, w)
}

// TestAgentsFileOwnThresholdAndCommand: a declared agent's threshold-ms,
// shorter than --threshold-ms, stalls it first, and its own recovery-exec
// runs instead of the global command; an agent of the same program that
// the file does not declare keeps the global threshold.
func TestAgentsFileOwnThresholdAndCommand(t *testing.T) {
	dir := t.TempDir()
	global := writeScript(t, dir, "global", `echo "global $1" >> `+filepath.Join(dir, "ran")+"\n")
	own := writeScript(t, dir, "own", `echo "own $1 $VARTA_AGENT_DECLARED" >> `+filepath.Join(dir, "ran")+"\n")
	file := filepath.Join(dir, "agents.conf")
	write(t, file, "fast exe="+beatExe(t)+" arg=71 threshold-ms=300 recovery-exec=\""+own+" {pid}\"\n")
	w := startWatchIn(t, dir, "--threshold-ms", "20000", "--agents-file", file, "--recovery-exec", global+" {pid}",
		"--prom-addr", "127.0.0.1:0")
	other := startBeat(t, w, 3, 70*time.Millisecond).Process.Pid // not declared: --interval-ms 70
	fast := startBeat(t, w, 3, 71*time.Millisecond).Process.Pid
	ev := w.waitEvent(patience(10*time.Second), kindPid("stall", fast))
	if ev == nil {
		t.Fatalf("the declared agent (300 ms threshold) did not stall:\n%s", w.logText())
	}
	if w.waitLog(`msg="agent stalled" pid=`+itoa(fast)+` name=`+agentComm()+` agent="fast"`, patience(5*time.Second)) == "" {
		t.Errorf("the stall line does not name the declared agent:\n%s", w.logText())
	}
	waitFor(t, patience(10*time.Second), func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "ran"))
		return strings.Contains(string(b), "own "+itoa(fast)+" fast\n")
	}, "the declared agent's own command")
	for _, c := range w.eventLines() {
		if len(c) > 2 && c[1] == "stall" && c[2] == itoa(other) {
			t.Errorf("the undeclared agent stalled (--threshold-ms 20000): %q", c)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ran")); strings.Contains(string(b), "global") {
		t.Errorf("the global command ran: %q", b)
	}
	if m := w.scrape(); m[`varta_declared_agent_threshold_seconds{name="fast"}`] != 0.3 {
		t.Errorf("varta_declared_agent_threshold_seconds{name=\"fast\"} = %v, want 0.3", m[`varta_declared_agent_threshold_seconds{name="fast"}`])
	}
	stopCleanly(t, w)
}

// TestAgentsFileReload: SIGHUP with a bad file keeps the old one and says
// why (file and line); with a good one the new agents are in force.
func TestAgentsFileReload(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agents.conf")
	write(t, file, "first exe=/usr/sbin/first-never-there expect-within-ms=600000\n")
	w := startWatchIn(t, dir, "--threshold-ms", "1000", "--agents-file", file, "--prom-addr", "127.0.0.1:0")
	write(t, file, "first exe=/usr/sbin/first-never-there\nsecond exe=relative/path expect-within-ms=100\n")
	w.signal(syscall.SIGHUP)
	if w.waitLog(`level=error msg="reloading the agents file failed; the agents declared before stay in force" err=".*`+
		`agents.conf line 2: exe: want an absolute path`, patience(10*time.Second)) == "" {
		t.Fatalf("no reload failure naming the file and line:\n%s", w.logText())
	}
	m := w.scrape()
	if m[`varta_declared_reloads_total{result="failed"}`] != 1 || m[`varta_declared_agent_missing{name="first"}`] != 0 {
		t.Errorf("after a bad reload: %v failed reloads, first missing %v", m[`varta_declared_reloads_total{result="failed"}`],
			m[`varta_declared_agent_missing{name="first"}`])
	}
	if _, ok := m[`varta_declared_agent_missing{name="second"}`]; ok {
		t.Error("the bad file's agent is in force")
	}
	write(t, file, "first exe=/usr/sbin/first-never-there\nsecond exe=/usr/sbin/second-never-there expect-within-ms=100\n")
	w.signal(syscall.SIGHUP)
	if w.waitLog(`msg="reloaded the agents file" file=\S+ agents=2`, patience(10*time.Second)) == "" {
		t.Fatalf("the good file was not taken:\n%s", w.logText())
	}
	w.waitMetric(`varta_declared_agent_missing{name="second"}`, 1, patience(10*time.Second))
	if ev := w.waitEvent(patience(5*time.Second), func(c []string) bool { return len(c) == 6 && c[1] == "missing" && c[5] == "second" }); ev == nil {
		t.Errorf("no missing event for the reloaded agent")
	}
	stopCleanly(t, w)
}

// TestAgentsFileBadAtStart: a bad file is a start-up failure (exit 1)
// naming the file and line, and --check-config reports it too.
func TestAgentsFileBadAtStart(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "agents.conf")
	write(t, file, "ok exe=/bin/true\nbad exe=/bin/true threshold-ms=1\n")
	for _, extra := range [][]string{nil, {"--check-config"}} {
		args := append([]string{"--socket", filepath.Join(dir, "s"), "--threshold-ms", "1000", "--agents-file", file}, extra...)
		out, errOut, code := ctl(t, args...)
		out += errOut
		if code != 1 || !strings.Contains(string(out), "agents.conf line 2: threshold-ms: want a number from 10") {
			t.Errorf("%q: exit %d, output %q; want 1 naming the file and line 2", extra, code, out)
		}
	}
}

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path+".tmp", []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		t.Fatal(err)
	}
}
