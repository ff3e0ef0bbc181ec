package main

// Recovery end to end (cmd/varta-watch/README.md §4): the real varta-watch binary,
// real agent processes, real recovery children, and the audit log, metrics
// and /proc as the witnesses. The recovery package's own tests drive a
// Manager directly; these prove the wiring: flags → poll → recovery → child.
//
// Recovery programs are small /bin/sh scripts written per test (the command
// line is split on white space and exec'd without a shell, so a script file
// is how a test gets shell behaviour). Waiting for an effect is always a
// deadline, stretched under qemu-user (VARTA_TEST_EMULATOR); the few fixed
// sleeps place a cause in time (a silence the eviction rule needs, how long
// the observer stays stopped). The storm tests are in
// recovery_storm_test.go, the audit log's in recovery_audit_test.go,
// shared helpers in recovery_helpers_test.go.

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// recorder is a recovery program that writes down how it was started:
// its arguments (one per line), its environment exactly as execve gave it
// (/proc/$$/environ), and the fds a program it runs inherits (ls lists
// /proc/self/fd: 0, 1, 2, and the directory ls itself opened). The .args
// file appears last, renamed into place, so its presence means complete.
// With capture on, it also writes 6 bytes to stdout and 3 to stderr.
func recorder(t *testing.T) (prog, outDir string) {
	t.Helper()
	outDir = t.TempDir()
	prog = writeScript(t, t.TempDir(), "record", `out=`+outDir+`/run.$$
cat /proc/$$/environ > "$out.env"
ls -l /proc/self/fd > "$out.fds"
printf '%s\n' "$@" > "$out.tmp"
mv "$out.tmp" "$out.args"
echo hello
echo ab >&2
`)
	return prog, outDir
}

// started is one recorded start of the recorder.
type started struct {
	args []string
	env  []string
	fds  map[int]string // fd → link target
}

func readRun(t *testing.T, argsFile string) started {
	t.Helper()
	base := strings.TrimSuffix(argsFile, ".args")
	a, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	e, err := os.ReadFile(base + ".env")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.ReadFile(base + ".fds")
	if err != nil {
		t.Fatal(err)
	}
	r := started{args: strings.Split(strings.TrimSuffix(string(a), "\n"), "\n"), fds: map[int]string{}}
	for _, kv := range strings.Split(strings.TrimSuffix(string(e), "\x00"), "\x00") {
		if kv != "" {
			r.env = append(r.env, kv)
		}
	}
	slices.Sort(r.env)
	// ls -l lines: "lr-x------ 1 root root 64 Jan  1 00:00 3 -> /proc/123/fd"
	for _, ln := range strings.Split(string(f), "\n") {
		before, target, ok := strings.Cut(ln, " -> ")
		if !ok {
			continue
		}
		fields := strings.Fields(before)
		fd, err := strconv.Atoi(fields[len(fields)-1])
		if err != nil {
			t.Fatalf("fd listing line %q", ln)
		}
		r.fds[fd] = target
	}
	return r
}

// checkFds: the child holds stdin on /dev/null, the listing's own stdout
// and directory fd, stderr on /dev/null or a capture pipe, and nothing
// else: no socket, event file, audit log or pipe of the observer.
func checkFds(t *testing.T, r started, capture bool) {
	t.Helper()
	for fd, target := range r.fds {
		ok := false
		switch fd {
		case 0:
			ok = target == "/dev/null"
		case 1:
			ok = strings.HasSuffix(target, ".fds")
		case 2:
			ok = target == "/dev/null" || capture && strings.HasPrefix(target, "pipe:")
		case 3:
			ok = strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd")
		}
		if !ok {
			t.Errorf("recovery child inherited fd %d -> %s; all: %v", fd, target, r.fds)
		}
	}
	for _, fd := range []int{0, 1, 2} {
		if _, ok := r.fds[fd]; !ok {
			t.Errorf("recovery child has no fd %d: %v", fd, r.fds)
		}
	}
}

