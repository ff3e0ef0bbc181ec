// Package track is the observer's memory of its agents: the fixed pid
// table (Tracker) with its slots, stall deadlines (per-agent thresholds
// in a bounded set of classes) and eviction policy, the
// per-pid and global token buckets (TokenBucket), and the secure UDP
// replay table (ReplayTable).
//
// It is pure: no file descriptor, no clock of its own (every call takes
// the caller's now, in ns), no logging. What it needs of the outside world,
// a process's start time, is handed in as a function (TrackerConfig).
//
// Allocation: NewTracker and NewReplayTable allocate every table once,
// sized by their capacity; no method allocates afterwards. Nothing here is
// safe for concurrent use: the observer loop's goroutine owns it all.
package track
