package main

import (
	"strconv"
	"time"

	"github.com/varta-go/varta/poll"
)

// The embedded-operations flags (cmd/varta-watch/README.md §1, §3, §8): watchdogs, the
// heartbeat file, exit detection and parent beats.

// autoSelfWatchdog is --self-watchdog-secs when the service manager asks
// for a watchdog ($WATCHDOG_USEC) and the flag is not given.
const autoSelfWatchdog = 4 * time.Second

// maxSelfWatchdogSecs bounds --self-watchdog-secs: a day is already
// beyond any use.
const maxSelfWatchdogSecs = 86400

type opsFlags struct {
	selfWatchdog    time.Duration
	selfWatchdogNum *num // its flag: given or not
	hwWatchdog      string
	heartbeat       string
	stateFile       string
	onExit          string
	allowParent     bool
}

// check turns the flags into s.cfg.Ops; every error is a usage error.
func (f *opsFlags) check(s *settings) error {
	c := &s.cfg.Ops
	p, ok := poll.ParseExitPolicy(f.onExit)
	switch {
	case !ok:
		return bad("on-exit", "want report, recover or ignore, got "+strconv.Quote(f.onExit))
	case p == poll.ExitRecover && s.recoveryExec == "" && s.recoveryFile == "" && s.agentsFile == "": // see loadAgents
		return bad("on-exit", "recover needs a recovery command: --recovery-exec or --recovery-exec-file")
	}
	c.OnExit = p
	c.SelfWatchdog = f.selfWatchdog
	c.HWWatchdog = f.hwWatchdog
	c.HeartbeatFile = f.heartbeat
	c.StateFile = f.stateFile
	c.AllowParentBeats = f.allowParent
	return nil
}

// load reads the service manager's watchdog request; a malformed
// $WATCHDOG_USEC is a start-up failure, like a malformed $NOTIFY_SOCKET.
func (f *opsFlags) load(c *poll.Config) error {
	interval, err := poll.SystemdWatchdog()
	if err != nil {
		return err
	}
	c.Ops.NotifyWatchdog = interval
	if interval > 0 && !f.selfWatchdogNum.given {
		c.Ops.SelfWatchdog = autoSelfWatchdog
	}
	return nil
}
