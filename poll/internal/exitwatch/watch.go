package exitwatch

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/enum"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/ring"
)

// Policy is --on-exit.
type Policy uint8

const (
	// Report writes an exit event and counts it as soon as a
	// kernel-attested agent is found dead; nothing else changes: the
	// slot stays and stalls at its threshold as before, so recovery runs
	// when it always did.
	Report Policy = iota
	// Recover reports the exit, runs recovery at once (unless the agent
	// had already stalled, which ran it) and removes the pid's slot.
	Recover
	// Ignore turns exit detection off: no pidfds, no exit events.
	Ignore
)

var policyNames = enum.Names[Policy]{"report", "recover", "ignore"}

// String returns the flag spelling.
func (p Policy) String() string { return policyNames.String(p) }

// ParsePolicy is the inverse of String.
func ParsePolicy(s string) (Policy, bool) { return policyNames.Parse(s) }

// Watch notices the death of kernel-attested (UDS) agents within
// milliseconds instead of at their stall threshold (cmd/varta-watch/README.md §3,
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
// (a track.SlotID), so a pidfd event finds its slot without a lookup, and
// the table never grows. An entry remembers the (pid, start time) it was
// opened for; an event whose slot now holds another session is stale and
// only closes its fd.
//
// Where pidfds are unavailable (ENOSYS on older kernels, EPERM under a
// seccomp filter, EMFILE when the fd limit is reached, or a pid whose
// identity cannot be confirmed), death is noticed when the stall is
// raised: the tracker re-reads /proc/PID/stat then and marks a vanished
// process Gone, and the observer reports the exit then. A zombie still has its /proc entry, so that
// fallback does not see an agent whose parent has not reaped it; a pidfd
// does.
type Watch struct {
	ep        int               // epoll fd holding every live pidfd; -1 without pidfds
	entries   []Entry           // one per tracker slot, same index
	events    []unix.EpollEvent // epoll_wait buffer
	ev        unix.EpollEvent   // epoll_ctl argument, kept here so it never escapes
	watched   int               // live pidfds
	pending   pendingExits      // exits whose recovery was deferred
	dead      []track.SlotID    // slots found dead when their watch began, see TakeDead
	exits     uint64            // varta_agent_exits_total
	fallbacks uint64            // sessions left to the /proc check at stall time
}

// Entry is the exit state of the session in the tracker slot with the
// same id.
//
// The 8-byte fields come first, so that an Entry takes 32 bytes, not 40:
// there is one per tracker slot (2 MiB at 65536 slots).
type Entry struct {
	Start     uint64 // the session's process start time
	GaspBeats uint64 // the slot's Beats right after its last dying gasp; 0 none
	Pid       uint32
	// pidfd is the pidfd plus one, 0 when none: a zeroed table needs no
	// setting up, so slots never used cost no memory.
	pidfd    int32
	Reported bool // the exit event was written
	dead     bool // queued on Watch.dead
}

// pendingExits is a fixed table of deferred exits: an index by pid for
// Recheck, and a list in the order they were deferred, so the oldest goes
// first when the table is full. Every operation is O(1).
type pendingExits struct {
	exits []pendingExit
	index ring.Index
	links ring.Links
	order ring.List
	free  ring.Stack
}

type pendingExit struct {
	pid   uint32
	start uint64
}

func newPendingExits(n int) pendingExits {
	return pendingExits{exits: make([]pendingExit, n), index: ring.NewIndex(n), links: ring.NewLinks(n),
		order: ring.NewList(), free: ring.NewStack(n)}
}

func (p *pendingExits) remove(i int32) {
	p.order.Remove(&p.links, i)
	p.index.Delete(p.exits[i].pid)
	p.free.Push(i)
}

// EventsPerWait bounds the deaths one Ready call reports; epoll is
// level-triggered, so the rest are found on the next one.
const EventsPerWait = 64

// ErrNoProc: /proc does not show the observer itself, so no identity can
// be checked and exit detection is off.
var ErrNoProc = errors.New("exit detection is off: /proc does not show this process")

// ErrFallback wraps why pidfds cannot be used at all (ENOSYS on older
// kernels, EPERM under a seccomp filter): exits are then noticed at stall
// time, through /proc.
var ErrFallback = errors.New("pidfds are unavailable: an agent's exit is noticed when its stall is raised (through /proc), not at once")

