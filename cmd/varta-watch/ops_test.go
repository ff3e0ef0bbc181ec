package main

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

// Embedded operations, driven through the real binary:
// self-watchdog, WATCHDOG=1, hardware watchdog, heartbeat file, the
// boottime clock, exit detection and parent beats.

// wedgeAfter makes the observer started next wedge its loop after ms
// milliseconds (the test-only hook of poll/watchdog.go).
func wedgeAfter(t *testing.T, ms int) {
	t.Setenv("VARTA_TEST_HOOKS", "1")
	t.Setenv("VARTA_TEST_WEDGE_AFTER_MS", strconv.Itoa(ms))
}

// waitLogTime is waitLog that also says when the line was first seen.
func (w *watcher) waitLogTime(pattern string, d time.Duration) (string, time.Time) {
	line := w.waitLog(pattern, d)
	return line, time.Now()
}

// TestSelfWatchdogAbortsWedgedLoop: a loop that stops iterating is
// aborted after --self-watchdog-secs with every goroutine's stack on
// stderr and exit status 134.
func TestSelfWatchdogAbortsWedgedLoop(t *testing.T) {
	wedgeAfter(t, 300)
	w := startWatch(t, "--threshold-ms", "1000", "--self-watchdog-secs", "1")
	line, wedged := w.waitLogTime(`test hook: wedging`, 10*time.Second)
	if line == "" {
		t.Fatalf("the loop did not wedge:\n%s", w.logText())
	}
	code := w.wait(20 * time.Second)
	took := time.Since(wedged)
	if code != 134 {
		t.Errorf("exit %d, want 134:\n%s", code, w.logText())
	}
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Errorf("aborted %v after the wedge, want about the 1s deadline", took)
	}
	log := w.logText()
	for _, want := range []string{`level=error msg="observer loop wedged`, "goroutine 1 [", "ops.testWedge"} {
		if !strings.Contains(log, want) {
			t.Errorf("stderr lacks %q:\n%s", want, log)
		}
	}
}

// note is one sd_notify datagram and when it arrived.
type note struct {
	msg string
	at  time.Time
}

// notifyListener is a service manager's notification socket.
type notifyListener struct {
	mu    sync.Mutex
	notes []note
	conn  *net.UnixConn
	done  chan struct{}
}

func listenNotify(t *testing.T, abstract bool) (*notifyListener, string) {
	t.Helper()
	addr := filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		addr = "@varta-test-wd-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	l := &notifyListener{conn: c, done: make(chan struct{})}
	go func() {
		defer close(l.done)
		buf := make([]byte, 4096)
		for {
			n, _, err := c.ReadFromUnix(buf)
			if err != nil {
				return
			}
			l.mu.Lock()
			l.notes = append(l.notes, note{string(buf[:n]), time.Now()})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { c.Close(); <-l.done })
	t.Setenv("NOTIFY_SOCKET", addr)
	return l, addr
}

func (l *notifyListener) all() []note {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]note(nil), l.notes...)
}

func (l *notifyListener) count(msg string) int {
	n := 0
	for _, x := range l.all() {
		if x.msg == msg {
			n++
		}
	}
	return n
}

