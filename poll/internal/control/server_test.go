package control

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/testutil"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/wait"
	"github.com/varta-go/varta/vlp"
)

// fixture is a tracker of n UDP-origin agents (pids 1000, 1003, ...,
// inserted in a scrambled order) and a Server listening in a temp dir.
type fixture struct {
	t   *testing.T
	tr  *track.Tracker
	s   *Server
	now int64
	log bytes.Buffer
}

func newFixture(t *testing.T, n int) *fixture { return newFixtureTB(t, t, n) }

// newFixtureTB is newFixture for a benchmark too (tb fails and cleans up).
func newFixtureTB(tb testing.TB, t *testing.T, n int) *fixture {
	tb.Helper()
	f := &fixture{t: t, now: int64(time.Hour)}
	f.tr = track.NewTracker(track.TrackerConfig{Capacity: max(n, 1), Threshold: int64(time.Second)})
	for i := range n {
		pid := uint32(1000 + 3*((i*7919)%n)) // every pid once, not in order
		ob := f.tr.Observe(vlp.Frame{Pid: pid, Nonce: 1, Status: vlp.Status(i % 3)}, track.OriginUDP, f.now)
		if !ob.Verdict.Accepted() {
			tb.Fatalf("pid %d not tracked: %v", pid, ob.Verdict)
		}
		f.tr.Get(ob.ID).SetName([]byte("agent" + strconv.Itoa(int(pid))))
	}
	f.s = &Server{}
	path := filepath.Join(tb.TempDir(), "ctl")
	if err := f.s.Listen(Config{Path: path, Tracker: f.tr, Clock: func() int64 { return f.now }, Start: 0,
		Version: "test", Log: sink.NewLogger(&f.log)}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(f.s.Close)
	return f
}

// recorder is a wait.Waiter that only records what is registered: the
// tests call Ready on every registered fd themselves (the server copes
// with an fd that is not ready: EAGAIN).
type recorder struct{ fds []reg }

type reg struct {
	fd  int
	h   wait.Handler
	arg int32
}

func (r *recorder) Reset() { r.fds = r.fds[:0] }
func (r *recorder) Add(fd int, _ int16, _ uint32, h wait.Handler, arg int32) {
	r.fds = append(r.fds, reg{fd, h, arg})
}
func (r *recorder) Run(wait.Body) error { return nil }
func (r *recorder) Dispatch(int64)      {}
func (r *recorder) Wakes() uint64       { return 0 }
func (r *recorder) Close()              {}

// pump runs one pass of the loop's part: register, then every handler.
func (f *fixture) pump() {
	var r recorder
	f.s.Register(&r, f.now)
	for _, x := range r.fds {
		x.h.Ready(x.arg, wait.In|wait.Out, f.now)
	}
}

// ask sends req from a client socket and pumps the server until the
// client has read the whole response (the server closed), in another
// goroutine, so a response larger than the socket buffers streams.
func (f *fixture) ask(req string) string {
	f.t.Helper()
	fd := f.dial()
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte(req+"\n")); err != nil {
		f.t.Fatal(err)
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(os.NewFile(uintptr(dupFd(f.t, fd)), "client"))
		got <- b
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case b := <-got:
			return string(b)
		default:
		}
		if time.Now().After(deadline) {
			f.t.Fatal("no complete response within 10 s")
		}
		f.pump()
		time.Sleep(50 * time.Microsecond)
	}
}

func (f *fixture) dial() int {
	f.t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: f.s.cfg.Path}); err != nil {
		f.t.Fatal(err)
	}
	return fd
}

