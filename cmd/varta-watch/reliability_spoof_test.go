package main

// Reliability scenario 2 (README.md, Reliability): spoofed, replayed and rolled
// back frames. TestSpoofedPid and TestOrderingAndReplay (watch_test.go)
// check one frame of each kind; here real agents' frames are captured
// and replayed, forged frames target tracked agents (a live one, whose
// real beats a forged high nonce would lock out, and a stalled one, which
// a forged beat would revive), and every rejected frame must be counted.

import (
	"net"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// capture is a socket standing in for an observer, to record what real
// agents send.
type capture struct {
	t    *testing.T
	path string
	conn *net.UnixConn
}

func listenCapture(t *testing.T) *capture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "capture.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &capture{t: t, path: path, conn: conn}
}

// frames reads n datagrams, each of which must be a valid frame.
func (c *capture) frames(n int) [][]byte {
	c.t.Helper()
	var out [][]byte
	buf := make([]byte, 128)
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	for len(out) < n {
		k, err := c.conn.Read(buf)
		if err != nil {
			c.t.Fatalf("captured %d of %d frames: %v", len(out), n, err)
		}
		if _, err := vlp.Decode(buf[:k]); err != nil {
			c.t.Fatalf("captured frame %x: %v", buf[:k], err)
		}
		out = append(out, append([]byte(nil), buf[:k]...))
	}
	return out
}

// TestReliabilitySpoofReplay (scenario 2): none of the hostile frames is
// accepted and each is counted: replays of a dead agent's and a live
// untracked agent's captured frames, forged frames for a tracked live
// agent and a stalled dead one (auth failures, mismatch events), and
// replays and rollbacks of this process's own captured frames (out of
// order, terminal replays). The live agent keeps beating unharmed and the
// dead one stays stalled.
func TestReliabilitySpoofReplay(t *testing.T) {
	if testing.Short() {
		// TestSpoofedPid and TestOrderingAndReplay cover the checks quickly.
		t.Skip("slow: captured-frame replays judged over three thresholds; run without -short")
	}
	w := startWatch(t, "--threshold-ms", "500", "--prom-addr", "127.0.0.1:0")
	live := startTrackedAgents(t, w, 1, 100*time.Millisecond)[0]
	dead := oneShot(t, w.socket)
	if w.waitEvent(10*time.Second, kindPid("stall", dead)) == nil {
		t.Fatalf("no stall for the exited agent %d:\n%s", dead, w.logText())
	}

	// Real frames: an agent that exits (its pid dead when replayed), one
	// that keeps running but beats elsewhere, and our own emitter.
	c := listenCapture(t)
	gone := testbin.Command(beatBin(t), "--socket", c.path, "--count", "5", "--interval-ms", "1", "--terminal")
	if out, err := gone.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat: %v\n%s", err, out)
	}
	goneFrames := c.frames(6)
	c = listenCapture(t)
	running := startAgent(t, c.path, 20*time.Millisecond)
	runningFrames := c.frames(5)
	c = listenCapture(t)
	e, err := vlp.Dial(c.path)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var own [][]byte // nonces 1..20, then a terminal frame
	for range 20 {
		if err := e.Beat(vlp.Ok, 0); err != nil {
			t.Fatal(err)
		}
		own = append(own, c.frames(1)...)
	}
	if err := e.Terminal(0); err != nil {
		t.Fatal(err)
	}
	own = append(own, c.frames(1)...)

	r := dialRaw(t, w.socket)
	spoofs := 0
	spoof := func(b []byte) { r.send(b); spoofs++ }
	for _, b := range goneFrames {
		spoof(b)
	}
	for _, b := range runningFrames {
		spoof(b)
	}
	for i := range 10 { // far ahead of the live agent's nonce
		spoof(vlp.Append(nil, vlp.Frame{Pid: uint32(live.pid), Nonce: 1<<40 + uint64(i), Timestamp: 1}))
		spoof(vlp.Append(nil, vlp.Frame{Pid: uint32(dead), Nonce: 2 + uint64(i), Timestamp: 1}))
	}
	spoof(vlp.Append(nil, vlp.Frame{Pid: uint32(live.pid), Status: vlp.Critical, Nonce: vlp.NonceTerminal, Timestamp: 1 << 62}))
	spoof(vlp.Append(nil, vlp.Frame{Pid: uint32(dead), Status: vlp.Critical, Nonce: vlp.NonceTerminal, Timestamp: 1 << 62}))

	// From our real pid: one beat far ahead, then our captured frames
	// (nonces 1..20 and a terminal), repeats and rollbacks.
	r.frame(vlp.Frame{Pid: ourPid(), Nonce: 1000, Timestamp: 1})
	rollbacks := 0
	for _, b := range own[:len(own)-1] {
		r.send(b)
		rollbacks++
	}
	for n := uint64(999); n >= 990; n-- {
		r.frame(vlp.Frame{Pid: ourPid(), Nonce: n, Timestamp: 2})
		r.frame(vlp.Frame{Pid: ourPid(), Nonce: 1000, Timestamp: 2})
		rollbacks += 2
	}
	terminal := own[len(own)-1]
	for range 6 {
		r.send(terminal) // the first is accepted, the rest are replays
	}

	key := func(family string, pid int) string { return family + `{pid="` + strconv.Itoa(pid) + `"}` }
	want := map[string]float64{
		"varta_frame_auth_failures_total":       float64(spoofs),
		"varta_out_of_order_total":              float64(rollbacks),
		"varta_terminal_replays_total":          5,
		key("varta_beats_total", int(ourPid())): 2,
		key("varta_beats_total", dead):          1,
		key("varta_stalls_total", dead):         1,
		"varta_watch_pids_tracked":              3,
	}
	w.waitMetric(key("varta_beats_total", int(ourPid())), 2, 10*time.Second)
	w.waitMetric("varta_frame_auth_failures_total", float64(spoofs), 10*time.Second)
	beatsBefore := w.scrape()[key("varta_beats_total", live.pid)]
	time.Sleep(1500 * time.Millisecond) // 3 thresholds: a locked-out live agent would stall
	m := w.scrape()
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	if n := m[key("varta_stalls_total", live.pid)]; n != 0 {
		t.Errorf("the live agent %d stalled %v times after forged frames claimed it", live.pid, n)
	}
	if n := m[key("varta_beats_total", live.pid)]; n <= beatsBefore {
		t.Errorf("the live agent's beats stopped counting after the forged frames: %v then %v", beatsBefore, n)
	}
	for _, pid := range []int{gone.Process.Pid, running.pid} {
		if _, ok := m[key("varta_beats_total", pid)]; ok {
			t.Errorf("replayed frames of pid %d made it tracked", pid)
		}
	}
	mismatches := 0
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == "mismatch" && c[5] == "auth_failure" {
			mismatches++
		}
	}
	if mismatches != spoofs {
		t.Errorf("%d auth_failure mismatch events, want %d", mismatches, spoofs)
	}
	if n := count(w.eventLines(), "beat", dead); n != 1 {
		t.Errorf("%d beat events for the dead agent %d, want its one real beat", n, dead)
	}
	t.Logf("spoofed %d (replays of a dead and a live agent, forged for tracked pids): %v auth failures; "+
		"%d rollbacks and repeats from our own pid: %v out of order; 5 terminal replays: %v",
		spoofs, m["varta_frame_auth_failures_total"], rollbacks, m["varta_out_of_order_total"], m["varta_terminal_replays_total"])
}
