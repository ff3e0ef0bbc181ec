package track

import (
	"slices"

	"github.com/varta-go/varta/poll/internal/enum"
	"github.com/varta-go/varta/ring"
	"github.com/varta-go/varta/vlp"
)

// Policy chooses which tracked pid, if any, gives way to a new one when the
// table is full (--tracker-eviction-policy, cmd/varta-watch/README.md §3).
type Policy uint8

const (
	// PolicyStrict evicts only a slot that has already stalled and has
	// been silent for at least EvictionFactor × threshold.
	PolicyStrict Policy = iota
	// PolicyBalanced also evicts a slot whose stall has not been raised
	// yet, as long as it has been silent that long.
	PolicyBalanced
)

// EvictionFactor × threshold is the silence after which a slot may be
// evicted for a new pid.
const EvictionFactor = 10

// MaxTrackerCapacity bounds --tracker-capacity.
const MaxTrackerCapacity = 1 << 16

var policyNames = enum.Names[Policy]{"strict", "balanced"}

// String returns the flag spelling.
func (p Policy) String() string { return policyNames.String(p) }

// ParsePolicy is the inverse of String.
func ParsePolicy(s string) (Policy, bool) { return policyNames.Parse(s) }

// Origin is the transport a frame arrived on. Origins are ranked by how far
// their pid can be trusted (see Observe): UDS frames carry a
// kernel-verified pid, secure UDP frames a key holder's claim, plain UDP
// frames anybody's claim.
type Origin uint8

const (
	OriginUDS       Origin = iota // Unix datagram socket, pid checked against SCM_CREDENTIALS
	OriginUDP                     // plain UDP, unauthenticated
	OriginSecureUDP               // ChaCha20-Poly1305 UDP, authenticated by key
)

var originNames = enum.Names[Origin]{"uds", "udp", "secure_udp"}

// String returns a lowercase label.
func (o Origin) String() string { return originNames.String(o) }

// rank orders origins by how much their pid claim can be trusted.
func (o Origin) rank() int {
	switch o {
	case OriginUDS:
		return 2
	case OriginSecureUDP:
		return 1
	}
	return 0
}

// Verdict is what Observe did with a frame.
type Verdict uint8

const (
	// VerdictAccepted: the frame updated its pid's slot.
	VerdictAccepted Verdict = iota
	// VerdictRestarted: accepted as the first frame of a new session that
	// replaced the slot's old one: the pid was recycled by a new process,
	// or a kernel-attested sender took the pid over from a weaker origin.
	VerdictRestarted
	// VerdictOutOfOrder: a regular nonce not above the last accepted one.
	VerdictOutOfOrder
	// VerdictTerminalReplay: a terminal frame whose timestamp is not above
	// the previous terminal frame's.
	VerdictTerminalReplay
	// VerdictCapacityExceeded: a new pid and no slot free or evictable.
	VerdictCapacityExceeded
	// VerdictOriginConflict: the pid is tracked from a more trusted origin.
	VerdictOriginConflict
	// VerdictPidRateLimited: over --max-beat-rate for this pid.
	VerdictPidRateLimited
	// VerdictGlobalRateLimited: over --global-beat-rate/--global-beat-burst.
	VerdictGlobalRateLimited
)

var verdictNames = enum.Names[Verdict]{
	"accepted", "restarted", "out_of_order", "terminal_replay",
	"capacity_exceeded", "origin_conflict", "pid_rate_limited", "global_rate_limited",
}

// String returns a snake_case label usable in logs and metrics.
func (v Verdict) String() string { return verdictNames.String(v) }

// Accepted reports whether the frame counted as a beat.
func (v Verdict) Accepted() bool { return v == VerdictAccepted || v == VerdictRestarted }

