package sink

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"time"
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

// TestLogTimestamps: with timestamps on, a line starts with the UTC wall
// time in RFC 3339 with milliseconds, and formatting it allocates nothing.
func TestLogTimestamps(t *testing.T) {
	var b bytes.Buffer
	l := NewLogger(&b)
	l.SetTimestamps(true)
	before := time.Now().UTC().Truncate(time.Millisecond)
	l.Info("hello")
	stamp, rest, ok := strings.Cut(b.String(), " ")
	if !ok || !strings.HasPrefix(rest, `varta-watch: level=info msg="hello"`) {
		t.Fatalf("line %q, want a stamp then the usual line", b.String())
	}
	at, err := time.Parse(time.RFC3339Nano, stamp)
	if err != nil || !strings.HasSuffix(stamp, "Z") || len(stamp) != len("2006-01-02T15:04:05.000Z") {
		t.Fatalf("stamp %q: %v; want RFC 3339 UTC with milliseconds", stamp, err)
	}
	if at.Before(before) || at.After(time.Now()) {
		t.Errorf("stamp %v is not the time of logging (after %v)", at, before)
	}
	l2 := NewLogger(io.Discard)
	l2.SetTimestamps(true)
	if n := testing.AllocsPerRun(100, func() { l2.Warn("x", Num("pid", 1)) }); n != 0 {
		t.Errorf("a stamped line: %v allocs, want 0", n)
	}
}

// TestLogBytesField: a name a process chose is written bare when it is
// plain, else quoted with every odd byte escaped, so a log line stays one
// line of text whatever the name holds.
func TestLogBytesField(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sshd", "name=sshd"},
		{"my daemon", `name="my daemon"`},
		{"a\"b\nc", `name="a\"b\nc"`},
		{"x\xffy", `name="x\xffy"`},
		{"it's", "name=it's"}, {"it's a", `name="it's a"`},
		{"", `name=""`},
	} {
		var b bytes.Buffer
		NewLogger(&b).Info("m", Bytes("name", []byte(tc.in)))
		if got := strings.TrimSuffix(b.String(), "\n"); !strings.HasSuffix(got, " "+tc.want) || strings.Count(b.String(), "\n") != 1 {
			t.Errorf("Bytes(%q) logged %q, want it to end in %s", tc.in, got, tc.want)
		}
	}
	l := NewLogger(io.Discard)
	name := []byte("we\"ird\x01")
	if n := testing.AllocsPerRun(100, func() { l.Warn("x", Bytes("name", name)) }); n != 0 {
		t.Errorf("a bytes field: %v allocs, want 0", n)
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
