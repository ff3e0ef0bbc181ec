package main

// The metrics endpoint under hostile or careless clients: slowloris,
// clients that never read, and a flood of abusive connections must
// neither delay stall detection nor leak the observer's descriptors.

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// dialSmallWindow dials addr with a receive buffer of a few KiB, so that
// the observer's writes to it stall as soon as the kernel stops buffering.
func dialSmallWindow(addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) { err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 2048) })
		return err
	}}
	return d.Dial("tcp", addr)
}

// metricsClients runs, until stop is closed, the clients of
// TestMetricsSlowClientsDoNotDelayStalls: slowloris ones that send their
// request a byte a second (reconnecting when the observer cuts them off),
// greedy ones that request the exposition and never read it, and one
// well-behaved scraper scraping back to back.
type metricsClients struct {
	addr    string
	stop    chan struct{}
	wg      sync.WaitGroup
	scrapes atomic.Int64 // complete 200 responses the scraper read
	cutOff  atomic.Int64 // slow clients the observer hung up on
	greedy  atomic.Int64 // requests never read
}

func startMetricsClients(addr string, slow, greedy int) *metricsClients {
	m := &metricsClients{addr: addr, stop: make(chan struct{})}
	for range slow {
		m.run(m.slowloris)
	}
	for range greedy {
		m.run(m.neverRead)
	}
	m.run(m.scrape)
	return m
}

func (m *metricsClients) run(fn func()) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		fn()
	}()
}

func (m *metricsClients) close() {
	close(m.stop)
	m.wg.Wait()
}

