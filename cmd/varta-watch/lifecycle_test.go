package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

// Start-up, shutdown and the command line (cmd/varta-watch/README.md §1 and §8), driven
// through the real binary.

// runWatch runs varta-watch to completion and returns its exit code and
// output. A run that does not end within a bound is killed and fails the
// test: every caller expects a refusal (callers that might bind pass
// --shutdown-after-secs, so a wrong start fails fast).
func runWatch(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := testbin.Command(watchBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("varta-watch %q still running after 30s; stderr:\n%s", args, errb.String())
	}
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

// oneLine fails unless s is exactly one newline-terminated line.
// expectUsageError runs varta-watch with args and expects exit 2 with one
// stderr line holding every string of want and "see --help", and no stdout.
func expectUsageError(t *testing.T, args, want []string) {
	t.Helper()
	code, stdout, stderr := runWatch(t, args...)
	if code != 2 {
		t.Errorf("varta-watch %q: exit %d, want 2; stderr:\n%s", args, code, stderr)
	}
	oneLine(t, "stderr", stderr)
	for _, w := range append(want, "see --help") {
		if !strings.Contains(stderr, w) {
			t.Errorf("stderr %q lacks %q", stderr, w)
		}
	}
	if stdout != "" {
		t.Errorf("stdout = %q, want nothing", stdout)
	}
}

func oneLine(t *testing.T, what, s string) {
	t.Helper()
	if strings.Count(s, "\n") != 1 || !strings.HasSuffix(s, "\n") {
		t.Errorf("%s is not exactly one line:\n%s", what, s)
	}
}

// beats sends frames with rising nonces from this test process.
type beats struct {
	r     *rawSender
	nonce uint64
}

func (b *beats) beat() uint64 {
	b.nonce++
	b.r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: b.nonce})
	return b.nonce
}

// kindPidNonce matches the event of kind for our pid with nonce n.
func kindPidNonce(kind string, n uint64) func([]string) bool {
	return func(c []string) bool {
		return kindPid(kind, int(ourPid()))(c) && c[3] == strconv.FormatUint(n, 10)
	}
}

// mustBeat sends a beat and waits for its event: the observer is alive and
// receiving on its socket.
func mustBeat(t *testing.T, w *watcher, b *beats) {
	t.Helper()
	n := b.beat()
	if w.waitEvent(5*time.Second, kindPidNonce("beat", n)) == nil {
		t.Fatalf("no beat event for nonce %d:\n%s", n, w.logText())
	}
}

func socketIno(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatalf("lstat %s: %v", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Fatalf("%s is not a socket (mode %o)", path, st.Mode)
	}
	return uint64(st.Ino)
}

// TestPathSafetyRefusals: each unsafe socket path is a start-up failure:
// exit 1, one line on stderr saying what is wrong, nothing bound, and a
// file found at the path left as it was.
func TestPathSafetyRefusals(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T) (socket string)
		want  string
	}{
		{"symlinked parent", func(t *testing.T) string {
			link := filepath.Join(t.TempDir(), "link")
			if err := os.Symlink(t.TempDir(), link); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(link, "obs.sock")
		}, "is a symlink"},
		{"parent writable by others", func(t *testing.T) string {
			return filepath.Join(chmodDir(t, t.TempDir(), 0o777), "obs.sock")
		}, "writable by group or others without the sticky bit"},
		{"parent writable by group", func(t *testing.T) string {
			return filepath.Join(chmodDir(t, t.TempDir(), 0o770), "obs.sock")
		}, "writable by group or others without the sticky bit"},
		{"regular file at the path", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "obs.sock")
			if err := os.WriteFile(p, []byte("not a socket\n"), 0o640); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a regular file, not a socket"},
		{"directory at the path", func(t *testing.T) string {
			p := filepath.Join(t.TempDir(), "obs.sock")
			if err := os.Mkdir(p, 0o700); err != nil {
				t.Fatal(err)
			}
			return p
		}, "is a directory, not a socket"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			socket := tc.setup(t)
			real, _ := filepath.EvalSymlinks(filepath.Dir(socket))
			before := snapshot(t, filepath.Join(real, "obs.sock"))
			code, _, stderr := runWatch(t, "--socket", socket, "--threshold-ms", "100", "--shutdown-after-secs", "5")
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			oneLine(t, "stderr", stderr)
			if !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, socket) {
				t.Errorf("stderr = %q, want it to name %s and say %q", stderr, socket, tc.want)
			}
			if after := snapshot(t, filepath.Join(real, "obs.sock")); after != before {
				t.Errorf("the path changed: before %s, after %s", before, after)
			}
		})
	}
}