// TestRecoveryCommandSeesPid: the stalled agent's pid reaches the program
// appended as the last argument, or wherever {pid} is written; the
// program's environment is PATH=/usr/bin:/bin plus --recovery-env, or the
// observer's own with --recovery-inherit-env; and it inherits no fd of
// the observer. The agent is a varta-beat that has exited (and been
// reaped) before its stall: recovery for a dead agent is the point.
func TestRecoveryCommandSeesPid(t *testing.T) {
	t.Run("appended/clean-env", func(t *testing.T) {
		prog, out := recorder(t)
		leaked, err := os.Create(filepath.Join(t.TempDir(), "leaked"))
		if err != nil {
			t.Fatal(err)
		}
		defer leaked.Close()
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		defer pw.Close()
		w := startWatchLeaky(t, []*os.File{leaked, pw}, "--threshold-ms", "100", "--recovery-exec", prog+" --restart  svc",
			"--recovery-env", "VARTA_A=1", "--recovery-env", "VARTA_B=x=y",
			"--recovery-audit-file", filepath.Join(t.TempDir(), "audit"))
		pid := beatOnce(t, w)
		r := readRun(t, waitFiles(t, w, out+"/run.*.args", 1, patience(5*time.Second))[0])
		if want := []string{"--restart", "svc", strconv.Itoa(pid)}; !slices.Equal(r.args, want) {
			t.Errorf("argv[1:] = %q, want %q", r.args, want)
		}
		// Exactly PATH, --recovery-env and the agent's own description
		// (names_test.go checks those values).
		var own []string
		for _, kv := range r.env {
			if !strings.HasPrefix(kv, "VARTA_AGENT_") && !strings.HasPrefix(kv, "VARTA_SILENT_MS=") {
				own = append(own, kv)
			}
		}
		if want := []string{"PATH=/usr/bin:/bin", "VARTA_A=1", "VARTA_B=x=y"}; !slices.Equal(own, want) {
			t.Errorf("environment = %q, want %q and the VARTA_AGENT_ entries", r.env, want)
		}
		if !slices.Contains(r.env, "VARTA_AGENT_PID="+strconv.Itoa(pid)) {
			t.Errorf("environment %q lacks VARTA_AGENT_PID=%d", r.env, pid)
		}
		checkFds(t, r, false)
		if w.waitLog(`msg="agent stalled" pid=`+strconv.Itoa(pid)+` .* process=gone`, time.Second) == "" {
			t.Errorf("the stall of an exited agent is not logged as gone:\n%s", w.logText())
		}
	})
	t.Run("placeholder/inherit-env/capture", func(t *testing.T) {
		t.Setenv("VARTA_TEST_MARK", "observer-env")
		t.Setenv("VARTA_A", "overridden")
		prog, out := recorder(t)
		audit := filepath.Join(t.TempDir(), "audit")
		w := startWatch(t, "--threshold-ms", "100", "--recovery-exec", prog+" --pid={pid} -p {pid} tail",
			"--recovery-inherit-env", "--recovery-env", "VARTA_A=1", "--recovery-capture-bytes", "4",
			"--recovery-audit-file", audit)
		pid := beatOnce(t, w)
		r := readRun(t, waitFiles(t, w, out+"/run.*.args", 1, patience(5*time.Second))[0])
		p := strconv.Itoa(pid)
		if want := []string{"--pid=" + p, "-p", p, "tail"}; !slices.Equal(r.args, want) {
			t.Errorf("argv[1:] = %q, want %q", r.args, want)
		}
		for _, want := range []string{"VARTA_TEST_MARK=observer-env", "VARTA_A=1", "PATH=" + os.Getenv("PATH")} {
			if !slices.Contains(r.env, want) {
				t.Errorf("inherited environment lacks %q: %q", want, r.env)
			}
		}
		if slices.Contains(r.env, "VARTA_A=overridden") {
			t.Errorf("--recovery-env did not override the inherited VARTA_A: %q", r.env)
		}
		checkFds(t, r, true)
		// Captured output is counted, not logged: the spawn record names
		// the program and the argument count, never the arguments.
		recs := waitAudit(t, w, audit, "a complete record", patience(5*time.Second), func(r []auditRec) bool {
			return len(ofKind(r, "complete", "agent_pid", p)) == 1
		})
		c := ofKind(recs, "complete", "agent_pid", p)[0]
		// 6 bytes to stdout and 3 to stderr, 4 kept: the record counts
		// the kept bytes of each stream and says the rest was cut.
		if c.kv["outcome"] != "reaped" || c.kv["exit_code"] != "0" || c.kv["signal"] != "-" ||
			c.int("stdout_len")+c.int("stderr_len") != 4 || c.kv["truncated"] != "true" {
			t.Errorf("complete record %v, want reaped, exit 0, 4 bytes kept of 9, truncated", c.kv)
		}
		s := ofKind(recs, "spawn", "agent_pid", p)
		argvLen := strconv.Itoa(len(strings.Join(append([]string{prog}, r.args...), " ")))
		if len(s) != 1 || s[0].kv["program"] != prog || s[0].kv["source"] != "inline" || s[0].kv["mode"] != "exec" ||
			s[0].kv["template_len"] != argvLen || s[0].kv["child_pid"] != c.kv["child_pid"] {
			t.Errorf("spawn records %v, want one naming %s, inline, template_len %s and child %s", s, prog, argvLen, c.kv["child_pid"])
		}
		if b, _ := os.ReadFile(audit); bytes.Contains(b, []byte("--pid=")) {
			t.Errorf("the audit log holds the command's arguments:\n%s", b)
		}
	})
}

