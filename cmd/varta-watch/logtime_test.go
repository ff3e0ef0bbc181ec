package main

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var stampedLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z varta-watch: level=`)

// TestLogTimestamps: log lines start with an RFC 3339 UTC time by default
// (standard error here is a pipe, not the journal), none with
// --log-timestamps off; the start line says which wall time the event
// file's observer_ns counts from.
func TestLogTimestamps(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "1000")
	line := w.waitLog(`msg="listening"`, 5*time.Second)
	if !stampedLine.MatchString(line) {
		t.Fatalf("listening line %q does not start with an RFC 3339 UTC time", line)
	}
	m := regexp.MustCompile(`observer_ns_0=(\S+)`).FindStringSubmatch(line)
	if m == nil {
		t.Fatalf("listening line %q lacks observer_ns_0", line)
	}
	origin, err := time.Parse(time.RFC3339Nano, m[1])
	if err != nil || time.Since(origin) > time.Minute || time.Since(origin) < 0 {
		t.Errorf("observer_ns_0=%s: %v; want the observer's start, just now", m[1], err)
	}

	off := startWatch(t, "--threshold-ms", "1000", "--log-timestamps", "off")
	if line := off.waitLog(`msg="listening"`, 5*time.Second); !strings.HasPrefix(line, "varta-watch: level=") {
		t.Errorf("with --log-timestamps off the line is %q, want no time in front", line)
	}
}

// TestStderrIsJournal: auto leaves the time out only when standard error
// is the very stream $JOURNAL_STREAM names.
func TestStderrIsJournal(t *testing.T) {
	var st unix.Stat_t
	if err := unix.Fstat(2, &st); err != nil {
		t.Skip(err)
	}
	dev, ino := strconv.FormatUint(uint64(st.Dev), 10), strconv.FormatUint(uint64(st.Ino), 10)
	for _, tc := range []struct {
		env  string
		want bool
	}{
		{dev + ":" + ino, true},
		{dev + ":" + ino + "1", false},
		{"", false},
		{"garbage", false},
	} {
		t.Setenv("JOURNAL_STREAM", tc.env)
		if got := stderrIsJournal(); got != tc.want {
			t.Errorf("JOURNAL_STREAM=%q: stderrIsJournal() = %v, want %v", tc.env, got, tc.want)
		}
	}
	os.Unsetenv("JOURNAL_STREAM")
}