// chmodDir sets dir's mode past the umask and returns dir.
func chmodDir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

// snapshot describes what is at path: its type, mode, inode and content.
func snapshot(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return "nothing (" + err.Error() + ")"
	}
	b, _ := os.ReadFile(path)
	return strconv.FormatUint(uint64(st.Mode), 8) + " ino " + strconv.FormatUint(uint64(st.Ino), 10) +
		" content " + strconv.Quote(string(b))
}

// TestStickyDirAccepted: a world-writable directory with the sticky bit
// (like /tmp) is safe: others cannot remove or rename our socket there.
func TestStickyDirAccepted(t *testing.T) {
	w := startWatchIn(t, chmodDir(t, t.TempDir(), os.ModeSticky|0o777), "--threshold-ms", "5000")
	mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
}

// TestSecondInstanceRefused: a second observer on a live socket exits 1
// saying one is already running, and the first keeps its socket and works.
func TestSecondInstanceRefused(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000")
	b := &beats{r: dialRaw(t, w.socket)}
	mustBeat(t, w, b)
	ino := socketIno(t, w.socket)
	code, _, stderr := runWatch(t, "--socket", w.socket, "--threshold-ms", "100", "--shutdown-after-secs", "5")
	if code != 1 {
		t.Errorf("second instance: exit %d, want 1; stderr:\n%s", code, stderr)
	}
	oneLine(t, "stderr", stderr)
	if !strings.Contains(stderr, "already running") {
		t.Errorf("stderr = %q, want \"already running\"", stderr)
	}
	if got := socketIno(t, w.socket); got != ino {
		t.Errorf("the first observer's socket was replaced (inode %d, was %d)", got, ino)
	}
	mustBeat(t, w, b)
}

// TestStaleSocketReplaced: a socket file left behind by a crash (bound,
// closed, never unlinked) is replaced and the observer receives on it.
func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, "obs.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	w := startWatchIn(t, dir, "--threshold-ms", "5000")
	mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
}

// TestExitUnlinksOnlyOurSocket: on a clean exit the observer removes its
// socket, but not a file that took the path over while it ran.
func TestExitUnlinksOnlyOurSocket(t *testing.T) {
	cases := []struct {
		name    string
		replace func(t *testing.T, path string) (check func() string)
	}{
		{"regular file", func(t *testing.T, path string) func() string {
			if err := os.WriteFile(path, []byte("someone else's\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			return func() string { return snapshot(t, path) }
		}},
		{"another socket", func(t *testing.T, path string) func() string {
			fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { unix.Close(fd) })
			if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
				t.Fatal(err)
			}
			return func() string { return snapshot(t, path) }
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatch(t, "--threshold-ms", "5000")
			moved := w.socket + ".moved"
			if err := os.Rename(w.socket, moved); err != nil {
				t.Fatal(err)
			}
			check := tc.replace(t, w.socket)
			before := check()
			w.signal(syscall.SIGTERM)
			if code := w.wait(20 * time.Second); code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, w.logText())
			}
			if after := check(); after != before {
				t.Errorf("the file that replaced the socket changed: before %s, after %s", before, after)
			}
		})
	}
}

// TestSIGINT: like SIGTERM, exit 0 with the socket gone and the events
// written.
func TestSIGINT(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000")
	mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
	w.signal(syscall.SIGINT)
	if code := w.wait(20 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGINT, want 0:\n%s", code, w.logText())
	}
	if _, err := os.Lstat(w.socket); !os.IsNotExist(err) {
		t.Errorf("socket still exists after exit: %v", err)
	}
	if w.waitLog(`msg="stopped"`, time.Second) == "" {
		t.Errorf("no \"stopped\" log line:\n%s", w.logText())
	}
}

