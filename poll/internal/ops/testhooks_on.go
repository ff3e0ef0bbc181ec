//go:build varta_testhooks

package ops

import (
	"os"
	"strconv"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
)

// Test hooks, compiled in only with -tags varta_testhooks (the tests'
// builds of varta-watch, see cmd/internal/testbin). A test drives the
// real binary into a wedged loop with
//
//	VARTA_TEST_HOOKS=1 VARTA_TEST_WEDGE_AFTER_MS=N
//
// after N ms the loop goroutine sleeps forever instead of iterating, so the
// self-watchdog and WATCHDOG=1 can be seen to react. Both variables must
// be set, and the first to exactly "1"; they are read once at start-up
// and unset. VARTA_TEST_WEDGE_FOR_MS=M bounds the wedge to M ms, after
// which the loop goes on: the Rust original's --inject-wedge-ms, which
// cmd/varta-watch turns into these variables in its test builds.
const (
	testHooksEnv    = "VARTA_TEST_HOOKS"
	testWedgeEnv    = "VARTA_TEST_WEDGE_AFTER_MS"
	testWedgeForEnv = "VARTA_TEST_WEDGE_FOR_MS"
)

// testWedgeFor is how long the wedge lasts; 0 forever.
var testWedgeFor time.Duration

// testWedgeAt returns when the loop must wedge, or 0.
func testWedgeAt(now int64) int64 {
	hooks, after := os.Getenv(testHooksEnv), os.Getenv(testWedgeEnv)
	if hooks == "" && after == "" {
		return 0
	}
	forMs, forErr := strconv.ParseInt(os.Getenv(testWedgeForEnv), 10, 32)
	os.Unsetenv(testHooksEnv)
	os.Unsetenv(testWedgeEnv)
	os.Unsetenv(testWedgeForEnv)
	ms, err := strconv.ParseInt(after, 10, 32)
	if hooks != "1" || err != nil || ms < 0 {
		return 0
	}
	testWedgeFor = 0
	if forErr == nil && forMs > 0 {
		testWedgeFor = time.Duration(forMs) * time.Millisecond
	}
	return now + max(ms, 1)*int64(time.Millisecond)
}

// testWedge returns after testWedgeFor, or never: the loop is wedged.
func testWedge(l *sink.Logger) {
	if testWedgeFor > 0 {
		l.Warn("test hook: stalling the observer loop for " + testWedgeFor.String() + " (--inject-wedge-ms)")
		time.Sleep(testWedgeFor)
		return
	}
	l.Warn("test hook: wedging the observer loop (" + testHooksEnv + "=1 " + testWedgeEnv + ")")
	for {
		time.Sleep(time.Hour)
	}
}
