package recovery

import (
	"errors"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// spawn starts the recovery child for entry e. The caller has checked
// that a child slot is free. The child gets /dev/null as stdin, /dev/null
// or a capture pipe as stdout and stderr, nothing else (every fd of ours
// is close-on-exec and ForkExec passes only Files), the configured
// environment, and its own process group so a timeout can kill all it
// started. ForkExec returns once the child has exec'd (vfork-style), so
// the loop is held for one fork/exec; SpawnsPerTick bounds how many.
func (m *Manager) spawn(e int32, now int64) Outcome {
	m.spawnLeft--
	en := &m.pids.entries[e]
	en.lastRun, en.hasRun = now, true
	m.pids.unlink(e)
	if m.dryRun {
		return m.dryRunFor(e)
	}
	cmd := m.commandFor(en.pid)
	if cmd == nil { // a reload took the agent's own command away while the stall waited
		m.pids.idle(e)
		return m.refuse(en.pid, OutcomeSkippedStale, RefusedStale)
	}
	slot, _ := m.freeKids.Pop() // admitted: fewer than MaxConcurrent slots are in use
	if err := m.launch(slot, cmd, en.pid, en.startTime, e, now); err != nil {
		m.freeKids.Push(slot)
		return m.spawnFailed(e, err)
	}
	en.child = slot
	return m.countFor(en.pid, OutcomeSpawned)
}

// launch starts cmd for agent in the free child slot, owned by pid-table
// entry e (none for the escalate command), and audits the spawn. On
// failure nothing is left open and the slot is still free.
func (m *Manager) launch(slot int32, cmd *Command, agent int32, startTime uint64, e int32, now int64) error {
	rfd := [2]int32{none, none}
	m.files = [3]uintptr{uintptr(m.devnull), uintptr(m.devnull), uintptr(m.devnull)}
	if m.capture > 0 {
		for k := range rfd {
			var p [2]int
			err := unix.Pipe2(p[:], unix.O_CLOEXEC)
			if err == nil {
				err = unix.SetNonblock(p[0], true)
				if err != nil {
					unix.Close(p[0])
					unix.Close(p[1])
				}
			}
			if err != nil {
				closeFds(rfd[:])
				closeWrite(m.files[1:], m.devnull)
				return os.NewSyscallError("pipe2", err)
			}
			rfd[k] = int32(p[0])
			m.files[1+k] = uintptr(p[1])
		}
	}
	if m.closeRange {
		cloexecFrom3() // cheap, and catches an fd someone opened without O_CLOEXEC since
	}
	if m.cg != nil {
		m.sys.UseCgroupFD, m.sys.CgroupFD = true, m.cg.dirs[slot]
		m.cg.busy[slot] = true
	}
	m.startEnv(slot, agent)
	argv := cmd.argv(agent)
	cpid, err := syscall.ForkExec(cmd.Path, argv, &m.attr)
	closeWrite(m.files[1:], m.devnull)
	if err != nil {
		closeFds(rfd[:])
		if m.cg != nil {
			m.cg.busy[slot] = false
		}
		return err
	}
	if m.ndesc != nil {
		m.ndesc[slot] = 0
	}
	if m.oomAdj < 0 {
		// The observer keeps the OOM killer away (its init file sets a
		// negative oom_score_adj, which children inherit); a service the
		// child restarts must not be: back to 0, before it forks much.
		writeFile("/proc/"+strconv.Itoa(cpid)+"/oom_score_adj", "0")
	}
	c := &m.children[slot]
	kept := c.kept[:0]
	if m.capture > 0 && kept == nil {
		kept = make([]byte, 0, m.capture)
	}
	*c = child{
		pid:       cpid,
		agent:     agent,
		entry:     e,
		pos:       int32(len(m.active)),
		startTime: startTime,
		spawned:   now,
		deadline:  NoDeadline,
		fds:       rfd,
		kept:      kept,
		esc:       slot == m.escSlot,
		cmd:       cmd,
		missing:   m.missEnv != nil,
	}
	if m.timeout > 0 {
		c.deadline = now + m.timeout
		if c.deadline < m.nextDue {
			m.nextDue = c.deadline
		}
	}
	m.active = append(m.active, slot)
	m.auditSpawn(c, argv)
	return nil
}

// dryRunFor is spawn under --recovery-dry-run: everything a spawn decides
// (the debounce clock, the spawn budget) as if the child ran, then the
// command line goes to Config.OnDryRun instead of fork/exec, and the
// decision is counted dry_run and audited as a refused record with reason
// dry_run, so the audit log still shows every stall's fate.
func (m *Manager) dryRunFor(e int32) Outcome {
	en := &m.pids.entries[e]
	if cmd := m.commandFor(en.pid); m.onDryRun != nil && cmd != nil {
		m.onDryRun(en.pid, cmd.argv(en.pid))
	}
	m.pids.idle(e)
	return m.refuse(en.pid, OutcomeDryRun, RefusedDryRun)
}

func (m *Manager) spawnFailed(e int32, err error) Outcome {
	m.pids.idle(e)
	en := &m.pids.entries[e]
	if m.onFailed != nil {
		m.onFailed(en.pid, err)
	}
	return m.refuse(en.pid, OutcomeSpawnFailed, spawnReason(err))
}

// spawnReason is the refused record's reason for a failed spawn:
// spawn_failed, with the errno's symbol when there is one.
func spawnReason(err error) string {
	reason := RefusedSpawn
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if name := unix.ErrnoName(errno); name != "" {
			reason += ":" + name
		}
	}
	return reason
}