// TestSIGHUPReopensEventFile: logrotate moves the file away and sends
// SIGHUP; the next event lands in a new file at the configured path.
func TestSIGHUPReopensEventFile(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000")
	b := &beats{r: dialRaw(t, w.socket)}
	mustBeat(t, w, b)
	rotated := w.events + ".1"
	if err := os.Rename(w.events, rotated); err != nil {
		t.Fatal(err)
	}
	w.signal(syscall.SIGHUP)
	if w.waitLog(`msg="reopened output files after SIGHUP"`, 10*time.Second) == "" {
		t.Fatalf("no reopen after SIGHUP:\n%s", w.logText())
	}
	mustBeat(t, w, b) // reads w.events: the new file
	st, err := os.Stat(w.events)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("new event file mode %o, want 600", st.Mode().Perm())
	}
	old, _ := os.ReadFile(rotated)
	if !strings.Contains(string(old), "\t1\tok\t") || strings.Contains(string(old), "\t2\tok\t") {
		t.Errorf("rotated file should hold nonce 1 and not nonce 2:\n%s", old)
	}
	if code := stopWatch(t, w); code != 0 {
		t.Errorf("exit %d after SIGHUP and SIGTERM, want 0", code)
	}
}

func stopWatch(t *testing.T, w *watcher) int {
	t.Helper()
	w.signal(syscall.SIGTERM)
	return w.wait(20 * time.Second)
}

// TestEventFileRotation: --export-file-max-bytes rotates through path.1 ..
// path.5; older lines are dropped, no file exceeds the bound, and the kept
// lines are whole and in order.
func TestEventFileRotation(t *testing.T) {
	const maxBytes, frames = 4096, 2000 // the smallest cap, and more lines (about 30 bytes each) than six files hold
	w := startWatch(t, "--threshold-ms", "5000", "--max-beat-rate", "0",
		"--export-file-max-bytes", strconv.Itoa(maxBytes))
	b := &beats{r: dialRaw(t, w.socket)}
	for range frames {
		b.beat()
	}
	if w.waitEvent(10*time.Second, kindPidNonce("beat", frames)) == nil {
		t.Fatalf("nonce %d never reached %s:\n%s", frames, w.events, w.logText())
	}
	if code := stopWatch(t, w); code != 0 {
		t.Fatalf("exit %d, want 0", code)
	}
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "events.tsv") {
			got = append(got, e.Name())
		}
	}
	want := []string{"events.tsv", "events.tsv.1", "events.tsv.2", "events.tsv.3", "events.tsv.4", "events.tsv.5"}
	if !slices.Equal(got, want) {
		t.Fatalf("event files %v, want %v", got, want)
	}
	var nonces []uint64 // oldest generation first
	for i := len(want) - 1; i >= 0; i-- {
		data, err := os.ReadFile(filepath.Join(w.dir, want[i]))
		if err != nil {
			t.Fatal(err)
		}
		if len(data) > maxBytes || len(data) == 0 {
			t.Errorf("%s is %d bytes, want 1 to %d", want[i], len(data), maxBytes)
		}
		for _, l := range strings.SplitAfter(string(data), "\n") {
			if l == "" {
				continue
			}
			c := strings.Split(strings.TrimSuffix(l, "\n"), "\t")
			if !strings.HasSuffix(l, "\n") || len(c) != 6 || c[1] != "beat" {
				t.Fatalf("%s: bad line %q", want[i], l)
			}
			n, _ := strconv.ParseUint(c[3], 10, 64)
			nonces = append(nonces, n)
		}
	}
	for i, n := range nonces {
		if want := nonces[len(nonces)-1] - uint64(len(nonces)-1-i); n != want {
			t.Fatalf("kept nonces %v are not a gap-free run ending at %d", nonces, frames)
		}
	}
	if nonces[len(nonces)-1] != frames || nonces[0] == 1 {
		t.Errorf("kept nonces %d..%d, want a run ending at %d without the oldest lines", nonces[0], nonces[len(nonces)-1], frames)
	}
}

// TestNotify: with $NOTIFY_SOCKET set (a path, or an abstract @name) the
// observer says READY=1 once its socket is bound, and STOPPING=1 on SIGTERM.
func TestNotify(t *testing.T) {
	for _, name := range []string{"path", "abstract"} {
		t.Run(name, func(t *testing.T) {
			addr := filepath.Join(t.TempDir(), "notify.sock")
			if name == "abstract" {
				addr = "@varta-test-notify-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
			}
			l, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: addr, Net: "unixgram"})
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			t.Setenv("NOTIFY_SOCKET", addr)
			w := newWatcher(t, t.TempDir())
			w.launch(w.baseArgs("--threshold-ms", "5000"))
			if msg := readNotify(t, l, w, "READY=1"); msg != "READY=1" {
				t.Fatalf("first notification %q, want READY=1", msg)
			}
			socketIno(t, w.socket) // bound before READY=1
			mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
			w.signal(syscall.SIGTERM)
			if msg := readNotify(t, l, w, "STOPPING=1"); msg != "STOPPING=1" {
				t.Fatalf("notification after SIGTERM %q, want STOPPING=1", msg)
			}
			if code := w.wait(20 * time.Second); code != 0 {
				t.Errorf("exit %d, want 0:\n%s", code, w.logText())
			}
		})
	}
}