// TrackerConfig sizes and tunes a Tracker. Times are nanoseconds on the
// caller's monotonic clock.
type TrackerConfig struct {
	Capacity  int   // fixed number of slots, 1..MaxTrackerCapacity
	Threshold int64 // silence before a stall, > 0
	Policy    Policy

	// StartTime returns a process's start time (its generation), or says
	// that no process has the pid, or that it cannot tell. The tracker
	// has no /proc of its own: the observer passes one in. nil turns
	// generation checks off: no recycled-pid retirement and no Gone
	// stalls.
	StartTime func(pid uint32) (uint64, Proc)

	MaxBeatRate uint32 // per pid, beats per second with burst = rate; 0 disables
	GlobalRate  uint32 // all pids together, beats per second; 0 disables
	GlobalBurst uint32 // 0 means GlobalRate

	// Classes bounds the distinct thresholds kept at once (SetThreshold),
	// 1..MaxClasses; 0 means MaxClasses.
	Classes int
}

// SlotID names a slot of the table, 0 ≤ id < Capacity, for as long as the
// session in it lasts: tables kept parallel to the tracker's (the exit
// watch's) index by it. NoSlot is "none".
type SlotID int32

// NoSlot is the SlotID of nothing.
const NoSlot SlotID = -1

// Observation is what Observe did with one frame: the verdict and what
// the caller needs to follow the table without looking again.
type Observation struct {
	Verdict Verdict
	// ID is the pid's slot after an accepted frame, NoSlot otherwise.
	ID SlotID
	// Evicted is the pid evicted to make room for this one, 0 for none.
	Evicted uint32
	// Wrapped: the accepted regular nonce wrapped around 2^64-2.
	Wrapped bool
	// NewSession: the frame opened a session, for a new pid or one that
	// restarted (Verdict is VerdictAccepted or VerdictRestarted).
	NewSession bool
	// Resumed: the slot's stall was latched and this frame re-armed it.
	Resumed bool
	// Prev is the slot's effective status before the frame (vlp.Stall
	// when Resumed); meaningless for a new session.
	Prev vlp.Status
	// Silent is how long the pid had been silent before this frame, in
	// ns; 0 for a new session.
	Silent int64
}

// Proc is what a start-time lookup found out about a pid.
type Proc uint8

const (
	ProcAlive   Proc = iota // a process has the pid; its start time is given
	ProcGone                // no process has the pid
	ProcUnknown             // the lookup failed for another reason: alive or not is unknown
)

// Slot is one tracked pid. Pointers to slots (from Lookup, Each, Get) stay
// valid only until the next Observe, PopStall or Remove, which may reuse
// the slot.
type Slot struct {
	Pid            uint32
	Payload        uint32     // of the last accepted frame
	Status         vlp.Status // of the last accepted frame; see Effective
	Origin         Origin     // transport of the session's first frame
	Stalled        bool       // stall latched for the current silence run
	HasNonce       bool       // a regular frame was accepted; LastNonce is valid
	HasTerminal    bool       // a terminal frame was accepted; LastTerminalTs is valid
	HasStartTime   bool       // StartTime was read when the pid was first seen
	StartUnknown   bool       // reading it failed for a reason other than the process being gone
	LastNonce      uint64     // regular high-water mark
	LastTerminalTs uint64     // frame timestamp of the last terminal frame
	LastArrival    int64      // observer clock of the last accepted frame
	StartTime      uint64     // process start time (UDS only)
	Beats          uint64     // accepted frames in this session
	Stalls         uint64     // stalls raised in this session
	// Name is the agent's process name as the caller read it when the
	// session began (comm: at most NameMax bytes the process chose, so
	// untrusted), NameLen of it used; empty when unknown (UDP agents).
	Name    [NameMax]byte
	NameLen uint8
	// Exe is the id of the agent's program path in the caller's Paths
	// table, 0 when unknown.
	Exe uint16
	// Class is the slot's threshold class (SetThreshold): 0, the
	// tracker's own threshold, until the agent asks for another.
	Class uint8
	// Triggered: the agent asked for its stall now (Trigger); it is
	// raised by the next PopStall, whatever the time.
	Triggered bool

	// Status and maintenance (varta-watch status, pause and resume; the
	// control room keeps them, a new session starts them at zero):
	// Recoveries counts the recovery children started for this session,
	// Held the stalls whose recovery was held while Paused, and
	// LastOutcome is the session's last recovery outcome plus one
	// (recovery.Outcome; 0 none yet).
	LastOutcome uint8
	Paused      bool
	Recoveries  uint32
	Held        uint32

	// Declared is the declared agent (--agents-file) the caller matched
	// the session to, as its index in the caller's list plus one; 0 for
	// none. A number, not the name: a slot holds no pointer, so the
	// garbage collector never reads the table.
	Declared uint16

	limiter tokens // per-pid --max-beat-rate bucket's fill (the rate is the tracker's)
	order   uint64 // when the slot was last armed, in the tracker's sequence: breaks ties in time
}

