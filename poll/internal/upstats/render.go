package upstats

import (
	"sync/atomic"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/ops"
	"github.com/varta-go/varta/poll/internal/scrape"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
)

// Sources are where the rendered counters live, set once the observer's
// parts exist. Nil Rec, Prom, Rx, UDS or Ops reads as zero.
type Sources struct {
	Tracker *track.Tracker
	Rec     *recovery.Manager
	Prom    *scrape.Server
	Rx      *listen.Receiver
	UDS     *listen.UDS
	Ops     *ops.Ops
	Log     *sink.Logger
	// LogKinds are the observer's log kinds that mean upstream's
	// file_export_io, audit_io and prom_serve (heartbeat_io is Ops's).
	LogKinds [3]sink.LogKind
}

// SignalInstalls counts the installations of the observer's signal
// handlers (Go's os/signal, which calls rt_sigaction(2) itself: upstream's
// mode "direct"); the loop adds one when it installs them.
var SignalInstalls atomic.Uint64

// pidMaxEvery is how often the tracker's pid_max is reread.
const pidMaxEvery = int64(60e9)

// refreshPidMax rereads /proc/sys/kernel/pid_max into the tracker when a
// minute has passed since the last read (now on the observer's clock).
func (l *Loop) refreshPidMax(now int64) {
	if l.src.Tracker == nil || l.pidMaxAt != 0 && now-l.pidMaxAt < pidMaxEvery {
		return
	}
	l.pidMaxAt = now
	l.src.Tracker.SetPidMax(listen.PidMax())
}

func counter(e *promtext.Encoder, name, help string, v uint64) {
	e.Family(name, help, promtext.TypeCounter)
	e.Uint(v)
}

func gauge(e *promtext.Encoder, name, help string, v uint64) {
	e.Family(name, help, promtext.TypeGauge)
	e.Uint(v)
}

// Render appends the loop's families, the upstream families of its
// Sources and the Go runtime's counters.
func (l *Loop) Render(e *promtext.Encoder) {
	s := &l.src
	l.renderLoop(e)
	renderTracker(e, s, l.cfg.EvictionWindow)
	renderRecovery(e, s.Rec)
	renderIO(e, s)
	l.mem.render(e)
}

func (l *Loop) renderLoop(e *promtext.Encoder) {
	e.Family("varta_observer_iteration_seconds", "Work time of one observer loop iteration (excluding the wait).", promtext.TypeHistogram)
	e.Histogram(l.iter)
	counter(e, "varta_observer_iteration_budget_exceeded_total", "Loop iterations longer than --iteration-budget-ms.", l.iterOver)
	e.Family("varta_observer_serve_pending_seconds", "Time the metrics endpoint took in one loop iteration, in iterations that served it (subtract from varta_observer_iteration_seconds for the beat path).", promtext.TypeHistogram)
	e.Histogram(l.serve)
	counter(e, "varta_observer_scrape_budget_exceeded_total", "Loop iterations whose metrics serving took longer than --scrape-budget-ms.", l.scrapeOver)
	e.Family("varta_observer_stage_seconds", "Time of each stage of one loop iteration (every stage observed every iteration).", promtext.TypeHistogram)
	for i, h := range l.stage {
		e.Label("stage", StageLabels[i])
		e.Histogram(h)
	}
	counter(e, "varta_observer_clock_regression_total", "Readings of the observer clock held at the previous one because the clock went backwards.", l.regressions)
	counter(e, "varta_observer_clock_jump_forward_total", "Adjacent loop iterations more than --read-timeout-ms + 5 s apart (suspend under --clock boottime, SIGSTOP, a paused VM).", l.jumps)
	e.Family("varta_signal_handler_install_total", "Signal handler installations (Go os/signal calls rt_sigaction(2) itself: mode direct).", promtext.TypeCounter)
	e.Label("mode", "direct")
	e.Uint(SignalInstalls.Load())
}

