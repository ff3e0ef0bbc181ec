package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// The sd_notify agent: this test binary re-executed with notifyAgentEnv
// naming the notify socket. It sends the messages of notifyMsgsEnv ("|"
// between messages) from its own pid, says 's' on stdout and stays alive
// until stdin closes, so a stall is of a live process under its own pid.
// notifyCommEnv renames it first (its comm), to play systemd-notify.
const (
	notifyAgentEnv = "VARTA_TEST_NOTIFY_SOCKET"
	notifyMsgsEnv  = "VARTA_TEST_NOTIFY_MSGS"
	notifyCommEnv  = "VARTA_TEST_NOTIFY_COMM"
)

// TestNotifyHelperAgent is not a test but the agent process.
func TestNotifyHelperAgent(t *testing.T) {
	sock := os.Getenv(notifyAgentEnv)
	if sock == "" {
		t.Skip("the agent process of the sd_notify tests; runs only when they start it")
	}
	fail := func(what string, err error) {
		os.Stderr.WriteString("notify agent: " + what + ": " + err.Error() + "\n")
		os.Exit(1)
	}
	if c := os.Getenv(notifyCommEnv); c != "" {
		// /proc/self is the thread-group leader: this renames the process.
		if err := os.WriteFile("/proc/self/comm", []byte(c), 0); err != nil {
			fail("comm", err)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		fail("connect", err)
	}
	for _, m := range strings.Split(os.Getenv(notifyMsgsEnv), "|") {
		if _, err := unix.Write(fd, []byte(m)); err != nil {
			fail("send", err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	os.Stdout.Write([]byte{'s'})
	var b [1]byte
	for {
		if _, err := os.Stdin.Read(b[:]); err != nil {
			os.Exit(0)
		}
	}
}

// notifyAgent starts an agent that sends msgs to sock and waits until it
// sent them; it returns its pid. The agent ends with the test.
func notifyAgent(t *testing.T, sock, comm string, msgs ...string) int {
	t.Helper()
	c := testbin.Command(os.Args[0], "-test.run=^TestNotifyHelperAgent$")
	c.Env = append(os.Environ(), notifyAgentEnv+"="+sock, notifyMsgsEnv+"="+strings.Join(msgs, "|"), notifyCommEnv+"="+comm)
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c.Stderr = os.Stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			c.Process.Kill()
			<-done
		}
	})
	var b [1]byte
	if n, _ := out.Read(b[:]); n != 1 || b[0] != 's' {
		t.Fatalf("the notify agent did not send its messages")
	}
	return c.Process.Pid
}

// startNotifyWatch runs varta-watch with a notify socket beside its own.
func startNotifyWatch(t *testing.T, extra ...string) (*watcher, string) {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	return startWatchIn(t, dir, append([]string{"--notify-socket", sock}, extra...)...), sock
}

// TestNotifyWatchdogTwiceStalls is the done-when: a process that
// sends WATCHDOG=1 to --notify-socket twice and goes quiet is stalled
// under its own pid.
func TestNotifyWatchdogTwiceStalls(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "300")
	pid := notifyAgent(t, sock, "", "WATCHDOG=1", "WATCHDOG=1")
	deadline := time.Now().Add(5 * time.Second)
	for count(w.eventLines(), "beat", pid) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(w.eventLines(), "beat", pid); n != 2 {
		t.Fatalf("%d beat lines for the agent %d, want 2:\n%s", n, pid, w.logText())
	}
	if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall for the quiet agent %d:\n%s", pid, w.logText())
	}
	if err := unix.Kill(pid, 0); err != nil {
		t.Fatalf("the agent is gone (%v): the stall must be of a live, quiet process", err)
	}
}