// New prepares exit detection for a tracker of capacity slots. With
// ErrNoProc it returns nil: no exit detection. With an error wrapping
// ErrFallback it returns a Watch that only reports exits found at stall
// time; the caller logs either.
func New(capacity int) (*Watch, error) {
	if _, ok := listen.ProcStartTime(uint32(unix.Getpid())); !ok {
		return nil, ErrNoProc
	}
	x := &Watch{ep: -1, entries: make([]Entry, capacity), events: make([]unix.EpollEvent, EventsPerWait),
		pending: newPendingExits(capacity), dead: make([]track.SlotID, 0, capacity)}
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return x, x.Disable(os.NewSyscallError("epoll_create1", err))
	}
	x.ep = ep
	// Probe once on ourselves rather than discover ENOSYS per agent.
	fd, err := unix.PidfdOpen(unix.Getpid(), 0)
	if err != nil {
		return x, x.Disable(os.NewSyscallError("pidfd_open", err))
	}
	unix.Close(fd)
	return x, nil
}

// fallbackError is ErrFallback with its cause.
type fallbackError struct{ cause error }

func (e *fallbackError) Error() string   { return ErrFallback.Error() + ": " + e.cause.Error() }
func (e *fallbackError) Unwrap() []error { return []error{ErrFallback, e.cause} }

// Disable falls back to /proc checks at stall time for good, and returns
// cause wrapped with ErrFallback. Start calls it when the kernel refuses
// pidfds altogether; tests call it to exercise the fallback.
func (x *Watch) Disable(cause error) error {
	x.Close()
	return &fallbackError{cause: cause}
}

func (x *Watch) unwatch(e *Entry) {
	if e.pidfd > 0 {
		unix.Close(int(e.pidfd - 1))
		e.pidfd = 0
		x.watched--
	}
}

// Close closes every pidfd and the epoll fd.
func (x *Watch) Close() {
	if x == nil || x.ep < 0 {
		return
	}
	for i := range x.entries {
		x.unwatch(&x.entries[i])
	}
	unix.Close(x.ep)
	x.ep = -1
}

// Fd is the epoll fd for the loop's wait while any agent is watched,
// else -1.
func (x *Watch) Fd() int {
	if x == nil || x.ep < 0 || x.watched == 0 {
		return -1
	}
	return x.ep
}

// Entry returns the entry of slot id.
func (x *Watch) Entry(id track.SlotID) *Entry { return &x.entries[id] }

// Begin resets slot id's entry for a new session of (pid, start).
func (x *Watch) Begin(id track.SlotID, pid uint32, start uint64) {
	e := &x.entries[id]
	x.unwatch(e)
	*e = Entry{Pid: pid, Start: start}
}

// Forget drops slot id's entry (its slot was removed), closing its pidfd.
func (x *Watch) Forget(id track.SlotID) {
	e := &x.entries[id]
	x.unwatch(e)
	*e = Entry{}
}

// Unwatch closes slot id's pidfd, if it has one.
func (x *Watch) Unwatch(id track.SlotID) { x.unwatch(&x.entries[id]) }

// Start opens and checks a pidfd for the session in slot id, which the
// tracker knows as (pid, start, hasStart). The returned error, for the
// caller to log, means this agent's exit is left to the stall-time check;
// one wrapping ErrFallback means every agent's is from now on.
func (x *Watch) Start(id track.SlotID, pid uint32, start uint64, hasStart bool) error {
	if x.ep < 0 {
		x.fallbacks++
		return nil
	}
	fd, err := unix.PidfdOpen(int(pid), 0)
	switch {
	case err == unix.ESRCH: // the sender is gone already
		x.markDead(id)
		return nil
	case err == unix.ENOSYS || err == unix.EPERM:
		x.fallbacks++
		return x.Disable(os.NewSyscallError("pidfd_open", err))
	case err != nil: // EMFILE, ENFILE, ENOMEM: this agent only
		x.fallbacks++
		return os.NewSyscallError("pidfd_open", err)
	}
	// The pidfd names whatever process has the pid now; it is the agent
	// only if that process started when the agent did. Only a process
	// known gone is dead: a /proc read that failed otherwise (EMFILE)
	// leaves this agent to the stall-time check.
	st, e := listen.ProcStartTimeErr(pid)
	switch {
	case e == unix.ENOENT || e == unix.ESRCH:
		unix.Close(fd)
		x.markDead(id)
		return nil
	case e != 0 || !hasStart:
		unix.Close(fd)
		x.fallbacks++
		if e != 0 {
			return os.NewSyscallError("read /proc/PID/stat", e)
		}
		return nil
	case st != start:
		unix.Close(fd)
		x.markDead(id)
		return nil
	}
	x.ev = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(id)}
	if err := unix.EpollCtl(x.ep, unix.EPOLL_CTL_ADD, fd, &x.ev); err != nil {
		unix.Close(fd)
		x.fallbacks++
		return os.NewSyscallError("epoll_ctl", err)
	}
	x.entries[id].pidfd = int32(fd) + 1
	x.watched++
	return nil
}

