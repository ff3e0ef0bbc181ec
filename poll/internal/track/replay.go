package track

import (
	"github.com/varta-go/varta/poll/internal/enum"
	"time"

	"github.com/varta-go/varta/ring"
	"github.com/varta-go/varta/vlp"
)

// The replay table of vlp/PROTOCOL.md §6: the observer's memory of which secure
// datagrams it has already accepted from each authenticated sender.
const (
	// ReplaySenders is the fixed number of senders the table remembers.
	ReplaySenders = 1024
	// ReplayIdle is how long a sender's entry outlives its last accepted
	// frame.
	ReplayIdle = 600 * time.Second
	// ReplayExpiryPerTick bounds the entries Expire drops per loop
	// iteration; more become idle at once only after a burst of new
	// senders, and the rest go in the following iterations.
	ReplayExpiryPerTick = 64
)

// ReplayVerdict is what ReplayTable.Check decided about a secure frame.
type ReplayVerdict uint8

const (
	// ReplayFresh: never seen before; the table now remembers it.
	ReplayFresh ReplayVerdict = iota
	// ReplayRepeated: a counter that does not rise within its prefix, or
	// a new prefix whose frame is not newer than the sender's last one:
	// a replayed (or reordered) datagram.
	ReplayRepeated
	// ReplayTableFull: an unknown sender, and every entry belongs to a
	// sender heard from within ReplayIdle.
	ReplayTableFull
)

var replayVerdictNames = enum.Names[ReplayVerdict]{"fresh", "repeated", "table_full"}

// String returns a snake_case label.
func (v ReplayVerdict) String() string { return replayVerdictNames.String(v) }

// ivWindow is what is remembered of one iv_random: its last counter.
type ivWindow struct {
	prefix  [vlp.IVRandomSize]byte
	counter uint32
	valid   bool
}

// replayEntry is one sender: its current and previous IV prefix, and the
// newest frame it sent, for judging a prefix not seen before.
type replayEntry struct {
	cur, prev ivWindow
	nonce     uint64 // highest regular nonce accepted; valid when hasNonce
	termTs    uint64 // timestamp of the last terminal frame; valid when hasTerm
	last      int64  // observer time of the last accepted frame
	pid       uint32
	hasNonce  bool
	hasTerm   bool
}

// ReplayTable holds the replay state of up to a fixed number of secure-UDP
// senders, keyed by authenticated pid (the frame's pid, which for a
// master-key frame Open has checked against agent_pid). All storage is
// allocated by NewReplayTable; no method allocates. It is owned by the
// observer loop's goroutine.
//
// Rules (vlp/PROTOCOL.md §6): within a known iv_random (the current or the
// previous one) a frame is fresh only if its iv_counter is above the last
// one accepted under that prefix. A prefix not seen before must carry a
// frame newer than anything the sender sent: a regular nonce above the
// highest accepted (with vlp/PROTOCOL.md §5's wrap window), or a terminal
// timestamp above the last terminal one; it then becomes current and the
// old current becomes previous. An unknown sender takes a free entry; when
// none is free, the least recently heard entry is dropped if idle for
// ReplayIdle, else the sender is refused (ReplayTableFull): a live
// sender's memory is never given up, since that would reopen it to
// replays.
//
// Entries sit on one of two lists threaded through a shared ring.Links:
// live (least recently accepted first, so expiry only looks at the head)
// and free.
type ReplayTable struct {
	entries []replayEntry
	index   ring.Index
	links   ring.Links
	live    ring.List
	free    ring.List
	idle    int64
	clock   int64 // latest time seen; keeps the live list ordered
}

// NewReplayTable allocates a table of capacity senders whose entries
// expire after idle. The observer uses ReplaySenders and ReplayIdle.
func NewReplayTable(capacity int, idle time.Duration) *ReplayTable {
	if capacity < 1 || capacity > MaxTrackerCapacity {
		panic("poll: replay table capacity out of range")
	}
	t := &ReplayTable{
		entries: make([]replayEntry, capacity),
		index:   ring.NewIndex(capacity),
		links:   ring.NewLinks(capacity),
		live:    ring.NewList(),
		free:    ring.NewList(),
		idle:    int64(idle),
	}
	for i := range capacity {
		t.free.PushBack(&t.links, int32(i))
	}
	return t
}

