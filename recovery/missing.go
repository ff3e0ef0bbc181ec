package recovery

import "errors"

// SourceMissing is the source column of the spawn record of a command run
// for a declared agent that is missing (RunMissing): it names why the
// child ran, as SourceEscalate does, since no stall of any pid did.
const SourceMissing = "missing"

// Errors of RunMissing.
var (
	ErrMissingBusy   = errors.New("recovery: every child slot is busy; the missing agent's command is not run")
	ErrMissingClosed = errors.New("recovery: shutting down, the missing agent's command is not started")
	ErrNoCommand     = errors.New("recovery: no command to run")
	ErrMissingDryRun = errors.New("recovery: --recovery-dry-run: the missing agent's command was logged, not run")
)

// RunMissing runs cmd (nil: Config.Command) for a declared agent that was
// never seen beating in time (--agents-file expect-within-ms=): there is
// no process, so {pid} is 0 and the child's environment gets env (the
// caller's VARTA_AGENT_MISSING=1 and the agent's name) in place of
// Config.AgentEnv. It takes a free child slot of the pool now or not at
// all (ErrMissingBusy): no pid table entry, no debounce, no queue, since
// an absence is reported once per absence. The spawn and complete records
// are audited with source "missing" and agent pid 0; the completion
// reaches OnComplete with Missing set and is not counted in Counts. Under
// DryRun the command line goes to OnDryRun, nothing runs, and
// ErrMissingDryRun is returned. A fork/exec
// failure is returned and audited refused (spawn_failed).
func (m *Manager) RunMissing(cmd *Command, env []string, now int64) error {
	if cmd == nil || cmd.Path == "" {
		if m.cmd.Path == "" {
			return ErrNoCommand
		}
		cmd = &m.cmd
	}
	switch {
	case m.shutdown:
		return ErrMissingClosed
	case m.dryRun:
		if m.onDryRun != nil {
			m.onDryRun(0, cmd.argv(0))
		}
		return ErrMissingDryRun
	case m.full() || m.freeKids.Len() == 0:
		return ErrMissingBusy
	}
	slot, _ := m.freeKids.Pop()
	m.missEnv = env
	if m.missEnv == nil {
		m.missEnv = []string{}
	}
	err := m.launch(slot, cmd, 0, 0, none, now)
	m.missEnv = nil
	if err != nil {
		m.freeKids.Push(slot)
		m.auditRefused(0, spawnReason(err))
		return err
	}
	return nil
}

// Command is the command every agent without its own gets
// (Config.Command); nil when there is none.
func (m *Manager) Command() *Command {
	if m == nil || m.cmd.Path == "" {
		return nil
	}
	return &m.cmd
}

// commandFor is the command agent's child runs: its own (CommandFor),
// else Config.Command; nil when there is neither.
func (m *Manager) commandFor(agent int32) *Command {
	if m.cmdFor != nil {
		if c := m.cmdFor(agent); c != nil {
			return c
		}
	}
	return m.Command()
}