// TestRecoveryExecFile: --recovery-exec-file is read from a 0600 file of
// ours (comments skipped, lines joined) and runs like --recovery-exec; a
// file others could write, a symlink or another uid's file is refused at
// start (exit 1, one line saying why, no socket left behind); giving both
// flags is a usage error (exit 2).
func TestRecoveryExecFile(t *testing.T) {
	prog, out := recorder(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "recovery.cmd")
	text := "# restart the agent's unit\n" + prog + " --from-file\n   {pid}\n\n"
	if err := os.WriteFile(good, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("0600 runs", func(t *testing.T) {
		w := startWatch(t, "--threshold-ms", "100", "--recovery-exec-file", good)
		pid := beatOnce(t, w)
		r := readRun(t, waitFiles(t, w, out+"/run.*.args", 1, patience(5*time.Second))[0])
		if want := []string{"--from-file", strconv.Itoa(pid)}; !slices.Equal(r.args, want) {
			t.Errorf("argv[1:] = %q, want %q", r.args, want)
		}
	})

	wide := filepath.Join(dir, "wide.cmd")
	if err := os.WriteFile(wide, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(wide, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.cmd")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	theirs := filepath.Join(dir, "theirs.cmd")
	if err := os.WriteFile(theirs, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	otherUID := os.Geteuid() == 0 && os.Chown(theirs, 65534, 65534) == nil
	for _, tc := range []struct {
		name, path, why string
	}{
		{"0644", wide, "mode 0644 gives group/other access"},
		{"symlink", link, "is a symlink"},
		{"other uid", theirs, "owned by uid 65534"},
	} {
		t.Run(tc.name+" refused", func(t *testing.T) {
			if tc.path == theirs && !otherUID {
				t.Skip("needs root to give the file to another uid")
			}
			sock := filepath.Join(t.TempDir(), "obs.sock")
			code, _, stderr := runWatch(t, "--socket", sock, "--threshold-ms", "100", "--recovery-exec-file", tc.path)
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(stderr, "recovery command file "+tc.path+": "+tc.why) {
				t.Errorf("exit %d, stderr %q; want exit 1 and one line saying %q", code, stderr, tc.why)
			}
			if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused start left the socket behind: %v", err)
			}
		})
	}

	t.Run("both flags", func(t *testing.T) {
		code, _, stderr := runWatch(t, "--socket", filepath.Join(t.TempDir(), "obs.sock"), "--threshold-ms", "100",
			"--recovery-exec", prog, "--recovery-exec-file", good)
		if code != 2 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "--recovery-exec-file") {
			t.Errorf("exit %d, stderr %q; want exit 2 and one line naming --recovery-exec-file", code, stderr)
		}
	})
}

// TestRecoveryDebounce: stalls of one agent (same pid, same process) within
// --recovery-debounce-ms of its last recovery are debounced (counted and
// audited, no child); once the debounce has passed, recovery runs again.
// The agent beats every I, each gap longer than the threshold T, so it
// stalls at 0, I, 2I and 3I after its first stall; with a debounce of 1.5I
// those run, are debounced, run, are debounced.
func TestRecoveryDebounce(t *testing.T) {
	T, I := 100*time.Millisecond, 400*time.Millisecond
	if emulated() {
		T, I = 2*T, 2*I
	}
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10),
		"--recovery-debounce-ms", strconv.FormatInt((I*3/2).Milliseconds(), 10),
		"--recovery-exec", "/bin/true", "--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	agent := startBeat(t, w, 4, I)
	p := strconv.Itoa(agent.Process.Pid)
	recs := waitAudit(t, w, audit, "4 decisions for the agent", 4*I+patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "spawn", "agent_pid", p))+len(ofKind(r, "refused", "agent_pid", p)) == 4 &&
			len(ofKind(r, "complete", "agent_pid", p)) == 2
	})
	var got []string
	for _, r := range recs {
		if r.kv["agent_pid"] == p && r.kind != "complete" {
			got = append(got, r.kind+":"+r.kv["reason"])
		}
	}
	if want := []string{"spawn:", "refused:debounced", "spawn:", "refused:debounced"}; !slices.Equal(got, want) {
		t.Errorf("decisions %q, want %q", got, want)
	}
	// The event file is flushed at the end of the tick that audited.
	if n := waitCount(w, "stall", agent.Process.Pid, 4, time.Second); n != 4 {
		t.Errorf("%d stall events, want 4: debounce holds back recovery, not stalls", n)
	}
	m := w.scrape()
	for label, want := range map[string]float64{"spawned": 2, "debounced": 2, "reaped_zero": 2, "skipped_in_flight": 0} {
		if m[outcomeKey(label)] != want {
			t.Errorf("%s = %v, want %v", outcomeKey(label), m[outcomeKey(label)], want)
		}
	}
	stopCleanly(t, w)
}