func closeFds(fds []int32) {
	for i, fd := range fds {
		if fd != none {
			unix.Close(int(fd))
			fds[i] = none
		}
	}
}

// closeWrite closes the parent's copies of the pipe write ends in files.
func closeWrite(files []uintptr, devnull int) {
	for i, fd := range files {
		if int(fd) != devnull {
			unix.Close(int(fd))
			files[i] = uintptr(devnull)
		}
	}
}

// drain reads what the child wrote to its capture pipes, at most
// drainPerTick bytes per pipe, never blocking (the read ends are
// O_NONBLOCK). It keeps the first CaptureBytes, counts everything, and
// discards the rest so a chatty child is never stalled on a full pipe.
// A pipe at EOF or in error is closed.
func (m *Manager) drain(c *child) {
	for k, fd := range c.fds {
		if fd == none {
			continue
		}
		for budget := drainPerTick; budget > 0; {
			dst := m.scratch
			keep := len(c.kept) < m.capture
			if keep {
				dst = c.kept[len(c.kept):m.capture]
			}
			if len(dst) > budget {
				dst = dst[:budget]
			}
			n, err := unix.Read(int(fd), dst)
			if n > 0 {
				if keep {
					c.kept = c.kept[:len(c.kept)+n]
					c.keptN[k] += uint32(n)
				}
				c.nbytes[k] += uint64(n)
				budget -= n
				continue
			}
			if err == unix.EINTR {
				continue
			}
			if err != unix.EAGAIN {
				unix.Close(int(fd)) // EOF: every writer is gone
				c.fds[k] = none
			}
			break
		}
	}
}

// reap collects the child in slot if it has exited, with wait4(pid,
// WNOHANG) on its own pid only (never -1, which would steal other
// children of the process). It reports whether the slot was freed.
func (m *Manager) reap(slot int32, now int64) bool {
	c := &m.children[slot]
	var ws unix.WaitStatus
	var wpid int
	var err error
	for {
		wpid, err = unix.Wait4(c.pid, &ws, unix.WNOHANG, nil)
		if err != unix.EINTR {
			break
		}
	}
	if err == nil && wpid == 0 {
		return false // still running
	}
	code, sig, o, lost := -1, syscall.Signal(0), OutcomeReapedNonzero, false
	switch {
	case err != nil:
		lost = true
		// ECHILD: someone reaped it behind our back (SIGCHLD set to
		// SIG_IGN, or a wait on -1 elsewhere); the status is lost.
	case ws.Exited():
		code = ws.ExitStatus()
		if code == 0 {
			o = OutcomeReapedZero
		}
	case ws.Signaled():
		sig = ws.Signal()
	}
	if c.killed {
		o = OutcomeKilled
	}
	m.complete(slot, now, o, code, sig, lost)
	return true
}

// complete accounts for a reaped child and frees its slot.
func (m *Manager) complete(slot int32, now int64, o Outcome, code int, sig syscall.Signal, lost bool) {
	c := &m.children[slot]
	m.drain(c)
	closeFds(c.fds[:])
	dur := now - c.spawned
	if !c.esc && !c.missing {
		m.countFor(c.agent, o)
		m.durations.observe(dur)
	}
	m.auditComplete(c, o, code, sig, dur, now, lost)
	if m.onComplete != nil {
		m.comp = Completion{
			Agent:       c.agent,
			StartTime:   c.startTime,
			Child:       c.pid,
			Outcome:     o,
			ExitCode:    code,
			Signal:      sig,
			Duration:    time.Duration(dur),
			StdoutBytes: c.nbytes[0],
			StderrBytes: c.nbytes[1],
			Captured:    c.kept,
			Escalation:  c.esc,
			Missing:     c.missing,
		}
		if c.sigErr != nil {
			m.comp.SignalErr = c.sigErr
		}
		m.onComplete(&m.comp)
		m.comp.Captured = nil
	}
	if c.entry != none {
		m.pids.entries[c.entry].child = none
		m.pids.idle(c.entry)
	}
	last := m.active[len(m.active)-1]
	m.active[c.pos] = last
	m.children[last].pos = c.pos
	m.active = m.active[:len(m.active)-1]
	killed := c.killed
	c.pid, c.nbytes, c.keptN, c.sigErr, c.esc, c.missing, c.cmd = 0, [2]uint64{}, [2]uint32{}, nil, false, false, nil
	c.kept = c.kept[:0]
	m.releaseSlot(slot, killed)
}