// TestNotifyStoppingIsOrderly: STOPPING=1 ends tracking without a stall,
// and a later WATCHDOG=1 of the same process does not start it again.
func TestNotifyStoppingIsOrderly(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "200", "--prom-addr", "127.0.0.1:0")
	pid := notifyAgent(t, sock, "", "READY=1\nWATCHDOG=1", "STOPPING=1", "WATCHDOG=1")
	if w.waitLog(`msg="agent is stopping \(STOPPING=1\); no longer tracked" pid=`+strconv.Itoa(pid), 5*time.Second) == "" {
		t.Fatalf("no stopping line:\n%s", w.logText())
	}
	if got := w.waitMetric(`varta_notify_bad_total{reason="after_stopping"}`, 1, 5*time.Second); got != 1 {
		t.Fatalf("after_stopping = %v, want 1", got)
	}
	time.Sleep(1 * time.Second) // five thresholds
	if c := count(w.eventLines(), "stall", pid); c != 0 || count(w.eventLines(), "beat", pid) != 1 {
		t.Fatalf("%d stalls and %d beats for the stopped agent, want 0 and 1:\n%s", c, count(w.eventLines(), "beat", pid), w.logText())
	}
}

// TestNotifyTrigger: WATCHDOG=trigger stalls the agent at once, long
// before its threshold.
func TestNotifyTrigger(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "600000")
	pid := notifyAgent(t, sock, "", "WATCHDOG=1", "WATCHDOG=trigger")
	if w.waitEvent(10*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall after WATCHDOG=trigger:\n%s", w.logText())
	}
}

// TestNotifyOwnThreshold: an agent whose WATCHDOG_USEC= is below
// --threshold-ms stalls first, although it beat last.
func TestNotifyOwnThreshold(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "4000")
	slow := notifyAgent(t, sock, "", "WATCHDOG=1")
	fast := notifyAgent(t, sock, "", "WATCHDOG_USEC=200000\nWATCHDOG=1")
	if w.waitEvent(3*time.Second, kindPid("stall", fast)) == nil {
		t.Fatalf("the agent with WATCHDOG_USEC=200000 did not stall within 3 s:\n%s", w.logText())
	}
	if c := count(w.eventLines(), "stall", slow); c != 0 {
		t.Fatalf("the agent on --threshold-ms 4000 stalled first:\n%s", w.logText())
	}
	if w.waitLog(`msg="agent set its own threshold \(WATCHDOG_USEC=\)" pid=`+strconv.Itoa(fast)+` threshold_ms=200`, time.Second) == "" {
		t.Errorf("no log line for the agent's own threshold:\n%s", w.logText())
	}
	if w.waitEvent(10*time.Second, kindPid("stall", slow)) == nil {
		t.Fatalf("the agent on --threshold-ms never stalled:\n%s", w.logText())
	}
}

// TestNotifyBadInput: a datagram longer than the buffer, unknown keys and
// malformed lines are counted, and the observer carries on.
func TestNotifyBadInput(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "60000", "--prom-addr", "127.0.0.1:0")
	r := dialRaw(t, sock)
	for _, m := range []string{strings.Repeat("X", 5000), "FOO=1\nBAR=2", "WATCHDOG_USEC=0", "nonsense", "WATCHDOG=1\x00"} {
		r.send([]byte(m))
	}
	want := map[string]float64{
		"varta_notify_truncated_total":                    1,
		"varta_notify_unknown_keys_total":                 2,
		`varta_notify_bad_total{reason="watchdog_usec"}`:  1,
		`varta_notify_bad_total{reason="malformed"}`:      3,
		`varta_notify_messages_total{kind="watchdog"}`:    0,
		`varta_notify_thresholds_rounded_total`:           0,
		`varta_notify_bad_total{reason="no_credentials"}`: 0,
	}
	w.waitMetric(`varta_notify_bad_total{reason="malformed"}`, 3, 5*time.Second)
	got := w.scrape()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

