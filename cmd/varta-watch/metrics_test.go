package main

// End-to-end tests of the metrics endpoint (cmd/varta-watch/README.md §7) against the
// real binary: HTTP answers and auth, the exposition's shape, per-pid
// rows, and that Prometheus's own tools accept the output and the operator
// rules in ./prometheus. metrics_abuse_test.go has the hostile clients.

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

const (
	promTestToken = "c0rrect-h0rse-battery"
	contentType   = "text/plain; version=0.0.4; charset=utf-8"
)

// emulated reports whether the binaries run under qemu-user, where
// everything is several times slower.
func emulated() bool { return os.Getenv("VARTA_TEST_EMULATOR") != "" }

// agentComm is the process name (comm) the observer reads for a varta-beat
// agent: under qemu-user the agent's process is the emulator, whose name
// the kernel keeps to 15 bytes ("qemu-aarch64-st").
func agentComm() string {
	name := "varta-beat"
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		name = filepath.Base(emu)
	}
	return name[:min(len(name), 15)]
}

// writeToken writes tok and a newline to a fresh 0600 file.
func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prom.token")
	if err := os.WriteFile(p, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// httpResult is one response as read off the wire.
type httpResult struct {
	status int
	header map[string]string // names lower-cased
	body   string
}

func httpRequest(method, path, token string) string {
	r := method + " " + path + " HTTP/1.1\r\nHost: varta-test\r\nUser-Agent: metrics_test\r\n"
	if token != "" {
		r += "Authorization: Bearer " + token + "\r\n"
	}
	return r + "\r\n"
}

// rawHTTP sends req unchanged and reads until the observer closes the
// connection (every response says Connection: close), checking the
// framing: status line, headers, and a body as long as Content-Length, or
// chunked and complete (a streamed /metrics), none for HEAD.
func rawHTTP(t testing.TB, addr, req string) httpResult {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatalf("write request: %v", err)
	}
	raw, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read response to %q: %v", requestLine(req), err)
	}
	top, body, ok := strings.Cut(string(raw), "\r\n\r\n")
	if !ok {
		t.Fatalf("response to %q has no end of header: %q", requestLine(req), raw)
	}
	lines := strings.Split(top, "\r\n")
	code, ok := strings.CutPrefix(lines[0], "HTTP/1.1 ")
	if !ok || len(code) < 3 {
		t.Fatalf("status line %q", lines[0])
	}
	r := httpResult{header: map[string]string{}, body: body}
	r.status, _ = strconv.Atoi(code[:3])
	for _, l := range lines[1:] {
		k, v, ok := strings.Cut(l, ": ")
		if !ok {
			t.Fatalf("header line %q", l)
		}
		r.header[strings.ToLower(k)] = v
	}
	head := strings.HasPrefix(req, "HEAD ")
	if r.header["transfer-encoding"] == "chunked" {
		if _, ok := r.header["content-length"]; ok {
			t.Errorf("both Content-Length and chunked in %q", top)
		}
		if !head {
			r.body = dechunk(t, body)
		} else if body != "" {
			t.Errorf("HEAD answered with a body: %q", body)
		}
		return r
	}
	n, err := strconv.Atoi(r.header["content-length"])
	if err != nil || !head && n != len(body) || head && body != "" {
		t.Errorf("Content-Length %q with a %d-byte body (HEAD %v)", r.header["content-length"], len(body), head)
	}
	return r
}

// dechunk undoes HTTP/1.1 chunked coding, strictly: every chunk's size
// line, data and CRLF, then the last chunk and nothing after it, so a body
// cut short fails.
func dechunk(t testing.TB, b string) string {
	t.Helper()
	var out strings.Builder
	for {
		line, rest, ok := strings.Cut(b, "\r\n")
		n, err := strconv.ParseUint(line, 16, 32)
		if !ok || err != nil || uint64(len(rest)) < n+2 || rest[n:n+2] != "\r\n" {
			t.Fatalf("bad chunk at %.40q (after %d body bytes)", b, out.Len())
		}
		if n == 0 {
			if rest != "\r\n" {
				t.Fatalf("after the last chunk: %.40q, want a CRLF alone", rest)
			}
			return out.String()
		}
		out.WriteString(rest[:n])
		b = rest[n+2:]
	}
}

// requestLine is the first line of a request, for messages.
func requestLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

