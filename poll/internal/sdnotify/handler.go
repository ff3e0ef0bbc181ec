package sdnotify

import (
	"time"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/wait"
	"github.com/varta-go/varta/vlp"
)

const (
	// MaxMessage is the receive buffer of one message. systemd's own is
	// a page or so larger; a notify message is a few short lines, and a
	// longer one is dropped and counted as truncated, never parsed in
	// part.
	MaxMessage = 4096
	// Batch is the most messages one recvmmsg returns; batchesPerWake
	// bounds the calls per wake, so a flood cannot hold the loop.
	Batch          = 8
	batchesPerWake = 16
	// stoppedMax is how many processes that sent STOPPING=1 are
	// remembered, so that their later messages do not track them again.
	stoppedMax = 32
)

// The bounds of --threshold-ms (cmd/varta-watch/flags_table.go), which a
// WATCHDOG_USEC= is clamped to.
const (
	MinThreshold = int64(10 * time.Millisecond)
	MaxThreshold = int64(7 * 24 * time.Hour)
)

// systemdNotify is the name (comm) of systemd's notify client, which
// sends from its own short-lived pid on behalf of the shell that ran it.
const systemdNotify = "systemd-notify"

// Config connects a Handler to the observer.
type Config struct {
	Path    string // the socket; "" means no notify socket
	Mode    uint32 // its file mode (--socket-mode)
	Tracker *track.Tracker
	Log     *sink.Logger
	LogKind sink.LogKind // the rate-limited log kind of refused messages
	// Track is the observer's beat path: it observes f, arriving from a
	// kernel-attested sender, and does all an accepted beat entails
	// (counters, event line, exit watch); it reports whether the tracker
	// accepted it.
	Track func(f vlp.Frame, origin track.Origin, now int64) bool
	// Other judges a message whose pid is not its sender's, as the VLP
	// socket's frames are judged (parent beats, pid namespaces): false
	// refuses it (counted and logged there); it may rewrite f.Pid.
	Other func(now int64, f *vlp.Frame, sender uint32) bool
	// Allowed says whether a sender's uid may beat (--allow-uid).
	Allowed func(uid uint32) bool
}

// Bad reasons: why a message was dropped.
const (
	BadMalformed     = iota // a line not KEY=VALUE, a known key's bad value, a NUL byte, or no line at all
	BadUsec                 // WATCHDOG_USEC= was 0, not a number, or too large
	BadNoCredentials        // no SCM_CREDENTIALS came with it
	BadUID                  // the sender's uid is not allowed (--allow-uid)
	BadSenderGone           // systemd-notify exited before its parent could be read
	BadAfterStopping        // the process sent STOPPING=1 before
	BadRateLimited          // over --max-beat-rate or --global-beat-rate
	BadRefused              // the beat path refused it (counted there too: origin, capacity, parent, namespace)
	NumBad
)

// BadLabels are the reason label values of varta_notify_bad_total.
var BadLabels = [NumBad]string{"malformed", "watchdog_usec", "no_credentials", "uid", "sender_gone",
	"after_stopping", "rate_limited", "refused"}

// Counters are the notify socket's, for metrics.
type Counters struct {
	Kinds      [NumKinds]uint64 // lines of each known kind, in messages that were not dropped
	Unknown    uint64           // lines with a key systemd does not define
	Truncated  uint64           // messages longer than MaxMessage, dropped
	Bad        [NumBad]uint64   // messages dropped (or, for malformed and watchdog_usec, lines ignored)
	Rounded    uint64           // WATCHDOG_USEC= thresholds rounded: every threshold class was in use
	RecvErrors uint64           // failed receives
	ClosedFds  uint64           // descriptors passed (BARRIER=1) and closed
	Stopped    uint64           // agents that stopped in order (STOPPING=1)
	Triggered  uint64           // stalls asked for (WATCHDOG=trigger)
	Thresholds uint64           // WATCHDOG_USEC= thresholds applied
}

// stoppedProc is a process that sent STOPPING=1.
type stoppedProc struct {
	pid   uint32
	start uint64
}

// Handler owns the notify socket and applies its messages.
type Handler struct {
	cfg     Config
	uds     *listen.UDS
	rx      *listen.Receiver
	msg     Message
	frame   vlp.Frame // the beat of the message being handled
	nonce   uint64    // the last nonce given to a message's beat
	stopped [stoppedMax]stoppedProc
	nstop   int // next entry of stopped to overwrite
	c       Counters
}