func dupFd(t *testing.T, fd int) int {
	d, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestStatusStreamsInPidOrder: a status of 5000 agents, far more than a
// connection's buffer holds, arrives whole: a header, every agent once in
// increasing pid order with its name and state, and a summary that counts
// them; the connection's buffer never grew.
func TestStatusStreamsInPidOrder(t *testing.T) {
	const n = 5000
	f := newFixture(t, n)
	out := f.ask("status")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != n+2 || lines[0] != strings.TrimSuffix(textHeader, "\n") {
		t.Fatalf("%d lines (want %d), first %q", len(lines), n+2, lines[0])
	}
	for i, l := range lines[1 : n+1] {
		cols := strings.Fields(l)
		pid := 1000 + 3*i
		if len(cols) != 13 || cols[0] != strconv.Itoa(pid) || cols[1] != "agent"+strconv.Itoa(pid) || cols[2] != "udp" {
			t.Fatalf("row %d = %q, want pid %d named agent%d", i, l, pid, pid)
		}
		if st := cols[3]; st != "ok" && st != "degraded" && st != "critical" {
			t.Fatalf("row %q: state %q", l, st)
		}
	}
	if want := "varta-watch test up 3600.0s: 5000 agents (0 paused) of 5000, 0 recovery children running"; lines[n+1] != want {
		t.Fatalf("summary %q, want %q", lines[n+1], want)
	}
	for i := range f.s.conns {
		if c := cap(f.s.conns[i].out); c != OutCap {
			t.Fatalf("connection buffer grew to %d bytes, want %d", c, OutCap)
		}
	}
	if f.s.c.Requests[reqStatus] != 1 {
		t.Fatalf("status requests counted %d, want 1", f.s.c.Requests[reqStatus])
	}
}

// TestStatusJSON: status json parses with encoding/json, names with
// quotes, control bytes and a byte that is not UTF-8 included.
func TestStatusJSON(t *testing.T) {
	f := newFixture(t, 3)
	f.tr.Lookup(1000).SetName([]byte("a\"b\\c\n\xff"))
	f.tr.Lookup(1003).Paused = true
	var got struct {
		Agents []struct {
			Pid          uint32  `json:"pid"`
			Name         string  `json:"name"`
			Origin       string  `json:"origin"`
			State        string  `json:"state"`
			LastBeat     float64 `json:"last_beat_seconds"`
			Beats        uint64  `json:"beats"`
			Paused       bool    `json:"paused"`
			LastRecovery *string `json:"last_recovery"`
		} `json:"agents"`
		Version         string `json:"version"`
		AgentCount      int    `json:"agent_count"`
		PausedCount     int    `json:"paused_count"`
		Capacity        int    `json:"capacity"`
		RecoveryRunning int    `json:"recovery_running"`
	}
	out := f.ask("status json")
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("status json does not parse: %v\n%s", err, out)
	}
	if len(got.Agents) != 3 || got.AgentCount != 3 || got.PausedCount != 1 || got.Capacity != 3 || got.Version != "test" {
		t.Fatalf("got %+v", got)
	}
	a := got.Agents[0]
	if a.Pid != 1000 || a.Name != "a\"b\\c\n\uFFFD" || a.Origin != "udp" || a.Beats != 1 || a.LastRecovery != nil {
		t.Fatalf("first agent %+v", a)
	}
	if !got.Agents[1].Paused || got.Agents[0].Paused {
		t.Fatalf("paused flags %v %v, want only pid 1003 paused", got.Agents[0].Paused, got.Agents[1].Paused)
	}
}

// TestRenderAllocatesNothingPerAgent: rendering a whole status response,
// text or JSON, allocates the same (nothing) for 4000 agents as for 4.
func TestRenderAllocatesNothingPerAgent(t *testing.T) {
	for _, resp := range []respKind{respText, respJSON} {
		var per [2]float64
		for k, n := range []int{4, 4000} {
			f := newFixture(t, n)
			c := &conn{out: make([]byte, 0, OutCap)}
			per[k] = testing.AllocsPerRun(5, func() {
				f.s.snap = f.tr.AppendSortedPids(f.s.snap[:0]) // as a request does
				*c = conn{out: c.out[:0], resp: resp}
				for !c.done {
					c.out = c.out[:0]
					f.s.fill(c, f.now)
				}
			})
			if c.rows != n {
				t.Fatalf("rendered %d rows, want %d", c.rows, n)
			}
		}
		if per[0] != 0 || per[1] != 0 {
			t.Fatalf("response kind %d: %v allocations for 4 agents, %v for 4000; want 0", resp, per[0], per[1])
		}
	}
}

