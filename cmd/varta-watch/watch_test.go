package main

import (
	"encoding/binary"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// TestBeatStallRearm: a real varta-beat process beats; silence raises ONE
// stall; a new beat re-arms it and the next silence raises another.
func TestBeatStallRearm(t *testing.T) {
	t.Parallel() // waits out thresholds; judges event counts only
	w := startWatch(t, "--threshold-ms", "150", "--read-timeout-ms", "1000")
	r := dialRaw(t, w.socket)
	pid := int(ourPid())
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	if w.waitEvent(2*time.Second, kindPid("beat", pid)) == nil {
		t.Fatalf("no beat event:\n%s", w.logText())
	}
	if w.waitEvent(2*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall event:\n%s", w.logText())
	}
	time.Sleep(400 * time.Millisecond) // > 2 thresholds: a latched stall stays one
	if n := count(w.eventLines(), "stall", pid); n != 1 {
		t.Errorf("%d stall events for one silence run, want 1", n)
	}
	r.frame(vlp.Frame{Status: vlp.Degraded, Pid: ourPid(), Nonce: 2, Payload: 5})
	deadline := time.Now().Add(2 * time.Second)
	for count(w.eventLines(), "stall", pid) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := count(w.eventLines(), "stall", pid); n != 2 {
		t.Errorf("after re-arm: %d stall events, want 2", n)
	}
	want := []string{"beat", strconv.Itoa(pid), "2", "degraded", "5"}
	if got := w.waitEvent(time.Second, kindPid("beat", pid)); got == nil {
		t.Fatal("beat event vanished")
	}
	found := false
	for _, c := range w.eventLines() {
		if len(c) == 6 && c[1] == want[0] && c[2] == want[1] && c[3] == want[2] && c[4] == want[3] && c[5] == want[4] {
			found = true
		}
	}
	if !found {
		t.Errorf("no event line %v in %v", want, w.eventLines())
	}
}

func count(lines [][]string, kind string, pid int) int {
	n := 0
	for _, c := range lines {
		if kindPid(kind, pid)(c) {
			n++
		}
	}
	return n
}

// TestVartaBeatAgent: the README's flow: varta-beat beats, then goes away.
func TestVartaBeatAgent(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "100")
	cmd := testbin.Command(beatBin(t), "--socket", w.socket, "--count", "3", "--interval-ms", "10")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat: %v %s", err, out)
	}
	pid := cmd.Process.Pid
	if w.waitEvent(2*time.Second, kindPid("stall", pid)) == nil {
		t.Fatalf("no stall for varta-beat pid %d:\n%s", pid, w.logText())
	}
	if n := count(w.eventLines(), "beat", pid); n != 3 {
		t.Errorf("%d beats from varta-beat, want 3", n)
	}
}

// TestOrderingAndReplay: out-of-order and replayed frames are dropped and
// counted; terminal frames follow their own timestamp rule.
func TestOrderingAndReplay(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	r := dialRaw(t, w.socket)
	p := ourPid()
	frames := []vlp.Frame{
		{Pid: p, Nonce: 10}, // accepted (first frame: any nonce)
		{Pid: p, Nonce: 10}, // replay
		{Pid: p, Nonce: 9},  // rollback
		{Pid: p, Nonce: 11}, // accepted
		{Pid: p, Status: vlp.Critical, Nonce: vlp.NonceTerminal, Timestamp: 5}, // accepted terminal
		{Pid: p, Status: vlp.Critical, Nonce: vlp.NonceTerminal, Timestamp: 5}, // terminal replay
		{Pid: p, Nonce: 12}, // accepted: terminal did not move the mark
	}
	for _, f := range frames {
		r.frame(f)
	}
	key := `varta_beats_total{pid="` + strconv.Itoa(int(p)) + `"}`
	if got := w.waitMetric(key, 4, 3*time.Second); got != 4 {
		t.Errorf("%s = %v, want 4", key, got)
	}
	m := w.scrape()
	if m["varta_out_of_order_total"] != 2 || m["varta_terminal_replays_total"] != 1 {
		t.Errorf("out_of_order %v terminal_replays %v, want 2 and 1", m["varta_out_of_order_total"], m["varta_terminal_replays_total"])
	}
}

