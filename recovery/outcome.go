package recovery

import "time"

// Outcome is what became of one stall or one recovery child. Every value
// below NumOutcomes is a label of varta_recovery_outcomes_total.
type Outcome uint8

// The labelled outcomes, in the order of OutcomeLabels.
const (
	OutcomeSpawned             Outcome = iota // a child was started
	OutcomeDebounced                          // same (pid, start time) ran less than Debounce ago
	OutcomeReapedZero                         // a child exited with status 0
	OutcomeReapedNonzero                      // a child exited non-zero, or was killed by a signal we did not send
	OutcomeKilled                             // a child was killed by us (timeout or shutdown)
	OutcomeSpawnFailed                        // fork/exec failed
	OutcomeRefusedCapacity                    // the outstanding-child table (with the deferred queue) was full
	OutcomeSkippedUnattested                  // the stall was not kernel-attested
	OutcomeSkippedInFlight                    // a child for this pid is running or queued
	OutcomeSkippedStale                       // a deferred stall's pid was no longer tracked when its turn came
	OutcomeRefusedShutdown                    // the stall came after shutdown had begun
	OutcomeSkippedUnverifiable                // whether the pid still names the agent could not be told
	OutcomeSkippedResumed                     // a deferred stall's agent beat again before its turn came
	OutcomeSkippedRecycled                    // a deferred stall's pid named another process when its turn came
	OutcomeSkippedPaused                      // the agent's recovery is paused (varta-watch pause): held, not run
	OutcomeDryRun                             // --recovery-dry-run: logged what would run, ran nothing
	NumOutcomes                               // number of labelled outcomes

	// OutcomeDeferred is returned by OnStall when the per-tick spawn
	// budget is spent: the stall waits in the deferred queue and its real
	// outcome is counted when it fires. It is not a counter label.
	OutcomeDeferred = NumOutcomes

	// OutcomeNoCommand is returned by OnStall for an agent with no command
	// to run (Config.CommandFor gave none and Command is empty): nothing
	// happened, as without a recovery command. Not a counter label.
	OutcomeNoCommand = NumOutcomes + 1
)

// OutcomeLabels are the label values of varta_recovery_outcomes_total, in
// Outcome order, so an encoder can emit every value from the first scrape.
var OutcomeLabels = [NumOutcomes]string{
	"spawned",
	"debounced",
	"reaped_zero",
	"reaped_nonzero",
	"killed",
	"spawn_failed",
	"refused_capacity",
	"skipped_unattested",
	"skipped_in_flight",
	"skipped_stale",
	"refused_shutdown",
	"skipped_stall_unverifiable",
	"skipped_agent_resumed",
	"skipped_pid_recycled",
	"skipped_paused",
	"dry_run",
}

// String returns the label of o, or "deferred".
func (o Outcome) String() string {
	if o < NumOutcomes {
		return OutcomeLabels[o]
	}
	if o == OutcomeDeferred {
		return "deferred"
	}
	if o == OutcomeNoCommand {
		return "no_command"
	}
	return "unknown"
}

// DurationBounds are the upper bounds, in seconds, of the Durations
// buckets; a +Inf bucket follows them.
var DurationBounds = [...]float64{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60}

// durationBoundsNs is DurationBounds in nanoseconds, so Observe compares
// integers.
var durationBoundsNs = [len(DurationBounds)]int64{
	10 * int64(time.Millisecond),
	50 * int64(time.Millisecond),
	100 * int64(time.Millisecond),
	500 * int64(time.Millisecond),
	1 * int64(time.Second),
	5 * int64(time.Second),
	10 * int64(time.Second),
	30 * int64(time.Second),
	60 * int64(time.Second),
}

// Durations is a fixed-bucket histogram of the run time of completed
// recovery children (reaped or killed), from spawn to reap.
type Durations struct {
	// Counts[i] is the number of runs in (DurationBounds[i-1],
	// DurationBounds[i]]; the last element counts those above every bound.
	// Counts are per bucket, not cumulative.
	Counts [len(DurationBounds) + 1]uint64
	Count  uint64  // all runs
	Sum    float64 // seconds
	SumNs  uint64  // nanoseconds, exact (varta_recovery_duration_ns_sum)
}

// observe records one run of d nanoseconds. It never allocates.
func (h *Durations) observe(d int64) {
	if d < 0 {
		d = 0
	}
	i := 0
	for i < len(durationBoundsNs) && d > durationBoundsNs[i] {
		i++
	}
	h.Counts[i]++
	h.Count++
	h.Sum += float64(d) / 1e9
	h.SumNs += uint64(d)
}