// TestSlowReaderCutOff: a client that asks for a status too large for
// the socket buffers and never reads gets its connection closed at the
// deadline; until then every pass returns at once (the socket is full)
// and the other slots still serve.
func TestSlowReaderCutOff(t *testing.T) {
	f := newFixture(t, 30000)
	slow := f.dial()
	defer unix.Close(slow)
	unix.Write(slow, []byte("status\n"))
	for range 50 {
		start := time.Now()
		f.pump()
		if d := time.Since(start); d > 200*time.Millisecond && !testutil.Emulated() && !testutil.RaceEnabled {
			t.Fatalf("one pass took %v with a reader that does not read", d)
		}
	}
	if out := f.ask("pause 1000"); !strings.HasPrefix(out, "ok: paused 1 of 1") {
		t.Fatalf("another client while the slow one waits: %q", out)
	}
	f.now += int64(Timeout)
	f.pump()
	if f.s.c.Expired != 1 || f.s.conns[0].phase != free {
		t.Fatalf("expired %d, want 1 and the slot free", f.s.c.Expired)
	}
	// A Unix stream socket has no reset: the client reads what was queued,
	// then end of stream, and the summary line that ends a complete
	// response is missing (the client command reports that).
	b, err := io.ReadAll(os.NewFile(uintptr(dupFd(t, slow)), "slow"))
	if err != nil || len(b) == 0 || bytes.Contains(b, []byte("recovery children running")) {
		t.Fatalf("cut-off response: %d bytes, err %v, summary present: %v", len(b), err,
			bytes.Contains(b, []byte("recovery children running")))
	}
}

// TestPauseResume: pause by pid and by name marks the agents paused
// (held says so), an unknown one is an error, resume clears it, and each
// is counted and logged.
func TestPauseResume(t *testing.T) {
	f := newFixture(t, 4)
	f.tr.Lookup(1003).SetName([]byte("agent1000")) // two agents of that name
	for _, c := range []struct{ req, want string }{
		{"pause 1006", "ok: paused 1 of 1 agents matching \"1006\"\n"},
		{"pause agent1000", "ok: paused 2 of 2 agents matching \"agent1000\"\n"},
		{"pause 1006", "ok: paused 0 of 1 agents matching \"1006\" (the others were paused already)\n"},
		{"pause 4242", "error: no tracked agent is \"4242\" (a pid, or a name as varta-watch status shows it)\n"},
		{"pause a-name-longer-than-15", "error: \"a-name-longer-than-15\" is neither a pid nor a process name (at most 15 bytes, as status shows it)\n"},
		{"frobnicate", "error: unknown request \"frobnicate\"; want status, status json, pause NAME|PID or resume NAME|PID\n"},
	} {
		if got := f.ask(c.req); got != c.want {
			t.Errorf("%s: %q, want %q", c.req, got, c.want)
		}
	}
	for pid, want := range map[int32]bool{1000: true, 1003: true, 1006: true, 1009: false} {
		if f.s.held(pid) != want {
			t.Errorf("held(%d) = %v, want %v", pid, !want, want)
		}
	}
	if got := f.ask("resume agent1000"); got != "ok: resumed 2 of 2 agents matching \"agent1000\"\n" {
		t.Errorf("resume: %q", got)
	}
	if f.s.held(1000) || !f.s.held(1006) {
		t.Error("resume by name did not clear exactly those agents")
	}
	if f.s.c.Paused != 3 || f.s.c.Resumed != 2 || f.s.c.Requests[reqBad] != 1 {
		t.Errorf("counts %+v, want 3 paused, 2 resumed, 1 bad request", f.s.c)
	}
	if n := strings.Count(f.log.String(), "through the control socket"); n != 4 {
		t.Errorf("%d pause/resume log lines, want 4 (one per request that matched):\n%s", n, f.log.String())
	}
}

