package poll

import (
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// exitWatch notices the death of kernel-attested (UDS) agents within
// milliseconds instead of at their stall threshold (OBSERVER.md §3,
// --on-exit).
//
// For each UDS session the observer opens a pidfd (pidfd_open(2), Linux
// 5.3+) when its first frame is accepted and checks that it names the
// process that sent that frame: the pid's start time read after the open
// must equal the one the tracker recorded at the first beat. A pidfd
// becomes readable when its process exits.
//
// The pidfds are not put in the loop's poll set one by one: with up to
// --tracker-capacity (65536) of them, every ppoll would cost the kernel
// that many file lookups, on every wake-up, to learn about a rare event.
// They go into one epoll instance instead, and the epoll fd is a single
// entry of the poll set: readable when any agent died, and epoll_wait(2)
// says which. The cost of a wait stays O(1) in the number of agents; each
// new agent costs one pidfd_open, one /proc read and one epoll_ctl, and
// each pidfd is removed from the epoll set by its close(2).
//
// Tables: entries has one element per tracker slot, at the slot's index
// (Tracker.IndexOf), so a pidfd event finds its slot without a lookup, and
// the table never grows. An entry remembers the (pid, start time) it was
// opened for; an event whose slot now holds another session is stale and
// only closes its fd.
//
// Where pidfds are unavailable (ENOSYS on older kernels, EPERM under a
// seccomp filter, EMFILE when the fd limit is reached, or a pid whose
// identity cannot be confirmed), death is noticed when the stall is
// raised: the tracker re-reads /proc/PID/stat then and marks a vanished
// process Gone (exitAtStall). A zombie still has its /proc entry, so that
// fallback does not see an agent whose parent has not reaped it; a pidfd
// does.
type exitWatch struct {
	policy    ExitPolicy
	ep        int               // epoll fd holding every live pidfd; -1 without pidfds
	entries   []exitEntry       // one per tracker slot, same index
	events    []unix.EpollEvent // epoll_wait buffer
	ev        unix.EpollEvent   // epoll_ctl argument, kept here so it never escapes
	pfd       int               // index of ep in this iteration's poll set, -1 when absent
	watched   int               // live pidfds
	pending   []exitPending     // exits whose recovery was deferred, see exitRecheck
	dead      []int32           // slots found dead when their watch began, reported by reapExits
	exits     uint64            // varta_agent_exits_total
	fallbacks uint64            // sessions left to the /proc check at stall time
}

// exitEntry is the exit state of the session in the tracker slot with the
// same index.
type exitEntry struct {
	pid       uint32
	start     uint64 // the session's process start time
	fd        int32  // pidfd, -1 when none
	reported  bool   // the exit event was written
	dead      bool   // queued on exitWatch.dead
	gaspBeats uint64 // the slot's Beats right after its last dying gasp; 0 none
}

type exitPending struct {
	pid   uint32
	start uint64
}

// exitEventsPerTick bounds the deaths handled per iteration; epoll is
// level-triggered, so the rest are found on the next one.
const exitEventsPerTick = 64

// newExitWatch prepares exit detection, or returns nil when /proc does not
// show the observer itself: without it no identity can be checked.
func newExitWatch(o *observer, policy ExitPolicy) *exitWatch {
	if _, ok := ProcStartTime(uint32(unix.Getpid())); !ok {
		o.log.warn("exit detection is off: /proc does not show this process")
		return nil
	}
	n := o.tr.Capacity()
	x := &exitWatch{policy: policy, ep: -1, entries: make([]exitEntry, n),
		events: make([]unix.EpollEvent, exitEventsPerTick), pfd: -1, pending: make([]exitPending, 0, n),
		dead: make([]int32, 0, n)}
	for i := range x.entries {
		x.entries[i].fd = -1
	}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		x.disable(o, os.NewSyscallError("epoll_create1", err))
		return x
	}
	x.ep = ep
	// Probe once on ourselves rather than discover ENOSYS per agent.
	if fd, err := unix.PidfdOpen(unix.Getpid(), 0); err != nil {
		x.disable(o, os.NewSyscallError("pidfd_open", err))
	} else {
		unix.Close(fd)
	}
	return x
}

// disable falls back to /proc checks at stall time for good.
func (x *exitWatch) disable(o *observer, err error) {
	if x.ep >= 0 {
		for i := range x.entries {
			x.unwatch(&x.entries[i])
		}
		unix.Close(x.ep)
		x.ep = -1
	}
	o.log.warn("pidfds are unavailable: an agent's exit is noticed when its stall is raised (through /proc), not at once",
		str("err", err.Error()))
}