func (l *notifyListener) waitCount(msg string, n int, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l.count(msg) >= n {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// TestWatchdogNotify: with $WATCHDOG_USEC the observer sends WATCHDOG=1
// at half the interval while its loop makes progress (to a path or an
// abstract socket), stops when the loop wedges (and the automatic 4 s
// self-watchdog then aborts it), sends none after STOPPING=1, and none at
// all when $WATCHDOG_PID names another process.
func TestWatchdogNotify(t *testing.T) {
	t.Run("stops when the loop wedges", func(t *testing.T) {
		if testing.Short() {
			// TestSelfWatchdogAbortsWedgedLoop covers the wedge quickly.
			t.Skip("slow: waits 6 s for a wedge and the automatic 4 s self-watchdog; run without -short")
		}
		l, _ := listenNotify(t, true)
		t.Setenv("WATCHDOG_USEC", "200000")
		t.Setenv("WATCHDOG_PID", "")
		wedgeAfter(t, 1500)
		w := newWatcher(t, t.TempDir())
		w.launch([]string{"--socket", w.socket, "--threshold-ms", "5000"})
		_, wedged := w.waitLogTime(`test hook: wedging`, 15*time.Second)
		if code := w.wait(30 * time.Second); code != 134 {
			t.Errorf("exit %d, want 134 from the automatic self-watchdog:\n%s", code, w.logText())
		}
		notes := l.all()
		if len(notes) == 0 || notes[0].msg != "READY=1" {
			t.Fatalf("notifications %v, want READY=1 first", notes)
		}
		before, after := 0, 0
		for _, n := range notes[1:] {
			switch {
			case n.msg != "WATCHDOG=1":
				t.Errorf("unexpected notification %q", n.msg)
			case n.at.Before(wedged.Add(-50 * time.Millisecond)):
				before++
			case n.at.After(wedged.Add(250 * time.Millisecond)):
				after++
			}
		}
		// 1.5 s at one ping per 100 ms; a loaded machine may lose some.
		if before < 5 || before > 20 {
			t.Errorf("%d WATCHDOG=1 before the wedge, want about 15", before)
		}
		if after != 0 {
			t.Errorf("%d WATCHDOG=1 after the loop wedged, want none", after)
		}
	})
	t.Run("none after STOPPING", func(t *testing.T) {
		l, _ := listenNotify(t, false)
		t.Setenv("WATCHDOG_USEC", "100000")
		t.Setenv("WATCHDOG_PID", "")
		w := newWatcher(t, t.TempDir())
		w.launch([]string{"--socket", w.socket, "--threshold-ms", "5000"})
		if !l.waitCount("WATCHDOG=1", 3, 15*time.Second) {
			t.Fatalf("no WATCHDOG=1 pings: %v\n%s", l.all(), w.logText())
		}
		w.signal(syscall.SIGTERM)
		if code := w.wait(20 * time.Second); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		// STOPPING=1 was sent before the exit; our reader may not have it yet.
		waitFor(t, 10*time.Second, func() bool { return l.count("STOPPING=1") > 0 }, "STOPPING=1")
		notes := l.all()
		stopping := -1
		for i, n := range notes {
			if n.msg == "STOPPING=1" {
				stopping = i
			}
		}
		if stopping < 0 || stopping != len(notes)-1 {
			t.Errorf("notifications %v, want STOPPING=1 last", notes)
		}
	})
	t.Run("another process's watchdog", func(t *testing.T) {
		l, _ := listenNotify(t, true)
		t.Setenv("WATCHDOG_USEC", "100000")
		t.Setenv("WATCHDOG_PID", "1")
		w := newWatcher(t, t.TempDir())
		w.launch([]string{"--socket", w.socket, "--threshold-ms", "5000"})
		if !l.waitCount("READY=1", 1, 15*time.Second) {
			t.Fatal("no READY=1")
		}
		// An absence, so a sleep: pings at WATCHDOG_USEC/2 would be ten by now.
		time.Sleep(500 * time.Millisecond)
		if n := l.count("WATCHDOG=1"); n != 0 {
			t.Errorf("%d WATCHDOG=1 for a watchdog meant for pid 1, want none", n)
		}
		if code := stopWatch(t, w); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
	})
}

// The hardware watchdog is tested against a pty's slave, as no test
// machine has a watchdog device to spare (and opening a real one arms a
// reboot): a character device that takes writes, shows them on its master
// and answers the watchdog ioctls with ENOTTY, like a device without a
// watchdog driver.

// watchdogPty opens a pty and returns its master, non-blocking, and the
// slave's path for --hw-watchdog. Its output is raw: the bytes written to
// the slave reach the master as they are.
func watchdogPty(t *testing.T) (int, string) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skip("no pty to stand in for a watchdog device:", err)
	}
	t.Cleanup(func() { unix.Close(m) })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	if tio, err := unix.IoctlGetTermios(m, unix.TCGETS); err == nil {
		tio.Oflag &^= unix.OPOST
		unix.IoctlSetTermios(m, unix.TCSETS, tio)
	}
	return m, "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
}