// TestRecoveryOneInFlight: while an agent's recovery child runs, its later
// stalls start no second child (skipped_in_flight, audited), even with
// debounce off; once the child is reaped, the next stall runs one again.
// The agent beats every I and stalls T after each beat (stalls at
// T, T+I, ..., T+4I); the child runs 2.5I, so the stalls get: spawn,
// in flight, in flight, spawn (the first child reaped by then), in flight.
func TestRecoveryOneInFlight(t *testing.T) {
	T, I := 100*time.Millisecond, 400*time.Millisecond
	if emulated() {
		T, I = 2*T, 2*I
	}
	run := I * 5 / 2
	prog := writeScript(t, t.TempDir(), "slow", "exec sleep "+strconv.FormatFloat(run.Seconds(), 'f', 1, 64)+"\n")
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10), "--recovery-debounce-ms", "0",
		"--read-timeout-ms", "20", "--recovery-exec", prog, "--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	agent := startBeat(t, w, 5, I)
	p := strconv.Itoa(agent.Process.Pid)
	recs := waitAudit(t, w, audit, "5 decisions for the agent", 5*I+patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "spawn", "agent_pid", p))+len(ofKind(r, "refused", "agent_pid", p)) == 5
	})
	var got []string
	for _, r := range recs {
		if r.kv["agent_pid"] == p {
			got = append(got, r.kind+":"+r.kv["reason"])
		}
	}
	want := []string{"spawn:", "refused:in_flight", "refused:in_flight", "complete:", "spawn:", "refused:in_flight"}
	if !slices.Equal(got, want) {
		t.Errorf("decisions %q, want %q", got, want)
	}
	m := w.scrape()
	if m[outcomeKey("spawned")] != 2 || m[outcomeKey("skipped_in_flight")] != 3 || m[outcomeKey("reaped_zero")] != 1 ||
		m["varta_recovery_outstanding"] != 1 {
		t.Errorf("spawned %v, skipped_in_flight %v, reaped_zero %v, outstanding %v; want 2, 3, 1, 1",
			m[outcomeKey("spawned")], m[outcomeKey("skipped_in_flight")], m[outcomeKey("reaped_zero")],
			m["varta_recovery_outstanding"])
	}
	stopCleanly(t, w)
}