// scrapeBody fetches /metrics, which must answer 200 with the exposition
// content type, and returns the body.
func scrapeBody(t testing.TB, addr, token string) string {
	t.Helper()
	r := rawHTTP(t, addr, httpRequest("GET", "/metrics", token))
	if r.status != 200 || r.header["content-type"] != contentType {
		t.Fatalf("GET /metrics: %d, Content-Type %q; want 200, %q", r.status, r.header["content-type"], contentType)
	}
	return r.body
}

// samples maps each sample's name{labels} to its value.
func samples(t testing.TB, body string) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, l := range strings.Split(body, "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		v, err := strconv.ParseFloat(l[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("sample line %q", l)
		}
		out[l[:i]] = v
	}
	return out
}

// familyTypes maps each family named by a TYPE line to its type.
func familyTypes(body string) map[string]string {
	out := map[string]string{}
	for _, l := range strings.Split(body, "\n") {
		if f := strings.Fields(l); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = f[3]
		}
	}
	return out
}

var pidFamilies = []string{"varta_beats_total", "varta_stalls_total", "varta_status", "varta_last_beat_age_seconds"}

// rowPids returns the pid label of family's rows in exposition order.
func rowPids(t testing.TB, body, family string) []int {
	t.Helper()
	prefix := family + `{pid="`
	var pids []int
	for _, l := range strings.Split(body, "\n") {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		end := strings.IndexByte(rest, '"')
		if end < 0 {
			t.Fatalf("%s row %q: unterminated label", family, l)
		}
		pid, err := strconv.Atoi(rest[:end])
		if err != nil || !strings.HasPrefix(rest[end:], `"} `) {
			t.Fatalf("%s row %q: want exactly one label, pid", family, l)
		}
		pids = append(pids, pid)
	}
	return pids
}

// checkPidRows checks that every per-pid family has one row per pid of
// want, in increasing numeric order.
func checkPidRows(t *testing.T, body string, want []int) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	want = slices.Compact(want)
	for _, fam := range pidFamilies {
		if got := rowPids(t, body, fam); !slices.Equal(got, want) {
			t.Errorf("%s rows for pids %v, want %v", fam, got, want)
		}
	}
}

// spawnAgents runs n one-shot varta-beat processes, a few at a time, and
// returns their pids: n kernel-attested agents, which the observer keeps
// tracking (stalled, their process gone) after they exit.
func spawnAgents(t *testing.T, socket string, n int) []int {
	t.Helper()
	bin := beatBin(t)
	pids := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2*runtime.NumCPU())
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := testbin.Command(bin, "--socket", socket)
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = errors.New(err.Error() + ": " + string(out))
				return
			}
			pids[i] = cmd.Process.Pid
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("varta-beat: %v", err)
	}
	return pids
}

// waitSample scrapes until the sample key is at least want.
func waitSample(t *testing.T, addr, key string, want float64, d time.Duration) float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		got := samples(t, scrapeBody(t, addr, ""))[key]
		if got >= want || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMetricsHTTP: the responder's answers with and without a bearer
// token: 401 unless the token is right (for /healthz too: without it no
// path is told from another), 404, 405, HEAD, and exact content types.
func TestMetricsHTTP(t *testing.T) {
	locked := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0",
		"--prom-token-file", writeToken(t, promTestToken))
	open := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	const textPlain = "text/plain; charset=utf-8"
	tests := []struct {
		name                string
		w                   *watcher
		method, path, token string
		status              int
		header              map[string]string // exact values
		body                string            // prefix
	}{
		{"no token", locked, "GET", "/metrics", "", 401, map[string]string{"www-authenticate": "Bearer"}, "Unauthorized"},
		{"wrong token", locked, "GET", "/metrics", "c0rrect-h0rse-batterz", 401, nil, ""},
		{"token prefix", locked, "GET", "/metrics", "c0rrect", 401, nil, ""},
		{"token plus suffix", locked, "GET", "/metrics", promTestToken + "x", 401, nil, ""},
		{"right token", locked, "GET", "/metrics", promTestToken, 200,
			map[string]string{"content-type": contentType, "connection": "close"}, "# HELP varta_beats_total "},
		{"right token, query string", locked, "GET", "/metrics?debug=1", promTestToken, 200, map[string]string{"content-type": contentType}, "# HELP"},
		{"HEAD", locked, "HEAD", "/metrics", promTestToken, 200, map[string]string{"content-type": contentType}, ""},
		{"healthz without token", locked, "GET", "/healthz", "", 401, nil, ""},
		{"healthz", locked, "GET", "/healthz", promTestToken, 200, map[string]string{"content-type": textPlain}, "ok\n"},
		{"other path", locked, "GET", "/", promTestToken, 404, nil, "Not Found"},
		{"other path without token", locked, "GET", "/", "", 401, nil, ""},
		{"POST", locked, "POST", "/metrics", promTestToken, 405, map[string]string{"allow": "GET, HEAD"}, ""},
		{"open metrics", open, "GET", "/metrics", "", 200, map[string]string{"content-type": contentType}, "# HELP"},
		{"open metrics, any token", open, "GET", "/metrics", "whatever", 200, nil, "# HELP"},
		{"open healthz", open, "GET", "/healthz", "", 200, map[string]string{"content-type": textPlain}, "ok\n"},
		{"open trailing slash", open, "GET", "/metrics/", "", 404, nil, ""},
		{"open other path", open, "GET", "/favicon.ico", "", 404, nil, ""},
		{"open PUT", open, "PUT", "/metrics", "", 405, map[string]string{"allow": "GET, HEAD"}, ""},
		{"open POST healthz", open, "POST", "/healthz", "", 405, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rawHTTP(t, tt.w.metrics, httpRequest(tt.method, tt.path, tt.token))
			if r.status != tt.status {
				t.Errorf("%s %s = %d, want %d", tt.method, tt.path, r.status, tt.status)
			}
			for k, v := range tt.header {
				if r.header[k] != v {
					t.Errorf("%s %s: header %s = %q, want %q", tt.method, tt.path, k, r.header[k], v)
				}
			}
			if !strings.HasPrefix(r.body, tt.body) {
				t.Errorf("%s %s: body %.60q, want it to begin %q", tt.method, tt.path, r.body, tt.body)
			}
		})
	}
}