func TestHWWatchdogKicksAndMagicClose(t *testing.T) {
	t.Parallel() // waits for keep-alives a second apart; its only time bound is an upper one on their number
	m, dev := watchdogPty(t)
	started := time.Now()
	w := startWatch(t, "--threshold-ms", "1000", "--hw-watchdog", dev)
	// ENOTTY; under qemu-user, which passes no unknown ioctl on, ENOSYS.
	if w.waitLog(`does not answer WDIOC_GETSUPPORT.*(inappropriate ioctl|function not implemented)`, 5*time.Second) == "" {
		t.Errorf("no ENOTTY warning for a pty standing in for the device:\n%s", w.logText())
	}
	var got []byte
	buf := make([]byte, 256)
	drain := func() {
		for {
			n, err := unix.Read(m, buf)
			if n <= 0 || err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
	}
	// The loop ticks ten times a second; the kicks are limited to one a
	// second, the first at start: in a time E no more than E/1s + 1.
	waitFor(t, 10*time.Second, func() bool { drain(); return len(got) >= 2 }, "two keep-alives")
	took := time.Since(started)
	if n := strings.Count(string(got), "."); n > int(took/time.Second)+1 || len(got) != n {
		t.Errorf("in %v the device got %q, want keep-alive bytes only, at most one a second", took, got)
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	drain()
	if !strings.HasSuffix(string(got), "V") {
		t.Errorf("after a clean exit the device got %q, want the magic V last", got)
	}
}

func TestHWWatchdogNoMagicCloseOnCrash(t *testing.T) {
	m, dev := watchdogPty(t)
	w := startWatch(t, "--threshold-ms", "1000", "--hw-watchdog", dev)
	var got []byte
	buf := make([]byte, 256)
	waitFor(t, 10*time.Second, func() bool {
		if n, err := unix.Read(m, buf); n > 0 && err == nil {
			got = append(got, buf[:n]...)
		}
		return len(got) > 0
	}, "a keep-alive")
	w.kill()
	for n, err := unix.Read(m, buf); n > 0 && err == nil; n, err = unix.Read(m, buf) {
		got = append(got, buf[:n]...)
	}
	if strings.Contains(string(got), "V") {
		t.Errorf("after SIGKILL the device got %q, want keep-alives and no magic V", got)
	}
}

// TestHWWatchdogNotADevice: a regular file or a FIFO given to
// --hw-watchdog would take the keep-alives and guard nothing; the observer
// refuses to start (exit 1), naming the flag and the path.
func TestHWWatchdogNotADevice(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "watchdog")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "watchdog.fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dev, kind string }{{file, "a regular file"}, {fifo, "a FIFO"}} {
		code, _, stderr := runWatch(t, "--socket", filepath.Join(dir, "obs.sock"), "--threshold-ms", "100",
			"--hw-watchdog", tc.dev, "--shutdown-after-secs", "1")
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", tc.kind, code)
		}
		oneLine(t, "stderr", stderr)
		if want := tc.dev + ": is " + tc.kind + ", not a character device (--hw-watchdog"; !strings.Contains(stderr, want) {
			t.Errorf("%s: stderr %q, want %q", tc.kind, stderr, want)
		}
	}
	if b, _ := os.ReadFile(file); len(b) != 0 {
		t.Errorf("the refused file was written: %q", b)
	}
}

func TestHWWatchdogMissingDevice(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "no-watchdog")
	code, _, stderr := runWatch(t, "--socket", filepath.Join(dir, "obs.sock"), "--threshold-ms", "100",
		"--hw-watchdog", dev, "--shutdown-after-secs", "1")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	oneLine(t, "stderr", stderr)
	if !strings.Contains(stderr, dev) || !strings.Contains(stderr, "hardware watchdog") {
		t.Errorf("stderr %q does not name the device", stderr)
	}
	if _, err := os.Lstat(filepath.Join(dir, "obs.sock")); !os.IsNotExist(err) {
		t.Errorf("a start-up failure left the socket behind: %v", err)
	}
}