// TestRecoveryCapacityRefused: the outstanding-child table has the pid
// table's size; when it is full a stall gets no child but a counted,
// audited refusal. With --tracker-capacity 2, agents A and B stall and
// their slow children fill the table; once A and B have been silent
// 10 thresholds, agents C and D evict them from the pid table and stall
// in turn, and are refused.
func TestRecoveryCapacityRefused(t *testing.T) {
	T := 20 * time.Millisecond
	prog := writeScript(t, t.TempDir(), "slow", "exec sleep 30\n")
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10), "--tracker-capacity", "2",
		"--recovery-debounce-ms", "0", "--recovery-exec", prog, "--recovery-audit-file", audit,
		"--prom-addr", "127.0.0.1:0")
	a, b := beatOnce(t, w), beatOnce(t, w)
	silent := time.Now()
	waitAudit(t, w, audit, "children for A and B", patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "spawn", "", "")) == 2
	})
	// Eviction needs 10 thresholds of silence (poll.EvictionFactor); the
	// frames were sent before beatOnce returned, so this much has passed.
	time.Sleep(time.Until(silent.Add(10*T + 100*time.Millisecond)))
	c, d := beatOnce(t, w), beatOnce(t, w)
	recs := waitAudit(t, w, audit, "refusals for C and D", patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "refused", "reason", "outstanding_capacity")) == 2
	})
	for _, pid := range []int{c, d} {
		if r := ofKind(recs, "refused", "agent_pid", strconv.Itoa(pid)); len(r) != 1 || r[0].kv["reason"] != "outstanding_capacity" {
			t.Errorf("agent %d: refused records %v, want one with reason=capacity", pid, r)
		}
	}
	for _, pid := range []int{a, b} {
		if w.waitEvent(time.Second, kindPid("eviction", pid)) == nil {
			t.Errorf("no eviction event for agent %d", pid)
		}
	}
	m := w.scrape()
	if m[outcomeKey("refused_outstanding_capacity")] != 2 || m[outcomeKey("spawned")] != 2 || m["varta_recovery_outstanding"] != 2 {
		t.Errorf("refused_outstanding_capacity %v, spawned %v, outstanding %v; want 2, 2, 2",
			m[outcomeKey("refused_outstanding_capacity")], m[outcomeKey("spawned")], m["varta_recovery_outstanding"])
	}
	stopCleanly(t, w)
	recs = readAudit(t, audit)
	if k := ofKind(recs, "complete", "outcome", "killed"); len(k) != 2 {
		t.Errorf("after SIGTERM: %d children killed, want 2: %v", len(k), recs)
	}
}

// stubborn is a recovery program that ignores SIGTERM, leaves a
// grandchild (sleep, in its process group, also ignoring SIGTERM) and
// waits for it; it writes "shell-pid grandchild-pid" to OUT/family.$$
// once both run.
func stubborn(t *testing.T) (prog, outDir string) {
	t.Helper()
	outDir = t.TempDir()
	prog = writeScript(t, t.TempDir(), "stubborn", `trap '' TERM
sleep 30 &
echo "$$ $!" > `+outDir+`/family.tmp.$$
mv `+outDir+`/family.tmp.$$ `+outDir+`/family.$$
wait
`)
	return prog, outDir
}

// family reads the shell and grandchild pids a stubborn run wrote.
func family(t *testing.T, file string) (shell, grandchild int) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		t.Fatalf("%s: %q", file, b)
	}
	shell, _ = strconv.Atoi(f[0])
	grandchild, _ = strconv.Atoi(f[1])
	return shell, grandchild
}

// alive reports whether pid is a process that has not exited.
func alive(pid int) bool {
	for _, p := range procTable() {
		if p.pid == pid {
			return p.state != 'Z' && p.state != 'X'
		}
	}
	return false
}

