package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
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

func TestMain(m *testing.M) {
	if os.Getenv(helperAgentEnv) == "" && os.Getenv(notifyAgentEnv) == "" { // not a storm or notify agent, which run no command
		testbin.Prebuild("github.com/varta-go/varta/cmd/varta-watch", "github.com/varta-go/varta/cmd/varta-beat")
	}
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func watchBin(t testing.TB) string {
	return testbin.Build(t, "github.com/varta-go/varta/cmd/varta-watch")
}
func beatBin(t testing.TB) string {
	return testbin.Build(t, "github.com/varta-go/varta/cmd/varta-beat")
}

// watcher is a running varta-watch process.
type watcher struct {
	t       testing.TB
	cmd     *exec.Cmd
	dir     string
	socket  string
	events  string
	metrics string   // host:port once --prom-addr is given
	env     []string // the observer's whole environment; nil: the test's own
	stdout  *os.File // the observer's standard output; nil: /dev/null
	mu      sync.Mutex
	log     strings.Builder
	lines   chan string
	exited  chan struct{}
	err     error
}

// startWatch runs varta-watch with a socket and an event file in a fresh
// directory plus extra flags, and waits until it is listening.
func startWatch(t testing.TB, extra ...string) *watcher {
	t.Helper()
	return startWatchIn(t, t.TempDir(), extra...)
}

// startWatchIn is startWatch with the socket and event file in dir.
func startWatchIn(t testing.TB, dir string, extra ...string) *watcher {
	t.Helper()
	w := newWatcher(t, dir)
	w.startArgs(w.baseArgs(extra...))
	return w
}

func newWatcher(t testing.TB, dir string) *watcher {
	return &watcher{t: t, dir: dir, socket: filepath.Join(dir, "obs.sock"),
		events: filepath.Join(dir, "events.tsv"), lines: make(chan string, 1024), exited: make(chan struct{})}
}

// baseArgs is the command line every started observer shares.
func (w *watcher) baseArgs(extra ...string) []string {
	return append([]string{"--socket", w.socket, "--export-file", w.events}, extra...)
}

var metricsAddr = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)

// launch starts varta-watch without waiting for it to listen; files become
// its fds 3, 4, ... (inherited without close-on-exec).
func (w *watcher) launch(args []string, files ...*os.File) {
	t := w.t
	t.Helper()
	if slices.Contains(args, "--prom-addr") && !slices.Contains(args, "--prom-rate-limit-per-sec") {
		// Tests poll /metrics every few ms, far above any scraper's rate:
		// the per-source-IP limit (default 5/s) is off unless a test sets it.
		args = append(args[:len(args):len(args)], "--prom-rate-limit-per-sec", "0")
	}
	w.cmd = testbin.Command(watchBin(t), args...)
	if w.env != nil {
		w.cmd.Env = w.env
	}
	w.cmd.ExtraFiles = files
	w.cmd.Stdout = w.stdout
	stderr, err := w.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go w.readLog(stderr)
	t.Cleanup(w.kill)
}

// startArgs launches varta-watch and waits until it is listening.
func (w *watcher) startArgs(args []string, files ...*os.File) {
	t := w.t
	t.Helper()
	w.launch(args, files...)
	if w.waitLog(`msg="listening"`, 10*time.Second) == "" {
		t.Fatalf("varta-watch did not start:\n%s", w.logText())
	}
	if m := metricsAddr.FindStringSubmatch(w.logText()); m != nil {
		w.metrics = m[1]
	}
}

func (w *watcher) readLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		w.mu.Lock()
		w.log.WriteString(sc.Text() + "\n")
		w.mu.Unlock()
		select {
		case w.lines <- sc.Text():
		default:
		}
	}
	w.err = w.cmd.Wait()
	close(w.exited)
}

func (w *watcher) logText() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// waitLog waits for a log line matching pattern (a regexp), returning it.
func (w *watcher) waitLog(pattern string, d time.Duration) string {
	re := regexp.MustCompile(pattern)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, l := range strings.Split(w.logText(), "\n") {
			if re.MatchString(l) {
				return l
			}
		}
		select {
		case <-w.exited:
			return ""
		case <-time.After(10 * time.Millisecond):
		}
	}
	return ""
}

func (w *watcher) signal(sig syscall.Signal) { w.cmd.Process.Signal(sig) }

// wait waits for the process to exit and returns its exit code.
func (w *watcher) wait(d time.Duration) int {
	w.t.Helper()
	select {
	case <-w.exited:
	case <-time.After(d):
		w.t.Fatalf("varta-watch did not exit within %v:\n%s", d, w.logText())
	}
	if ee, ok := w.err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	return 0
}

func (w *watcher) kill() {
	select {
	case <-w.exited:
	default:
		w.cmd.Process.Kill()
		<-w.exited
	}
}

// eventLines returns the event file's lines split into columns.
func (w *watcher) eventLines() [][]string {
	b, _ := os.ReadFile(w.events)
	var out [][]string
	for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if l != "" {
			out = append(out, strings.Split(l, "\t"))
		}
	}
	return out
}

// waitEvent waits until an event line satisfies match.
func (w *watcher) waitEvent(d time.Duration, match func(cols []string) bool) []string {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, cols := range w.eventLines() {
			if match(cols) {
				return cols
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// waitFor polls cond until it holds, failing the test with what after d:
// the replacement for a sleep before an assertion, which under load is
// either too short (a flake) or, on a quiet machine, longer than needed.
func waitFor(t testing.TB, d time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func kindPid(kind string, pid int) func([]string) bool {
	return func(c []string) bool { return len(c) == 6 && c[1] == kind && c[2] == strconv.Itoa(pid) }
}

// scrape fetches /metrics and returns the sample lines as name{labels} -> value.
func (w *watcher) scrape() map[string]float64 {
	w.t.Helper()
	if w.metrics == "" {
		w.t.Fatal("observer runs without --prom-addr")
	}
	resp, err := http.Get("http://" + w.metrics + "/metrics")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, _ := strconv.ParseFloat(l[i+1:], 64)
		out[l[:i]] = v
	}
	return out
}

// waitMetric waits until the sample key reaches at least want.
func (w *watcher) waitMetric(key string, want float64, d time.Duration) float64 {
	w.t.Helper()
	deadline := time.Now().Add(d)
	var got float64
	for time.Now().Before(deadline) {
		if got = w.scrape()[key]; got >= want {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
	return got
}

// rawSender sends arbitrary datagrams from this test process (whose pid
// the kernel reports), for crafted frames the emitter never produces.
type rawSender struct {
	t  testing.TB
	fd int
}

func dialRaw(t testing.TB, path string) *rawSender {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	// A large send buffer: 65535-byte datagrams must not fail locally.
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<20)
	t.Cleanup(func() { unix.Close(fd) })
	return &rawSender{t: t, fd: fd}
}

// send writes b, waiting while the observer's queue is full.
func (r *rawSender) send(b []byte) {
	r.t.Helper()
	for i := 0; ; i++ {
		_, err := unix.Write(r.fd, b)
		if err == nil {
			return
		}
		if err != unix.EAGAIN || i > 1000 {
			r.t.Fatalf("send %d bytes: %v", len(b), err)
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *rawSender) frame(f vlp.Frame) { r.send(vlp.Append(nil, f)) }

func ourPid() uint32 { return uint32(os.Getpid()) }