var heartbeatLine = regexp.MustCompile(`^(\d+) (\d+)\n$`)

func readHeartbeat(t *testing.T, path string) (loops, ns uint64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := heartbeatLine.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("heartbeat file holds %q, want \"<loop_count> <observer_ns>\\n\"", b)
	}
	loops, _ = strconv.ParseUint(m[1], 10, 64)
	ns, _ = strconv.ParseUint(m[2], 10, 64)
	return loops, ns
}

// TestHeartbeatFile: the heartbeat file advances while the loop runs, is
// replaced whole (no temporary file stays), and a symlink at its path is
// refused at start-up.
func TestHeartbeatFile(t *testing.T) {
	dir := t.TempDir()
	hb := filepath.Join(dir, "heartbeat")
	w := startWatch(t, "--threshold-ms", "1000", "--heartbeat-file", hb)
	l1, ns1 := readHeartbeat(t, hb)
	var l2, ns2 uint64
	// ns: 300 ms of the observer's clock tell nanoseconds from a coarser unit.
	deadline := time.Now().Add(10 * time.Second)
	for l2, ns2 = readHeartbeat(t, hb); (l2 <= l1 || ns2 < ns1+300e6) && time.Now().Before(deadline); l2, ns2 = readHeartbeat(t, hb) {
		time.Sleep(10 * time.Millisecond)
	}
	if l2 <= l1 || ns2 < ns1+300e6 {
		t.Errorf("heartbeat went from %d %d to %d %d in 10 s; want both to advance, ns by 300e6 at least", l1, ns1, l2, ns2)
	}
	if code := stopWatch(t, w); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%d entries beside the heartbeat file, want none", len(ents)-1)
	}

	link := filepath.Join(dir, "link")
	if err := os.Symlink(hb, link); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runWatch(t, "--socket", filepath.Join(dir, "obs.sock"), "--threshold-ms", "100",
		"--heartbeat-file", link, "--shutdown-after-secs", "1")
	if code != 1 || !strings.Contains(stderr, "symlink") {
		t.Errorf("heartbeat path is a symlink: exit %d, stderr %q; want 1 and a refusal", code, stderr)
	}
}

// TestClockSourceBoottime: --clock-source boottime is accepted and stalls
// are raised on it.
func TestClockSourceBoottime(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "200", "--clock-source", "boottime")
	r := dialRaw(t, w.socket)
	pid := int(ourPid())
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	if w.waitEvent(5*time.Second, kindPid("beat", pid)) == nil {
		t.Fatalf("no beat event:\n%s", w.logText())
	}
	start := time.Now()
	if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall event on the boottime clock:\n%s", w.logText())
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("stall came %v after the beat, want about 200ms", took)
	}
}

// beatWith runs varta-beat to completion with args.
func beatWith(t *testing.T, args ...string) int {
	t.Helper()
	cmd := testbin.Command(beatBin(t), args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat %q: %v\n%s", args, err, out)
	}
	return cmd.Process.Pid
}

