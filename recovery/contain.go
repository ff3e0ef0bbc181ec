package recovery

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Containment is how a recovery child's whole tree is found and killed
// when the child times out or is still running at shutdown, escapees
// included (processes that left its process group or session: setsid, a
// daemon's double fork). A child that exits by itself is never followed:
// what it leaves running (a restarted service) is left alone.
type Containment uint8

const (
	// ContainAuto uses a cgroup where cgroup v2 is writable and the
	// kernel has cgroup.kill (Linux 5.14), else the subreaper.
	ContainAuto Containment = iota
	// ContainCgroup starts each child in a cgroup of its own (clone3
	// with CLONE_INTO_CGROUP, so nothing it starts is ever outside) and
	// kills the tree with cgroup.kill. New fails where it cannot.
	ContainCgroup
	// ContainSubreaper makes the process a child subreaper
	// (PR_SET_CHILD_SUBREAPER): orphans of a recovery's tree are
	// reparented to it instead of init. The tree is walked while the
	// child runs (every Tick, at most every subreaperScan), and a kill
	// stops (SIGSTOP) then kills every process seen in it. The process
	// reaps every child it did not start through the Manager, by pid.
	ContainSubreaper
	// ContainGroup signals the child's process group only: an escapee
	// survives. The behaviour before containment existed.
	ContainGroup
)

var containNames = [...]string{"auto", "cgroup", "subreaper", "group"}

func (c Containment) String() string {
	if int(c) < len(containNames) {
		return containNames[c]
	}
	return "unknown"
}

// ContainError is a containment that could not be set up (ContainCgroup
// where cgroup v2 is not writable, a failed prctl, ...).
type ContainError struct {
	Mode Containment
	What string
	Err  error
}

func (e *ContainError) Error() string {
	s := "recovery: " + e.Mode.String() + " containment: " + e.What
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}
func (e *ContainError) Unwrap() error { return e.Err }

// maxDesc bounds the descendants of one recovery child the subreaper
// remembers; a tree larger than this is still killed through the walk at
// kill time and the process group, only its escapees beyond the bound
// are not remembered.
const maxDesc = 64

// subreaperScan is the longest time between two walks of a running
// child's tree, and orphanScan between two looks for exited adopted
// processes once there are any.
const (
	subreaperScan = int64(10e6)   // 10 ms
	orphanScan    = int64(1000e6) // 1 s
)

// proc is one process seen in a recovery child's tree: pid and start
// time (clock ticks since boot), which tells it from a later owner of
// the pid.
type proc struct {
	pid   int32
	start uint64
}

// cgroups is the cgroup v2 state: a directory for the observer's
// recovery children beside it, one sub-cgroup per child slot.
type cgroups struct {
	self string   // the observer's own cgroup directory
	base string   // self/varta-recovery.PID
	dirs []int    // per slot: O_DIRECTORY fd of base/N, for CLONE_INTO_CGROUP
	busy []bool   // per slot: the cgroup may still hold processes
	path []string // per slot: base/N
}

// setupContain chooses and prepares the containment for n child slots.
// Whatever it chooses, a process that is a subreaper already (made so by
// an earlier Manager, or by whoever started it) reaps its adopted
// children: nobody else will.
func (m *Manager) setupContain(want Containment, n int) error {
	var on int32
	if unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&on)), 0, 0, 0) == nil && on != 0 {
		m.reapOrphans = true
	}
	m.contain = want
	switch want {
	case ContainGroup:
		return nil
	case ContainAuto, ContainCgroup:
		cg, err := newCgroups(n, m)
		if err == nil {
			m.cg = cg
			m.contain = ContainCgroup
			return nil
		}
		if want == ContainCgroup {
			return err
		}
		m.cgErr = err
		fallthrough
	case ContainSubreaper:
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			if want == ContainAuto {
				m.contain = ContainGroup
				return nil
			}
			return &ContainError{Mode: ContainSubreaper, What: "prctl(PR_SET_CHILD_SUBREAPER)", Err: err}
		}
		m.contain = ContainSubreaper
		m.reapOrphans = true
		m.desc = make([][maxDesc]proc, n)
		m.ndesc = make([]int, n)
		m.marks = make([]string, n)
		return nil
	}
	return errors.New("recovery: unknown containment " + strconv.Itoa(int(want)))
}

// Containment returns the containment in use, and why cgroups were not
// (when ContainAuto fell back to the subreaper), for the start-up log.
func (m *Manager) Containment() (Containment, error) { return m.contain, m.cgErr }

