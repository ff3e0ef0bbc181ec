package poll

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestBoottimeClockNeverRunsBackwards: when a CLOCK_BOOTTIME read fails,
// the clock carries on from the monotonic clock shifted to where boottime
// was, instead of dropping to the monotonic clock's own smaller value (a
// jump back by the whole time the board spent suspended, which would
// unsort every deadline).
func TestBoottimeClockNeverRunsBackwards(t *testing.T) {
	c := newClock(ClockBoottime)
	const suspended = int64(1000 * time.Hour) // boottime ahead of monotonic by this
	fail := false
	c.gettime = func(id int32, ts *unix.Timespec) error {
		if id != unix.CLOCK_BOOTTIME {
			t.Fatalf("clock id %d, want CLOCK_BOOTTIME", id)
		}
		if fail {
			return unix.EINVAL
		}
		*ts = unix.NsecToTimespec(int64(time.Since(c.base)) + suspended)
		return nil
	}
	before := c.now()
	if before < suspended {
		t.Fatalf("boottime reading %d, want at least %d", before, suspended)
	}
	fail = true
	after := c.now()
	if after < before {
		t.Fatalf("after a failed boottime read the clock went from %d back to %d", before, after)
	}
	if after-before > int64(time.Second) {
		t.Fatalf("after a failed boottime read the clock jumped ahead by %d ns", after-before)
	}
	fail = false
	if again := c.now(); again < after {
		t.Fatalf("clock went back from %d to %d when boottime returned", after, again)
	}
}

// TestMonotonicClockIgnoresBoottime: the default clock never asks for
// CLOCK_BOOTTIME.
func TestMonotonicClockIgnoresBoottime(t *testing.T) {
	c := newClock(ClockMonotonic)
	c.gettime = func(int32, *unix.Timespec) error { t.Fatal("monotonic clock read CLOCK_BOOTTIME"); return nil }
	if a, b := c.now(), c.now(); b < a {
		t.Fatalf("monotonic clock went back from %d to %d", a, b)
	}
}

// TestClockRegressionCounted: a boottime reading below the last one is
// held at the last, and counted (varta_observer_clock_regression_total);
// readings that rise count nothing.
func TestClockRegressionCounted(t *testing.T) {
	c := newClock(ClockBoottime)
	v := int64(5 * time.Second)
	c.gettime = func(_ int32, ts *unix.Timespec) error { *ts = unix.NsecToTimespec(v); return nil }
	c.now()
	v += int64(time.Millisecond)
	c.now()
	if c.regressions != 0 {
		t.Fatalf("%d regressions counted for rising readings", c.regressions)
	}
	v -= int64(time.Second) // the clock steps back
	if got := c.now(); got != int64(5*time.Second+time.Millisecond) || c.regressions != 1 {
		t.Fatalf("after a step back: reading %d, %d regressions; want the last reading held and 1", got, c.regressions)
	}
}