// TextMax is the fixed room for an agent's status text (sd_notify
// STATUS=). The texts live beside the slots (Tracker.SetText), not in
// them: few agents send one, and every byte of a slot costs 64 KiB of
// memory in a table of 65536.
const TextMax = 64

// statusText is one slot's status text, n bytes of b used.
type statusText struct {
	b [TextMax]byte
	n uint8
}

// SetText keeps the first TextMax bytes of b as the status text of the
// session in slot id (untrusted bytes: escape them when shown). The texts'
// table is allocated at the first call, for the whole capacity.
func (t *Tracker) SetText(id SlotID, b []byte) {
	if t.texts == nil {
		t.texts = make([]statusText, len(t.slots))
	}
	x := &t.texts[id]
	x.n = uint8(copy(x.b[:], b))
}

// Text is the status text of the session in slot id; empty when none. It
// aliases the table: copy it to keep it past the next SetText.
func (t *Tracker) Text(id SlotID) []byte {
	if t.texts == nil || id == NoSlot {
		return nil
	}
	x := &t.texts[id]
	return x.b[:x.n]
}

// NameMax is the fixed room for an agent's name in a slot: the kernel's
// process names (comm) are at most 15 bytes.
const NameMax = 15

// SetName keeps the first NameMax bytes of name as the agent's name.
func (s *Slot) SetName(name []byte) { s.NameLen = uint8(copy(s.Name[:], name)) }

// NameBytes is the agent's name; empty when unknown. It aliases the slot.
func (s *Slot) NameBytes() []byte { return s.Name[:s.NameLen] }

// Effective is the status to report: vlp.Stall while the stall is latched,
// else the last status the agent sent.
func (s *Slot) Effective() vlp.Status {
	if s.Stalled {
		return vlp.Stall
	}
	return s.Status
}

// StallEvent is one result of PopStall.
type StallEvent struct {
	Pid     uint32
	ID      SlotID // the slot; NoSlot once Retired removed it
	Nonce   uint64 // last accepted regular nonce (0 if none)
	Silence int64  // ns since the last accepted frame
	// Retired: the pid now belongs to another process (its start time
	// changed), so the slot was removed and no stall is raised.
	Retired bool
	// Gone: a stall whose process no longer exists (only for UDS pids with
	// generation checks on).
	Gone bool
	// Unverifiable: whether the pid still names the agent's process could
	// not be told (the start time could not be read, e.g. the observer
	// was out of file descriptors): the stall is raised, but nothing may
	// act on the process behind the pid.
	Unverifiable bool
	Slot         Slot // copy of the slot as of the event
}