// ownCgroup finds the observer's cgroup v2 directory from
// /proc/self/cgroup (the "0::" line) and /proc/self/mountinfo.
func ownCgroup() (string, error) {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	rel := ""
	found := false
	for _, l := range strings.Split(string(b), "\n") {
		if r, ok := strings.CutPrefix(l, "0::"); ok {
			rel, found = r, true
		}
	}
	if !found {
		return "", errors.New("no cgroup v2 line in /proc/self/cgroup")
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(mi), "\n") {
		pre, post, ok := strings.Cut(l, " - ")
		if !ok || !strings.HasPrefix(post, "cgroup2 ") {
			continue
		}
		f := strings.Fields(pre)
		if len(f) < 5 {
			continue
		}
		root, mnt := f[3], f[4]
		r := strings.TrimPrefix(rel, root)
		if root != "/" && r == rel {
			continue // a mount of another subtree
		}
		return strings.TrimSuffix(mnt+"/"+strings.TrimPrefix(r, "/"), "/"), nil
	}
	return "", errors.New("no cgroup2 mount")
}

func newCgroups(n int, m *Manager) (*cgroups, error) {
	self, err := ownCgroup()
	if err != nil {
		return nil, &ContainError{Mode: ContainCgroup, What: "finding our cgroup v2", Err: err}
	}
	cg := &cgroups{self: self, base: self + "/varta-recovery." + strconv.Itoa(os.Getpid()),
		dirs: make([]int, n), busy: make([]bool, n), path: make([]string, n)}
	for i := range cg.dirs {
		cg.dirs[i] = -1
	}
	fail := func(what string, err error) (*cgroups, error) {
		cg.close()
		return nil, &ContainError{Mode: ContainCgroup, What: what, Err: err}
	}
	removeStale(self)
	if err := unix.Mkdir(cg.base, 0o755); err != nil && err != unix.EEXIST {
		return fail("mkdir "+cg.base, err)
	}
	for i := range cg.dirs {
		cg.path[i] = cg.base + "/" + strconv.Itoa(i)
		if err := unix.Mkdir(cg.path[i], 0o755); err != nil && err != unix.EEXIST {
			return fail("mkdir "+cg.path[i], err)
		}
		fd, err := unix.Open(cg.path[i], unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fail("open "+cg.path[i], err)
		}
		cg.dirs[i] = fd
	}
	if err := unix.Access(cg.path[0]+"/cgroup.kill", unix.W_OK); err != nil {
		return fail("no cgroup.kill (Linux 5.14 or later)", err)
	}
	// A fork into the cgroup of a program that does not exist: ENOENT
	// from the exec proves clone3 put a child there; anything else is
	// the clone failing (EBUSY, EACCES, EOPNOTSUPP, ENOSYS).
	attr := syscall.ProcAttr{Env: []string{}, Sys: &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: cg.dirs[0]}}
	if _, err := syscall.ForkExec("/nonexistent/varta-cgroup-probe", []string{"probe"}, &attr); err != syscall.ENOENT {
		return fail("clone3 into a cgroup", err)
	}
	return cg, nil
}

// removeStale removes the empty cgroups an observer killed without its
// clean exit (SIGKILL, a crash) left beside us: varta-recovery.PID where
// no process PID exists. One still holding a process is left (rmdir
// fails with EBUSY): what runs there is not ours to judge.
func removeStale(self string) {
	ents, err := os.ReadDir(self)
	if err != nil {
		return
	}
	for _, e := range ents {
		pid, ok := strings.CutPrefix(e.Name(), "varta-recovery.")
		if !ok || !e.IsDir() || pid == strconv.Itoa(os.Getpid()) {
			continue
		}
		if n, err := strconv.Atoi(pid); err != nil || unix.Kill(n, 0) != unix.ESRCH {
			continue
		}
		dir := self + "/" + e.Name()
		subs, _ := os.ReadDir(dir)
		for _, s := range subs {
			if s.IsDir() {
				unix.Rmdir(dir + "/" + s.Name())
			}
		}
		unix.Rmdir(dir)
	}
}

// kill ends every process in slot's cgroup (cgroup.kill: SIGKILL to
// all, forks racing with it included).
func (cg *cgroups) kill(slot int32) error {
	return writeFile(cg.path[slot]+"/cgroup.kill", "1")
}