// TestSocketModeAndStale: the socket file is created 0600 even under a
// permissive umask, a second server on the same path is refused while the
// first listens, and a stale socket file is replaced.
func TestSocketModeAndStale(t *testing.T) {
	f := newFixture(t, 1)
	dir := t.TempDir()
	old := unix.Umask(0)
	loose := &Server{}
	err := loose.Listen(Config{Path: filepath.Join(dir, "ctl"), Tracker: f.tr, Log: sink.NewLogger(io.Discard)})
	unix.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(loose.cfg.Path, &st); err != nil || st.Mode&0o777 != Mode {
		t.Fatalf("socket mode %o (%v) under umask 0, want %o", st.Mode&0o777, err, Mode)
	}
	loose.Close()
	second := &Server{}
	err = second.Listen(Config{Path: f.s.cfg.Path, Tracker: f.tr, Log: sink.NewLogger(io.Discard)})
	if err == nil || !strings.Contains(err.Error(), "another observer serves it") {
		t.Fatalf("second Listen on a live socket: %v", err)
	}
	// A stale file: bound, never listened on, its fd closed.
	stale := filepath.Join(t.TempDir(), "stale")
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: stale}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	third := &Server{}
	if err := third.Listen(Config{Path: stale, Tracker: f.tr, Log: sink.NewLogger(io.Discard)}); err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	third.Close()
	if _, err := os.Lstat(stale); !os.IsNotExist(err) {
		t.Fatalf("Close left the socket file: %v", err)
	}
}

// clientEnv makes the test binary a control client (see TestMain).
const clientEnv = "VARTA_CONTROL_TEST_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(clientEnv); path != "" {
		os.Exit(runClient(path))
	}
	os.Exit(m.Run())
}

// runClient asks path for a status and prints the answer.
func runClient(path string) int {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
	}
	if err != nil {
		os.Stdout.WriteString("connect: " + err.Error() + "\n")
		return 1
	}
	unix.Write(fd, []byte("status\n"))
	b, _ := io.ReadAll(os.NewFile(uintptr(fd), "ctl"))
	os.Stdout.Write(b)
	return 0
}

// TestOtherUidRefused: a client of another uid that gets past the file
// mode (here the socket is opened to everyone on purpose) is refused by
// the SO_PEERCRED check, counted and logged; root and the observer's uid
// are served. Needs root, to run the client as nobody.
func TestOtherUidRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another uid")
	}
	f := newFixture(t, 2)
	// Open the way to nobody: the socket file, its directories, and a
	// copy of this test binary it may execute.
	if err := os.Chmod(f.s.cfg.Path, 0o777); err != nil {
		t.Fatal(err)
	}
	for d := filepath.Dir(f.s.cfg.Path); d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	bin := filepath.Join(filepath.Dir(f.s.cfg.Path), "client")
	self, err := os.ReadFile(os.Args[0])
	if err == nil {
		err = os.WriteFile(bin, self, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	argv := append(testutil.SelfArgv(), "-test.run=^$")
	argv[len(argv)-2] = bin
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), clientEnv+"="+f.s.cfg.Path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { done <- cmd.Wait() }()
	for waiting := true; waiting; {
		select {
		case <-done:
			waiting = false
		case <-time.After(time.Millisecond):
			f.pump()
		}
	}
	if got := out.String(); got != "error: only uid 0 and root may use the control socket\n" {
		t.Fatalf("another uid's client got %q", got)
	}
	if f.s.c.Denied != 1 || !strings.Contains(f.log.String(), "refused a control socket client of another user") {
		t.Fatalf("denied %d; log:\n%s", f.s.c.Denied, f.log.String())
	}
	if out := f.ask("status"); !strings.Contains(out, "2 agents") {
		t.Fatalf("root's own status: %q", out)
	}
}