func renderTracker(e *promtext.Encoder, s *Sources, window int) {
	t := s.Tracker
	counter(e, "varta_frame_rejected_pid_above_max_total", "Socket frames dropped because their pid is at or above the kernel's pid_max (UDP frames are not checked: their pid may be another host's).", t.PidAboveMax())
	gauge(e, "varta_pid_max_current", "The kernel's pid_max as last read from /proc/sys/kernel/pid_max (reread every 60 s).", uint64(t.PidMax()))
	counter(e, "varta_tracker_eviction_scan_truncated_total", "Always 0: eviction takes the oldest silent pid off an ordered list in O(1), so no scan can run out of window.", 0)
	gauge(e, "varta_tracker_eviction_scan_window_max", "--eviction-scan-window as configured (eviction here never scans; see varta_tracker_eviction_scan_truncated_total).", uint64(window))
	counter(e, "varta_tracker_namespace_conflict_total", "Always 0: slots are keyed by the pid the observer sees; a frame from another pid namespace is refused at receive (varta_frame_namespace_mismatch_total) or re-keyed to that pid, so no slot is pinned to a namespace.", 0)
	counter(e, "varta_tracker_invariant_violations_total", "Always 0: the pid table has no defensive fall-through; its index and slots are one fixed structure checked by the model test.", 0)
	counter(e, "varta_tracker_removed_pid_drops_total", "Always 0: per-pid rows are rendered from the pid table itself; there is no exporter-cleanup queue to fill.", 0)
	counter(e, "varta_tracker_pid_index_probe_exhausted_total", "Always 0: the pid index probes to an empty bucket and is never more than half full; there is no probe budget.", 0)
}

func renderRecovery(e *promtext.Encoder, m *recovery.Manager) {
	out, refused := m.UpstreamOutcomes()
	e.Family("varta_recovery_outcomes_total", "Recovery decisions and child outcomes, by outcome (upstream's set; ours beyond it in varta_recovery_outcomes_extra_total).", promtext.TypeCounter)
	for i, label := range recovery.UpstreamOutcomeLabels {
		e.Label("outcome", label)
		e.Uint(out[i])
	}
	var counts [recovery.NumOutcomes]uint64
	var dur recovery.Durations
	if m != nil {
		counts, dur = m.Counts(), m.Durations()
	}
	e.Family("varta_recovery_outcomes_extra_total", "Recovery outcomes upstream's set lacks: a child already running or queued for the pid, a deferred stall whose pid was no longer tracked, a stall after shutdown began.", promtext.TypeCounter)
	for _, o := range recovery.ExtraOutcomes {
		e.Label("outcome", o.String())
		e.Uint(counts[o])
	}
	e.Family("varta_recovery_refused_total", "Stalls given no recovery child by a structural gate, by reason.", promtext.TypeCounter)
	for i, label := range recovery.UpstreamRefusedLabels {
		e.Label("reason", label)
		e.Uint(refused[i])
	}
	counter(e, "varta_recovery_duration_ns_sum", "Run time of completed recovery children, summed, in ns.", dur.SumNs)
	counter(e, "varta_recovery_duration_count_total", "Completed recovery children in varta_recovery_duration_ns_sum.", dur.Count)
	st := m.Stats()
	counter(e, "varta_recovery_last_fired_evictions_total", "Recovery-table entries (debounce state) forgotten to make room for a new pid; the least recently idle goes, whether or not its debounce window has passed.", st.LastFiredEvictions)
	counter(e, "varta_recovery_debounce_recycle_resets_total", "Debounce windows dropped because the stalled pid now names another process (start time changed).", st.DebounceRecycleResets)
	counter(e, "varta_recovery_outstanding_recycle_resets_total", "Always 0: an outstanding entry is a running child, freed only when wait4 reaps it; it cannot go stale.", 0)
	counter(e, "varta_recovery_spawn_budget_exceeded_total", "Loop iterations in which a stall was deferred because the per-iteration spawn budget was spent.", st.SpawnBudgetExceeded)
	counter(e, "varta_recovery_invariant_violations_total", "Recovery-table inserts that found no idle entry, which the table's sizing rules out (should stay 0).", st.InvariantViolations)
	counter(e, "varta_recovery_outstanding_probe_exhausted_total", "Always 0: the recovery table's index probes to an empty bucket and is never more than half full; there is no probe budget.", 0)
	counter(e, "varta_recovery_reap_truncated_total", "Loop iterations whose reap budget ran out before every recovery child was polled.", st.ReapTruncated)
	counter(e, "varta_recovery_audit_dropped_total", "Always 0: audit records are written synchronously, there is no ring to overflow (failed writes count in varta_io_errors_total).", 0)
	counter(e, "varta_recovery_audit_flush_budget_exceeded_total", "Always 0: audit records are written synchronously, there is no ring to flush.", 0)
	e.Family("varta_audit_fsync_seconds", "Wall time of each fdatasync(2) of the recovery audit log.", promtext.TypeHistogram)
	h := st.Fsync
	if h == nil {
		h = emptyFsync
	}
	e.Histogram(h)
	counter(e, "varta_audit_fsync_budget_exceeded_total", "Audit-log fdatasyncs longer than --audit-fsync-budget-ms.", st.FsyncOverBudget)
	counter(e, "varta_audit_rotation_budget_exceeded_total", "Audit-log rotations (by size, or SIGHUP's reopen) longer than --audit-rotation-budget-ms.", st.RotationOverBudget)
	e.Family("varta_audit_ring_watermark_total", "Always 0: audit records are written synchronously, there is no ring to fill.", promtext.TypeCounter)
	e.Label("level", "warn")
	e.Uint(0)
	e.Label("level", "critical")
	e.Uint(0)
}

