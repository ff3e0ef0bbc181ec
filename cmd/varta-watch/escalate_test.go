package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestEscalateAfterFailedRecoveries is the done-when of the escalation
// ladder: two agents of one program (two pids, one key) whose recovery
// /bin/false fails escalate at the second failure with --escalate-after 2;
// the escalate command runs once, sees the agent in its environment, and
// the audit log has its spawn/complete pair with source escalate; the
// metrics say one escalation.
func TestEscalateAfterFailedRecoveries(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "escalated")
	audit := filepath.Join(dir, "audit")
	esc := writeScript(t, dir, "escalate", `echo "$VARTA_AGENT_PID $VARTA_AGENT_NAME" >> `+marker+"\n")
	w := startWatchIn(t, dir, "--threshold-ms", "100", "--recovery-exec", "/bin/false", "--recovery-audit-file", audit,
		"--escalate-after", "2", "--escalate-exec", esc, "--prom-addr", "127.0.0.1:0")
	first := beatNamed(t, w)
	if w.waitLog(`msg="escalation ladder: a recovery failed" .*failure=exit:1 failures=1`, patience(10*time.Second)) == "" {
		t.Fatalf("the first failure was not counted:\n%s", w.logText())
	}
	pid := beatNamed(t, w) // the same program under another pid: the same agent
	if pid == first {
		t.Fatal("the two agents got one pid")
	}
	recs := waitAudit(t, w, audit, "the escalate command's completion", patience(10*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "spawn", "source", "escalate")) == 1 && len(ofKind(r, "complete", "", "")) == 3
	})
	sp := ofKind(recs, "spawn", "source", "escalate")[0]
	if sp.int("agent_pid") != pid || sp.kv["program"] != esc {
		t.Errorf("escalate spawn record %v: want agent_pid %d, program %s", sp.kv, pid, esc)
	}
	var done []auditRec
	for _, r := range ofKind(recs, "complete", "child_pid", sp.kv["child_pid"]) {
		done = append(done, r)
	}
	if len(done) != 1 || done[0].kv["exit_code"] != "0" {
		t.Errorf("escalate command's complete record: %v, want one with exit 0", done)
	}
	w.waitMetric(`varta_escalations_total`, 1, patience(5*time.Second))
	w.waitMetric(`varta_escalation_commands_total{outcome="exited_zero"}`, 1, patience(5*time.Second))
	m := w.scrape()
	if m[`varta_escalation_commands_total{outcome="started"}`] != 1 || m[`varta_escalation_failures_total{failure="exit"}`] != 2 {
		t.Errorf("metrics: started %v failures{exit} %v, want 1 and 2", m[`varta_escalation_commands_total{outcome="started"}`],
			m[`varta_escalation_failures_total{failure="exit"}`])
	}
	if m[outcomeKey("reaped_nonzero")] != 2 || m[outcomeKey("reaped_zero")] != 0 {
		t.Errorf("the escalate command leaked into the recovery outcomes: %v nonzero, %v zero", m[outcomeKey("reaped_nonzero")], m[outcomeKey("reaped_zero")])
	}
	// A third failure of the same agent does not escalate again.
	beatNamed(t, w)
	waitAudit(t, w, audit, "the third recovery's completion", patience(10*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "complete", "", "")) == 4
	})
	w.waitMetric(`varta_escalation_failures_total{failure="exit"}`, 3, patience(5*time.Second))
	b, _ := os.ReadFile(marker)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], itoa(pid)+" "+agentComm()) {
		t.Errorf("the escalate command ran %d times with %q, want once for pid %d (varta-beat)", len(lines), b, pid)
	}
	stopCleanly(t, w)
}

func itoa(n int) string { return strconv.Itoa(n) }

// ptyReader collects what the observer wrote to the pty.
type ptyReader struct {
	fd  int
	got []byte
}

func (p *ptyReader) drain() string {
	buf := make([]byte, 256)
	for {
		n, err := unix.Read(p.fd, buf)
		if n <= 0 || err != nil {
			return string(p.got)
		}
		p.got = append(p.got, buf[:n]...)
	}
}