// TestDecodeErrorsAndSizes: every decode error kind is a `decode` event and
// counted by kind; datagrams of the wrong size are counted as truncated.
func TestDecodeErrorsAndSizes(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	r := dialRaw(t, w.socket)
	good := vlp.Frame{Pid: ourPid(), Nonce: 1}
	seal := func(b []byte) []byte { // recompute the CRC after an edit
		f := vlp.Checksum(b[:28])
		b[28], b[29], b[30], b[31] = byte(f), byte(f>>8), byte(f>>16), byte(f>>24)
		return b
	}
	edit := func(fn func(b []byte), reseal bool) []byte {
		b := vlp.Append(nil, good)
		fn(b)
		if reseal {
			return seal(b)
		}
		return b
	}
	bad := map[string][]byte{
		"BadMagic":     edit(func(b []byte) { b[0] = 0 }, true),
		"BadVersion":   edit(func(b []byte) { b[2] = 1 }, true),
		"BadCrc":       edit(func(b []byte) { b[31] ^= 1 }, false),
		"BadStatus":    edit(func(b []byte) { b[3] = 9 }, true),
		"StallOnWire":  edit(func(b []byte) { b[3] = 3 }, true),
		"BadPid":       edit(func(b []byte) { b[4], b[5], b[6], b[7] = 1, 0, 0, 0 }, true),
		"BadTimestamp": edit(func(b []byte) { copy(b[8:16], []byte{255, 255, 255, 255, 255, 255, 255, 255}) }, true),
		"BadNonce":     edit(func(b []byte) { copy(b[16:24], []byte{255, 255, 255, 255, 255, 255, 255, 255}) }, true),
	}
	for _, b := range bad {
		r.send(b)
	}
	for _, n := range []int{0, 31, 33, 65535} {
		r.send(make([]byte, n))
	}
	// The payload names the error as the Rust observer writes it, with the
	// values read from the frame (cmd/varta-watch/README.md §5).
	crc := bad["BadCrc"]
	text := map[string]string{
		"BadMagic": "BadMagic", "BadVersion": "BadVersion", "StallOnWire": "StallOnWire",
		"BadCrc": "BadCrc { expected: " + strconv.FormatUint(uint64(vlp.Checksum(crc[:28])), 10) + ", actual: " +
			strconv.FormatUint(uint64(binary.LittleEndian.Uint32(crc[28:])), 10) + " }",
		"BadStatus":    "BadStatus(9)",
		"BadPid":       "BadPid(1)",
		"BadTimestamp": "BadTimestamp(18446744073709551615)",
		"BadNonce":     "BadNonce { nonce: 18446744073709551615, status: Ok }",
	}
	for name := range bad {
		if w.waitEvent(3*time.Second, func(c []string) bool { return len(c) == 6 && c[1] == "decode" && c[5] == text[name] }) == nil {
			t.Errorf("no decode event %q for %s", text[name], name)
		}
	}
	if got := w.waitMetric("varta_truncated_datagrams_total", 4, 3*time.Second); got != 4 {
		t.Errorf("truncated = %v, want 4", got)
	}
	m := w.scrape()
	for _, k := range vlp.DecodeErrors {
		if key := `varta_decode_errors_total{kind="` + k.Label() + `"}`; m[key] != 1 {
			t.Errorf("%s = %v, want 1", key, m[key])
		}
	}
	if m["varta_watch_pids_tracked"] != 0 {
		t.Errorf("a bad frame created a pid: tracked = %v", m["varta_watch_pids_tracked"])
	}
}

// TestSpoofedPid: a frame claiming another live pid is an auth failure
// (mismatch event), never a beat.
func TestSpoofedPid(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	r := dialRaw(t, w.socket)
	victim := os.Getppid()
	r.frame(vlp.Frame{Pid: uint32(victim), Nonce: 1})
	ev := w.waitEvent(2*time.Second, kindPid("mismatch", victim))
	if ev == nil || ev[5] != "auth_failure" {
		t.Fatalf("mismatch event = %v, want auth_failure:\n%s", ev, w.logText())
	}
	m := w.scrape()
	if m["varta_frame_auth_failures_total"] != 1 || m["varta_watch_pids_tracked"] != 0 {
		t.Errorf("auth failures %v, tracked %v; want 1 and 0", m["varta_frame_auth_failures_total"], m["varta_watch_pids_tracked"])
	}
}

// TestSIGTERM: exit 0, the socket is gone, queued events are on disk.
func TestSIGTERM(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000")
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Pid: ourPid(), Nonce: 1})
	if w.waitEvent(2*time.Second, kindPid("beat", int(ourPid()))) == nil {
		t.Fatal("no beat")
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(10 * time.Second); code != 0 {
		t.Errorf("exit %d after SIGTERM, want 0:\n%s", code, w.logText())
	}
	if _, err := os.Stat(w.socket); !os.IsNotExist(err) {
		t.Errorf("socket still exists after exit: %v", err)
	}
}