// emptyFsync stands in before any audit fdatasync.
var emptyFsync = hist()

func renderIO(e *promtext.Encoder, s *Sources) {
	var ctrunc, dirSync, rcvbuf uint64
	if s.Rx != nil {
		ctrunc = s.Rx.CtrlTruncations()
	}
	if s.UDS != nil {
		dirSync, rcvbuf = s.UDS.DirSyncFailures(), uint64(s.UDS.RcvBuf())
	}
	counter(e, "varta_ctrl_truncated_total", "Datagrams whose control data the kernel cut short (MSG_CTRUNC: the sender passed file descriptors).", ctrunc)
	counter(e, "varta_socket_bind_dir_fsync_failed_total", "fsync(2) of the socket's directory after bind that failed.", dirSync)
	gauge(e, "varta_observer_uds_rcvbuf_bytes", "SO_RCVBUF of the observer's Unix socket as the kernel reports it (twice the size asked for, capped by net.core.rmem_max).", rcvbuf)
	e.Family("varta_log_suppressed_total", "Log lines left out by the per-kind rate limit, by upstream's kind (audit_ring_*: always 0, there is no audit ring).", promtext.TypeCounter)
	for i, k := range s.LogKinds {
		e.Label("kind", logKindLabels[i])
		e.Uint(s.Log.Suppressed(k))
	}
	e.Label("kind", "heartbeat_io")
	e.Uint(s.Ops.HeartbeatLogSuppressed())
	e.Label("kind", "audit_ring_warn")
	e.Uint(0)
	e.Label("kind", "audit_ring_critical")
	e.Uint(0)
	var dropped [scrape.NumDropReasons]uint64
	var unauth, exhausted uint64
	if s.Prom != nil {
		dropped, unauth, exhausted = s.Prom.Dropped(), s.Prom.Unauthorized(), s.Prom.Exhausted()
	}
	counter(e, "varta_prom_auth_failures_total", "Metrics requests refused (401) for a missing or wrong bearer token.", unauth)
	e.Family("varta_prom_connections_dropped_total", "Metrics connections closed unserved, by reason: drain (every connection slot busy), rate_limit (the source's token bucket empty), ip_table_full (the per-IP table full of live sources).", promtext.TypeCounter)
	for i, label := range scrape.DropReasons {
		e.Label("reason", label)
		e.Uint(dropped[i])
	}
	counter(e, "varta_scrape_budget_exhausted_total", "Listener wakes that took the per-iteration budget of 8 metrics connections (more wait for the next wake).", exhausted)
	counter(e, "varta_scrape_skipped_total", "Always 0: every scrape renders afresh (rendering is bounded and allocation-free); none is served from a cache.", 0)
	counter(e, "varta_prom_ip_state_probe_exhausted_total", "Always 0: the per-IP table of the metrics rate limit is scanned whole (256 entries); there is no probe budget.", 0)
	counter(e, "varta_prom_pid_row_refused_total", "Always 0: per-pid rows are rendered from the pid table itself; there is no separate row table to refuse one.", 0)
}

var logKindLabels = [3]string{"file_export_io", "audit_io", "prom_serve"}
