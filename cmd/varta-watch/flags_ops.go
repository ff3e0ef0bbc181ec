package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
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
	selfWatchdog secsFlag
	hwWatchdog   string
	heartbeat    string
	onExit       string
	allowParent  bool
}

// secsFlag is a whole number of seconds, 0 meaning off.
type secsFlag struct {
	d   time.Duration
	set bool
}

func (f *secsFlag) String() string { return "" }
func (f *secsFlag) Set(s string) error {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 || v > maxSelfWatchdogSecs {
		return errors.New("want a whole number of seconds, 0 (off) to " + strconv.Itoa(maxSelfWatchdogSecs))
	}
	f.d, f.set = time.Duration(v)*time.Second, true
	return nil
}

func (f *opsFlags) register(fs *cli.FlagSet) {
	fs.Var(&f.selfWatchdog, "self-watchdog-secs", "")
	fs.StringVar(&f.hwWatchdog, "hw-watchdog", "", "")
	fs.StringVar(&f.heartbeat, "heartbeat-file", "", "")
	fs.StringVar(&f.onExit, "on-exit", "report", "")
	fs.BoolVar(&f.allowParent, "allow-parent-beats", false, "")
}

// check turns the flags into s.cfg.Ops; every error is a usage error.
func (f *opsFlags) check(s *settings) error {
	c := &s.cfg.Ops
	p, ok := poll.ParseExitPolicy(f.onExit)
	switch {
	case !ok:
		return bad("on-exit", "want report, recover or ignore, got "+strconv.Quote(f.onExit))
	case p == poll.ExitRecover && s.recoveryExec == "" && s.recoveryFile == "":
		return bad("on-exit", "recover needs a recovery command: --recovery-exec or --recovery-exec-file")
	}
	c.OnExit = p
	c.SelfWatchdog = f.selfWatchdog.d
	c.HWWatchdog = f.hwWatchdog
	c.HeartbeatFile = f.heartbeat
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
	if interval > 0 && !f.selfWatchdog.set {
		c.Ops.SelfWatchdog = autoSelfWatchdog
	}
	return nil
}