// Listen binds the notify socket at cfg.Path with the VLP socket's path
// checks (listen.ListenUDS); it returns nil and no error for an empty
// path.
func Listen(cfg Config) (*Handler, error) {
	if cfg.Path == "" {
		return nil, nil
	}
	u, err := listen.ListenUDS(cfg.Path, cfg.Mode)
	if e, ok := err.(*sysfile.Error); ok {
		e.What = "--notify-socket" // which of the two sockets failed
	}
	if err != nil {
		return nil, err
	}
	h := &Handler{cfg: cfg, uds: u, rx: listen.NewReceiverSize(u.Fd(), Batch, MaxMessage)}
	h.rx.SetKeepFds(true)
	return h, nil
}

// Close closes and unlinks the socket; nil-safe.
func (h *Handler) Close() {
	if h != nil {
		h.uds.Close()
	}
}

// Register puts the socket into the loop's wait; nil-safe.
func (h *Handler) Register(w wait.Waiter) {
	if h != nil {
		w.Add(h.uds.Fd(), wait.In, 0, h, 0)
	}
}

// Counts returns the counters.
func (h *Handler) Counts() *Counters { return &h.c }

// Ready drains the socket in bounded batches (wait.Handler). Descriptors
// passed with the messages (BARRIER=1's pipe) are closed once their batch
// was handled: the sender learns that every message before was read.
func (h *Handler) Ready(_ int32, _ int16, now int64) {
	for b := 0; b < batchesPerWake; b++ {
		n, err := h.rx.Recv()
		if err != nil {
			h.c.RecvErrors++
			h.cfg.Log.Limited(h.cfg.LogKind, now, "receiving from the notify socket failed", sink.Err(err))
			return
		}
		for i := range n {
			h.handle(i, now)
		}
		h.rx.CloseKeptFds()
		h.c.ClosedFds = h.rx.ClosedFds()
		if n < Batch {
			return
		}
	}
}

// handle applies message i of the current batch.
func (h *Handler) handle(i int, now int64) {
	if h.rx.Truncated(i) {
		h.c.Truncated++
		h.warn(now, "dropped a notify message longer than the receive buffer", sink.Num("bytes", int64(h.rx.Len(i))),
			sink.Num("max", MaxMessage))
		return
	}
	sender, uid, _, ok := h.rx.Cred(i)
	switch {
	case !ok:
		h.drop(now, BadNoCredentials, sender, "notify message without kernel credentials")
		return
	case !h.cfg.Allowed(uid):
		h.drop(now, BadUID, sender, "notify message from a uid not allowed (see --allow-uid)")
		return
	}
	m := &h.msg
	Parse(h.rx.Data(i), m)
	h.c.Unknown += uint64(m.Unknown)
	if m.Bad > 0 {
		h.c.Bad[BadMalformed]++
		if m.BadUsec {
			h.c.Bad[BadUsec]++
		}
		h.warn(now, "notify message with lines that are not KEY=VALUE or values out of range; they are ignored",
			sink.Num("pid", int64(sender)), sink.Num("bad_lines", int64(m.Bad)))
	}
	if m.Lines == 0 {
		return // nothing but bad lines: no message of any kind
	}
	h.apply(m, sender, now)
}

// apply finds whose message m is, beats when it says so (or when it
// starts the pid's tracking), then applies the rest to the pid's slot.
func (h *Handler) apply(m *Message, sender uint32, now int64) {
	tr := h.cfg.Tracker
	claim := sender
	if m.MainPid != 0 {
		claim = m.MainPid
	}
	id := tr.ID(claim)
	if id == track.NoSlot && claim == sender && sender != 0 {
		var ok bool
		if claim, ok = h.onBehalf(sender); !ok {
			h.drop(now, BadSenderGone, sender, "systemd-notify exited before its parent could be read (let systemd-notify wait for its barrier)")
			return
		}
		id = tr.ID(claim)
	}
	if id == track.NoSlot && claim != 0 && h.stoppedBefore(claim) {
		h.drop(now, BadAfterStopping, claim, "notify message from an agent that sent STOPPING=1; not tracking it again")
		return
	}
	if m.Watchdog == WatchdogPing || m.HasUsec || id == track.NoSlot {
		// A beat: WATCHDOG=1, WATCHDOG_USEC= (which restarts the timer,
		// as systemd's does), or the first message of any kind.
		f := &h.frame // Other takes a pointer: a local would move to the heap
		*f = vlp.Frame{Status: vlp.Ok, Pid: claim, Nonce: h.nextNonce(now)}
		if (claim != sender || sender == 0) && !h.cfg.Other(now, f, sender) {
			h.c.Bad[BadRefused]++
			return
		}
		if !h.cfg.Track(*f, track.OriginUDS, now) {
			h.c.Bad[BadRefused]++
			return
		}
		claim = f.Pid
		id = tr.ID(claim)
	} else if v := tr.Charge(id, now); v != track.VerdictAccepted {
		h.drop(now, BadRateLimited, claim, "notify message over the rate limit (see --max-beat-rate, --global-beat-rate)")
		return
	}
	for k, n := range m.Kinds {
		h.c.Kinds[k] += uint64(n)
	}
	h.slot(m, id, now)
}