// pause waits d and reports whether to carry on.
func (m *metricsClients) pause(d time.Duration) bool {
	select {
	case <-m.stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (m *metricsClients) slowloris() {
	req := httpRequest("GET", "/metrics", "")
	for {
		c, err := net.DialTimeout("tcp", m.addr, 10*time.Second)
		if err != nil {
			return
		}
		for i := 0; i < len(req); i++ {
			if _, err := c.Write([]byte{req[i]}); err != nil {
				m.cutOff.Add(1)
				break
			}
			if !m.pause(time.Second) {
				c.Close()
				return
			}
		}
		c.Close()
	}
}

// neverRead asks for the exposition every 200 ms and keeps every
// connection open, unread, until the end.
func (m *metricsClients) neverRead() {
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for {
		if c, err := dialSmallWindow(m.addr); err == nil {
			conns = append(conns, c)
			if _, err := io.WriteString(c, httpRequest("GET", "/metrics", "")); err == nil {
				m.greedy.Add(1)
			}
		}
		if !m.pause(200 * time.Millisecond) {
			return
		}
	}
}

func (m *metricsClients) scrape() {
	for {
		select {
		case <-m.stop:
			return
		default:
		}
		c, err := net.DialTimeout("tcp", m.addr, 10*time.Second)
		if err != nil {
			continue
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		io.WriteString(c, httpRequest("GET", "/metrics", ""))
		if b, _ := io.ReadAll(c); bytes.HasPrefix(b, []byte("HTTP/1.1 200 OK\r\n")) {
			m.scrapes.Add(1)
		}
		c.Close()
	}
}

// TestMetricsSlowClientsDoNotDelayStalls: while slowloris clients trickle
// their request, greedy ones request the exposition of many pids and never
// read it, and a normal scraper scrapes back to back, an agent's stalls are
// still raised within a few milliseconds of their deadlines, as measured by
// the event file's own clock. The agent stalls several times and the
// median lateness is judged (the worst only loosely), so that a moment of
// CPU starvation on a loaded test machine is not taken for a blocked loop,
// while a loop that waits for any of these clients would be late every
// time.
//
// The kernel's autotuned send buffer takes an exposition of a few hundred
// pids whole, so here the observer finishes with the greedy clients at
// once; promtext's TestSocketNeverReads covers a response the socket
// cannot take.
func TestMetricsSlowClientsDoNotDelayStalls(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: 200 agent processes and five stalls under client abuse; run without -short")
	}
	const threshold, stalls = 400 * time.Millisecond, 5
	agents, bound := 200, 100*time.Millisecond
	if emulated() {
		// Each emulated varta-beat costs a qemu start; the loop itself
		// is several times slower too.
		agents, bound = 40, 300*time.Millisecond
	}
	w := startWatch(t, "--threshold-ms", "400", "--tracker-capacity", "1024", "--prom-addr", "127.0.0.1:0")
	spawnAgents(t, w.socket, agents)
	if got := waitSample(t, w.metrics, "varta_watch_pids_tracked", float64(agents), 10*time.Second); got < float64(agents) {
		t.Fatalf("tracking %v pids, want %d", got, agents)
	}
	size := len(scrapeBody(t, w.metrics, ""))

	clients := startMetricsClients(w.metrics, 4, 2)
	defer clients.close()
	waitFor(t, 10*time.Second, func() bool { return clients.scrapes.Load() >= 2 && clients.greedy.Load() >= 2 },
		"the scraper and the greedy clients under way")
	pid := int(ourPid())
	r := dialRaw(t, w.socket)
	for k := 1; k <= stalls; k++ {
		r.frame(vlp.Frame{Pid: ourPid(), Nonce: uint64(k)})
		deadline := time.Now().Add(threshold + 10*time.Second)
		for count(w.eventLines(), "stall", pid) < k && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		if n := count(w.eventLines(), "stall", pid); n != k {
			t.Fatalf("after beat %d: %d stalls, want %d:\n%s", k, n, k, w.logText())
		}
	}

	// Each beat re-arms the pid, so the k-th stall belongs to the k-th beat.
	var beats, raised []int64
	for _, c := range w.eventLines() {
		if ns, err := strconv.ParseInt(c[0], 10, 64); err == nil && c[2] == strconv.Itoa(pid) {
			switch c[1] {
			case "beat":
				beats = append(beats, ns)
			case "stall":
				raised = append(raised, ns)
			}
		}
	}
	if len(beats) != stalls || len(raised) != stalls {
		t.Fatalf("%d beats and %d stalls in the event file, want %d each", len(beats), len(raised), stalls)
	}
	late := make([]time.Duration, stalls)
	for k := range late {
		late[k] = time.Duration(raised[k] - beats[k] - int64(threshold))
	}
	t.Logf("%d pids, %d-byte exposition: stalls raised %v after their deadlines; meanwhile %d scrapes, %d unread requests, slow clients cut off %d times",
		agents, size, late, clients.scrapes.Load(), clients.greedy.Load(), clients.cutOff.Load())
	sorted := slices.Sorted(slices.Values(late))
	if sorted[0] < 0 || sorted[stalls/2] > bound || sorted[stalls-1] > 10*bound {
		t.Errorf("stalls raised %v after their deadlines, want the median within %v and none early or over %v",
			late, bound, 10*bound)
	}
}

// openFds counts the descriptors of process pid.
func openFds(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// abuse is one misbehaving client on a fresh connection; it returns true
// to keep the connection open without ever sending more.
type abuse func(c net.Conn, rng *rand.Rand) (keep bool)

var (
	// quickAbuses end their connection at once, so the observer parses
	// what they sent (or reads its end) with a slot to spare.
	quickAbuses = []abuse{
		func(c net.Conn, _ *rand.Rand) bool { return false }, // connect, close
		func(c net.Conn, _ *rand.Rand) bool { // text junk
			io.WriteString(c, "HELLO THERE\r\n\r\n")
			return false
		},
		func(c net.Conn, _ *rand.Rand) bool { // a head over the 4 KiB limit
			io.WriteString(c, "GET /metrics HTTP/1.1\r\nX-Pad: "+strings.Repeat("a", 16<<10)+"\r\n\r\n")
			return false
		},
		func(c net.Conn, rng *rand.Rand) bool { // binary junk
			b := make([]byte, 1+rng.IntN(2048))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			c.Write(b)
			return false
		},
		func(c net.Conn, _ *rand.Rand) bool { // not a GET
			io.WriteString(c, "POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
			return false
		},
		func(c net.Conn, _ *rand.Rand) bool { // a request, then a reset
			io.WriteString(c, httpRequest("GET", "/metrics", ""))
			c.(*net.TCPConn).SetLinger(0)
			return false
		},
		func(c net.Conn, _ *rand.Rand) bool { // a request, then half-close
			io.WriteString(c, httpRequest("GET", "/metrics", ""))
			c.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, c)
			return false
		},
	}
	// heldAbuses keep their connection open and silent; the observer
	// must cut them off at its read deadline.
	heldAbuses = []abuse{
		func(c net.Conn, _ *rand.Rand) bool { return true }, // half-open, never sends
		func(c net.Conn, _ *rand.Rand) bool { // half a head, then silence
			io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n")
			return true
		},
	}
)

// TestMetricsAbuseHoldsNoFds: after 1000 abusive connections, the last
// quarter of them held open and silent, and once every read deadline has
// passed, the observer holds exactly the descriptors it held before (while
// the abusers still keep their ends open) and still serves and counts beats.
func TestMetricsAbuseHoldsNoFds(t *testing.T) {
	if testing.Short() {
		// TestMetricsHTTP and promtext's tests cover the responder quickly.
		t.Skip("slow: 1000 abusive connections and a 3 s read-deadline wait; run without -short")
	}
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	pid := w.cmd.Process.Pid
	scrapeBody(t, w.metrics, "") // warm: anything opened lazily is open now
	before := openFds(t, pid)

	const total, held, workers = 1000, 250, 16
	jobs := make(chan abuse, total)
	for i := range total - held {
		jobs <- quickAbuses[i%len(quickAbuses)]
	}
	for i := range held {
		jobs <- heldAbuses[i%len(heldAbuses)]
	}
	close(jobs)
	var mu sync.Mutex
	var kept []net.Conn
	defer func() {
		for _, c := range kept {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	var dialFailures atomic.Int64
	begin := time.Now()
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			d := net.Dialer{Timeout: 10 * time.Second}
			for do := range jobs {
				c, err := d.Dial("tcp", w.metrics)
				if err != nil {
					dialFailures.Add(1) // a full backlog: abuse too
					continue
				}
				c.SetDeadline(time.Now().Add(5 * time.Second))
				if do(c, rng) {
					mu.Lock()
					kept = append(kept, c)
					mu.Unlock()
					continue
				}
				c.Close()
			}
		}()
	}
	wg.Wait()
	abused := time.Now()

	// promtext's read deadline is 2 s; give the loop time past it.
	wait := 3 * time.Second
	if emulated() {
		wait = 6 * time.Second
	}
	// The held connections keep their fds until the read deadline: that
	// wait is what is tested, so it is a sleep, then a poll for stragglers.
	time.Sleep(wait)
	after := openFds(t, pid)
	for after != before && time.Since(abused) < 3*wait {
		time.Sleep(100 * time.Millisecond)
		after = openFds(t, pid)
	}
	if after != before {
		t.Errorf("observer holds %d fds after the abuse, %d before", after, before)
	}
	m := samples(t, scrapeBody(t, w.metrics, ""))
	t.Logf("%d abusive connections in %v (%d dials failed), %d held open: refused %v, expired %v; observer fds %d, %v after the abuse",
		total, abused.Sub(begin).Round(time.Millisecond), dialFailures.Load(), len(kept),
		m[`varta_prom_connections_dropped_total{reason="drain"}`], m["varta_metrics_connections_expired_total"],
		after, time.Since(abused).Round(time.Millisecond))
	if m["varta_metrics_connections_expired_total"] == 0 {
		t.Error("no connection was closed at its read deadline, yet silent ones were held open")
	}
	if r := rawHTTP(t, w.metrics, httpRequest("GET", "/healthz", "")); r.status != 200 {
		t.Errorf("/healthz after the abuse = %d, want 200", r.status)
	}
	rs := dialRaw(t, w.socket)
	rs.frame(vlp.Frame{Pid: ourPid(), Nonce: 1})
	if got := waitSample(t, w.metrics, `varta_beats_total{pid="`+strconv.Itoa(int(ourPid()))+`"}`, 1, 5*time.Second); got != 1 {
		t.Errorf("a beat after the abuse counted %v times, want 1", got)
	}
}