// TestExitReport: a killed agent's exit event comes at once (not at the
// threshold), the stall still follows at the threshold, and a dying gasp
// shows in the exit line as the terminal nonce with status critical.
func TestExitReport(t *testing.T) {
	t.Parallel() // waits out a 1.5 s threshold; its one wall-clock bound (1 s to the exit event) is loose
	w := startWatch(t, "--threshold-ms", "1500", "--prom-addr", "127.0.0.1:0")
	a := startAgent(t, w.socket, 20*time.Millisecond)
	waitBeat(t, w, a.pid)
	a.stop()
	killed := time.Now()
	ev := w.waitEvent(5*time.Second, kindPid("exit", a.pid))
	if ev == nil {
		t.Fatalf("no exit event for the killed agent:\n%s", w.logText())
	}
	if took := time.Since(killed); took > time.Second {
		t.Errorf("exit event %v after the kill, want milliseconds", took)
	}
	if ev[3] == "-" || ev[3] == "0" || ev[4] != "ok" || ev[5] != "0" {
		t.Errorf("exit line %q, want the last nonce, ok, payload 0", ev)
	}
	if got := w.waitMetric("varta_agent_exits_total", 1, 5*time.Second); got != 1 {
		t.Errorf("varta_agent_exits_total = %v, want 1", got)
	}
	if w.waitEvent(10*time.Second, kindPid("stall", a.pid)) == nil {
		t.Errorf("report mode: no stall at the threshold after the exit:\n%s", w.logText())
	}

	gasper := beatWith(t, "--socket", w.socket, "--count", "1", "--terminal", "--payload", "7")
	ev = w.waitEvent(5*time.Second, kindPid("exit", gasper))
	if ev == nil {
		t.Fatalf("no exit event for a one-shot agent:\n%s", w.logText())
	}
	if ev[3] != "18446744073709551615" || ev[4] != "critical" || ev[5] != "7" {
		t.Errorf("exit line after a dying gasp %q, want the terminal nonce, critical, payload 7", ev)
	}
	if n := count(w.eventLines(), "exit", gasper); n != 1 {
		t.Errorf("%d exit lines for one exit", n)
	}
}

// TestExitRecover: --on-exit recover runs the recovery command at once for
// a killed agent (long before its threshold) and forgets its pid: no
// stall, no metrics rows.
func TestExitRecover(t *testing.T) {
	dir := t.TempDir()
	w := startWatch(t, "--threshold-ms", "20000", "--on-exit", "recover", "--prom-addr", "127.0.0.1:0",
		"--recovery-exec", "touch "+dir+"/recovered-{pid}")
	a := startAgent(t, w.socket, 20*time.Millisecond)
	waitBeat(t, w, a.pid)
	pidLabel := `varta_beats_total{pid="` + strconv.Itoa(a.pid) + `"}`
	if _, ok := w.scrape()[pidLabel]; !ok {
		t.Fatalf("no %s row while the agent lives", pidLabel)
	}
	a.stop()
	marker := filepath.Join(dir, "recovered-"+strconv.Itoa(a.pid))
	deadline := time.Now().Add(5 * time.Second)
	for _, err := os.Stat(marker); err != nil; _, err = os.Stat(marker) {
		if time.Now().After(deadline) {
			t.Fatalf("recovery did not run within 5s of the exit:\n%s", w.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if w.waitEvent(time.Second, kindPid("exit", a.pid)) == nil {
		t.Error("no exit event")
	}
	m := w.scrape()
	if _, ok := m[pidLabel]; ok {
		t.Errorf("%s still exported after the exit", pidLabel)
	}
	if m["varta_agent_exits_total"] != 1 || m[`varta_recovery_outcomes_total{outcome="spawned"}`] != 1 {
		t.Errorf("exits %v, spawned %v; want 1 and 1", m["varta_agent_exits_total"], m[`varta_recovery_outcomes_total{outcome="spawned"}`])
	}
	if n := count(w.eventLines(), "stall", a.pid); n != 0 {
		t.Errorf("%d stall events for an agent whose exit was recovered", n)
	}
}

// TestOnExitIgnore: no exit events; the dead agent stalls as before.
func TestOnExitIgnore(t *testing.T) {
	t.Parallel() // waits out a 0.5 s threshold; judges event lines only
	w := startWatch(t, "--threshold-ms", "500", "--on-exit", "ignore")
	a := startAgent(t, w.socket, 20*time.Millisecond)
	waitBeat(t, w, a.pid)
	a.stop()
	if w.waitEvent(10*time.Second, kindPid("stall", a.pid)) == nil {
		t.Fatalf("no stall:\n%s", w.logText())
	}
	if n := count(w.eventLines(), "exit", a.pid); n != 0 {
		t.Errorf("%d exit events with --on-exit ignore", n)
	}
}

// shells are the shells available to run agent scripts with.
func shells(t *testing.T) map[string][]string {
	out := map[string][]string{}
	if p, err := exec.LookPath("busybox"); err == nil {
		out["busybox sh"] = []string{p, "sh"}
	}
	if _, err := os.Stat("/bin/sh"); err == nil {
		out["/bin/sh"] = []string{"/bin/sh"}
	}
	if len(out) == 0 {
		t.Skip("no shell")
	}
	return out
}

// startShellAgent runs a shell script daemon that calls
// `varta-beat --parent` in its loop.
func startShellAgent(t *testing.T, shell []string, socket string) *exec.Cmd {
	t.Helper()
	vb := beatBin(t)
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		vb = emu + " " + vb
	}
	script := `while :; do $VB --socket "$S" --parent || echo "varta-beat failed: $?" >&2; sleep 0.1; done`
	cmd := exec.Command(shell[0], append(shell[1:], "-c", script)...)
	cmd.Env = append(os.Environ(), "VB="+vb, "S="+socket)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-done })
	return cmd
}

