package bench

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Observer is a running varta-watch process with its socket, optional
// event file and metrics endpoint (always on, on a free loopback port).
type Observer struct {
	cmd    *exec.Cmd
	Socket string
	Events string // the event file, or "" without one
	Addr   string // metrics host:port
	mu     sync.Mutex
	log    strings.Builder
	exited chan struct{}
	client http.Client
	// scrapes counts Scrape calls: each request allocates a few objects
	// in the observer itself (accepting the connection), which an
	// allocation count taken over a window of scrapes must set aside.
	scrapes uint64
}

var (
	listeningRe = regexp.MustCompile(`msg="listening"`)
	promAddrRe  = regexp.MustCompile(`msg="serving metrics" addr=(\S+)`)
)

// StartObserver runs the varta-watch binary bin with its socket (and, with
// events, its event file) in dir, plus args, which must include
// --threshold-ms. It returns once the observer is listening.
func StartObserver(bin, dir string, events bool, args ...string) (*Observer, error) {
	o := &Observer{Socket: filepath.Join(dir, "obs.sock"), exited: make(chan struct{}),
		client: http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	// The benchmarks scrape back to back, far above the default per-IP
	// limit of 5 a second meant for real scrapers: off here.
	a := []string{"--socket", o.Socket, "--prom-addr", "127.0.0.1:0", "--prom-rate-limit-per-sec", "0"}
	if events {
		o.Events = filepath.Join(dir, "events.tsv")
		os.Remove(o.Events)
		a = append(a, "--export-file", o.Events)
	}
	o.cmd = exec.Command(bin, append(a, args...)...)
	stderr, err := o.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := o.cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan struct{})
	go o.readLog(stderr, ready)
	select {
	case <-ready:
	case <-o.exited:
		return nil, fmt.Errorf("varta-watch exited at start: %v\n%s", o.cmd.ProcessState, o.logText())
	case <-time.After(10 * time.Second):
		o.Stop()
		return nil, fmt.Errorf("varta-watch did not start listening within 10s\n%s", o.logText())
	}
	m := promAddrRe.FindStringSubmatch(o.logText())
	if m == nil {
		o.Stop()
		return nil, errors.New("varta-watch did not report its metrics address")
	}
	o.Addr = m[1]
	return o, nil
}

func (o *Observer) readLog(r io.Reader, ready chan struct{}) {
	sc := bufio.NewScanner(r)
	signalled := false
	for sc.Scan() {
		o.mu.Lock()
		o.log.WriteString(sc.Text())
		o.log.WriteByte('\n')
		o.mu.Unlock()
		if !signalled && listeningRe.MatchString(sc.Text()) {
			signalled = true
			close(ready)
		}
	}
	o.cmd.Wait()
	close(o.exited)
}

func (o *Observer) logText() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.log.String()
}

// Pid is the observer's pid.
func (o *Observer) Pid() int { return o.cmd.Process.Pid }

// Stop sends SIGTERM and waits for the clean exit, which flushes the event
// file; it kills the observer after 10 s.
func (o *Observer) Stop() error {
	o.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-o.exited:
	case <-time.After(10 * time.Second):
		o.cmd.Process.Kill()
		<-o.exited
		return errors.New("varta-watch did not stop within 10s of SIGTERM")
	}
	if !o.cmd.ProcessState.Success() {
		return fmt.Errorf("varta-watch: %v\n%s", o.cmd.ProcessState, lastLines(o.logText(), 5))
	}
	return nil
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(l[max(0, len(l)-n):], "\n")
}

// Metrics is one scrape: each family's samples summed over their labels.
type Metrics map[string]float64

// Scrape fetches /metrics and reports how long the request took.
func (o *Observer) Scrape() (Metrics, time.Duration, error) {
	o.scrapes++
	t0 := time.Now()
	resp, err := o.client.Get("http://" + o.Addr + "/metrics")
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return nil, d, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, d, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	return parseMetrics(body), d, nil
}

// parseMetrics sums the samples of each metric name in a text exposition.
func parseMetrics(body []byte) Metrics {
	m := Metrics{}
	for _, line := range bytes.Split(body, []byte{'\n'}) {
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		sp := bytes.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		name := line[:sp]
		if i := bytes.IndexByte(name, '{'); i >= 0 {
			name = name[:i]
		}
		v, err := strconv.ParseFloat(string(line[sp+1:]), 64)
		if err != nil {
			continue
		}
		m[string(name)] += v
	}
	return m
}

// cpuTime is the CPU time (user + system, all threads) pid has used, read
// from its process CPU-time clock (clock_getcpuclockid(3)): nanosecond
// resolution, unlike the 10 ms ticks of /proc/PID/stat.
func cpuTime(pid int) (time.Duration, error) {
	const cpuclockSched = 2 // MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
	var ts unix.Timespec
	if err := unix.ClockGettime(int32(^uint32(pid)<<3|cpuclockSched), &ts); err != nil {
		return 0, os.NewSyscallError("clock_gettime", err)
	}
	return time.Duration(ts.Nano()), nil
}

// statTicks is utime + stime from /proc/PID/stat, in clock ticks (1/100 s
// on Linux), a coarse cross-check of cpuTime.
func statTicks(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc stat")
	}
	// f[0] is field 3 (state): utime and stime are fields 14 and 15.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s, nil
}

// procStatusKB reads a "Key:  N kB" line of /proc/PID/status.
func procStatusKB(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			return strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		}
	}
	return 0, errors.New(key + " not in /proc status")
}

// AllocsPerScrape measures the heap allocations one /metrics request costs
// the observer, over n requests while nothing else happens.
func (o *Observer) AllocsPerScrape(n int) (float64, error) {
	read := func() (float64, error) {
		m, _, err := o.Scrape()
		return m["varta_go_heap_allocs_objects_total"], err
	}
	if _, err := read(); err != nil { // warm-up: buffers grow once
		return 0, err
	}
	a0, err := read()
	if err != nil {
		return 0, err
	}
	for range n - 1 {
		if _, err := read(); err != nil {
			return 0, err
		}
	}
	a1, err := read()
	return (a1 - a0) / float64(n), err
}

// ctxSwitches sums voluntary and involuntary context switches over every
// thread of pid: how often the process was put to sleep or woken.
func ctxSwitches(pid int) (int64, error) {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return 0, err
	}
	var n int64
	for _, t := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + t.Name() + "/status")
		if err != nil {
			continue // the thread exited
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "voluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			} else if v, ok := strings.CutPrefix(l, "nonvoluntary_ctxt_switches:"); ok {
				k, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
				n += k
			}
		}
	}
	return n, nil
}
