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
	beatOnce(t, w)
	if w.waitLog(`msg="escalation ladder: a recovery failed" .*failure=exit:1 failures=1`, patience(10*time.Second)) == "" {
		t.Fatalf("the first failure was not counted:\n%s", w.logText())
	}
	pid := beatOnce(t, w) // the same program under another pid: the same agent
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
	beatOnce(t, w)
	waitAudit(t, w, audit, "the third recovery's completion", patience(10*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "complete", "", "")) == 4
	})
	w.waitMetric(`varta_escalation_failures_total{failure="exit"}`, 3, patience(5*time.Second))
	b, _ := os.ReadFile(marker)
	if lines := strings.Split(strings.TrimSpace(string(b)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], itoa(pid)+" varta-beat") {
		t.Errorf("the escalate command ran %d times with %q, want once for pid %d (varta-beat)", len(lines), b, pid)
	}
	stopCleanly(t, w)
}

func itoa(n int) string { return strconv.Itoa(n) }

// openPty returns a pty's master fd and its slave's path: a character
// device that takes writes like /dev/watchdog, so the observer's ioctls
// fail (ENOTTY) and nothing arms a real timer.
func openPty(t *testing.T) (int, string) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skip("no pty:", err)
	}
	t.Cleanup(func() { unix.Close(m) })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	// Raw output: the bytes written to the slave reach the master as they are.
	tio, err := unix.IoctlGetTermios(m, unix.TCGETS)
	if err == nil {
		tio.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(m, unix.TCSETS, tio)
	}
	return m, "/dev/pts/" + itoa(int(n))
}

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

var _ = syscall.SIGTERM