// TestMetricsTokenFileRefused: a token file others can read is a start-up
// failure naming the file, not a silently open endpoint.
func TestMetricsTokenFileRefused(t *testing.T) {
	tok := writeToken(t, promTestToken)
	if err := os.Chmod(tok, 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cmd := testbin.Command(watchBin(t), "--socket", filepath.Join(dir, "s"), "--threshold-ms", "100",
		"--prom-addr", "127.0.0.1:0", "--prom-token-file", tok)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !bytes.Contains(out, []byte(tok)) || bytes.Count(out, []byte("\n")) != 1 {
		t.Errorf("world-readable token file: %v, output %q; want exit 1 and one line naming the file", err, out)
	}
}

// TestMetricsFirstScrape: the very first scrape already has every family
// of cmd/varta-watch/README.md §7 with its type, every label value of every labelled
// family, and no later scrape shows a label value (pid rows aside) that
// the first did not.
func TestMetricsFirstScrape(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "100", "--prom-addr", "127.0.0.1:0")
	first := scrapeBody(t, w.metrics, "")

	types := familyTypes(first)
	for name, typ := range map[string]string{
		"varta_beats_total": "counter", "varta_stalls_total": "counter", "varta_status": "gauge",
		"varta_last_beat_age_seconds": "gauge", "varta_decode_errors_total": "counter",
		"varta_truncated_datagrams_total": "counter", "varta_frame_auth_failures_total": "counter",
		"varta_io_errors_total": "counter", "varta_rate_limited_total": "counter",
		"varta_nonce_wrap_total": "counter", "varta_tracker_capacity": "gauge",
		"varta_watch_pids_tracked": "gauge", "varta_tracker_capacity_exceeded_total": "counter",
		"varta_tracker_evicted_total": "counter", "varta_recovery_outcomes_total": "counter",
		"varta_recovery_duration_seconds": "histogram", "varta_observer_iteration_seconds": "histogram",
		"varta_watch_uptime_seconds": "gauge", "varta_watch_last_poll_loop_timestamp_seconds": "gauge",
		"varta_build_info": "gauge",
	} {
		if types[name] != typ {
			t.Errorf("first scrape: family %s has type %q, want %q", name, types[name], typ)
		}
	}

	m := samples(t, first)
	if len(vlp.DecodeErrors) != 8 {
		t.Fatalf("vlp.DecodeErrors has %d kinds, cmd/varta-watch/README.md §7 wants 8", len(vlp.DecodeErrors))
	}
	var zero []string
	for _, k := range vlp.DecodeErrors {
		zero = append(zero, `varta_decode_errors_total{kind="`+k.Label()+`"}`)
	}
	for _, r := range []string{"per_pid", "global"} {
		zero = append(zero, `varta_rate_limited_total{reason="`+r+`"}`)
	}
	for _, o := range recovery.UpstreamOutcomeLabels {
		zero = append(zero, `varta_recovery_outcomes_total{outcome="`+o+`"}`)
	}
	for _, o := range recovery.ExtraOutcomes {
		zero = append(zero, `varta_recovery_outcomes_extra_total{outcome="`+o.String()+`"}`)
	}
	zero = append(zero, `varta_recovery_duration_seconds_bucket{le="+Inf"}`, "varta_recovery_duration_seconds_count")
	for _, k := range zero {
		if v, ok := m[k]; !ok || v != 0 {
			t.Errorf("first scrape: %s = %v (present %v), want 0", k, v, ok)
		}
	}
	build := `varta_build_info{version="dev",goarch="` + runtime.GOARCH + `"}`
	if m[build] != 1 || m["varta_tracker_capacity"] != 256 {
		t.Errorf("first scrape: %s = %v, capacity %v; want 1 and 256", build, m[build], m["varta_tracker_capacity"])
	}

	// Traffic of every kind the loop counts by label: a beat and its
	// stall, a spoof, a malformed frame, beats over the per-pid rate.
	r := dialRaw(t, w.socket)
	for n := range uint64(200) {
		r.frame(vlp.Frame{Pid: ourPid(), Nonce: n + 1})
	}
	r.frame(vlp.Frame{Pid: uint32(os.Getppid()), Nonce: 1})
	r.send(make([]byte, vlp.Size))
	pid := int(ourPid())
	if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall:\n%s", w.logText())
	}
	later := samples(t, scrapeBody(t, w.metrics, ""))
	for k := range later {
		if _, ok := m[k]; !ok && !strings.Contains(k, `{pid="`) {
			t.Errorf("%s appeared after the first scrape", k)
		}
	}
	if later[`varta_rate_limited_total{reason="per_pid"}`] == 0 || later[`varta_decode_errors_total{kind="`+vlp.ErrBadMagic.Label()+`"}`] != 1 {
		t.Errorf("the traffic was not counted:\n%v", later)
	}
}