// Len is the number of senders remembered; Cap the most it holds.
func (t *ReplayTable) Len() int { return t.index.Len() }
func (t *ReplayTable) Cap() int { return len(t.entries) }

// Check judges an authenticated, decoded secure frame f with header h that
// arrived at now, and remembers it when it is fresh.
func (t *ReplayTable) Check(f vlp.Frame, h vlp.SecureHeader, now int64) ReplayVerdict {
	if now > t.clock {
		t.clock = now
	}
	now = t.clock
	i, ok := t.index.Get(f.Pid)
	if !ok {
		return t.admit(f, h, now)
	}
	e := &t.entries[i]
	switch {
	case e.cur.valid && h.IVRandom == e.cur.prefix:
		if h.Counter <= e.cur.counter {
			return ReplayRepeated
		}
		e.cur.counter = h.Counter
	case e.prev.valid && h.IVRandom == e.prev.prefix:
		// A frame sealed before the sender moved on, arriving late.
		if h.Counter <= e.prev.counter {
			return ReplayRepeated
		}
		e.prev.counter = h.Counter
	default:
		if !e.newer(f) {
			return ReplayRepeated
		}
		e.prev, e.cur = e.cur, ivWindow{prefix: h.IVRandom, counter: h.Counter, valid: true}
	}
	e.record(f, now)
	t.live.MoveToBack(&t.links, i)
	return ReplayFresh
}

// admit gives an unknown sender an entry: a free one, else the head of the
// live list if it has been idle long enough.
func (t *ReplayTable) admit(f vlp.Frame, h vlp.SecureHeader, now int64) ReplayVerdict {
	if t.free.Front() < 0 && t.Expire(now, 1) == 0 {
		return ReplayTableFull
	}
	i := t.free.Front()
	t.free.Remove(&t.links, i)
	t.index.Put(f.Pid, i) // room: the index holds as many keys as there are entries
	t.live.PushBack(&t.links, i)
	t.entries[i] = replayEntry{pid: f.Pid, cur: ivWindow{prefix: h.IVRandom, counter: h.Counter, valid: true}}
	t.entries[i].record(f, now)
	return ReplayFresh
}

// Expire drops up to max entries idle for the table's idle time, oldest
// first, and returns how many it dropped. The loop calls it every tick.
func (t *ReplayTable) Expire(now int64, max int) int {
	if now > t.clock {
		t.clock = now
	}
	n := 0
	for ; n < max; n++ {
		i := t.live.Front()
		if i < 0 || t.clock-t.entries[i].last < t.idle {
			break
		}
		t.live.Remove(&t.links, i)
		t.index.Delete(t.entries[i].pid)
		t.entries[i] = replayEntry{}
		t.free.PushBack(&t.links, i)
	}
	return n
}

// newer reports whether f is newer than every frame the sender has had
// accepted: what a frame under a prefix not seen before must prove.
func (e *replayEntry) newer(f vlp.Frame) bool {
	if f.Nonce == vlp.NonceTerminal {
		return !e.hasTerm || f.Timestamp > e.termTs
	}
	return !e.hasNonce || f.Nonce > e.nonce || nonceWrapped(e.nonce, f.Nonce)
}

// record moves the sender's newest-frame marks forward, never back.
func (e *replayEntry) record(f vlp.Frame, now int64) {
	e.last = now
	if f.Nonce == vlp.NonceTerminal {
		if !e.hasTerm || f.Timestamp > e.termTs {
			e.hasTerm, e.termTs = true, f.Timestamp
		}
		return
	}
	if !e.hasNonce || f.Nonce > e.nonce || nonceWrapped(e.nonce, f.Nonce) {
		e.hasNonce, e.nonce = true, f.Nonce
	}
}

// nonceWrapped is vlp/PROTOCOL.md §5's wrap rule: the last nonce is within the
// window of the top and the new one within the window of zero.
func nonceWrapped(last, next uint64) bool {
	return last >= maxRegularNonce-wrapWindow && next <= wrapWindow
}