// slot applies what m says about the agent in slot id beyond its beat.
func (h *Handler) slot(m *Message, id track.SlotID, now int64) {
	tr := h.cfg.Tracker
	s := tr.Get(id)
	if m.HasStatus {
		tr.SetText(id, m.Status)
	}
	if m.HasUsec {
		h.threshold(id, m.Usec, now)
	}
	if m.Watchdog == WatchdogTrigger && tr.Trigger(id) {
		h.c.Triggered++
		h.cfg.Log.Info("agent asked for its stall (WATCHDOG=trigger)", sink.Num("pid", int64(s.Pid)))
	}
	if m.Stopping {
		h.c.Stopped++
		// Its start time tells this process from a later one on the pid.
		if st, ok := listen.ProcStartTime(s.Pid); ok {
			h.stopped[h.nstop] = stoppedProc{pid: s.Pid, start: st}
			h.nstop = (h.nstop + 1) % stoppedMax
		}
		h.cfg.Log.Info("agent is stopping (STOPPING=1); no longer tracked", sink.Num("pid", int64(s.Pid)))
		tr.Remove(s.Pid)
	}
}

// threshold gives the agent its own threshold: usec µs clamped to the
// bounds of --threshold-ms.
func (h *Handler) threshold(id track.SlotID, usec uint64, now int64) {
	tr := h.cfg.Tracker
	thr := MaxThreshold
	if usec < uint64(MaxThreshold/1000) {
		thr = max(int64(usec)*1000, MinThreshold)
	}
	if thr != int64(usec)*1000 {
		h.warn(now, "WATCHDOG_USEC= outside the bounds of --threshold-ms; clamped", sink.Num("pid", int64(tr.Get(id).Pid)),
			sink.Num("usec", int64(min(usec, 1<<63-1))), sink.Num("threshold_ms", thr/1e6))
	}
	old := tr.SlotThreshold(id)
	h.c.Thresholds++
	if tr.SetThreshold(id, thr) == track.FitRounded {
		h.c.Rounded++
		h.warn(now, "every threshold class is in use; the agent's threshold was rounded to the nearest one not above it",
			sink.Num("pid", int64(tr.Get(id).Pid)), sink.Num("asked_ms", thr/1e6), sink.Num("threshold_ms", tr.SlotThreshold(id)/1e6))
	} else if got := tr.SlotThreshold(id); got != old {
		h.cfg.Log.Info("agent set its own threshold (WATCHDOG_USEC=)", sink.Num("pid", int64(tr.Get(id).Pid)),
			sink.Num("threshold_ms", got/1e6))
	}
}

// onBehalf is the pid a message from an untracked sender is for: the
// sender's own, or, when the sender is systemd-notify, its parent's (the
// shell script that ran it). false: systemd-notify is gone already.
func (h *Handler) onBehalf(sender uint32) (uint32, bool) {
	var comm [listen.CommMax]byte
	n, ok := listen.ProcComm(sender, &comm)
	if !ok || string(comm[:n]) != systemdNotify {
		return sender, true // an agent that is gone is judged by the beat path, as a VLP sender's is
	}
	return listen.ProcParentPid(sender)
}

// stoppedBefore reports whether pid's process sent STOPPING=1; an entry
// whose pid now names another process is forgotten.
func (h *Handler) stoppedBefore(pid uint32) bool {
	for k := range h.stopped {
		e := &h.stopped[k]
		if e.pid != pid {
			continue
		}
		if st, ok := listen.ProcStartTime(pid); ok && st == e.start {
			return true
		}
		*e = stoppedProc{}
	}
	return false
}

// nextNonce is a rising nonce for a message's beat: the observer's clock,
// and at least one more than the last, so that two messages read at the
// same time are both new.
func (h *Handler) nextNonce(now int64) uint64 {
	h.nonce = max(h.nonce+1, uint64(max(now, 0)))
	return h.nonce
}

// drop counts a dropped message under reason and logs it, rate limited.
func (h *Handler) drop(now int64, reason int, pid uint32, msg string) {
	h.c.Bad[reason]++
	h.warn(now, msg, sink.Num("pid", int64(pid)), sink.Str("reason", BadLabels[reason]))
}

func (h *Handler) warn(now int64, msg string, fs ...sink.Field) {
	h.cfg.Log.Limited(h.cfg.LogKind, now, msg, fs...)
}
