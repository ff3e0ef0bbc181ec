package poll

// Slot indices, for tables kept parallel to the tracker's (the exit
// watch's): an index names the same slot for as long as its pid's session
// lasts, and a freed slot has Pid 0.

// IndexOf returns the slot index of pid, or -1 when it is not tracked.
func (t *Tracker) IndexOf(pid uint32) int32 {
	i, _ := t.index.Get(pid) // -1 when absent
	return i
}

// At returns the slot at index i, 0 ≤ i < Capacity. The pointer follows
// the rules of Lookup's.
func (t *Tracker) At(i int32) *Slot { return &t.slots[i] }