// Tracker is the fixed-capacity pid table of cmd/varta-watch/README.md §3. All storage
// is allocated by NewTracker; no method allocates afterwards. It is owned
// by the observer loop's goroutine and not safe for concurrent use.
//
// Every slot belongs to one of at most MaxClasses threshold classes
// (SetThreshold), each with two lists threaded through one ring.Links:
// armed (stall not yet raised) ordered by last arrival, so the class's
// next deadline is always at its head, and stalled, ordered by last
// arrival too, so its head is the class's longest-silent eviction
// candidate. The next deadline is the earliest of at most MaxClasses
// heads, and PopStall costs O(stalls). A slot whose agent asked for its
// stall now (Trigger) waits on a list of its own until PopStall takes it.
// A pid→slot ring.Index (open addressing, no tombstones) finds a slot in
// a probe or two without a Go map.
//
// Times passed in are clamped to the latest one seen, so a caller's clock
// glitch cannot unsort the lists; Observe, PopStall and Remove may reuse
// slots, which is why Slot pointers are short-lived.
type Tracker struct {
	pidMax    uint32 // SetPidMax; 0 checks nothing
	aboveMax  uint64 // frames refused by AbovePidMax
	slots     []Slot
	index     ring.Index
	links     ring.Links // threads every slot through one list: its class's armed or stalled, or due
	classes   []class    // Classes of them, in one array; [0] is Threshold's
	hi        int        // classes ever used: deadline and victim scan only these
	due       ring.List  // triggered slots, in the order they asked
	seq       uint64     // arming sequence, for Slot.order
	free      ring.Stack // unused slot numbers
	n         int
	policy    Policy
	startTime func(uint32) (uint64, Proc)
	pidRate   uint32
	global    TokenBucket
	clock     int64        // latest time seen; time never runs backwards inside
	sortKeys  []uint64     // EachSorted scratch: pid<<32 | slot index
	texts     []statusText // by slot; nil until the first SetText
}

// NewTracker allocates a tracker. It panics on a capacity outside
// 1..MaxTrackerCapacity or a threshold ≤ 0: the command line checks both.
func NewTracker(cfg TrackerConfig) *Tracker {
	if cfg.Capacity < 1 || cfg.Capacity > MaxTrackerCapacity {
		panic("track: tracker capacity out of range")
	}
	if cfg.Threshold <= 0 {
		panic("track: tracker threshold must be positive")
	}
	t := &Tracker{
		slots:     make([]Slot, cfg.Capacity),
		index:     ring.NewIndex(cfg.Capacity),
		links:     ring.NewLinks(cfg.Capacity),
		due:       ring.NewList(),
		free:      ring.NewStack(cfg.Capacity),
		policy:    cfg.Policy,
		startTime: cfg.StartTime,
		pidRate:   cfg.MaxBeatRate,
		sortKeys:  make([]uint64, 0, cfg.Capacity),
	}
	n := cfg.Classes
	if n <= 0 || n > MaxClasses {
		n = MaxClasses
	}
	t.classes = make([]class, n)
	for c := range t.classes {
		t.classes[c].armed, t.classes[c].stalled = ring.NewList(), ring.NewList()
	}
	t.classes[0].set(cfg.Threshold)
	t.hi = 1
	t.global = NewTokenBucket(cfg.GlobalRate, cfg.GlobalBurst, 0)
	return t
}

// Len returns the number of tracked pids.
func (t *Tracker) Len() int { return t.n }

// Capacity returns the fixed number of slots.
func (t *Tracker) Capacity() int { return len(t.slots) }

// Threshold returns the configured silence before a stall: class 0's.
func (t *Tracker) Threshold() int64 { return t.classes[0].thr }

// Lookup returns the slot of pid, or nil.
func (t *Tracker) Lookup(pid uint32) *Slot {
	if i, ok := t.index.Get(pid); ok {
		return &t.slots[i]
	}
	return nil
}

// ID returns the slot of pid, or NoSlot when it is not tracked.
func (t *Tracker) ID(pid uint32) SlotID {
	if i, ok := t.index.Get(pid); ok {
		return SlotID(i)
	}
	return NoSlot
}

// Get returns the slot id names; a freed slot has Pid 0. The pointer
// follows the rules of Lookup's.
func (t *Tracker) Get(id SlotID) *Slot { return &t.slots[id] }

// AppendSortedKeys appends a key for every tracked slot to dst, in
// increasing pid order as metrics exposition wants: pid<<32 | slot id, a
// snapshot of the table that AtKey reads back. No allocation when dst has
// room for Len keys.
func (t *Tracker) AppendSortedKeys(dst []uint64) []uint64 {
	n := len(dst)
	// The lists, not the whole table: a scrape of a few agents in a large
	// table reads only their slots (a scan read every page of it, and
	// made it all resident: 0.9 MB at 4096 slots with no agent at all).
	t.eachIndex(func(i int32) { dst = append(dst, uint64(t.slots[i].Pid)<<32|uint64(i)) })
	slices.Sort(dst[n:])
	return dst
}

