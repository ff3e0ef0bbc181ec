package recovery

// none marks an absent index in the fixed tables below.
const none = -1

// entry is the per-pid recovery state: debounce (last run of which process
// incarnation) and whether a child is running or queued for the pid. An
// entry is either busy (a child in flight or a deferred stall queued;
// never evicted) or idle (on the LRU list, oldest first; the first to be
// reused when the table is full).
type entry struct {
	pid       int32
	child     int32 // slot in Manager.children, or none
	prev      int32 // LRU links, valid while idle
	next      int32
	startTime uint64 // process start time the debounce state belongs to
	lastRun   int64  // clock of the last spawn attempt, valid when hasRun
	hasRun    bool
	queued    bool // a deferred stall for this pid waits in the queue
	linked    bool // on the LRU list
}

// pidTable maps a pid to its entry with open addressing (linear probing,
// backward-shift deletion, so no tombstones) over a fixed index. Entries
// live in a fixed array so their indices, which the LRU list and the
// children table hold, stay stable while the index is reshuffled.
type pidTable struct {
	entries []entry
	free    []int32 // unused entry indices (a stack)
	index   []int32 // entry index or none; len is a power of two
	shift   uint32  // 32 - log2(len(index))
	head    int32   // LRU: least recently idle
	tail    int32
}

func newPidTable(n int) pidTable {
	size, bits := 1, uint32(0)
	for size < 2*n {
		size <<= 1
		bits++
	}
	if bits == 0 {
		size, bits = 2, 1
	}
	t := pidTable{
		entries: make([]entry, n),
		free:    make([]int32, n),
		index:   make([]int32, size),
		shift:   32 - bits,
		head:    none,
		tail:    none,
	}
	for i := range t.free {
		t.free[i] = int32(n - 1 - i)
	}
	for i := range t.index {
		t.index[i] = none
	}
	return t
}

// home is the preferred index slot of pid (Fibonacci hashing).
func (t *pidTable) home(pid int32) uint32 {
	return (uint32(pid) * 0x9E3779B9) >> t.shift
}

func (t *pidTable) lookup(pid int32) int32 {
	mask := uint32(len(t.index) - 1)
	for i := t.home(pid); ; i = (i + 1) & mask {
		e := t.index[i]
		if e == none || t.entries[e].pid == pid {
			return e
		}
	}
}

// insert adds pid, which must be absent, and returns its entry, fresh and
// unlinked. When every entry is in use the least recently idle one is
// reused; the caller guarantees one is idle (busy entries never exceed the
// outstanding capacity, which is below the entry count).
func (t *pidTable) insert(pid int32) int32 {
	var e int32
	if n := len(t.free); n > 0 {
		e = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		e = t.head
		t.unlink(e)
		t.remove(e)
	}
	t.entries[e] = entry{pid: pid, child: none, prev: none, next: none}
	mask := uint32(len(t.index) - 1)
	i := t.home(pid)
	for t.index[i] != none {
		i = (i + 1) & mask
	}
	t.index[i] = e
	return e
}

// remove takes entry e out of the index (not out of the LRU list).
func (t *pidTable) remove(e int32) {
	mask := uint32(len(t.index) - 1)
	i := t.home(t.entries[e].pid)
	for t.index[i] != e {
		i = (i + 1) & mask
	}
	// Backward shift: pull later members of the probe run into the hole
	// unless their home lies cyclically in (hole, position].
	for j := i; ; {
		j = (j + 1) & mask
		f := t.index[j]
		if f == none {
			break
		}
		k := t.home(t.entries[f].pid)
		if i <= j {
			if i < k && k <= j {
				continue
			}
		} else if i < k || k <= j {
			continue
		}
		t.index[i] = f
		i = j
	}
	t.index[i] = none
}

// idle appends e to the LRU list (most recently idle at the tail).
func (t *pidTable) idle(e int32) {
	en := &t.entries[e]
	if en.linked {
		return
	}
	en.linked = true
	en.prev, en.next = t.tail, none
	if t.tail != none {
		t.entries[t.tail].next = e
	} else {
		t.head = e
	}
	t.tail = e
}

// unlink takes e off the LRU list, if it is on it.
func (t *pidTable) unlink(e int32) {
	en := &t.entries[e]
	if !en.linked {
		return
	}
	if en.prev != none {
		t.entries[en.prev].next = en.next
	} else {
		t.head = en.next
	}
	if en.next != none {
		t.entries[en.next].prev = en.prev
	} else {
		t.tail = en.prev
	}
	en.prev, en.next, en.linked = none, none, false
}

// pending is a deferred stall.
type pending struct {
	pid       int32
	entry     int32
	startTime uint64
}

// fifo is a fixed-capacity ring of deferred stalls.
type fifo struct {
	buf  []pending
	head int
	n    int
}

func (q *fifo) push(p pending) bool {
	if q.n == len(q.buf) {
		return false
	}
	q.buf[(q.head+q.n)%len(q.buf)] = p
	q.n++
	return true
}

func (q *fifo) pop() pending {
	p := q.buf[q.head]
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return p
}
