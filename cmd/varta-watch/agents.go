package main

import (
	"strconv"

	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/recovery"
)

// loadAgents reads --agents-file (a bad file is a start-up failure naming
// the file and line, exit 1). When no --recovery-exec is given but the
// file declares recovery-exec= for some agents, recovery is on for those
// alone: the recovery configuration gets an empty command, and an agent
// without its own gets none. The flags that need a recovery command then
// need the file to declare one.
func (s *settings) loadAgents() error {
	if s.agentsFile == "" {
		return nil
	}
	f, err := poll.LoadAgents(s.agentsFile)
	if err != nil {
		return &loadError{"agents-file", err}
	}
	s.cfg.Agents = f
	if s.cfg.Recovery != nil {
		return nil
	}
	own := false
	for i := range f.Agents {
		own = own || f.Agents[i].Recovery != nil
	}
	if own {
		return s.recoveryConfig(recovery.Command{})
	}
	name := s.recoveryOption()
	switch {
	case s.cfg.Escalate.After > 0:
		name = "escalate-after"
	case s.cfg.Ops.OnExit == poll.ExitRecover:
		name = "on-exit"
	}
	if name != "" {
		return bad(name, "needs a recovery command: --recovery-exec, --recovery-exec-file, or recovery-exec= in --agents-file "+
			s.agentsFile+", which declares none")
	}
	return nil
}

// agentsProblem is --check-config's look at the declared recovery
// commands: each must be an executable file.
func agentsProblem(f *poll.AgentsFile) []string {
	var out []string
	for i := range f.Agents {
		a := &f.Agents[i]
		if a.Recovery == nil {
			continue
		}
		if msg := executableProblem(a.Recovery.Path); msg != "" {
			out = append(out, "--agents-file: "+f.Path+" line "+strconv.Itoa(a.Line)+": agent "+a.Name+": recovery-exec: "+msg)
		}
	}
	return out
}