// readNotify returns the first notification other than WATCHDOG=1 within
// a deadline, so a test sees READY before STOPPING or fails.
func readNotify(t *testing.T, l *net.UnixConn, w *watcher, want string) string {
	t.Helper()
	buf := make([]byte, 4096)
	l.SetReadDeadline(time.Now().Add(15 * time.Second))
	for {
		n, _, err := l.ReadFromUnix(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v\n%s", want, err, w.logText())
		}
		if msg := string(buf[:n]); msg != "WATCHDOG=1" {
			return msg
		}
	}
}

// TestBadUsage: every bad flag, value or combination exits 2 with one line
// on stderr that names the flag and points at --help.
func TestBadUsage(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "obs.sock")
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := func(extra ...string) []string {
		return append([]string{"--socket", sock, "--threshold-ms", "100"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want []string // substrings of the one line
	}{
		{"unknown flag", base("--bogus", "1"), []string{"--bogus"}},
		{"unknown flag equals form", base("--bogus=1"), []string{"--bogus"}},
		{"threshold below 10", []string{"--socket", sock, "--threshold-ms", "5"}, []string{"--threshold-ms", "from 10 to", `"5"`}},
		{"threshold below 10 equals form", []string{"--socket=" + sock, "--threshold-ms=5"}, []string{"--threshold-ms", "from 10 to", `"5"`}},
		{"threshold not a number", []string{"--socket", sock, "--threshold-ms", "1s"}, []string{"--threshold-ms", `"1s"`}},
		{"missing socket", []string{"--threshold-ms", "100"}, []string{"--socket", "required"}},
		{"missing threshold", []string{"--socket", sock}, []string{"--threshold-ms", "required"}},
		{"abstract socket", []string{"--socket", "@varta", "--threshold-ms", "100"}, []string{"--socket", "abstract", "filesystem path"}},
		{"socket mode not octal", base("--socket-mode", "0999"), []string{"--socket-mode", `"0999"`}},
		{"socket mode word", base("--socket-mode=rw"), []string{"--socket-mode", `"rw"`}},
		{"socket mode too wide", base("--socket-mode", "04755"), []string{"--socket-mode"}},
		{"bad policy", base("--tracker-eviction-policy", "lru"), []string{"--tracker-eviction-policy", `"lru"`}},
		{"capacity 0", base("--tracker-capacity", "0"), []string{"--tracker-capacity"}},
		{"capacity too large", base("--tracker-capacity=65537"), []string{"--tracker-capacity"}},
		{"removed recovery-cmd", base("--recovery-cmd", "reboot"), []string{"--recovery-cmd", "--recovery-exec"}},
		{"removed recovery-cmd equals form", base("--recovery-cmd=reboot"), []string{"--recovery-cmd", "--recovery-exec"}},
		{"removed recovery-cmd-file", base("--recovery-cmd-file", token), []string{"--recovery-cmd-file", "--recovery-exec-file"}},
		{"removed key-env", base("--key-env", "K"), []string{"--key-env", "--key-file"}},
		{"exec and exec-file", base("--recovery-exec", "/bin/true", "--recovery-exec-file", token),
			[]string{"--recovery-exec-file", "--recovery-exec"}},
		{"token without prom-addr", base("--prom-token-file", token), []string{"--prom-token-file", "--prom-addr"}},
		{"prom-addr any without token", base("--prom-addr", "0.0.0.0:9100"), []string{"--prom-addr", "0.0.0.0:9100", "--prom-token-file"}},
		{"prom-addr ipv6 any without token", base("--prom-addr=[::]:9100"), []string{"--prom-addr", "--prom-token-file"}},
		{"prom-addr lan without token", base("--prom-addr", "192.0.2.7:9100"), []string{"--prom-addr", "--prom-token-file"}},
		{"prom-addr host name", base("--prom-addr", "example.com:9100"), []string{"--prom-addr", "IP:PORT", "example.com:9100"}},
		{"prom-addr without port", base("--prom-addr", "127.0.0.1"), []string{"--prom-addr", "IP:PORT"}},
		{"prom-addr bad port", base("--prom-addr", "127.0.0.1:99999"), []string{"--prom-addr", "IP:PORT"}},
		{"recovery option without command", base("--recovery-timeout-ms", "500"), []string{"--recovery-timeout-ms", "--recovery-exec"}},
		{"recovery env without command", base("--recovery-env", "K=V"), []string{"--recovery-env", "--recovery-exec"}},
		{"capacity not a number", base("--tracker-capacity", "x"), []string{"--tracker-capacity", "whole number", `"x"`}},
		{"negative global rate", base("--global-beat-rate", "-1"), []string{"--global-beat-rate", "out of range", "from 0 to"}},
		{"negative global burst", base("--global-beat-burst", "-1"), []string{"--global-beat-burst", "out of range", "from 0 to"}},
		{"rotation without export file", base("--export-file-max-bytes", "10"), []string{"--export-file-max-bytes", "--export-file"}},
		{"rotation of stdout", base("--export-file", "-", "--export-file-max-bytes", "10"), []string{"--export-file-max-bytes", "standard output"}},
		{"prom-addr ipv6 zone", base("--prom-addr", "[fe80::1%lo]:9100", "--prom-token-file", token), []string{"--prom-addr", "zones"}},
		{"bad allow-uid", base("--allow-uid", "root"), []string{"--allow-uid", `"root"`}},
		{"bad clock", base("--clock-source", "realtime"), []string{"--clock-source", `"realtime"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			expectUsageError(t, tc.args, tc.want)
			if _, err := os.Lstat(sock); !os.IsNotExist(err) {
				t.Errorf("a usage error left something at the socket path: %v", err)
			}
		})
	}
}

// TestFlagForms: `--flag value` and `--flag=value` both work, mixed in one
// command line; a non-loopback --prom-addr with a token file is accepted.
func TestFlagForms(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(t, dir)
	w.startArgs([]string{"--socket=" + w.socket, "--export-file", w.events, "--threshold-ms=123",
		"--tracker-capacity", "7", "--socket-mode=0640", "--prom-addr=0.0.0.0:0", "--prom-token-file", token})
	line := w.waitLog(`msg="listening"`, time.Second)
	for _, want := range []string{"threshold_ms=123", "capacity=7"} {
		if !strings.Contains(line, want) {
			t.Errorf("listening line %q lacks %s", line, want)
		}
	}
	var st unix.Stat_t
	if err := unix.Lstat(w.socket, &st); err != nil || st.Mode&0o777 != 0o640 {
		t.Errorf("socket mode %o (%v), want 640", st.Mode&0o777, err)
	}
	if w.metrics == "" {
		t.Errorf("no metrics listener:\n%s", w.logText())
	}
	if code := stopWatch(t, w); code != 0 {
		t.Errorf("exit %d, want 0", code)
	}
}

// TestHelpAndVersion: help goes to stdout with exit 0; --version names the
// version, the commit and the platform.
func TestHelpAndVersion(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "-help"} {
		code, stdout, stderr := runWatch(t, arg)
		if code != 0 || stderr != "" || !strings.HasPrefix(stdout, "usage: varta-watch --socket PATH --threshold-ms MS") {
			t.Errorf("%s: exit %d, stderr %q, stdout starts %q; want 0, nothing, the usage", arg, code, stderr, firstLine(stdout))
		}
		for _, flag := range []string{"--socket-mode", "--tracker-eviction-policy", "--prom-token-file", "--export-file-max-bytes"} {
			if !strings.Contains(stdout, flag) {
				t.Errorf("%s: help does not mention %s", arg, flag)
			}
		}
	}
	code, stdout, stderr := runWatch(t, "--version")
	if code != 0 || stderr != "" {
		t.Errorf("--version: exit %d, stderr %q; want 0 and nothing", code, stderr)
	}
	oneLine(t, "--version output", stdout)
	for _, want := range []string{"varta-watch " + version, "commit ", runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(stdout, want) {
			t.Errorf("--version = %q, want it to contain %q", stdout, want)
		}
	}
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
