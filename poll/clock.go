package poll

import (
	"time"

	"golang.org/x/sys/unix"
)

// clock returns the observer's time in ns. Monotonic time comes from the
// runtime's vDSO-backed clock (no syscall); boottime needs clock_gettime
// with CLOCK_BOOTTIME, which also counts time spent suspended.
//
// Every deadline of the loop is on this clock, so it must never run
// backwards. CLOCK_BOOTTIME cannot fail on a kernel that has it, but if a
// read ever does (a seccomp filter, an emulator), the clock carries on
// from the monotonic clock shifted to continue where boottime left off,
// rather than jump to the monotonic clock's own, smaller, value; and no
// reading is ever returned below the previous one.
type clock struct {
	kind        Clock
	base        time.Time
	ts          unix.Timespec // reused so the syscall's argument never escapes
	last        int64         // the latest value returned
	offset      int64         // boottime - monotonic at the last good boottime read
	regressions uint64        // readings held at last because the clock went back (varta_observer_clock_regression_total)
	// gettime is clock_gettime(2); tests substitute a failing one.
	gettime func(clockid int32, ts *unix.Timespec) error
}

func newClock(kind Clock) *clock {
	return &clock{kind: kind, base: time.Now(), gettime: unix.ClockGettime}
}

func (c *clock) now() int64 {
	mono := int64(time.Since(c.base))
	v := mono
	if c.kind == ClockBoottime {
		if c.gettime(unix.CLOCK_BOOTTIME, &c.ts) == nil {
			v = c.ts.Nano()
			c.offset = v - mono
		} else {
			v = mono + c.offset
		}
	}
	if v < c.last {
		v, c.regressions = c.last, c.regressions+1
	}
	c.last = v
	return v
}

// Now and Boottime make the clock the loop's wait's (wait.Clock).
func (c *clock) Now() int64     { return c.now() }
func (c *clock) Boottime() bool { return c.kind == ClockBoottime }