// The refusal reasons of refused records. Where the Rust observer has a
// token for the same refusal it is used (unauthenticated_transport,
// outstanding_capacity); the others are this observer's own.
const (
	RefusedUnattested = "unauthenticated_transport" // the agent is not kernel-attested (UDP without --udp-recovery)
	RefusedInvalidPid = "invalid_pid"               // pid 0 or negative: nobody to recover
	RefusedDebounced  = "debounced"                 // the same process ran within --recovery-debounce-ms
	RefusedInFlight   = "in_flight"                 // a child for the pid is running or queued
	RefusedCapacity   = "outstanding_capacity"      // the outstanding-child table is full
	RefusedStale      = "stale"                     // a deferred stall no longer stood when its turn came
	RefusedSpawn      = "spawn_failed"              // fork/exec failed; ":ERRNO" is added when known
	RefusedShutdown   = "shutdown"                  // the stall came after shutdown began, or was still queued
	RefusedUnverified = "unverifiable"              // the pid could not be tied to the agent's process
	RefusedPaused     = "paused"                    // the agent's recovery is paused (varta-watch pause)
	RefusedDryRun     = "dry_run"                   // --recovery-dry-run: the command was logged, not run
)

// observerNs is now on the event file's timeline.
func (m *Manager) observerNs() int64 { return m.clock() - m.origin }

func (m *Manager) auditRefused(pid int32, reason string) {
	a := m.audit
	if a == nil {
		return
	}
	a.begin("refused", m.observerNs())
	a.uint(uint64(uint32(pid)))
	a.text(reason)
	_ = a.commit("refused") // counted in AuditStats
}

// auditSpawn records the child: the program's path, where the command
// came from and the length of the argument vector, never the arguments,
// which may carry secrets.
func (m *Manager) auditSpawn(c *child, argv []string) {
	a := m.audit
	if a == nil {
		return
	}
	n := len(argv) - 1 // the spaces between the arguments
	for _, s := range argv {
		n += len(s)
	}
	a.begin("spawn", c.spawned-m.origin)
	a.uint(uint64(uint32(c.agent)))
	a.uint(uint64(c.pid))
	a.text("exec")
	a.text(c.cmd.Path)
	if c.missing {
		a.text(SourceMissing)
	} else {
		a.text(c.cmd.source())
	}
	a.uint(uint64(uint32(n)))
	_ = a.commit("spawn")
}

// auditComplete records a reaped child. lost says its status was lost
// (someone else reaped it): outcome reap_failed, no code, no signal.
func (m *Manager) auditComplete(c *child, o Outcome, code int, sig syscall.Signal, dur, now int64, lost bool) {
	a := m.audit
	if a == nil {
		return
	}
	a.begin("complete", now-m.origin)
	a.uint(uint64(uint32(c.agent)))
	a.uint(uint64(c.pid))
	switch {
	case o == OutcomeKilled:
		a.text("killed")
	case lost:
		a.text("reap_failed")
	default:
		a.text("reaped")
	}
	switch {
	case sig != 0:
		a.dash()
		a.int(int64(sig))
	case code >= 0:
		a.int(int64(code))
		a.dash()
	default:
		a.dash()
		a.dash()
	}
	a.uint(uint64(max(dur, 0)))
	a.uint(uint64(c.keptN[0]))
	a.uint(uint64(c.keptN[1]))
	if c.nbytes[0]+c.nbytes[1] > uint64(c.keptN[0])+uint64(c.keptN[1]) {
		a.text("true")
	} else {
		a.text("false")
	}
	_ = a.commit("complete")
}

func signalName(sig syscall.Signal) string {
	if s := unix.SignalName(sig); s != "" {
		return s
	}
	return strconv.Itoa(int(sig))
}

// errText names an errno by its symbol (ENOENT) and anything else by its
// message.
func errText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if s := unix.ErrnoName(errno); s != "" {
			return s
		}
	}
	return err.Error()
}