// TestParentBeatsShellScript: a shell script calling varta-beat --parent
// in its loop is tracked as ONE agent, the shell, with rising nonces;
// killed, it is reported gone at once and stalls at the threshold.
func TestParentBeatsShellScript(t *testing.T) {
	if testing.Short() {
		// TestParentClaims (the observer's side), TestParentBeatsNeedTheFlag
		// (this script, refused) and varta-beat's TestParentFrames (rising
		// nonces across runs) cover parent beats quickly.
		t.Skip("slow: a shell loop of varta-beat runs until a 1.5 s stall, per shell; run without -short")
	}
	for name, sh := range shells(t) {
		t.Run(name, func(t *testing.T) {
			w := startWatch(t, "--threshold-ms", "1500", "--allow-parent-beats", "--prom-addr", "127.0.0.1:0")
			shell := startShellAgent(t, sh, w.socket)
			pid := shell.Process.Pid
			deadline := time.Now().Add(20 * time.Second)
			for count(w.eventLines(), "beat", pid) < 4 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			lines := w.eventLines()
			if n := count(lines, "beat", pid); n < 4 {
				t.Fatalf("%d beats for the shell %d, want 4:\n%s", n, pid, w.logText())
			}
			var last uint64
			for _, c := range lines {
				if len(c) != 6 || c[1] != "beat" {
					continue
				}
				if c[2] != strconv.Itoa(pid) {
					t.Errorf("beat for pid %s, want only the shell's %d", c[2], pid)
				}
				n, _ := strconv.ParseUint(c[3], 10, 64)
				if n <= last {
					t.Errorf("nonce %d after %d: parent-beat nonces must rise", n, last)
				}
				last = n
			}
			m := w.scrape()
			if m["varta_watch_pids_tracked"] != 1 || m[`varta_parent_beats_total{result="verified"}`] < 4 {
				t.Errorf("tracked %v, verified parent beats %v; want 1 and at least 4",
					m["varta_watch_pids_tracked"], m[`varta_parent_beats_total{result="verified"}`])
			}
			shell.Process.Signal(syscall.SIGKILL)
			if w.waitEvent(5*time.Second, kindPid("exit", pid)) == nil {
				t.Errorf("no exit event for the killed shell:\n%s", w.logText())
			}
			if w.waitEvent(10*time.Second, kindPid("stall", pid)) == nil {
				t.Errorf("no stall for the killed shell:\n%s", w.logText())
			}
		})
	}
}

// TestParentBeatsNeedTheFlag: without --allow-parent-beats the same script
// is refused: auth_failure mismatches for the shell's pid, never a beat.
func TestParentBeatsNeedTheFlag(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "1500")
	var sh []string
	for _, s := range shells(t) {
		sh = s
		break
	}
	shell := startShellAgent(t, sh, w.socket)
	pid := shell.Process.Pid
	ev := w.waitEvent(20*time.Second, kindPid("mismatch", pid))
	if ev == nil || ev[5] != "auth_failure" {
		t.Fatalf("mismatch event %v, want auth_failure for the shell's pid:\n%s", ev, w.logText())
	}
	// Two more refusals: the observer has read the script's later beats too.
	if n := waitCount(w, "mismatch", pid, 3, 20*time.Second); n < 3 {
		t.Fatalf("%d mismatch events for the shell, want 3:\n%s", n, w.logText())
	}
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == "beat" {
			t.Errorf("beat accepted without --allow-parent-beats: %q", c)
		}
	}
}

