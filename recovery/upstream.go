package recovery

import (
	"time"

	"github.com/varta-go/varta/promtext"
)

// Stale is what Config.Recheck found about a deferred stall when its
// turn came.
type Stale uint8

const (
	Stands    Stale = iota // still stalled, still the same process (or gone: recover it)
	Resumed                // the agent beat again
	Recycled               // the pid now names another process
	Untracked              // the pid is no longer tracked (evicted, retired), or /proc cannot tell
)

func (s Stale) outcome() Outcome {
	switch s {
	case Resumed:
		return OutcomeSkippedResumed
	case Recycled:
		return OutcomeSkippedRecycled
	}
	return OutcomeSkippedStale
}

func (m *Manager) rechecked(pid int32, startTime uint64) Stale {
	if m.recheck == nil {
		return Stands
	}
	return m.recheck(pid, startTime)
}

// UpstreamOutcomeLabels are the outcome label values of upstream
// varta-watch's varta_recovery_outcomes_total, in its order; each of ours
// that means the same is counted under it (UpstreamOutcomes), the rest
// under ExtraOutcomes.
var UpstreamOutcomeLabels = [...]string{
	"spawned", "debounced", "reaped_zero", "reaped_nonzero", "killed", "spawn_failed",
	"refused_unauthenticated_transport", "refused_cross_namespace", "refused_debounce_capacity",
	"refused_outstanding_capacity", "refused_socket_mode_only", "skipped_agent_resumed",
	"skipped_pid_recycled", "skipped_stall_unverifiable",
}

// upstreamOf maps our outcomes onto UpstreamOutcomeLabels; -1: ours only.
// refused_cross_namespace, refused_debounce_capacity and
// refused_socket_mode_only have no outcome of ours: see UpstreamOutcomes.
var upstreamOf = [NumOutcomes]int8{
	OutcomeSpawned: 0, OutcomeDebounced: 1, OutcomeReapedZero: 2, OutcomeReapedNonzero: 3,
	OutcomeKilled: 4, OutcomeSpawnFailed: 5, OutcomeSkippedUnattested: 6, OutcomeRefusedCapacity: 9,
	OutcomeSkippedResumed: 11, OutcomeSkippedRecycled: 12, OutcomeSkippedUnverifiable: 13,
	OutcomeSkippedInFlight: -1, OutcomeSkippedStale: -1, OutcomeRefusedShutdown: -1,
	OutcomeSkippedPaused: -1, OutcomeDryRun: -1,
}

// ExtraOutcomes are our outcomes upstream's label set lacks, rendered in a
// family of our own (varta_recovery_outcomes_extra_total).
var ExtraOutcomes = [...]Outcome{OutcomeSkippedInFlight, OutcomeSkippedStale, OutcomeRefusedShutdown, OutcomeSkippedPaused, OutcomeDryRun}

// UpstreamRefusedLabels are the reason label values of upstream's
// varta_recovery_refused_total, in its order.
var UpstreamRefusedLabels = [...]string{
	"unauthenticated_transport", "cross_namespace_agent", "debounce_capacity", "outstanding_capacity", "socket_mode_only",
}

// UpstreamOutcomes returns the counts of varta_recovery_outcomes_total and
// varta_recovery_refused_total in upstream's label order. Three of
// upstream's refusals cannot happen here and stay 0: a cross-namespace
// agent is tracked under the pid the observer sees and can signal (or
// refused at receive), the debounce table makes room by forgetting its
// least recently idle entry instead of refusing, and Linux always passes
// the sender's credentials (no socket-mode-only transport). Nil-safe.
func (m *Manager) UpstreamOutcomes() (out [len(UpstreamOutcomeLabels)]uint64, refused [len(UpstreamRefusedLabels)]uint64) {
	if m == nil {
		return
	}
	for o, i := range upstreamOf {
		if i >= 0 {
			out[i] += m.counts[o]
		}
	}
	refused[0], refused[3] = out[6], out[9]
	return
}

// Stats are the recovery counters of upstream's metric catalogue that
// this design has; the ones it cannot have are documented where they are
// rendered.
type Stats struct {
	DebounceRecycleResets uint64 // debounce windows dropped: the pid's process changed (start time)
	InvariantViolations   uint64 // debounce-table insert found no idle entry (must stay 0)
	SpawnBudgetExceeded   uint64 // Ticks in which a stall was deferred for want of spawn budget
	ReapTruncated         uint64 // Ticks whose reap budget ran out before every child was polled
	LastFiredEvictions    uint64 // debounce-table entries forgotten to make room (from the table)
	FsyncOverBudget       uint64 // audit fdatasyncs longer than AuditFsyncBudget
	RotationOverBudget    uint64 // audit rotations or reopens longer than AuditRotationBudget
	// Fsync is the wall time of each audit fdatasync, in seconds, with
	// upstream's bounds; nil until an audit log is opened.
	Fsync *promtext.Histogram

	fsyncBudget, rotationBudget time.Duration
}

// FsyncBounds are the audit fdatasync histogram's bucket bounds, in
// seconds: upstream's, shared with its loop histograms.
var FsyncBounds = []float64{0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1}

func (s *Stats) fsynced(d time.Duration) {
	if s == nil {
		return
	}
	if s.Fsync == nil {
		s.Fsync, _ = promtext.NewHistogram(FsyncBounds) // bounds are valid: cannot fail
	}
	s.Fsync.Observe(d.Seconds())
	if s.fsyncBudget > 0 && d > s.fsyncBudget {
		s.FsyncOverBudget++
	}
}

func (s *Stats) rotated(d time.Duration) {
	if s != nil && s.rotationBudget > 0 && d > s.rotationBudget {
		s.RotationOverBudget++
	}
}

// Stats returns the counters above. Nil-safe.
func (m *Manager) Stats() Stats {
	if m == nil {
		return Stats{}
	}
	s := m.stats
	s.LastFiredEvictions = m.pids.evicted
	return s
}

// auditTimedSync fdatasyncs records that have waited AuditSyncInterval
// unsynced (the record cadence, AuditSyncEvery, may leave some waiting
// for more records that do not come).
func (m *Manager) auditTimedSync(now int64) {
	a := m.audit
	if m.syncInterval <= 0 || a == nil || a.fd < 0 || a.unsynced == 0 {
		m.unsyncedSince = 0
		return
	}
	if m.unsyncedSince == 0 {
		m.unsyncedSince = now
	}
	if now-m.unsyncedSince >= m.syncInterval {
		a.sync() // a failure is counted in AuditStats
		m.unsyncedSince = 0
	}
}

// auditSyncDue is when auditTimedSync has work, if ever.
func (m *Manager) auditSyncDue() (int64, bool) {
	if m.unsyncedSince == 0 {
		return 0, false
	}
	return m.unsyncedSince + m.syncInterval, true
}
