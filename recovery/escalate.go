package recovery

import "errors"

// SourceEscalate is the Source of an escalate command given on the
// command line (--escalate-exec): its spawn records say so in their
// source column, inside the Rust observer's record kinds.
const SourceEscalate = "escalate"

// Errors of Escalate.
var (
	ErrNoEscalate     = errors.New("recovery: no escalate command configured")
	ErrEscalateBusy   = errors.New("recovery: the escalate command is still running")
	ErrEscalateClosed = errors.New("recovery: shutting down, the escalate command is not started")
)

// Escalate runs Config.Escalate for agent now, by the same rules as the
// recovery command (execve, no shell, the agent's environment, its own
// process group, the timeout, capture) but outside the pid table: no
// debounce, no in-flight check, no spawn budget, and a child slot of its
// own, so MaxConcurrent recoveries cannot keep it waiting. One escalate
// child runs at a time (ErrEscalateBusy). Its spawn and complete records
// go to the audit log; its completion reaches OnComplete with Escalation
// set. A fork/exec failure is returned, audited as a refused record
// (spawn_failed) and not passed to OnSpawnFailed.
func (m *Manager) Escalate(agent int32, startTime uint64, now int64) error {
	switch {
	case m.esc == nil:
		return ErrNoEscalate
	case m.shutdown:
		return ErrEscalateClosed
	case m.escBusy:
		return ErrEscalateBusy
	}
	if err := m.launch(m.escSlot, m.esc, agent, startTime, none, now); err != nil {
		m.auditRefused(agent, spawnReason(err))
		return err
	}
	m.escBusy = true
	return nil
}

// freeSlot returns a child slot whose child was reaped (and whose cgroup
// is empty): the escalate command's to itself, the others to the pool.
func (m *Manager) freeSlot(slot int32) {
	if slot == m.escSlot {
		m.escBusy = false
		return
	}
	m.freeKids.Push(slot)
}

// cmdLen is the longest program path plus source of the commands, for the
// audit record buffer.
func (m *Manager) cmdLen() int {
	n := len(m.cmd.Path) + max(len(m.cmd.source()), len(SourceMissing))
	if m.esc != nil {
		n = max(n, len(m.esc.Path)+len(m.esc.source()))
	}
	return n
}
