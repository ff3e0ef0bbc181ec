package listen

import (
	"errors"
	"os"
	"strconv"
	"strings"
)

// nsInnermostPid returns the pid a process sees for itself in its own pid
// namespace: the last field of the NSpid line of /proc/PID/status. This is
// the cold path of a pid mismatch only, so it may allocate.
func nsInnermostPid(pid uint32) (uint32, bool) {
	b, err := os.ReadFile("/proc/" + strconv.FormatUint(uint64(pid), 10) + "/status")
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "NSpid:"); ok {
			f := strings.Fields(rest)
			if len(f) < 2 { // one level: not in a child namespace
				return 0, false
			}
			v, err := strconv.ParseUint(f[len(f)-1], 10, 32)
			return uint32(v), err == nil
		}
	}
	return 0, false
}

// NSCache is nsInnermostPid behind a one-entry cache that lives for one
// loop iteration: a flood of spoofed frames from one sender costs one /proc
// read per tick, not one per datagram, and a recycled pid is seen afresh
// on the next tick.
type NSCache struct {
	pid, inner uint32
	ok         bool
	at         int64 // the iteration's time the entry was filled; 0 = empty
}

// Get returns the pid the process pid sees for itself in its own
// namespace, and false when it is not in a child namespace or is gone.
func (c *NSCache) Get(pid uint32, now int64) (uint32, bool) {
	if c.at != now || c.pid != pid || now == 0 {
		c.inner, c.ok = nsInnermostPid(pid)
		c.pid, c.at = pid, now
	}
	return c.inner, c.ok
}

// ForeignNamespaceError is the error that stops the observer, under
// --strict-namespace-check, at a frame for pid from another pid namespace.
func ForeignNamespaceError(pid uint32) error {
	return errors.New("a frame for pid " + strconv.FormatUint(uint64(pid), 10) + " came from another pid namespace " +
		"(--strict-namespace-check); run the agent in the observer's pid namespace, or drop the flag to refuse " +
		"such frames (counted in varta_frame_namespace_mismatch_total) and carry on")
}