func (x *exitWatch) unwatch(e *exitEntry) {
	if e.fd >= 0 {
		unix.Close(int(e.fd))
		e.fd = -1
		x.watched--
	}
}

func (x *exitWatch) close() {
	if x.ep >= 0 {
		for i := range x.entries {
			x.unwatch(&x.entries[i])
		}
		unix.Close(x.ep)
		x.ep = -1
	}
}

// exitOf returns the exit watch, or nil when exit detection is off.
func (o *observer) exitOf() *exitWatch {
	if o.ops == nil {
		return nil
	}
	return o.ops.exit
}

// addExitPollFd appends the epoll fd to the loop's poll set while any
// agent is watched.
func (o *observer) addExitPollFd(pfds []unix.PollFd) []unix.PollFd {
	x := o.exitOf()
	if x == nil {
		return pfds
	}
	if x.ep < 0 || x.watched == 0 {
		x.pfd = -1
		return pfds
	}
	x.pfd = len(pfds)
	return append(pfds, unix.PollFd{Fd: int32(x.ep), Events: unix.POLLIN})
}

// exitObserved follows the tracker after Observe: a new session gets its
// entry (and, for a UDS one, its pidfd); a dying gasp is remembered so
// the exit event can show it.
func (o *observer) exitObserved(v Verdict, f *vlp.Frame, origin Origin, now int64) {
	x := o.exitOf()
	if x == nil || !v.Accepted() {
		return
	}
	i := o.tr.IndexOf(f.Pid)
	if i < 0 {
		return
	}
	s, e := o.tr.At(i), &x.entries[i]
	newSession := s.Beats == 1
	if newSession {
		x.unwatch(e)
		*e = exitEntry{pid: s.Pid, start: s.StartTime, fd: -1}
	}
	if f.Nonce == vlp.NonceTerminal {
		e.gaspBeats = s.Beats
	}
	if newSession && origin == OriginUDS {
		o.watchExit(i, now)
	}
}

// watchExit opens and checks a pidfd for the session in slot i.
func (o *observer) watchExit(i int32, now int64) {
	x, s := o.ops.exit, o.tr.At(i)
	e := &x.entries[i]
	if x.ep < 0 {
		x.fallbacks++
		return
	}
	fd, err := unix.PidfdOpen(int(s.Pid), 0)
	switch {
	case err == unix.ESRCH: // the sender is gone already
		x.markDead(i)
		return
	case err == unix.ENOSYS || err == unix.EPERM:
		x.fallbacks++
		x.disable(o, os.NewSyscallError("pidfd_open", err))
		return
	case err != nil: // EMFILE, ENFILE, ENOMEM: this agent only
		x.fallbacks++
		o.opsLog(opsLogExit, now, "cannot watch an agent's exit with a pidfd; its exit is noticed at stall time",
			os.NewSyscallError("pidfd_open", err))
		return
	}
	// The pidfd names whatever process has the pid now; it is the agent
	// only if that process started when the agent did.
	st, ok := ProcStartTime(s.Pid)
	if !ok || !s.HasStartTime || st != s.StartTime {
		unix.Close(fd)
		x.markDead(i)
		return
	}
	x.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: i}
	if err := unix.EpollCtl(x.ep, unix.EPOLL_CTL_ADD, fd, &x.ev); err != nil {
		unix.Close(fd)
		x.fallbacks++
		o.opsLog(opsLogExit, now, "cannot watch an agent's exit with a pidfd; its exit is noticed at stall time",
			os.NewSyscallError("epoll_ctl", err))
		return
	}
	e.fd = int32(fd)
	x.watched++
}

// markDead queues slot i, whose process was gone when its watch began
// (a one-shot sender), for reapExits: the report waits until the rest of
// the receive batch, which may hold the agent's dying gasp, is handled.
func (x *exitWatch) markDead(i int32) {
	if e := &x.entries[i]; !e.dead && len(x.dead) < cap(x.dead) {
		e.dead = true
		x.dead = append(x.dead, i)
	}
}

