package poll

import (
	"runtime"

	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// iterationBounds are the loop-iteration histogram's buckets, in seconds:
// an iteration normally takes microseconds; tens of ms means trouble.
var iterationBounds = []float64{0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5}

// renderMetrics writes the whole exposition of OBSERVER.md §7 into dst. It
// runs on the loop goroutine (promtext calls it from serve) and allocates
// nothing once dst and the scratch slices have grown.
func (o *observer) renderMetrics(dst []byte) []byte {
	e := &o.enc
	e.Reset(dst)
	o.renderPids(e)
	o.renderHealth(e)
	o.renderRecovery(e)
	o.renderSelf(e)
	o.renderOps(e)
	return e.Bytes()
}

// renderPids emits the per-pid families, every tracked pid sorted
// numerically; evicted and retired pids are simply no longer in the table.
func (o *observer) renderPids(e *promtext.Encoder) {
	o.pids = o.pids[:0]
	o.tr.EachSorted(func(s *Slot) { o.pids = append(o.pids, s.Pid) })
	now := o.clock.now()
	e.Family("varta_beats_total", "Heartbeat frames accepted from this pid.", promtext.TypeCounter)
	for _, p := range o.pids {
		e.LabelUint("pid", uint64(p))
		e.Uint(o.tr.Lookup(p).Beats)
	}
	e.Family("varta_stalls_total", "Stalls raised for this pid.", promtext.TypeCounter)
	for _, p := range o.pids {
		e.LabelUint("pid", uint64(p))
		e.Uint(o.tr.Lookup(p).Stalls)
	}
	e.Family("varta_status", "Current status: 0 ok, 1 degraded, 2 critical, 3 stall.", promtext.TypeGauge)
	for _, p := range o.pids {
		e.LabelUint("pid", uint64(p))
		e.Uint(uint64(o.tr.Lookup(p).Effective()))
	}
	e.Family("varta_last_beat_age_seconds", "Seconds since this pid's last accepted beat.", promtext.TypeGauge)
	for _, p := range o.pids {
		e.LabelUint("pid", uint64(p))
		e.Float(float64(now-o.tr.Lookup(p).LastArrival) / 1e9)
	}
}

func counter(e *promtext.Encoder, name, help string, v uint64) {
	e.Family(name, help, promtext.TypeCounter)
	e.Uint(v)
}

func gauge(e *promtext.Encoder, name, help string, v float64) {
	e.Family(name, help, promtext.TypeGauge)
	e.Float(v)
}

func (o *observer) renderHealth(e *promtext.Encoder) {
	c := &o.c
	e.Family("varta_decode_errors_total", "Frames dropped by the decoder, by error kind.", promtext.TypeCounter)
	for _, k := range vlp.DecodeErrors {
		e.Label("kind", k.Label())
		e.Uint(c.DecodeErrors[k])
	}
	counter(e, "varta_truncated_datagrams_total", "Datagrams whose length was not 32 bytes.", c.Truncated)
	counter(e, "varta_frame_auth_failures_total", "Frames refused because the frame pid did not match the kernel's sender pid, or credentials were missing.", c.AuthFailures)
	counter(e, "varta_uid_refused_total", "Frames refused because the sender's uid is not allowed.", c.UIDRefused)
	counter(e, "varta_namespace_refused_total", "Frames refused because the sender is in another pid namespace.", c.NSRefused)
	counter(e, "varta_io_errors_total", "Failed socket receives, event-file writes and recovery audit-log writes.", c.IOErrors)
	e.Family("varta_rate_limited_total", "Beats dropped by rate limits, by reason.", promtext.TypeCounter)
	for r, label := range rateReasonLabels {
		e.Label("reason", label)
		e.Uint(c.RateLimited[r])
	}
	counter(e, "varta_out_of_order_total", "Frames dropped because their nonce was not above the last accepted one.", c.OutOfOrder)
	counter(e, "varta_terminal_replays_total", "Repeated terminal frames dropped.", c.TermReplays)
	counter(e, "varta_origin_conflicts_total", "Frames for a pid tracked from a more trusted transport.", c.OriginClash)
	counter(e, "varta_nonce_wrap_total", "Accepted nonce wrap-arounds.", c.NonceWraps)
	gauge(e, "varta_tracker_capacity", "Size of the fixed pid table.", float64(o.tr.Capacity()))
	gauge(e, "varta_watch_pids_tracked", "Pids in the table now.", float64(o.tr.Len()))
	counter(e, "varta_tracker_capacity_exceeded_total", "New pids dropped because the table was full.", c.CapExceeded)
	counter(e, "varta_tracker_evicted_total", "Pids evicted to make room for new ones.", c.Evictions)
	counter(e, "varta_pids_retired_total", "Pids dropped because their process was replaced (pid recycled).", c.Retired)
	counter(e, "varta_datagrams_received_total", "Datagrams read from the observer's sockets.", c.Received)
	counter(e, "varta_unsolicited_fds_closed_total", "File descriptors sent to the observer and closed unread.", c.ClosedFds)
	o.renderUDP(e)
	var logDropped uint64
	if l, ok := o.cfg.Log.(*LogOutput); ok {
		logDropped = l.Dropped()
	}
	counter(e, "varta_log_lines_dropped_total", "Log lines dropped because standard error had no room (its reader is behind).", logDropped)
	if o.events != nil {
		counter(e, "varta_event_file_dropped_total", "Event lines lost because the event file could not be written.", o.events.Dropped())
	}
	if o.prom != nil {
		counter(e, "varta_metrics_connections_refused_total", "Metrics connections closed because every slot was busy.", o.prom.refused)
		counter(e, "varta_metrics_connections_expired_total", "Metrics connections closed at a read or write deadline.", o.prom.expired)
		counter(e, "varta_metrics_accept_failures_total", "Metrics connections that could not be accepted for want of file descriptors or memory.", o.prom.acceptFailed)
	}
}

func (o *observer) renderRecovery(e *promtext.Encoder) {
	var counts [recovery.NumOutcomes]uint64
	outstanding := 0
	if o.rec != nil {
		counts, outstanding = o.rec.Counts(), o.rec.Outstanding()
	}
	e.Family("varta_recovery_outcomes_total", "Recovery decisions and child outcomes, by outcome.", promtext.TypeCounter)
	for i, label := range recovery.OutcomeLabels {
		e.Label("outcome", label)
		e.Uint(counts[i])
	}
	gauge(e, "varta_recovery_outstanding", "Recovery children running now.", float64(outstanding))
	e.Family("varta_recovery_duration_seconds", "Run time of completed recovery children.", promtext.TypeHistogram)
	e.Histogram(o.recHist)
}

func (o *observer) renderSelf(e *promtext.Encoder) {
	e.Family("varta_observer_iteration_seconds", "Work time of one observer loop iteration (excluding the wait).", promtext.TypeHistogram)
	e.Histogram(o.iterHist)
	gauge(e, "varta_watch_uptime_seconds", "Seconds since the observer started.", float64(o.clock.now()-o.start)/1e9)
	gauge(e, "varta_watch_last_poll_loop_timestamp_seconds", "Unix time of the last completed loop iteration.", float64(o.lastLoopWall)/1e9)
	e.Family("varta_build_info", "Build of this observer; the value is always 1.", promtext.TypeGauge)
	e.Label("version", o.cfg.Version)
	e.Label("goarch", runtime.GOARCH)
	e.Uint(1)
	o.rt.render(e)
}
