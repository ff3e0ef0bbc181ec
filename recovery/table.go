package recovery

import "github.com/varta-go/varta/ring"

// none marks an absent index in the fixed tables below.
const none = -1

// entry is the per-pid recovery state: debounce (last run of which process
// incarnation) and whether a child is running or queued for the pid. An
// entry is either busy (a child in flight or a deferred stall queued;
// never evicted) or idle (on the LRU list, oldest first; the first to be
// reused when the table is full).
type entry struct {
	pid       int32
	child     int32  // slot in Manager.children, or none
	startTime uint64 // process start time the debounce state belongs to
	lastRun   int64  // clock of the last spawn attempt, valid when hasRun
	hasRun    bool
	queued    bool // a deferred stall for this pid waits in the queue
}

// pidTable maps a pid to its entry through a fixed ring.Index. Entries
// live in a fixed array so their indices, which the LRU list and the
// children table hold, stay stable.
type pidTable struct {
	entries []entry
	free    ring.Stack // unused entry indices
	index   ring.Index
	links   ring.Links
	lru     ring.List // idle entries, least recently idle first
	evicted uint64    // idle entries reused for another pid (their debounce state forgotten)
}

func newPidTable(n int) pidTable {
	t := pidTable{
		entries: make([]entry, n),
		free:    ring.NewStack(n),
		index:   ring.NewIndex(n),
		links:   ring.NewLinks(n),
		lru:     ring.NewList(),
	}
	return t
}

func (t *pidTable) lookup(pid int32) int32 {
	e, _ := t.index.Get(uint32(pid))
	return e
}

// insert adds pid, which must be absent, and returns its entry, fresh and
// unlinked. When every entry is in use the least recently idle one is
// reused; the caller guarantees one is idle (busy entries never exceed the
// outstanding capacity, which is below the entry count), and insert
// returns none rather than fail if that ever broke.
func (t *pidTable) insert(pid int32) int32 {
	e, ok := t.free.Pop()
	if !ok {
		if e = t.lru.Front(); e == none {
			return none // every entry busy: the caller counts the broken guarantee
		}
		t.evicted++
		t.lru.Remove(&t.links, e)
		t.index.Delete(uint32(t.entries[e].pid))
	}
	t.entries[e] = entry{pid: pid, child: none}
	t.index.Put(uint32(pid), e)
	return e
}

// idle appends e to the LRU list (most recently idle at the tail).
func (t *pidTable) idle(e int32) {
	if !t.links.Linked(e) {
		t.lru.PushBack(&t.links, e)
	}
}

// unlink takes e off the LRU list, if it is on it.
func (t *pidTable) unlink(e int32) {
	if t.links.Linked(e) {
		t.lru.Remove(&t.links, e)
	}
}

// pending is a deferred stall.
type pending struct {
	pid       int32
	entry     int32
	startTime uint64
}