// TestMetricsPidRows: every per-pid family lists every tracked pid, sorted
// numerically; an evicted pid's rows leave every family. (Retirement of a
// recycled pid, which a test cannot provoke on demand, is covered in
// poll's TestRenderMetricsPids.)
func TestMetricsPidRows(t *testing.T) {
	t.Parallel() // waits out ten thresholds; judges events and metric rows only
	const threshold = 30 * time.Millisecond
	w := startWatch(t, "--threshold-ms", "30", "--tracker-capacity", "4", "--prom-addr", "127.0.0.1:0")
	agents := spawnAgents(t, w.socket, 4)
	for _, pid := range agents {
		if w.waitEvent(10*time.Second, kindPid("stall", pid)) == nil {
			t.Fatalf("no stall for agent %d:\n%s", pid, w.logText())
		}
	}
	body := scrapeBody(t, w.metrics, "")
	checkPidRows(t, body, agents)
	m := samples(t, body)
	for _, pid := range agents {
		if k := `varta_status{pid="` + strconv.Itoa(pid) + `"}`; m[k] != 3 {
			t.Errorf("%s = %v, want 3 (stalled)", k, m[k])
		}
	}

	// The table is full of stalled pids; once they have been silent ten
	// thresholds, a new agent evicts the one that stalled first.
	time.Sleep(12 * threshold)
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Pid: ourPid(), Nonce: 1})
	ev := w.waitEvent(10*time.Second, func(c []string) bool { return len(c) == 6 && c[1] == "eviction" })
	if ev == nil {
		t.Fatalf("no eviction event:\n%s", w.logText())
	}
	evicted, _ := strconv.Atoi(ev[2])
	if !slices.Contains(agents, evicted) {
		t.Fatalf("evicted pid %d is not one of the agents %v", evicted, agents)
	}
	if w.waitEvent(10*time.Second, kindPid("beat", int(ourPid()))) == nil {
		t.Fatal("no beat event for the newcomer")
	}
	body = scrapeBody(t, w.metrics, "")
	want := append(slices.DeleteFunc(slices.Clone(agents), func(p int) bool { return p == evicted }), int(ourPid()))
	checkPidRows(t, body, want)
	if m := samples(t, body); m["varta_tracker_evicted_total"] != 1 || m["varta_watch_pids_tracked"] != 4 {
		t.Errorf("evicted %v, tracked %v; want 1 and 4", m["varta_tracker_evicted_total"], m["varta_watch_pids_tracked"])
	}
}