// TestBusyRefused: with every slot taken (clients that connected and sent
// nothing yet), one more is told so and counted, and served again once a
// slot frees.
func TestBusyRefused(t *testing.T) {
	f := newFixture(t, 1)
	var idle []int
	for range MaxConns {
		idle = append(idle, f.dial())
	}
	f.pump()
	if got := f.ask("status"); got != "error: busy, 4 clients are being served; retry\n" {
		t.Fatalf("a fifth client got %q", got)
	}
	if f.s.c.Busy != 1 {
		t.Fatalf("busy %d, want 1", f.s.c.Busy)
	}
	unix.Close(idle[0])
	f.pump() // reads end of stream: the slot is free
	if got := f.ask("status"); !strings.Contains(got, "1 agents") {
		t.Fatalf("after a slot freed: %q", got)
	}
	for _, fd := range idle[1:] {
		unix.Close(fd)
	}
}

// TestAcceptPausesWithoutFds: when accept(2) fails for want of a
// descriptor, the listener leaves the wait for acceptPause (the queued
// connection would keep it readable and spin the loop), the failure is
// counted, the deadline wakes the loop at the pause's end, and then the
// connection is taken.
func TestAcceptPausesWithoutFds(t *testing.T) {
	f := newFixture(t, 1)
	cfd := f.dial()
	defer unix.Close(cfd)
	var orig unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	spare, err := unix.Dup(cfd)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(spare)
	low := orig
	low.Cur = uint64(spare) // the lowest free fd number: no new fd fits
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	f.s.accept(f.now)
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &orig); err != nil {
		t.Fatal(err)
	}
	if f.s.c.NoFds != 1 || f.s.conns[0].phase != free {
		t.Fatalf("accept without a free fd: %d failures counted, slot %v", f.s.c.NoFds, f.s.conns[0].phase)
	}
	var r recorder
	f.s.Register(&r, f.now+acceptPause-1)
	if len(r.fds) != 0 {
		t.Fatalf("listener registered during the pause: %+v", r.fds)
	}
	if d := f.s.Deadline(f.now + int64(time.Hour)); d != f.now+acceptPause {
		t.Fatalf("deadline %d, want the pause's end %d", d, f.now+acceptPause)
	}
	f.now += acceptPause
	f.pump()
	if f.s.conns[0].phase != reading {
		t.Fatal("after the pause the queued connection was not taken")
	}
}

// BenchmarkStatusFill: a whole text status of the largest table, 65536
// agents, rendered a buffer at a time as the server does, the sort of
// the snapshot included; it reports the 99th percentile and the median
// of a single fill (what one buffer costs the loop).
func BenchmarkStatusFill(b *testing.B) {
	t := &testing.T{}
	f := newFixtureTB(b, t, 65536)
	c := &conn{out: make([]byte, 0, OutCap)}
	fills := make([]time.Duration, 0, 1<<20)
	b.ReportAllocs()
	for b.Loop() {
		f.s.snap = f.tr.AppendSortedPids(f.s.snap[:0]) // as a request does
		*c = conn{out: c.out[:0], resp: respText}
		for !c.done {
			c.out = c.out[:0]
			start := time.Now()
			f.s.fill(c, f.now)
			if len(fills) < cap(fills) {
				fills = append(fills, time.Since(start))
			}
		}
	}
	slices.Sort(fills)
	b.ReportMetric(float64(fills[len(fills)*99/100].Microseconds()), "p99-fill-µs")
	b.ReportMetric(float64(fills[len(fills)/2].Microseconds()), "median-fill-µs")
}
