package main

import (
	"errors"
	"io"
	"io/fs"
	"strconv"

	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/recovery/resetreason"
)

// The escalation flags (cmd/varta-watch/README.md, "Escalation and the
// reset reason"): the ladder over failed recoveries, what an escalation
// does, and the reset-reason file.

// Defaults and bounds.
const (
	maxEscalateAfter     = 100
	defEscalateWindowMs  = 10 * 60 * 1000 // ten minutes
	maxEscalateWindowMs  = maxThresholdMs // a week
	defRebootGraceMs     = 30 * 1000
	maxRebootGraceMs     = 10 * 60 * 1000
	resetReasonUsageLine = "varta-watch: usage: varta-watch reset-reason --reset-reason-file PATH\n"
)

type escFlags struct {
	after, window, grace *num
	exec                 string
}

func (f *escFlags) afterNum(c *poll.Config) *num {
	f.after = intNum(&c.Escalate.After, 0, 0, maxEscalateAfter)
	return f.after
}

func (f *escFlags) windowNum(c *poll.Config) *num {
	f.window = msNum(&c.Escalate.Window, defEscalateWindowMs, 0, maxEscalateWindowMs)
	return f.window
}

func (f *escFlags) graceNum(c *poll.Config) *num {
	f.grace = msNum(&c.Escalate.RebootGrace, defRebootGraceMs, 0, maxRebootGraceMs)
	return f.grace
}

// check refuses the escalation flags that cannot work together; every
// error is a usage error.
func (f *escFlags) check(s *settings) error {
	e := &s.cfg.Escalate
	if e.After == 0 {
		switch {
		case f.window.given:
			return bad("escalate-window-ms", "needs --escalate-after: it is the ladder's window")
		case f.exec != "":
			return bad("escalate-exec", "needs --escalate-after: it runs when an agent escalates")
		case e.Reset:
			return bad("escalate-reset", "needs --escalate-after: it acts when an agent escalates")
		case e.Reboot:
			return bad("escalate-reboot", "needs --escalate-after: it acts when an agent escalates")
		case f.grace.given:
			return bad("escalate-reboot-grace-ms", "needs --escalate-reboot")
		}
		return nil
	}
	switch {
	case s.recoveryExec == "" && s.recoveryFile == "" && s.agentsFile == "": // the file's own commands: loadAgents
		return bad("escalate-after", "needs a recovery command: --recovery-exec or --recovery-exec-file (it counts their failures)")
	case f.grace.given && !e.Reboot:
		return bad("escalate-reboot-grace-ms", "needs --escalate-reboot")
	case f.exec == "" && !e.Reset && !e.Reboot:
		return bad("escalate-after", "does nothing alone: add --escalate-exec, --escalate-reset or --escalate-reboot")
	}
	return nil
}

// load parses --escalate-exec into the recovery configuration (after the
// recovery command's own load).
func (f *escFlags) load(c *poll.Config) error {
	if f.exec == "" || c.Recovery == nil {
		return nil
	}
	cmd, err := recovery.ParseCommand(f.exec)
	if errors.Is(err, recovery.ErrCommandSyntax) {
		return badErr("escalate-exec", err)
	}
	if err != nil {
		return &loadError{"escalate-exec", err}
	}
	cmd.Source = recovery.SourceEscalate
	c.Recovery.Escalate = &cmd
	return nil
}

// resetReasonCommand implements `varta-watch reset-reason
// --reset-reason-file PATH`: it prints the file's record, one line of
// key=value fields, exit 0; no record yet, exit 0 with a line saying so;
// a damaged or unreadable file, exit 1.
func resetReasonCommand(args []string, stdout, stderr io.Writer) int {
	var path string
	switch {
	case len(args) == 2 && args[0] == "--reset-reason-file":
		path = args[1]
	case len(args) == 1 && len(args[0]) > len("--reset-reason-file=") && args[0][:len("--reset-reason-file=")] == "--reset-reason-file=":
		path = args[0][len("--reset-reason-file="):]
	default:
		io.WriteString(stderr, resetReasonUsageLine)
		return 2
	}
	f, err := resetreason.Read(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		io.WriteString(stdout, path+": no reset-reason file yet (no observer ran with it)\n")
		return 0
	case err != nil:
		io.WriteString(stderr, "varta-watch: reset-reason: "+path+": "+err.Error()+"\n")
		return 1
	}
	io.WriteString(stdout, "format="+strconv.Itoa(resetreason.Version)+" "+f.Describe()+"\n")
	return 0
}
