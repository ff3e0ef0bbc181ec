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