// TestMetricsIPv6: --prom-addr takes a bracketed IPv6 address.
func TestMetricsIPv6(t *testing.T) {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	l.Close()
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "[::1]:0")
	if !strings.HasPrefix(w.metrics, "[::1]:") || strings.HasSuffix(w.metrics, ":0") {
		t.Fatalf("logged metrics address %q, want [::1]:PORT", w.metrics)
	}
	body := scrapeBody(t, w.metrics, "")
	if !strings.Contains(body, "# TYPE varta_build_info gauge\n") {
		t.Errorf("IPv6 scrape lacks varta_build_info:\n%s", body)
	}
}

// TestMetricsPromtool: Prometheus's own linter accepts a live scrape of
// an observer that has seen beats, stalls, spoofs and malformed frames.
func TestMetricsPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	w := startWatch(t, "--threshold-ms", "50", "--prom-addr", "127.0.0.1:0")
	agents := spawnAgents(t, w.socket, 3)
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Pid: ourPid(), Nonce: 1, Status: vlp.Degraded})
	r.frame(vlp.Frame{Pid: uint32(os.Getppid()), Nonce: 1})
	r.send(make([]byte, 7))
	r.send(make([]byte, vlp.Size))
	for _, pid := range append(agents, int(ourPid())) {
		if w.waitEvent(10*time.Second, kindPid("stall", pid)) == nil {
			t.Fatalf("no stall for %d:\n%s", pid, w.logText())
		}
	}
	body := scrapeBody(t, w.metrics, "")
	if lint := promtoolLint(promtool, body); lint != "" {
		t.Errorf("promtool check metrics:\n%s\non:\n%s", lint, body)
	}
}

// promtoolLint is what promtool check metrics says about body, but for
// upstream's varta_recovery_duration_ns_sum: a name kept so upstream's
// rules and dashboards work, which promtool would have a histogram's _sum.
func promtoolLint(promtool, body string) string {
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	var lint []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l != "" && !strings.HasPrefix(l, "varta_recovery_duration_ns_sum ") {
			lint = append(lint, l)
		}
	}
	if len(lint) == 0 && err != nil && len(out) == 0 {
		return err.Error() // it could not run
	}
	return strings.Join(lint, "\n")
}

const rulesDir = "prometheus"

// TestPrometheusRules: the operator bundle passes promtool's rule check
// and its own unit tests (prometheus/tests.yml).
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(rulesDir, "alerts.yml"), filepath.Join(rulesDir, "rules.yml")},
		{"test", "rules", filepath.Join(rulesDir, "tests.yml")},
	} {
		if out, err := exec.Command(promtool, args...).CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

var metricName = regexp.MustCompile(`\bvarta_[a-z0-9_]*[a-z0-9]`)

// TestPrometheusRulesNameRealMetrics: every varta_ metric the bundle's
// expressions and dashboard queries read is one the observer exports, so
// a renamed metric cannot silently disarm an alert or blank a panel.
// promtool's own tests only see the series they are fed. The observer
// runs with the flags that add families (the event file, the escalation
// ladder, a reset-reason file with an unexpected reset on record, an
// agents file).
func TestPrometheusRulesNameRealMetrics(t *testing.T) {
	dir := t.TempDir()
	reason := filepath.Join(dir, "reset-reason")
	other := "varta-reset-reason 1\nseen_boot=another-boot\nresets=0\npending=false\n"
	if err := os.WriteFile(reason, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	agents := filepath.Join(dir, "agents.conf")
	if err := os.WriteFile(agents, []byte("ghost comm=ghost-agent expect-within-ms=1000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0",
		"--export-file", filepath.Join(dir, "events"), "--recovery-exec", "/bin/true",
		"--escalate-after", "1", "--escalate-exec", "/bin/true", "--reset-reason-file", reason,
		"--agents-file", agents)
	types := familyTypes(scrapeBody(t, w.metrics, ""))
	exported := func(name string) bool {
		if _, ok := types[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && types[base] == "histogram" {
				return true
			}
		}
		return false
	}
	for _, file := range []string{"alerts.yml", "rules.yml", "dashboard.json"} {
		b, err := os.ReadFile(filepath.Join(rulesDir, file))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if file != "dashboard.json" {
				line, _, _ = strings.Cut(line, "#")
			}
			for _, at := range metricName.FindAllStringIndex(line, -1) {
				// Recording rules are named level:metric:operation; the
				// regexp sees only their varta_ middle, after a colon.
				if at[0] > 0 && line[at[0]-1] == ':' {
					continue
				}
				if name := line[at[0]:at[1]]; !exported(name) {
					t.Errorf("%s:%d reads %s, which varta-watch does not export", file, i+1, name)
				}
			}
		}
	}
}