// procs returns the processes in slot's cgroup.
func (cg *cgroups) procs(slot int32) []int {
	b, err := os.ReadFile(cg.path[slot] + "/cgroup.procs")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if pid, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// settle finishes with slot's cgroup after its child was reaped: killed
// children's trees are killed again (whatever forked meanwhile); what a
// child that exited by itself left running is moved to the observer's own
// cgroup, where it would have been without containment. It reports
// whether the cgroup is empty, so the slot can be reused.
func (cg *cgroups) settle(slot int32, killed bool) bool {
	for round := 0; round < 4; round++ {
		ps := cg.procs(slot)
		if len(ps) == 0 {
			cg.busy[slot] = false
			return true
		}
		if killed {
			cg.kill(slot)
			return false // dying: check again on a later Tick
		}
		for _, pid := range ps {
			writeFile(cg.self+"/cgroup.procs", strconv.Itoa(pid))
		}
	}
	return false
}

func (cg *cgroups) close() {
	for i, fd := range cg.dirs {
		if fd >= 0 {
			unix.Close(fd)
			cg.dirs[i] = -1
		}
		if cg.path[i] != "" {
			unix.Rmdir(cg.path[i])
		}
	}
	unix.Rmdir(cg.base)
}

func writeFile(path, s string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = unix.Write(fd, []byte(s))
	unix.Close(fd)
	return err
}

// procStat reads ppid, process group, session and start time from
// /proc/PID/stat; ok is false once the process is gone.
func procStat(pid int) (ppid, pgrp, sid int, start uint64, state byte, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, 0, 0, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, 0, 0, 0, false
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 20 { // state ppid pgrp session ... starttime is the 20th after comm
		return 0, 0, 0, 0, 0, false
	}
	ppid, _ = strconv.Atoi(string(f[1]))
	pgrp, _ = strconv.Atoi(string(f[2]))
	sid, _ = strconv.Atoi(string(f[3]))
	start, _ = strconv.ParseUint(string(f[19]), 10, 64)
	return ppid, pgrp, sid, start, f[0][0], true
}

// children lists the children of every thread of pid
// (/proc/PID/task/TID/children; CONFIG_PROC_CHILDREN).
func children(pid int, out []int) []int {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return out
	}
	for _, e := range ents {
		b, err := os.ReadFile(dir + "/" + e.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range bytes.Fields(b) {
			if c, err := strconv.Atoi(string(f)); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}

// alive reports whether p still names the process that was seen.
func (p proc) alive() bool {
	_, _, _, start, state, ok := procStat(int(p.pid))
	return ok && start == p.start && state != 'Z' && state != 'X'
}

// remember adds p to slot's descendants unless known or the table is full.
func (m *Manager) remember(slot int32, p proc) bool {
	d, n := &m.desc[slot], m.ndesc[slot]
	for i := 0; i < n; i++ {
		if d[i] == p {
			return false
		}
	}
	if n == maxDesc {
		// Forget the dead first.
		k := 0
		for i := 0; i < n; i++ {
			if d[i].alive() {
				d[k] = d[i]
				k++
			}
		}
		m.ndesc[slot], n = k, k
		if n == maxDesc {
			m.descFull++
			return false
		}
	}
	d[n] = p
	m.ndesc[slot] = n + 1
	return true
}

// walk records every process now in the tree of slot's child and of the
// descendants already recorded (escapees adopted by us keep their own
// children), and returns how many were new.
func (m *Manager) walk(slot int32) int {
	c := &m.children[slot]
	added := 0
	m.walkBuf = m.walkBuf[:0]
	if c.pid > 0 {
		m.walkBuf = append(m.walkBuf, c.pid)
	}
	for i := 0; i < m.ndesc[slot]; i++ {
		if p := m.desc[slot][i]; p.alive() {
			m.walkBuf = append(m.walkBuf, int(p.pid))
		}
	}
	for i := 0; i < len(m.walkBuf) && i < 4*maxDesc; i++ {
		first := len(m.walkBuf)
		m.walkBuf = children(m.walkBuf[i], m.walkBuf)
		for _, k := range m.walkBuf[first:] {
			if _, _, _, start, _, ok := procStat(k); ok && m.remember(slot, proc{int32(k), start}) {
				added++
			}
		}
	}
	return added
}

// killTree stops, then kills, every process of slot's tree the
// subreaper knows or finds now: SIGSTOP first so that nothing forks
// out of reach while the tree is walked again, then SIGKILL to each and
// to the child's process group.
func (m *Manager) killTree(slot int32) {
	for round := 0; round < 8; round++ {
		m.walk(slot)
		stopped := 0
		for i := 0; i < m.ndesc[slot]; i++ {
			p := m.desc[slot][i]
			if p.alive() && unix.Kill(int(p.pid), unix.SIGSTOP) == nil {
				stopped++
			}
		}
		if m.walk(slot) == 0 {
			break
		}
	}
	for i := 0; i < m.ndesc[slot]; i++ {
		if p := m.desc[slot][i]; p.alive() {
			unix.Kill(int(p.pid), unix.SIGKILL)
			m.addDying(p)
		}
	}
}

// scanOrphans, under the subreaper, reaps every exited child of the
// process that is not one of the Manager's own children: processes of
// recovery trees whose parent died were reparented to us. Each is
// waited for by its own pid, never wait4(-1), which could take the exit
// status of one of our children before reap sees it. It also records the
// adopted ones in the tree of the recovery they came from.
func (m *Manager) scanOrphans(now int64) {
	m.lastOrphanScan = now
	m.orphanBuf = children(os.Getpid(), m.orphanBuf[:0])
	adopted := 0
	for _, pid := range m.orphanBuf {
		if m.isOurChild(pid) {
			continue
		}
		var ws unix.WaitStatus
		wpid, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		if err == nil && wpid == pid {
			m.orphansReaped++
			continue
		}
		adopted++
		if m.desc != nil && len(m.active) > 0 {
			m.attribute(pid)
		}
	}
	m.adopted = adopted
}

// recoveryEnv is the variable that marks a recovery child's environment
// under the subreaper, so that a process adopted before a walk saw it (a
// daemon's double fork between two walks) can still be told apart.
const recoveryEnv = "VARTA_RECOVERY_ID="

// attribute adds an adopted process to the tree of the running recovery
// whose mark its environment carries (/proc/PID/environ: the environment
// it was exec'd with). A process that replaced its environment, or that
// another uid owns (environ unreadable), stays unattributed.
func (m *Manager) attribute(pid int) {
	_, _, _, start, _, ok := procStat(pid)
	if !ok {
		return
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return
	}
	for _, kv := range bytes.Split(b, []byte{0}) {
		v, ok := bytes.CutPrefix(kv, []byte(recoveryEnv))
		if !ok {
			continue
		}
		for _, slot := range m.active {
			if m.marks[slot] == string(v) {
				m.remember(slot, proc{int32(pid), start})
				return
			}
		}
	}
}

// startEnv builds the environment of the child about to start in slot
// for agent: the command's own, the agent's (Config.AgentEnv) and, in
// subreaper mode, the slot's mark. It allocates, as a spawn does anyway.
func (m *Manager) startEnv(slot, agent int32) {
	if m.marks == nil && m.agentEnv == nil && m.missEnv == nil {
		m.attr.Env = m.baseEnv // the environment never changes but after a missing agent's child
		return
	}
	extra := m.missEnv // a missing agent's child: no process to describe
	if m.agentEnv != nil && extra == nil {
		extra = m.agentEnv(agent)
	}
	env := make([]string, len(m.baseEnv), len(m.baseEnv)+len(extra)+1)
	copy(env, m.baseEnv)
	env = append(env, extra...)
	if m.marks != nil {
		m.spawnSeq++
		m.marks[slot] = strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(m.spawnSeq, 10)
		env = append(env, recoveryEnv+m.marks[slot])
	}
	m.attr.Env = env
}

func (m *Manager) isOurChild(pid int) bool {
	for _, slot := range m.active {
		if m.children[slot].pid == pid {
			return true
		}
	}
	return false
}

// OrphansReaped returns how many adopted processes (orphans of recovery
// trees, under the subreaper) were reaped, and how many descendants could
// not be remembered because a tree outgrew maxDesc.
func (m *Manager) OrphansReaped() (reaped, descOverflow uint64) {
	return m.orphansReaped, m.descFull
}

// full reports whether MaxConcurrent slots are in use: children running,
// or reaped with their cgroup not yet empty. The escalate command's slot
// is not one of them.
func (m *Manager) full() bool {
	n := len(m.active) + len(m.draining)
	if m.escBusy {
		n--
	}
	return n >= m.maxRun
}

// killContained kills what the containment knows of slot's tree: the
// cgroup, or every process the subreaper saw in it. The caller signals
// the process group as well.
func (m *Manager) killContained(slot int32) {
	switch m.contain {
	case ContainCgroup:
		m.cgKill(slot)
	case ContainSubreaper:
		m.killTree(slot)
		m.scanSoon = true
	}
}

// cgKill kills slot's cgroup and remembers what was in it as dying.
func (m *Manager) cgKill(slot int32) {
	for _, pid := range m.cg.procs(slot) {
		if _, _, _, start, _, ok := procStat(pid); ok {
			m.addDying(proc{int32(pid), start})
		}
	}
	m.cg.kill(slot)
}

// addDying remembers a process we killed until it is gone, so that
// Shutdown waits for it and, when it was adopted, reaps it.
func (m *Manager) addDying(p proc) {
	if len(m.dying) < cap(m.dying) {
		m.dying = append(m.dying, p)
	}
}

// pruneDying drops the killed processes that are dead and reports
// whether any is left.
func (m *Manager) pruneDying() bool {
	k := 0
	for _, p := range m.dying {
		// A zombie is dead: ours is reaped by the scan after this
		// (awaitDying), and another parent's (init's, once the tree was
		// killed) is not ours to wait for.
		if _, _, _, start, st, ok := procStat(int(p.pid)); ok && start == p.start && st != 'Z' && st != 'X' {
			m.dying[k] = p
			k++
		}
	}
	m.dying = m.dying[:k]
	return k > 0
}

// awaitDying waits up to d ns for every process we killed to be gone,
// reaping those adopted; Shutdown's last step.
func (m *Manager) awaitDying(d int64) {
	end := m.clock() + d
	for {
		dying := m.pruneDying()
		if m.reapOrphans {
			// After the look, not before it: one that died since the last
			// scan is an adopted zombie now, reaped before we return (a
			// scan first left such zombies behind, seen under the race
			// detector in CI).
			m.scanOrphans(m.clock())
		}
		if !dying || m.clock() >= end {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// releaseSlot frees slot after its child was reaped. A killed child's
// tree is killed again first (escapees, and whatever forked during the
// kill); a child that exited by itself leaves its descendants alone
// (under cgroups they are moved to the observer's cgroup). A cgroup that
// still holds processes keeps the slot until it is empty.
func (m *Manager) releaseSlot(slot int32, killed bool) {
	switch m.contain {
	case ContainCgroup:
		if killed {
			m.cgKill(slot)
		}
		m.scanSoon = m.reapOrphans
		if !m.cg.settle(slot, killed) {
			m.drainKill[slot] = killed
			m.draining = append(m.draining, slot)
			return
		}
	case ContainSubreaper:
		if killed {
			m.killTree(slot)
		}
		m.ndesc[slot] = 0
	}
	m.scanSoon = m.reapOrphans // adopted zombies, or leftovers to watch
	m.freeSlot(slot)
}

// settleDraining frees the draining slots whose cgroup is empty now.
func (m *Manager) settleDraining() {
	for i := 0; i < len(m.draining); {
		slot := m.draining[i]
		if m.cg.settle(slot, m.drainKill[slot]) {
			m.draining[i] = m.draining[len(m.draining)-1]
			m.draining = m.draining[:len(m.draining)-1]
			m.freeSlot(slot)
			m.scanSoon = m.reapOrphans
			continue
		}
		i++
	}
}

// containTick is the containment's share of Tick: draining cgroups, the
// subreaper's walks of running trees and its look for exited orphans.
// With nothing running, draining or adopted it makes no system call.
func (m *Manager) containTick(now int64) {
	if len(m.draining) > 0 {
		m.settleDraining()
	}
	if m.contain == ContainSubreaper && len(m.active) > 0 && now-m.lastWalk >= subreaperScan {
		m.lastWalk = now
		for _, slot := range m.active {
			m.walk(slot)
		}
	}
	if !m.reapOrphans {
		return
	}
	busy := (m.contain == ContainSubreaper && len(m.active) > 0) || len(m.dying) > 0
	if m.scanSoon || (busy && now-m.lastOrphanScan >= subreaperScan) ||
		(m.adopted > 0 && now-m.lastOrphanScan >= orphanScan) {
		m.scanSoon = false
		m.scanOrphans(now)
		if len(m.dying) > 0 {
			m.pruneDying()
		}
	}
}

// containDeadline is when containTick next has work.
func (m *Manager) containDeadline() int64 {
	d := NoDeadline
	if len(m.draining) > 0 {
		d = m.lastTick + deferRetry
	}
	if m.reapOrphans {
		if (m.contain == ContainSubreaper && len(m.active) > 0) || len(m.dying) > 0 || m.scanSoon {
			d = min(d, m.lastTick+subreaperScan)
		}
		if m.adopted > 0 {
			d = min(d, m.lastOrphanScan+orphanScan)
		}
	}
	return d
}
