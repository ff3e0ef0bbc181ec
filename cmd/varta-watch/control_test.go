package main

// The control socket end to end (cmd/varta-watch/README.md §9): the real
// varta-watch observer, the real `varta-watch status|pause|resume` client
// and real varta-beat agents.

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// ctl runs `varta-watch ARGS...` (a client command) and returns its
// standard output, standard error and exit status.
func ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := testbin.Command(watchBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// statusJSON is what `status --json` prints.
type statusJSON struct {
	Agents []struct {
		Pid          int     `json:"pid"`
		Name         string  `json:"name"`
		Origin       string  `json:"origin"`
		State        string  `json:"state"`
		LastBeat     float64 `json:"last_beat_seconds"`
		Beats        int     `json:"beats"`
		Stalls       int     `json:"stalls"`
		Recoveries   int     `json:"recoveries"`
		LastRecovery *string `json:"last_recovery"`
		Paused       bool    `json:"paused"`
		Held         int     `json:"held"`
	} `json:"agents"`
	Version         string  `json:"version"`
	Uptime          float64 `json:"uptime_seconds"`
	AgentCount      int     `json:"agent_count"`
	Capacity        int     `json:"capacity"`
	RecoveryRunning int     `json:"recovery_running"`
}

func getStatus(t *testing.T, w *watcher) statusJSON {
	t.Helper()
	out, errs, code := ctl(t, "status", "--json", "--socket", w.socket)
	if code != 0 {
		t.Fatalf("status --json: exit %d: %s", code, errs)
	}
	var s statusJSON
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("status --json does not parse: %v\n%s", err, out)
	}
	return s
}

// TestStatusShowsVartaBeat: an agent started with varta-beat shows in
// `varta-watch status` with its pid and the name varta-beat, in the table
// and in --json, which encoding/json parses; the control socket is the
// observer's socket path plus .ctl, mode 0600, and gone after exit.
func TestStatusShowsVartaBeat(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "2000")
	agent := startBeat(t, w, 1000, 50*time.Millisecond)
	pid := agent.Process.Pid
	row := regexp.MustCompile(`(?m)^` + strconv.Itoa(pid) + ` +` + agentComm() + ` +uds +ok +[0-9.]+s +[1-9][0-9]* +0 +0 +- +- +0 +- +-$`)
	var out string
	waitFor(t, 5*time.Second, func() bool {
		var code int
		out, _, code = ctl(t, "status", "--socket", w.socket)
		return code == 0 && row.MatchString(out)
	}, "varta-beat's row in status")
	if !regexp.MustCompile(`(?m)^varta-watch dev up [0-9.]+s: 1 agents \(0 paused\) of 256, 0 recovery children running$`).MatchString(out) {
		t.Errorf("no summary line in:\n%s", out)
	}
	// --control-socket names the same socket.
	if out2, _, code := ctl(t, "status", "--control-socket", w.socket+".ctl"); code != 0 || !strings.Contains(out2, agentComm()) {
		t.Errorf("status --control-socket: exit %d\n%s", code, out2)
	}
	s := getStatus(t, w)
	if len(s.Agents) != 1 || s.AgentCount != 1 || s.Capacity != 256 || s.Version != "dev" {
		t.Fatalf("status --json: %+v", s)
	}
	if a := s.Agents[0]; a.Pid != pid || a.Name != agentComm() || a.Origin != "uds" || a.State != "ok" || a.Beats < 1 || a.LastRecovery != nil {
		t.Fatalf("agent %+v, want pid %d named varta-beat, uds, ok", a, pid)
	}
	fi, err := os.Stat(w.socket + ".ctl")
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %v (%v), want a socket with mode 0600", fi, err)
	}
	stopCleanly(t, w)
	if _, err := os.Lstat(w.socket + ".ctl"); !os.IsNotExist(err) {
		t.Errorf("control socket left after a clean exit: %v", err)
	}
	if _, errs, code := ctl(t, "status", "--socket", w.socket); code != 1 || !strings.Contains(errs, "no control socket at") {
		t.Errorf("status with no observer: exit %d, %q", code, errs)
	}
}

