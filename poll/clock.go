package poll

import (
	"time"

	"golang.org/x/sys/unix"
)

// clock returns the observer's time in ns. Monotonic time comes from the
// runtime's vDSO-backed clock (no syscall); boottime needs clock_gettime
// with CLOCK_BOOTTIME, which also counts time spent suspended.
type clock struct {
	kind Clock
	base time.Time
	ts   unix.Timespec // reused so the syscall's argument never escapes
}

func newClock(kind Clock) *clock { return &clock{kind: kind, base: time.Now()} }

func (c *clock) now() int64 {
	if c.kind == ClockBoottime {
		if unix.ClockGettime(unix.CLOCK_BOOTTIME, &c.ts) == nil {
			return c.ts.Nano()
		}
	}
	return int64(time.Since(c.base))
}