// TestParentClaims: with --allow-parent-beats a sender may claim its own
// parent, and nothing else: not a child, not its grandparent.
func TestParentClaims(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000", "--allow-parent-beats")
	r := dialRaw(t, w.socket)
	child := exec.Command("sleep", "30")
	if err := child.Start(); err != nil {
		t.Skip("cannot start sleep:", err)
	}
	defer func() { child.Process.Kill(); child.Wait() }()
	parent := os.Getppid()
	claims := []struct {
		name string
		pid  int
		ok   bool
	}{
		{"our child", child.Process.Pid, false},
		{"our parent", parent, true},
	}
	if gp := ppidOf(t, parent); gp >= 2 {
		claims = append(claims, struct {
			name string
			pid  int
			ok   bool
		}{"our grandparent", gp, false})
	}
	for _, c := range claims {
		r.frame(vlp.Frame{Status: vlp.Ok, Pid: uint32(c.pid), Nonce: 1})
		kind := "mismatch"
		if c.ok {
			kind = "beat"
		}
		ev := w.waitEvent(5*time.Second, kindPid(kind, c.pid))
		switch {
		case ev == nil:
			t.Errorf("claim of %s (%d): no %s event:\n%s", c.name, c.pid, kind, w.logText())
		case !c.ok && ev[5] != "auth_failure":
			t.Errorf("claim of %s: %q, want auth_failure", c.name, ev)
		}
	}
	// Every claim's event is in (waited for above), and a claim gets one
	// event, a beat or a mismatch: no later line can change this check.
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == "beat" && c[2] != strconv.Itoa(parent) {
			t.Errorf("beat accepted for %s, not our parent", c[2])
		}
	}
}

// ppidOf reads field 4 of /proc/PID/stat.
func ppidOf(t *testing.T, pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, _ := strconv.Atoi(f[1])
	return v
}

// TestOpsUsage: the new flags' bad values and combinations exit 2 with one
// line naming the flag; a bad $WATCHDOG_USEC is a start-up failure.
func TestOpsUsage(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "obs.sock")
	base := func(extra ...string) []string {
		return append([]string{"--socket", sock, "--threshold-ms", "100"}, extra...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"bad on-exit", base("--on-exit", "restart"), []string{"--on-exit", `"restart"`}},
		{"recover without a command", base("--on-exit=recover"), []string{"--on-exit", "--recovery-exec"}},
		{"negative self-watchdog", base("--self-watchdog-secs", "-1"), []string{"--self-watchdog-secs"}},
		{"self-watchdog not a number", base("--self-watchdog-secs=4s"), []string{"--self-watchdog-secs", `"4s"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runWatch(t, tc.args...)
			if code != 2 || stdout != "" {
				t.Errorf("exit %d, stdout %q; want 2 and nothing", code, stdout)
			}
			oneLine(t, "stderr", stderr)
			for _, want := range append(tc.want, "see --help") {
				if !strings.Contains(stderr, want) {
					t.Errorf("stderr %q lacks %q", stderr, want)
				}
			}
		})
	}
	t.Run("bad WATCHDOG_USEC", func(t *testing.T) {
		t.Setenv("WATCHDOG_USEC", "soon")
		code, _, stderr := runWatch(t, base("--shutdown-after-secs", "1")...)
		if code != 1 || !strings.Contains(stderr, "WATCHDOG_USEC=soon") {
			t.Errorf("exit %d, stderr %q; want 1 naming WATCHDOG_USEC", code, stderr)
		}
		oneLine(t, "stderr", stderr)
	})
	_, stdout, _ := runWatch(t, "--help")
	for _, flag := range []string{"--self-watchdog-secs", "--hw-watchdog", "--heartbeat-file", "--on-exit", "--allow-parent-beats"} {
		if !strings.Contains(stdout, flag) {
			t.Errorf("help does not mention %s", flag)
		}
	}
}
