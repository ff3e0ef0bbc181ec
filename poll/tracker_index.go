package poll

// The tracker's two building blocks, on int32 indices into its slot array:
// an intrusive doubly-linked list and an open-addressing pid index.

// slotList is an intrusive doubly-linked list threaded through Slot.prev
// and Slot.next; -1 ends it.
type slotList struct{ head, tail int32 }

var emptyList = slotList{head: -1, tail: -1}

// push appends the unlinked slot i at the tail.
func (l *slotList) push(slots []Slot, i int32) {
	s := &slots[i]
	s.prev, s.next = l.tail, -1
	if l.tail >= 0 {
		slots[l.tail].next = i
	} else {
		l.head = i
	}
	l.tail = i
}

// unlink removes slot i, which must be on l.
func (l *slotList) unlink(slots []Slot, i int32) {
	s := &slots[i]
	if s.prev >= 0 {
		slots[s.prev].next = s.next
	} else {
		l.head = s.next
	}
	if s.next >= 0 {
		slots[s.next].prev = s.prev
	} else {
		l.tail = s.prev
	}
	s.prev, s.next = -1, -1
}

// home is pid's preferred bucket: Fibonacci hashing spreads the runs of
// consecutive pids a board's init spawns across the table.
func (t *Tracker) home(pid uint32) uint32 { return (pid * 0x9E3779B1) >> t.shift }

// find returns pid's slot and bucket, or -1 and the empty bucket where a
// linear probe for pid ended. The index is never more than half full, so
// probes are short and always end.
func (t *Tracker) find(pid uint32) (int32, uint32) {
	mask := uint32(len(t.index) - 1)
	for b := t.home(pid); ; b = (b + 1) & mask {
		i := t.index[b]
		if i < 0 || t.slots[i].Pid == pid {
			return i, b
		}
	}
}

// insert indexes slot i under pid, which must not be indexed yet.
func (t *Tracker) insert(pid uint32, i int32) {
	_, b := t.find(pid)
	t.index[b] = i
}

// delete drops pid from the index with backward-shift deletion: entries
// after the hole move back when their home allows, so no tombstones build
// up and lookups stay as short as on a fresh table.
func (t *Tracker) delete(pid uint32) {
	i, hole := t.find(pid)
	if i < 0 {
		return
	}
	mask := uint32(len(t.index) - 1)
	for b := (hole + 1) & mask; ; b = (b + 1) & mask {
		j := t.index[b]
		if j < 0 {
			break
		}
		// The entry at b may fill the hole unless its home lies
		// cyclically in (hole, b]: then it would move before its home.
		if (b-t.home(t.slots[j].Pid))&mask >= (b-hole)&mask {
			t.index[hole] = j
			hole = b
		}
	}
	t.index[hole] = -1
}
