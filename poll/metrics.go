package poll

import (
	"runtime"

	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/vlp"
)

// maxExposition bounds the /metrics body for a table of capacity pids:
// the four per-pid rows at their widest (a 10-digit pid, 20-digit counts,
// a float age) and the fixed families with room to spare. The response
// buffer is made this large once, so the body never outgrows it by
// doubling; its pages are resident only as far as a body reaches.
func maxExposition(capacity int) int {
	const perPid = 2*58 + 33 + 72 // beats and stalls, status, age
	const fixed = 64 << 10
	return capacity*perPid + fixed
}

// renderMetrics writes the whole exposition of cmd/varta-watch/README.md
// §7 into dst. It
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
	o.esc.Render(e)
	o.ctl.RenderMetrics(e)
	o.st.Render(e) // upstream's catalogue beyond the families above (package upstats)
	o.decl.Render(e)
	return e.Bytes()
}

// renderPids emits the per-pid families, every tracked pid sorted
// numerically; evicted and retired pids are simply no longer in the table.
// The pid order is computed once, as slot ids, and each family walks it.
func (o *observer) renderPids(e *promtext.Encoder) {
	o.sorted = o.tr.AppendSorted(o.sorted[:0])
	now := o.clock.now()
	e.Family("varta_beats_total", "Heartbeat frames accepted from this pid.", promtext.TypeCounter)
	for _, id := range o.sorted {
		s := o.tr.Get(id)
		e.LabelUint("pid", uint64(s.Pid))
		e.Uint(s.Beats)
	}
	e.Family("varta_stalls_total", "Stalls raised for this pid.", promtext.TypeCounter)
	for _, id := range o.sorted {
		s := o.tr.Get(id)
		e.LabelUint("pid", uint64(s.Pid))
		e.Uint(s.Stalls)
	}
	e.Family("varta_status", "Current status: 0 ok, 1 degraded, 2 critical, 3 stall.", promtext.TypeGauge)
	for _, id := range o.sorted {
		s := o.tr.Get(id)
		e.LabelUint("pid", uint64(s.Pid))
		e.Uint(uint64(s.Effective()))
	}
	e.Family("varta_last_beat_age_seconds", "Seconds since this pid's last accepted beat.", promtext.TypeGauge)
	for _, id := range o.sorted {
		s := o.tr.Get(id)
		e.LabelUint("pid", uint64(s.Pid))
		e.Float(float64(now-s.LastArrival) / 1e9)
	}
	e.Family("varta_agent_info", "Who each tracked pid is: its process name and program as the kernel shows them (bytes the agent chose), and the transport; always 1.", promtext.TypeGauge)
	for _, id := range o.sorted {
		s := o.tr.Get(id)
		e.LabelUint("pid", uint64(s.Pid))
		e.LabelBytes("name", s.NameBytes())
		exe := o.paths.Get(s.Exe)
		if exe == nil {
			exe = s.NameBytes() // an unreadable program path falls back to the name
		}
		e.LabelBytes("exe", exe)
		e.Label("origin", s.Origin.String())
		e.Uint(1)
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
	counter(e, "varta_frame_namespace_mismatch_total", "Frames refused because the sender is in another pid namespace.", c.NSRefused)
	counter(e, "varta_io_errors_total", "Failed socket receives, event-file writes and recovery audit-log writes.", c.IOErrors)
	e.Family("varta_rate_limited_total", "Beats dropped by rate limits, by reason.", promtext.TypeCounter)
	for r, label := range rateReasonLabels {
		e.Label("reason", label)
		e.Uint(c.RateLimited[r])
	}
	counter(e, "varta_out_of_order_total", "Frames dropped because their nonce was not above the last accepted one.", c.OutOfOrder)
	counter(e, "varta_terminal_replays_total", "Repeated terminal frames dropped.", c.TermReplays)
	counter(e, "varta_origin_conflict_total", "Frames for a pid tracked from a more trusted transport.", c.OriginClash)
	counter(e, "varta_nonce_wrap_total", "Accepted nonce wrap-arounds.", c.NonceWraps)
	gauge(e, "varta_tracker_capacity", "Size of the fixed pid table.", float64(o.tr.Capacity()))
	gauge(e, "varta_watch_pids_tracked", "Pids in the table now.", float64(o.tr.Len()))
	counter(e, "varta_tracker_capacity_exceeded_total", "New pids dropped because the table was full.", c.CapExceeded)
	counter(e, "varta_tracker_evicted_total", "Pids evicted to make room for new ones.", c.Evictions)
	counter(e, "varta_stalls_unverifiable_total", "Stalls raised while /proc could not say whether the pid still names the agent (out of file descriptors, say); no recovery runs for them.", c.Unverifiable)
	counter(e, "varta_agents_recovered_total", "Stalled agents that beat again (each ends one stall).", c.Recovered)
	counter(e, "varta_pids_retired_total", "Pids dropped at stall time because their process was replaced (pid recycled).", c.Retired)
	counter(e, "varta_tracker_pid_recycle_total", "Pid recycling caught: frames dropped because they were queued before their pid's current process started (the sender exited and its pid was reused before the frame was read), and tracked pids found to name a new process (start time changed) at stall time or at a beat.", c.PidRecycled+o.guard.Recycled())
	counter(e, "varta_tracker_pid_unverifiable_total", "Frames whose sender could not be told from their pid's current process (queued within a clock tick of its start, or across a wall-clock step); a session they open is never recovered until a later frame verifies it.", o.guard.Unverifiable())
	counter(e, "varta_datagrams_received_total", "Datagrams read from the observer's sockets.", c.Received)
	counter(e, "varta_unsolicited_fds_closed_total", "File descriptors sent to the observer and closed unread.", c.ClosedFds)
	o.renderUDP(e)
	o.sdn.Render(e)
	var logDropped uint64
	if l, ok := o.cfg.Log.(interface{ Dropped() uint64 }); ok {
		logDropped = l.Dropped()
	}
	counter(e, "varta_log_lines_dropped_total", "Log lines dropped because standard error (or the syslog daemon) had no room.", logDropped)
	if o.events != nil {
		counter(e, "varta_event_file_dropped_total", "Event lines lost because the event file could not be written.", o.events.Dropped())
	}
	if o.prom != nil {
		expired, acceptFailed, evicted := o.prom.Counts()
		counter(e, "varta_metrics_connections_expired_total", "Metrics connections closed at a read or write deadline.", expired)
		counter(e, "varta_metrics_accept_failures_total", "Metrics connections that could not be accepted for want of file descriptors or memory.", acceptFailed)
		counter(e, "varta_metrics_connections_evicted_total", "Metrics connections closed before completing a request, to make room for a new one when every slot was busy.", evicted)
	}
}

func (o *observer) renderRecovery(e *promtext.Encoder) {
	outstanding, sigFailed := 0, uint64(0)
	if o.rec != nil {
		outstanding = o.rec.Outstanding()
		sigFailed, _ = o.rec.SignalFailures()
	}
	gauge(e, "varta_recovery_outstanding", "Recovery children running now.", float64(outstanding))
	counter(e, "varta_recovery_signal_failures_total", "Signals to a recovery command's process group that the kernel refused (EPERM: the command changed its credentials).", sigFailed)
	e.Family("varta_recovery_duration_seconds", "Run time of completed recovery children.", promtext.TypeHistogram)
	e.Histogram(o.recHist)
	if seq, head, ok := o.rec.AuditHead(); ok {
		e.Family("varta_audit_last_seq", "Seq of the last record written to the recovery audit log.", promtext.TypeGauge)
		e.Uint(seq)
		e.Family("varta_audit_chain_info", "Always 1; head is the first 16 hex digits of the audit log's last chain value.", promtext.TypeGauge)
		e.Label("head", head)
		e.Uint(1)
	}
}

func (o *observer) renderSelf(e *promtext.Encoder) {
	var wakes uint64
	if o.fds != nil {
		wakes = o.fds.Wakes()
	}
	counter(e, "varta_loop_wakes_total", "Times the observer loop woke from a sleep; each wake runs one or more iterations (varta_observer_iteration_seconds_count).", wakes)
	gauge(e, "varta_watch_uptime_seconds", "Seconds since the observer started.", float64(o.clock.now()-o.start)/1e9)
	gauge(e, "varta_watch_last_poll_loop_timestamp_seconds", "Unix time of the last completed loop iteration.", float64(o.lastLoopWall)/1e9)
	e.Family("varta_build_info", "Build of this observer; the value is always 1.", promtext.TypeGauge)
	e.Label("version", o.cfg.Version)
	e.Label("goarch", runtime.GOARCH)
	e.Uint(1)
}

// renderUDP emits the UDP families: upstream's always (at 0 without a
// listener), ours from the first scrape when a listener is configured.
func (o *observer) renderUDP(e *promtext.Encoder) {
	u, c, attempts := o.udp, udpCounters{}, uint64(0) // upstream's families at 0 without a listener
	if u != nil {
		c, attempts = u.c, u.sec.Attempts()
	}
	counter(e, "varta_frame_decrypt_failures_total", "Secure UDP frames that no accepted key authenticates.", c.Decrypt)
	counter(e, "varta_secure_replay_refused_total", "Secure UDP frames dropped as replays by the replay table.", c.Replays)
	counter(e, "varta_sender_state_full_total", "Secure UDP frames from new senders refused because the replay table was full of live senders.", c.TableFull)
	counter(e, "varta_secure_aead_attempts_total", "ChaCha20-Poly1305 openings tried (one per key tried on a shared-key frame, the first that authenticates ends the trial; one per master-key frame).", attempts)
	if u == nil {
		return
	}
	counter(e, "varta_udp_plaintext_refused_total", "Plain 32-byte UDP frames refused because --i-accept-plaintext-udp is not set.", c.PlainRefused)
	counter(e, "varta_udp_agent_pid_mismatch_total", "Master-key UDP frames whose inner pid differs from agent_pid (also counted in varta_frame_auth_failures_total).", c.AgentPid)
	var senders, capacity int
	if u.replay != nil {
		senders, capacity = u.replay.Len(), u.replay.Cap()
	}
	gauge(e, "varta_udp_senders", "Secure UDP senders in the replay table now.", float64(senders))
	gauge(e, "varta_udp_senders_capacity", "Size of the fixed secure UDP replay table.", float64(capacity))
	counter(e, "varta_udp_agent_key_derivations_total", "Master-key agent keys derived (one per new agent; a steady rise means churn or forged agent_pids).", u.sec.Derivations())
}

// renderOps emits the families of exit detection, parent beats and the
// hardware watchdog.
func (o *observer) renderOps(e *promtext.Encoder) {
	exits, watched, _ := o.exits.Counts()
	counter(e, "varta_agent_exits_total", "Kernel-attested agents found dead (pidfd, or /proc at stall time).", exits)
	gauge(e, "varta_exit_watch_pids", "Agents whose exit is watched through a pidfd.", float64(watched))
	e.Family("varta_parent_beats_total", "Frames claiming the sender's parent pid (--allow-parent-beats), by result.", promtext.TypeCounter)
	for r, label := range parentResultLabels {
		e.Label("result", label)
		e.Uint(o.c.Parent[r])
	}
	kicks, kickErrs := o.ops.HWKicks()
	counter(e, "varta_hw_watchdog_kicks_total", "Keep-alive writes to the hardware watchdog.", kicks)
	counter(e, "varta_hw_watchdog_errors_total", "Failed keep-alive writes to the hardware watchdog.", kickErrs)
}