// reapExits reports the agents found dead since the last call: those
// queued by markDead and those whose pidfd became readable. It runs after
// receive, so frames sent before a death are handled before it is.
func (o *observer) reapExits(now int64) {
	x := o.exitOf()
	if x == nil {
		return
	}
	for _, i := range x.dead {
		e, s := &x.entries[i], o.tr.At(i)
		queued := e.dead
		e.dead = false
		if queued && s.Pid == e.pid && s.StartTime == e.start {
			o.agentExited(i, now, false)
		}
	}
	x.dead = x.dead[:0]
	if x.pfd < 0 || x.pfd >= len(o.pfds) || o.pfds[x.pfd].Revents == 0 {
		return
	}
	n, err := unix.EpollWait(x.ep, x.events, 0)
	if err != nil {
		return // EINTR: the next iteration asks again
	}
	for k := range n {
		i := x.events[k].Fd
		if i < 0 || int(i) >= len(x.entries) || x.entries[i].fd < 0 {
			continue
		}
		e, s := &x.entries[i], o.tr.At(i)
		x.unwatch(e)
		if s.Pid != e.pid || s.StartTime != e.start {
			*e = exitEntry{fd: -1} // the slot moved on; nothing to report
			continue
		}
		o.agentExited(i, now, false)
	}
}

// exitAtStall is the /proc fallback, called for each stall raised: a
// stalled UDS agent whose process is gone (or whose pidfd already fired)
// has exited. The stall has already been handed to recovery.
func (o *observer) exitAtStall(ev *StallEvent, now int64) {
	x := o.exitOf()
	if x == nil || ev.Retired || ev.Slot.Origin != OriginUDS {
		return
	}
	i := o.tr.IndexOf(ev.Pid)
	if i < 0 {
		return
	}
	e := &x.entries[i]
	if e.pid != ev.Pid || e.start != ev.Slot.StartTime {
		x.unwatch(e)
		*e = exitEntry{pid: ev.Pid, start: ev.Slot.StartTime, fd: -1}
	}
	if ev.Gone || e.reported {
		o.agentExited(i, now, true)
	}
}

// agentExited reports the death of the agent in slot i once, then applies
// --on-exit recover: run recovery now (unless the stall already did) and
// drop the slot, whose metrics rows disappear with it.
//
// The exit line repeats the agent's last accepted frame: its nonce, status
// and payload. When that frame was a dying gasp, the nonce column holds
// the terminal marker 18446744073709551615 (vlp.NonceTerminal), exactly as
// the gasp's own beat line did, and the status is the gasp's (critical).
func (o *observer) agentExited(i int32, now int64, atStall bool) {
	x, s := o.ops.exit, o.tr.At(i)
	e := &x.entries[i]
	x.unwatch(e)
	if !e.reported {
		e.reported = true
		x.exits++
		gasp := e.gaspBeats != 0 && e.gaspBeats == s.Beats
		nonce := s.LastNonce
		if gasp {
			nonce = vlp.NonceTerminal
		}
		o.events.Exit(now, s.Pid, nonce, s.Status, s.Payload)
		o.log.warn("agent exited", num("pid", int64(s.Pid)), num("last_nonce", int64(s.LastNonce)),
			str("dying_gasp", yesNo(gasp)), num("silent_ms", (now-s.LastArrival)/1e6))
	}
	if x.policy != ExitRecover {
		return
	}
	pid, start, stalled := s.Pid, s.StartTime, s.Stalled || atStall
	o.tr.Remove(pid)
	*e = exitEntry{fd: -1}
	if o.rec == nil || stalled {
		return // a stall of this process already went to recovery
	}
	if st, ok := ProcStartTime(pid); ok && st != start {
		o.log.info("not recovering an exited agent: its pid already belongs to another process", num("pid", int64(pid)))
		return
	}
	if o.rec.OnStall(int32(pid), start, true, now) == recovery.OutcomeDeferred {
		x.deferExit(pid, start)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// deferExit remembers an exit whose recovery the spawn budget deferred:
// its slot is gone, so the usual recheck (still tracked, still stalled)
// would call it stale. Bounded like recovery's own queue; the oldest goes
// first when full.
func (x *exitWatch) deferExit(pid uint32, start uint64) {
	if len(x.pending) == cap(x.pending) {
		x.pending = x.pending[:copy(x.pending, x.pending[1:])]
	}
	x.pending = append(x.pending, exitPending{pid: pid, start: start})
}

// exitRecheck answers recovery's recheck for a deferred exit: true when
// (pid, start) exited and no other process has taken the pid since.
func (o *observer) exitRecheck(pid uint32, start uint64) bool {
	x := o.exitOf()
	if x == nil {
		return false
	}
	for k, p := range x.pending {
		if p.pid == pid && p.start == start {
			x.pending = append(x.pending[:k], x.pending[k+1:]...)
			st, ok := ProcStartTime(pid)
			return !ok || st == start
		}
	}
	return false
}