// TestRecoveryTimeoutKillsGroup: a recovery child that ignores SIGTERM and
// has forked a grandchild is killed with its whole process group at
// --recovery-timeout-ms; the observer reaps it (no zombie), the grandchild
// dies with it, and the audit log and metrics say "killed".
func TestRecoveryTimeoutKillsGroup(t *testing.T) {
	prog, out := stubborn(t)
	audit := filepath.Join(t.TempDir(), "audit")
	timeout := 300 * time.Millisecond
	w := startWatch(t, "--threshold-ms", "50", "--recovery-exec", prog,
		"--recovery-timeout-ms", strconv.FormatInt(timeout.Milliseconds(), 10),
		"--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	pid := beatOnce(t, w)
	shell, grandchild := family(t, waitFiles(t, w, out+"/family.[0-9]*", 1, patience(5*time.Second))[0])
	recs := waitAudit(t, w, audit, "the child's completion", timeout+patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "complete", "", "")) == 1
	})
	s, c := ofKind(recs, "spawn", "", ""), ofKind(recs, "complete", "", "")
	if len(s) != 1 || s[0].int("agent_pid") != pid || s[0].int("child_pid") != shell {
		t.Fatalf("spawn records %v, want one for agent %d with child %d", s, pid, shell)
	}
	if c[0].kv["outcome"] != "killed" || c[0].kv["signal"] != "9" || c[0].kv["exit_code"] != "-" || c[0].int("child_pid") != shell {
		t.Errorf("complete record %v, want child %d killed by SIGKILL", c[0].kv, shell)
	}
	if d := time.Duration(c[0].int("duration_ns")); d < timeout || d > timeout+patience(time.Second) {
		t.Errorf("killed after %v, want the timeout %v (plus a tick)", d, timeout)
	}
	// The child led its group (pgid = its pid); the whole group is gone.
	waitGone(t, "processes of the child's group", patience(2*time.Second), func() []procEntry {
		return groupLeft(shell, w.observerPid())
	})
	if alive(grandchild) {
		t.Errorf("grandchild %d survived the group kill", grandchild)
	}
	if m := w.scrape(); m[outcomeKey("killed")] != 1 || m["varta_recovery_outstanding"] != 0 {
		t.Errorf("killed %v, outstanding %v; want 1 and 0", m[outcomeKey("killed")], m["varta_recovery_outstanding"])
	}
	stopCleanly(t, w)
}

// TestRecoveryShutdown: at SIGTERM the observer sends SIGTERM to every
// outstanding child's group, waits up to --shutdown-grace-ms, SIGKILLs
// what is left, reaps everything and exits 0 within the grace (plus
// slack). Children that ignore SIGTERM hold it to the full grace; children
// that obey let it exit at once.
func TestRecoveryShutdown(t *testing.T) {
	const agents = 3
	for _, tc := range []struct {
		name   string
		obey   bool
		grace  time.Duration
		signal string
	}{
		{"children ignore SIGTERM", false, 500 * time.Millisecond, "9"},
		{"children obey SIGTERM", true, 5 * time.Second, "15"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prog, out := stubborn(t)
			if tc.obey {
				prog = writeScript(t, t.TempDir(), "obedient", "echo \"$$ $$\" > "+out+"/family.$$\nexec sleep 30\n")
			}
			audit := filepath.Join(t.TempDir(), "audit")
			w := startWatch(t, "--threshold-ms", "50", "--recovery-exec", prog, "--recovery-audit-file", audit,
				"--shutdown-grace-ms", strconv.FormatInt(tc.grace.Milliseconds(), 10))
			for i := 0; i < agents; i++ {
				beatOnce(t, w)
			}
			files := waitFiles(t, w, out+"/family.[0-9]*", agents, patience(5*time.Second))
			if z := zombiesOf(w.observerPid()); len(z) > 0 {
				t.Errorf("zombie children of the observer: %v", z)
			}
			start := time.Now()
			w.signal(syscall.SIGTERM)
			code := w.wait(tc.grace + patience(5*time.Second))
			took := time.Since(start)
			if code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, w.logText())
			}
			slack := patience(time.Second)
			switch {
			case took > tc.grace+slack:
				t.Errorf("exit took %v, want within the grace %v + %v", took, tc.grace, slack)
			case !tc.obey && took < tc.grace:
				t.Errorf("exit took %v: children that ignore SIGTERM were killed before the grace %v", took, tc.grace)
			}
			recs := readAudit(t, audit)
			if k := ofKind(recs, "complete", "signal", tc.signal); len(k) != agents || len(ofKind(recs, "complete", "", "")) != agents {
				t.Errorf("complete records %v, want %d killed by %s", ofKind(recs, "complete", "", ""), agents, tc.signal)
			}
			for _, f := range files {
				shell, grandchild := family(t, f)
				if left := groupLeft(shell, w.observerPid()); len(left) > 0 || alive(grandchild) {
					t.Errorf("after exit, group %d still holds %v (grandchild %d alive: %v)", shell, left, grandchild, alive(grandchild))
				}
			}
		})
	}
}