// TestEscalateResetReason: with --escalate-reset and a pty standing in
// for --hw-watchdog, the escalation writes the reset reason (fsynced,
// before anything else) and stops kicking; a SIGTERM afterwards does not
// write the magic V that would disarm the reset. The next observer (a new
// boot, through the test hook's boot id) logs "previous reset", serves
// varta_reset_total 1 and varta_last_reset_info, and `varta-watch
// reset-reason` prints the agent's name. Restarting within the same boot
// is no reset.
func TestEscalateResetReason(t *testing.T) {
	dir := t.TempDir()
	bootID := filepath.Join(dir, "boot_id")
	if err := os.WriteFile(bootID, []byte("11111111-aaaa\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VARTA_TEST_BOOT_ID", bootID)
	reason := filepath.Join(dir, "reset-reason")
	m, dev := watchdogPty(t)
	pty := &ptyReader{fd: m}
	w := startWatchIn(t, dir, "--threshold-ms", "100", "--recovery-exec", "/bin/false",
		"--escalate-after", "2", "--escalate-window-ms", "60000", "--escalate-reset", "--hw-watchdog", dev,
		"--reset-reason-file", reason, "--prom-addr", "127.0.0.1:0")
	waitFor(t, patience(5*time.Second), func() bool { return strings.Contains(pty.drain(), ".") }, "a first keep-alive")
	if b, err := os.ReadFile(reason); err != nil || !strings.Contains(string(b), "resets=0\n") {
		t.Fatalf("the first start did not record this boot: %q, %v", b, err)
	}
	p1, p2 := beatNamed(t, w), beatNamed(t, w)
	if w.waitLog(`msg="escalation: stopped kicking the hardware watchdog`, patience(10*time.Second)) == "" {
		t.Fatalf("no escalation:\n%s", w.logText())
	}
	// The second failure escalates: either agent's, as their recoveries
	// may end in either order.
	b, err := os.ReadFile(reason)
	pid := p2
	if strings.Contains(string(b), "pid="+itoa(p1)+"\n") {
		pid = p1
	}
	if err != nil || !strings.Contains(string(b), "kind=controlled\n") || !strings.Contains(string(b), "agent="+agentComm()+"\n") ||
		!strings.Contains(string(b), "pid="+itoa(pid)+"\n") || !strings.Contains(string(b), "failure=exit:1\n") {
		t.Fatalf("reset reason on disk: %q, %v; want a controlled reset by varta-beat pid %d or %d", b, err, p1, p2)
	}
	w.waitMetric("varta_escalation_watchdog_held", 1, patience(5*time.Second))
	pty.drain()
	before := len(pty.got)
	time.Sleep(2500 * time.Millisecond) // the kicks came once a second
	if after := pty.drain(); len(after) != before {
		t.Errorf("kicks after the escalation: %q", after[before:])
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(patience(10 * time.Second)); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0", code)
	}
	if got := pty.drain(); strings.Contains(got, "V") {
		t.Errorf("the device got %q: a magic V after the escalation disarms the reset", got)
	}

	// Same boot: the observer restarted, the board did not reset.
	w2 := restartWatch(t, w, "--threshold-ms", "100", "--reset-reason-file", reason, "--prom-addr", "127.0.0.1:0")
	if w2.waitLog(`msg="previous reset: resets=1 kind=controlled reason=escalation agent=\\"`+agentComm()+`\\".*boot="same`, patience(5*time.Second)) == "" {
		t.Errorf("restart within the boot: no \"previous reset\" line saying the same boot:\n%s", w2.logText())
	}
	w2.waitMetric("varta_reset_total", 1, patience(5*time.Second))
	stopCleanly(t, w2)

	// A new boot: the controlled reset happened.
	if err := os.WriteFile(bootID, []byte("22222222-bbbb\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w3 := restartWatch(t, w, "--threshold-ms", "100", "--reset-reason-file", reason, "--prom-addr", "127.0.0.1:0")
	if w3.waitLog(`level=warn msg="previous reset: resets=1 kind=controlled reason=escalation agent=\\"`+agentComm()+`\\" pid=`+itoa(pid)+` failure=exit:1`, patience(5*time.Second)) == "" {
		t.Errorf("no \"previous reset\" line after the new boot:\n%s", w3.logText())
	}
	w3.waitMetric("varta_reset_total", 1, patience(5*time.Second))
	w3.waitMetric(`varta_last_reset_info{reason="escalation",agent="`+agentComm()+`"}`, 1, patience(5*time.Second))
	if out, _, code := ctl(t, "status", "--socket", w3.socket); code != 0 ||
		!strings.Contains(out, "; 1 resets on record, the last controlled: escalation (agent "+agentComm()+")") {
		t.Errorf("status summary %q (exit %d): want the reset on record", out, code)
	}
	stopCleanly(t, w3)
	code, out, errOut := runWatch(t, "reset-reason", "--reset-reason-file", reason)
	if code != 0 || !strings.Contains(out, `agent="`+agentComm()+`" pid=`+itoa(pid)) || !strings.Contains(out, "resets=1 kind=controlled") {
		t.Errorf("reset-reason: exit %d, stdout %q, stderr %q; want the agent's name and one reset", code, out, errOut)
	}

	// Another new boot with nothing on record: an unexpected reset, whose
	// cause the pty cannot tell (no WDIOC_GETBOOTSTATUS).
	os.WriteFile(bootID, []byte("33333333-cccc\n"), 0o644)
	w4 := restartWatch(t, w, "--threshold-ms", "100", "--reset-reason-file", reason, "--prom-addr", "127.0.0.1:0", "--hw-watchdog", dev)
	if w4.waitLog(`msg="previous reset: resets=2 kind=unexpected reason=unknown`, patience(5*time.Second)) == "" {
		t.Errorf("no unexpected reset recorded:\n%s", w4.logText())
	}
	w4.waitMetric("varta_reset_total", 2, patience(5*time.Second))
	stopCleanly(t, w4)
}

// TestEscalateReboot: with --escalate-reboot and no watchdog, the
// escalation writes the reason, then takes the reboot path through the
// test seam: sync, ask init, and reboot(2) only after the grace.
func TestEscalateReboot(t *testing.T) {
	dir := t.TempDir()
	steps := filepath.Join(dir, "reboot-steps")
	reason := filepath.Join(dir, "reset-reason")
	t.Setenv("VARTA_TEST_REBOOT_LOG", steps)
	w := startWatchIn(t, dir, "--threshold-ms", "100", "--recovery-exec", "/bin/false",
		"--escalate-after", "1", "--escalate-reboot", "--escalate-reboot-grace-ms", "1500", "--reset-reason-file", reason)
	beatNamed(t, w)
	if w.waitLog(`msg="escalation: asked init for a reboot" init=`, patience(10*time.Second)) == "" {
		t.Fatalf("init was not asked:\n%s", w.logText())
	}
	asked := time.Now()
	if b, _ := os.ReadFile(reason); !strings.Contains(string(b), "kind=controlled\n") {
		t.Errorf("no reset reason before the reboot: %q", b)
	}
	if b, _ := os.ReadFile(steps); !strings.HasPrefix(string(b), "sync\nask-init ") || strings.Contains(string(b), "reboot\n") {
		t.Errorf("steps before the grace: %q, want sync and ask-init only", b)
	}
	waitFor(t, patience(10*time.Second), func() bool {
		b, _ := os.ReadFile(steps)
		return strings.HasSuffix(string(b), "\nreboot\n")
	}, "reboot(2) after the grace")
	if d := time.Since(asked); d < time.Second {
		t.Errorf("reboot(2) %v after asking init, before the 1.5 s grace", d)
	}
	stopCleanly(t, w)
}

// TestEscalateFlagErrors: the escalation flags that cannot work are
// refused with the flag's name (exit 2).
func TestEscalateFlagErrors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "s")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--escalate-after", "2", "--escalate-reset"}, "--escalate-after: needs a recovery command"},
		{[]string{"--recovery-exec", "/bin/true", "--escalate-after", "2"}, "--escalate-after: does nothing alone"},
		{[]string{"--escalate-reset"}, "--escalate-reset: needs --escalate-after"},
		{[]string{"--escalate-exec", "/bin/true"}, "--escalate-exec: needs --escalate-after"},
		{[]string{"--recovery-exec", "/bin/true", "--escalate-after", "2", "--escalate-reset", "--escalate-reboot-grace-ms", "5"}, "--escalate-reboot-grace-ms: needs --escalate-reboot"},
		{[]string{"--recovery-exec", "/bin/true", "--escalate-after", "101", "--escalate-reset"}, "--escalate-after"},
		{[]string{"--recovery-exec", "/bin/true", "--escalate-after", "2", "--escalate-exec", "'unclosed"}, "--escalate-exec"},
	} {
		code, _, stderr := runWatch(t, append([]string{"--socket", sock, "--threshold-ms", "100"}, tc.args...)...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runWatch(t, "reset-reason"); code != 2 || !strings.Contains(stderr, "usage") {
		t.Errorf("reset-reason without a file: exit %d, %q", code, stderr)
	}
	bad := filepath.Join(t.TempDir(), "rr")
	os.WriteFile(bad, []byte("varta-reset-reason 9\n"), 0o644)
	if code, _, stderr := runWatch(t, "reset-reason", "--reset-reason-file", bad); code != 1 || !strings.Contains(stderr, "version") {
		t.Errorf("reset-reason of another version: exit %d, %q; want 1 naming the version", code, stderr)
	}
}

// beatNamed is a varta-beat agent that beats twice, 50 ms apart, and
// exits: alive long enough after its first frame for the observer to read
// its name (the ladder's key) even on a loaded machine, where a one-shot
// agent may be gone before its frame is read and so count under its pid.
func beatNamed(t *testing.T, w *watcher) int {
	t.Helper()
	return beatWith(t, "--socket", w.socket, "--count", "2", "--interval-ms", "50")
}