// TestNotifyOnBehalfOfParent: a message from an untracked process named
// systemd-notify is its parent's, as a parent beat: with
// --allow-parent-beats it beats for the parent (this test process), and
// without it is refused and counted.
func TestNotifyOnBehalfOfParent(t *testing.T) {
	me := os.Getpid()
	w, sock := startNotifyWatch(t, "--threshold-ms", "60000", "--allow-parent-beats", "--prom-addr", "127.0.0.1:0")
	notifyAgent(t, sock, "systemd-notify", "WATCHDOG=1")
	if w.waitEvent(5*time.Second, kindPid("beat", me)) == nil {
		t.Fatalf("no beat for the parent %d:\n%s", me, w.logText())
	}
	if got := w.waitMetric(`varta_parent_beats_total{result="verified"}`, 1, 5*time.Second); got != 1 {
		t.Fatalf("verified parent beats = %v, want 1", got)
	}

	w2, sock2 := startNotifyWatch(t, "--threshold-ms", "60000", "--prom-addr", "127.0.0.1:0")
	child := notifyAgent(t, sock2, "systemd-notify", "WATCHDOG=1")
	if got := w2.waitMetric(`varta_notify_bad_total{reason="refused"}`, 1, 5*time.Second); got != 1 {
		t.Fatalf("refused = %v, want 1:\n%s", got, w2.logText())
	}
	if count(w2.eventLines(), "beat", me)+count(w2.eventLines(), "beat", child) != 0 {
		t.Fatalf("a beat without --allow-parent-beats:\n%s", w2.logText())
	}
}

// TestNotifySystemdNotify: a shell script that runs systemd-notify twice
// and goes quiet is tracked and stalled under its own pid.
func TestNotifySystemdNotify(t *testing.T) {
	bin, err := exec.LookPath("systemd-notify")
	if err != nil {
		t.Skip("systemd-notify is not installed (Debian: apt-get install systemd); the raw-datagram tests cover the protocol")
	}
	w, sock := startNotifyWatch(t, "--threshold-ms", "400", "--allow-parent-beats")
	sh := exec.Command("/bin/sh", "-c", bin+" READY=1 STATUS=up WATCHDOG=1 && "+bin+" WATCHDOG=1 && exec sleep 30")
	sh.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock)
	out, err := sh.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sh.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sh.Process.Kill(); sh.Wait() })
	pid := sh.Process.Pid
	deadline := time.Now().Add(10 * time.Second)
	for count(w.eventLines(), "beat", pid) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(w.eventLines(), "beat", pid); n != 2 {
		var b [512]byte
		k, _ := out.Read(b[:])
		t.Fatalf("%d beats for the script %d, want 2; its stderr: %s\n%s", n, pid, b[:k], w.logText())
	}
	if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall for the quiet script %d:\n%s", pid, w.logText())
	}
}

// TestNotifySocketMustDiffer: one path for both sockets is refused at the
// command line, naming the flag.
func TestNotifySocketMustDiffer(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.sock")
	code, _, stderr := runWatch(t, "--socket", p, "--notify-socket", p, "--threshold-ms", "100")
	if code == 0 || !strings.Contains(stderr, "--notify-socket") {
		t.Fatalf("exit %d, stderr %q: want a refusal naming --notify-socket", code, stderr)
	}
}

// TestNotifyStatusShown: an agent's STATUS= text is shown by varta-watch
// status, escaped in the table and as a JSON string.
func TestNotifyStatusShown(t *testing.T) {
	w, sock := startNotifyWatch(t, "--threshold-ms", "5000")
	pid := notifyAgent(t, sock, "", "WATCHDOG=1\nSTATUS=warming up")
	var out string
	waitFor(t, 5*time.Second, func() bool {
		out, _, _ = ctl(t, "status", "--socket", w.socket)
		return strings.Contains(out, `warming\x20up`)
	}, "the agent's STATUS= text in status")
	if !regexp.MustCompile(`(?m)^` + strconv.Itoa(pid) + ` .* warming\\x20up$`).MatchString(out) {
		t.Errorf("status %q: want the text at the end of the agent's row", out)
	}
	js, _, code := ctl(t, "status", "--json", "--socket", w.socket)
	if code != 0 || !strings.Contains(js, `"status_text":"warming up"`) {
		t.Errorf("status --json %q (exit %d): want status_text", js, code)
	}
}
