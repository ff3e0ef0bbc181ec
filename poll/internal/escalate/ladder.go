package escalate

// Ladder counts failures per key in a sliding window and says when a key
// reaches its N-th failure within it; each key escalates once. It is a
// fixed table: Capacity keys, each with a ring of its last After failure
// times. Pure: no clock, no I/O; allocation-free once every entry's ring
// was made (at its first failure).
type Ladder struct {
	after   int
	window  int64 // ns; 0: failures never age out
	entries []entry
	dropped uint64 // failures not counted: every entry escalated (never evicted)
}

type entry struct {
	key       string
	used      bool
	escalated bool
	times     []int64 // ring of the last after failure times
	n, head   int     // failures in the ring, and where the next goes
	last      int64   // the latest failure, for eviction
}

// NewLadder makes a ladder for capacity keys escalating at the after-th
// failure within window ns (0: any age).
func NewLadder(after int, window int64, capacity int) *Ladder {
	return &Ladder{after: max(after, 1), window: window, entries: make([]entry, max(capacity, 1))}
}

// Fail records a failure of key at now. It returns the failures of key
// within the window, this one included, and whether this one escalates:
// the after-th within the window for a key that has not escalated yet.
// When the table is full the entry with the oldest latest failure that
// has not escalated makes room; when every entry escalated, the failure
// is dropped (Dropped) and (0, false) returned.
func (l *Ladder) Fail(key string, now int64) (count int, escalate bool) {
	return l.FailAfter(key, now, 0)
}

// FailAfter is Fail for a key with its own count (a declared agent's
// escalate-after=); after <= 0 means the ladder's. A key whose count
// changes (a reload) starts its ring afresh.
func (l *Ladder) FailAfter(key string, now int64, after int) (count int, escalate bool) {
	if after <= 0 {
		after = l.after
	}
	e := l.find(key)
	if e == nil {
		return 0, false
	}
	if len(e.times) != after {
		e.times, e.n, e.head = make([]int64, after), 0, 0
	}
	e.last = now
	e.times[e.head] = now
	e.head = (e.head + 1) % after
	e.n = min(e.n+1, after)
	count = l.inWindow(e, now)
	if count >= after && !e.escalated {
		e.escalated = true
		return count, true
	}
	return count, false
}

// inWindow counts e's failures no older than the window.
func (l *Ladder) inWindow(e *entry, now int64) int {
	if l.window <= 0 {
		return e.n
	}
	c := 0
	for i := 0; i < e.n; i++ {
		if now-e.times[i] <= l.window {
			c++
		}
	}
	return c
}

// find returns key's entry, making one when it has none.
func (l *Ladder) find(key string) *entry {
	var free, victim *entry
	for i := range l.entries {
		e := &l.entries[i]
		switch {
		case e.used && e.key == key:
			return e
		case !e.used:
			if free == nil {
				free = e
			}
		case !e.escalated && (victim == nil || e.last < victim.last):
			victim = e
		}
	}
	if free == nil {
		free = victim
	}
	if free == nil {
		l.dropped++
		return nil
	}
	times := free.times
	if times == nil {
		times = make([]int64, l.after)
	}
	*free = entry{key: key, used: true, times: times}
	return free
}

// Escalated reports whether key has escalated.
func (l *Ladder) Escalated(key string) bool {
	for i := range l.entries {
		if e := &l.entries[i]; e.used && e.key == key {
			return e.escalated
		}
	}
	return false
}

// Dropped is the number of failures not counted because every entry had
// escalated.
func (l *Ladder) Dropped() uint64 { return l.dropped }
