package recovery

// OnUnverifiableStall records a stall of pid whose process could not be
// told from a successor on the same pid (its start time could not be
// read: the observer out of file descriptors, say). No command runs
// against a guess: it is counted skipped_stall_unverifiable and audited
// as refused with reason unverifiable.
func (m *Manager) OnUnverifiableStall(pid int32) Outcome {
	return m.refuse(pid, OutcomeSkippedUnverifiable, RefusedUnverified)
}
