package track

// Verify binds the session in slot id to the process whose start time is
// start, once the caller has proved that this process sent one of the
// session's frames (package reuse: the frame was queued after the process
// started, so no predecessor on the pid could have sent it). A session
// whose start was unknown (StartUnknown) becomes verifiable: its stalls
// are recovered again and a recycled pid is retired.
func (t *Tracker) Verify(id SlotID, start uint64) {
	s := &t.slots[id]
	s.StartTime, s.HasStartTime, s.StartUnknown = start, true, false
}
