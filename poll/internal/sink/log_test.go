package sink

import (
	"bytes"
	"strings"
	"testing"
)

func TestLogFormat(t *testing.T) {
	var b bytes.Buffer
	l := NewLogger(&b)
	l.Info("agent stalled", Num("pid", 42), Str("file", "/tmp/a b"), Str("kind", "BadCrc"), Str("empty", ""))
	want := `varta-watch: level=info msg="agent stalled" pid=42 file="/tmp/a b" kind=BadCrc empty=""` + "\n"
	if b.String() != want {
		t.Errorf("log line = %q, want %q", b.String(), want)
	}
}

// TestLogRateLimit: a hot kind logs once per second and then reports how
// many lines it held back; other kinds are not affected.
func TestLogRateLimit(t *testing.T) {
	var b bytes.Buffer
	l := NewLogger(&b)
	const sec = int64(1e9)
	for i := int64(0); i < 100; i++ {
		l.Limited(LogKind(0), i*sec/200, "bad frame") // 100 lines within half a second
	}
	if !l.Limited(LogKind(1), 0, "auth") {
		t.Errorf("a different kind was suppressed")
	}
	if !l.Limited(LogKind(0), sec, "bad frame") {
		t.Errorf("the kind was still suppressed a second later")
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[2], "suppressed=99") {
		t.Errorf("lines = %q, want 3 with the last reporting suppressed=99", lines)
	}
}

func TestLimitedNoAllocs(t *testing.T) {
	l := NewLogger(nil)
	now := int64(0)
	n := testing.AllocsPerRun(1000, func() {
		now += 4e8 // some lines written (with a suppressed count), most held back
		l.Limited(LogKind(0), now, "dropped a malformed frame", Str("kind", "BadMagic"))
	})
	if n != 0 {
		t.Errorf("rate-limited logging: %v allocs/op, want 0", n)
	}
}

// TestBackoff: a condition that persists is logged once, then at doubling
// intervals with the count suppressed meanwhile; after a quiet interval
// the next line comes at once.
func TestBackoff(t *testing.T) {
	var out bytes.Buffer
	l := NewLogger(&out)
	const k = LogKind(3)
	var wrote []int64
	// A call every 100 ms for a minute: the broken pipe of `| head -2`.
	for now := int64(0); now < 60e9; now += 100e6 {
		if l.Backoff(k, now, true, "writing failed") {
			wrote = append(wrote, now/1e9)
		}
	}
	// 0, then 1, 3, 7, 15, 31 s later (intervals 1, 2, 4, 8, 16 s), 63 is past the minute.
	want := []int64{0, 1, 3, 7, 15, 31}
	if len(wrote) != len(want) {
		t.Fatalf("lines at %v s, want %v", wrote, want)
	}
	for i := range want {
		if wrote[i] != want[i] {
			t.Fatalf("lines at %v s, want %v", wrote, want)
		}
	}
	if !strings.Contains(out.String(), "suppressed=") {
		t.Errorf("no suppressed count in:\n%s", out.String())
	}
	// Quiet for longer than the interval (32 s), then again: at once.
	if !l.Backoff(k, 200e9, true, "writing failed") {
		t.Error("after a quiet spell the line was suppressed")
	}
	// A SIGHUP storm: 3872 reopens in 2 s make 2 lines.
	n := 0
	for i := int64(0); i < 3872; i++ {
		if l.Backoff(LogKind(4), 1000e9+i*2e9/3872, false, "reopened") {
			n++
		}
	}
	if n != 2 {
		t.Errorf("a storm of 3872 reopens in 2 s wrote %d lines, want 2", n)
	}
}