// TestPauseHoldsRecovery: while an agent is paused its stalls run no
// recovery (audited refused/paused, shown in status, counted), and after
// resume its stalls run recovery again. The agent lives on and beats every
// I, stalling T after each beat.
func TestPauseHoldsRecovery(t *testing.T) {
	T, I := 150*time.Millisecond, 500*time.Millisecond
	if emulated() {
		T, I = 2*T, 2*I
	}
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10), "--recovery-debounce-ms", "0",
		"--recovery-exec", "/bin/true", "--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	agent := startBeat(t, w, 1000, I)
	p := strconv.Itoa(agent.Process.Pid)
	decisions := func(r []auditRec) (spawned, paused int) {
		return len(ofKind(r, "spawn", "agent_pid", p)), len(ofKind(r, "refused", "agent_pid", p))
	}
	waitAudit(t, w, audit, "a first recovery", patience(5*time.Second), func(r []auditRec) bool {
		s, _ := decisions(r)
		return s >= 1
	})
	out, errs, code := ctl(t, "pause", p, "--socket", w.socket)
	if code != 0 || out != "ok: paused 1 of 1 agents matching \""+p+"\"\n" {
		t.Fatalf("pause: exit %d, %q %q", code, out, errs)
	}
	recs := waitAudit(t, w, audit, "two held stalls", 4*I+patience(5*time.Second), func(r []auditRec) bool {
		_, held := decisions(r)
		return held >= 2
	})
	spawnedBefore, _ := decisions(recs)
	recs = waitAudit(t, w, audit, "a third held stall", 2*I+patience(5*time.Second), func(r []auditRec) bool {
		_, held := decisions(r)
		return held >= 3
	})
	if s, _ := decisions(recs); s != spawnedBefore {
		t.Fatalf("recovery ran for a paused agent: %d spawns, %d before", s, spawnedBefore)
	}
	for _, r := range ofKind(recs, "refused", "agent_pid", p) {
		if r.kv["reason"] != "paused" {
			t.Fatalf("refused record with reason %q, want paused", r.kv["reason"])
		}
	}
	s := getStatus(t, w)
	if a := s.Agents[0]; !a.Paused || a.Held < 3 || a.LastRecovery == nil {
		t.Fatalf("status of the paused agent: %+v", a)
	}
	if !strings.Contains(w.logText(), `msg="agent stalled while its recovery is paused; recovery held" pid=`+p) ||
		!strings.Contains(w.logText(), `msg="recovery paused through the control socket" agent=`+p) {
		t.Errorf("no pause or held log line:\n%s", w.logText())
	}
	m := w.scrape()
	if m[outcomeKey("skipped_paused")] < 3 || m["varta_recovery_paused_agents"] != 1 ||
		m[`varta_recovery_pause_changes_total{action="pause"}`] != 1 {
		t.Errorf("metrics: skipped_paused %v, paused agents %v, pauses %v", m[outcomeKey("skipped_paused")],
			m["varta_recovery_paused_agents"], m[`varta_recovery_pause_changes_total{action="pause"}`])
	}
	if out, errs, code := ctl(t, "resume", agentComm(), "--socket", w.socket); code != 0 || !strings.HasPrefix(out, "ok: resumed 1 of 1 agents") {
		t.Fatalf("resume: exit %d, %q %q", code, out, errs)
	}
	waitAudit(t, w, audit, "recovery after resume", 2*I+patience(5*time.Second), func(r []auditRec) bool {
		s, _ := decisions(r)
		return s > spawnedBefore
	})
	if _, errs, code := ctl(t, "pause", "no-such-agent", "--socket", w.socket); code != 1 || !strings.Contains(errs, `no tracked agent is "no-such-agent"`) {
		t.Errorf("pause of an unknown agent: exit %d, %q", code, errs)
	}
}

// TestControlOtherUidRefused: another user cannot use the control socket
// (its mode is 0600; the directory is opened to everyone here so that the
// socket's own mode is what refuses). Needs root, to run the client as
// nobody.
func TestControlOtherUidRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the client as another user")
	}
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	w := startWatchIn(t, dir, "--threshold-ms", "2000")
	bin := filepath.Join(dir, "varta-watch")
	b, err := os.ReadFile(watchBin(t))
	if err == nil {
		err = os.WriteFile(bin, b, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	cmd := testbin.Command(bin, "status", "--socket", w.socket)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "not allowed to connect") {
		t.Fatalf("status as nobody: %v\n%s", err, out)
	}
	if _, _, code := ctl(t, "status", "--socket", w.socket); code != 0 {
		t.Fatal("root's status failed")
	}
}