// markDead queues slot id, whose process was gone when its watch began
// (a one-shot sender), for TakeDead: the report waits until the rest of
// the receive batch, which may hold the agent's dying gasp, is handled.
func (x *Watch) markDead(id track.SlotID) {
	if e := &x.entries[id]; !e.dead && len(x.dead) < cap(x.dead) {
		e.dead = true
		x.dead = append(x.dead, id)
	}
}

// DeadPending reports whether markDead queued a slot TakeDead has not
// returned yet.
func (x *Watch) DeadPending() bool { return len(x.dead) > 0 }

// TakeDead returns the slots queued by markDead since the last call; the
// slice is valid until the next Start.
func (x *Watch) TakeDead() []track.SlotID {
	d := x.dead
	for _, id := range d {
		x.entries[id].dead = false
	}
	x.dead = x.dead[:0]
	return d
}

// Ready asks epoll, without waiting, which watched agents died: it
// returns up to EventsPerWait slot ids (valid until the next call), each
// with its pidfd already closed. The caller checks that the slot still
// holds the session the entry names.
func (x *Watch) Ready(dst []track.SlotID) []track.SlotID {
	dst = dst[:0]
	if x.ep < 0 {
		return dst
	}
	n, err := unix.EpollWait(x.ep, x.events, 0)
	if err != nil {
		return dst // EINTR: the next iteration asks again
	}
	for k := range n {
		id := track.SlotID(x.events[k].Fd)
		if id < 0 || int(id) >= len(x.entries) || x.entries[id].pidfd == 0 {
			continue
		}
		x.unwatch(&x.entries[id])
		dst = append(dst, id)
	}
	return dst
}

// Reported marks slot id's exit as reported and counts it; false when it
// already was.
func (x *Watch) Reported(id track.SlotID) bool {
	e := &x.entries[id]
	x.unwatch(e)
	if e.Reported {
		return false
	}
	e.Reported = true
	x.exits++
	return true
}

// Defer remembers an exit whose recovery was deferred: its slot is gone,
// so recovery's usual recheck (still tracked, still stalled) would call it
// stale. Bounded like recovery's own queue; the oldest goes first when
// full, and a pid deferred again replaces its older entry.
func (x *Watch) Defer(pid uint32, start uint64) {
	p := &x.pending
	if i, ok := p.index.Get(pid); ok {
		p.remove(i)
	}
	if p.free.Len() == 0 {
		p.remove(p.order.Front())
	}
	i, _ := p.free.Pop()
	p.exits[i] = pendingExit{pid: pid, start: start}
	p.index.Put(pid, i)
	p.order.PushBack(&p.links, i)
}

// Recheck answers recovery's recheck for a deferred exit: true when (pid,
// start) exited and no other process has taken the pid since. The entry
// is used up either way.
func (x *Watch) Recheck(pid uint32, start uint64) bool {
	p := &x.pending
	i, ok := p.index.Get(pid)
	if !ok {
		return false
	}
	same := p.exits[i].start == start
	p.remove(i)
	if !same {
		return false
	}
	st, e := listen.ProcStartTimeErr(pid)
	return e == unix.ENOENT || e == unix.ESRCH || e == 0 && st == start
}

// Counts are the exits reported, the agents watched now, and the sessions
// left to the stall-time check.
func (x *Watch) Counts() (exits uint64, watched int, fallbacks uint64) {
	if x == nil {
		return 0, 0, 0
	}
	return x.exits, x.watched, x.fallbacks
}