// AtKey returns the slot a key of AppendSortedKeys names if that slot
// still holds the key's pid, else nil: the pid has left the table since
// the snapshot (a freed slot has Pid 0) or its slot went to another pid.
func (t *Tracker) AtKey(k uint64) *Slot {
	s := &t.slots[int32(uint32(k))]
	if s.Pid != uint32(k>>32) {
		return nil
	}
	return s
}

// Remove stops tracking pid and reports whether it was tracked.
func (t *Tracker) Remove(pid uint32) bool {
	i, ok := t.index.Get(pid)
	if !ok {
		return false
	}
	t.release(i)
	return true
}

// Each calls fn for every tracked slot, in no set order. fn must not call
// Observe, PopStall, Remove, SetThreshold or Trigger.
func (t *Tracker) Each(fn func(s *Slot)) {
	t.eachIndex(func(i int32) { fn(&t.slots[i]) })
}

// eachIndex calls fn with every tracked slot's index: every list of every
// class, then the triggered ones.
func (t *Tracker) eachIndex(fn func(i int32)) {
	for c := range t.classes {
		for _, l := range [2]*ring.List{&t.classes[c].armed, &t.classes[c].stalled} {
			for i := l.Front(); i >= 0; i = t.links.Next(i) {
				fn(i)
			}
		}
	}
	for i := t.due.Front(); i >= 0; i = t.links.Next(i) {
		fn(i)
	}
}

// AppendSorted appends the id of every tracked slot to dst in increasing
// pid order, as metrics exposition wants, sorting a preallocated scratch
// array: no allocation when dst has room for Len ids.
func (t *Tracker) AppendSorted(dst []SlotID) []SlotID {
	for _, k := range t.sortedKeys() {
		dst = append(dst, SlotID(int32(uint32(k))))
	}
	return dst
}

// sortedKeys is every tracked slot as pid<<32 | slot index, in increasing
// order, in the preallocated scratch array.
func (t *Tracker) sortedKeys() []uint64 {
	keys := t.sortKeys[:0]
	t.eachIndex(func(i int32) { keys = append(keys, uint64(t.slots[i].Pid)<<32|uint64(i)) })
	slices.Sort(keys)
	t.sortKeys = keys
	return keys
}

// AppendSortedPids is AppendSorted giving the pids themselves, for a
// caller that looks each up again later (a status streamed over many
// loop iterations, while slots are reused).
func (t *Tracker) AppendSortedPids(dst []uint32) []uint32 {
	for _, k := range t.sortedKeys() {
		dst = append(dst, uint32(k>>32))
	}
	return dst
}

// GlobalBucket returns the global rate-limit bucket, for metrics and tests.
func (t *Tracker) GlobalBucket() *TokenBucket { return &t.global }

// SetPidMax sets the kernel's pid_max (/proc/sys/kernel/pid_max, read by
// the caller) for AbovePidMax. 0 turns the check off.
func (t *Tracker) SetPidMax(n uint32) { t.pidMax = n }

// AbovePidMax reports, and counts, a frame pid at or above pid_max: no
// process on this host can have it. The observer asks it for socket
// frames before their credentials are checked; a UDP frame's pid may be
// another host's, which this host's pid_max says nothing about.
func (t *Tracker) AbovePidMax(pid uint32) bool {
	if t.pidMax != 0 && pid >= t.pidMax {
		t.aboveMax++
		return true
	}
	return false
}

// PidMax is the value SetPidMax set.
func (t *Tracker) PidMax() uint32 { return t.pidMax }

// PidAboveMax counts the frames AbovePidMax refused.
func (t *Tracker) PidAboveMax() uint64 { return t.aboveMax }