// TestControlSlowClientDoesNotStallLoop: clients that hold every control
// slot, one of them after asking for a status of 5000 agents (about 700 KB,
// far beyond the socket's buffer) that it never reads, do not delay the
// loop: another agent's stall is raised on time; the slow one is cut off
// at the 5 s deadline and counted, and the next client is served.
func TestControlSlowClientDoesNotStallLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits out the 5 s control deadline")
	}
	const agents = 5000
	T := 300 * time.Millisecond
	w, addr := startUDP(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10), "--tracker-capacity", "8000",
		"--udp-addr", "127.0.0.1:0", "--i-accept-plaintext-udp", "--max-beat-rate", "0", "--global-beat-rate", "0",
		"--prom-addr", "127.0.0.1:0")
	u := dialUDP(t, addr)
	// Rounds of one frame per pid, paced, until every pid is tracked: the
	// socket's queue drops what comes faster than the loop reads.
	for round := uint64(1); w.scrape()["varta_watch_pids_tracked"] < agents; round++ {
		if round > 50 {
			t.Fatalf("only %v of %d UDP agents tracked", w.scrape()["varta_watch_pids_tracked"], agents)
		}
		for pid := uint32(100000); pid < 100000+agents; pid++ {
			u.frame(vlp.Frame{Pid: pid, Nonce: round})
			if pid%500 == 0 {
				time.Sleep(2 * time.Millisecond)
			}
		}
	}
	var conns []*os.File
	for i := range 4 {
		f := dialControl(t, w.socket+".ctl")
		conns = append(conns, f)
		if i == 0 {
			f.Write([]byte("status\n")) // and never read
		}
	}
	time.Sleep(100 * time.Millisecond) // the status request is taken and its answer fills the socket
	pid := beatOnce(t, w)
	beat := w.waitEvent(5*time.Second, kindPid("beat", pid))
	stall := w.waitEvent(5*time.Second, kindPid("stall", pid))
	if beat == nil || stall == nil {
		t.Fatalf("no beat or stall of agent %d while the control slots are held:\n%s", pid, w.logText())
	}
	b, _ := strconv.ParseInt(beat[0], 10, 64)
	s, _ := strconv.ParseInt(stall[0], 10, 64)
	if late := time.Duration(s-b) - T; late < 0 || late > 250*time.Millisecond && !emulated() {
		t.Errorf("stall raised %v after the threshold, want within 250 ms", late)
	}
	if _, errs, code := ctl(t, "status", "--socket", w.socket); code != 1 || !strings.Contains(errs, "busy") {
		t.Errorf("a fifth client: exit %d, %q; want busy", code, errs)
	}
	if got := w.waitMetric(`varta_control_connections_refused_total{reason="deadline"}`, 4, 10*time.Second); got != 4 {
		t.Errorf("connections cut off at the deadline: %v, want 4", got)
	}
	for _, f := range conns {
		f.Close()
	}
	if out, _, code := ctl(t, "status", "--socket", w.socket); code != 0 || !strings.Contains(out, strconv.Itoa(agents+1)+" agents") {
		t.Errorf("status after the slow clients: exit %d, tail %q", code, out[max(0, len(out)-200):])
	}
}

// dialControl connects to a control socket.
func dialControl(t *testing.T, path string) *os.File {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Connect(fd, &syscall.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), path)
	t.Cleanup(func() { f.Close() })
	return f
}

// TestCheckConfig: --check-config with a good command line prints "config
// ok", exits 0 and creates nothing; with a bad one it lists every problem
// and exits 1, still creating nothing.
func TestCheckConfig(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "obs.sock")
	events := filepath.Join(dir, "events.tsv")
	cmd := testbin.Command(watchBin(t), "--check-config", "--socket", sock, "--threshold-ms", "500",
		"--recovery-exec", "/bin/true", "--export-file", events, "--recovery-audit-file", filepath.Join(dir, "audit"))
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "config ok\n" {
		t.Fatalf("good config: %v\n%s", err, out)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("--check-config created %v", ents)
	}
	notExec := filepath.Join(dir, "restart.sh")
	os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644)
	cmd = testbin.Command(watchBin(t), "--check-config", "--socket", filepath.Join(dir, "missing", "obs.sock"),
		"--threshold-ms", "500", "--recovery-exec", notExec, "--export-file", filepath.Join(dir, "nodir", "events.tsv"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || stdout.Len() != 0 {
		t.Fatalf("bad config: %v, stdout %q", err, stdout.String())
	}
	for _, want := range []string{
		"--socket: directory " + filepath.Join(dir, "missing") + ": no such file or directory; create it first",
		"--control-socket: directory " + filepath.Join(dir, "missing"),
		"recovery command: program " + notExec + ": not executable",
		"--export-file: directory " + filepath.Join(dir, "nodir") + " does not exist",
		"4 problem(s); nothing was started",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("bad config: no %q in:\n%s", want, stderr.String())
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("--check-config created files: %v", ents)
	}
}

// TestRecoveryDryRun: with --recovery-dry-run a stall logs the command it
// would run and runs nothing (the marker the command would create never
// appears); it is counted dry_run and audited.
func TestRecoveryDryRun(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	prog := writeScript(t, dir, "restart", "touch "+marker+"\n")
	audit := filepath.Join(dir, "audit")
	w := startWatch(t, "--threshold-ms", "150", "--recovery-exec", prog+" --agent {pid}", "--recovery-dry-run",
		"--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	pid := beatOnce(t, w)
	p := strconv.Itoa(pid)
	line := w.waitLog(`would run the recovery command`, patience(5*time.Second))
	if line == "" || !strings.Contains(line, "pid="+p) || !strings.Contains(line, prog+" --agent "+p) {
		t.Fatalf("no dry-run line naming pid %d and the command:\n%s", pid, w.logText())
	}
	waitAudit(t, w, audit, "the dry_run record", patience(5*time.Second), func(r []auditRec) bool {
		for _, rec := range ofKind(r, "refused", "agent_pid", p) {
			if rec.kv["reason"] == "dry_run" {
				return true
			}
		}
		return false
	})
	if got := w.scrape()[outcomeKey("dry_run")]; got != 1 {
		t.Errorf("dry_run outcomes %v, want 1", got)
	}
	time.Sleep(200 * time.Millisecond) // a child, had one started, would have run by now
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("--recovery-dry-run ran the command")
	}
	if m := w.scrape(); m[outcomeKey("spawned")] != 0 {
		t.Errorf("spawned %v, want 0", m[outcomeKey("spawned")])
	}
}
