package recovery

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// escapeeCmd is a recovery command that starts two daemons that leave
// its process group and session, one with setsid (still its child) and
// one by a double fork (reparented at once), writes their pids to dir,
// then hangs, or exits 0 when exit0 is set.
func escapeeCmd(dir string, exit0 bool) Command {
	tail := "exec sleep 30"
	if exit0 {
		tail = "exit 0"
	}
	script := `setsid sleep 1001 & echo $! > ` + dir + `/setsid; ` +
		`(setsid sh -c 'echo $$ > ` + dir + `/double; exec sleep 1002' &) ; ` +
		`while [ ! -s ` + dir + `/double ]; do sleep 0.01; done; sleep 0.05; ` + tail
	return Command{Path: "/bin/sh", Args: []string{"sh", "-c", script, PidPlaceholder}}
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	var pid int
	waitFor(t, path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

func aliveNotZombie(pid int) bool {
	pi, ok := readStat(pid)
	return ok && pi.state != 'Z' && pi.state != 'X'
}

// modes are the containments this machine can do. qemu-user, for one,
// has neither clone3 into a cgroup nor PR_SET_CHILD_SUBREAPER: the tests
// then skip, and the observer falls back to the process group (logged).
func modes(t *testing.T) []Containment {
	var out []Containment
	for _, mode := range []Containment{ContainSubreaper, ContainCgroup} {
		if err := probeContainment(mode); err == nil {
			out = append(out, mode)
		} else {
			t.Logf("%v containment not tested here: %v", mode, err)
		}
	}
	if len(out) == 0 {
		t.Skip("no containment beyond the process group on this machine")
	}
	return out
}

func probeContainment(mode Containment) error {
	m, err := New(Config{Command: Command{Path: "/bin/true", Args: []string{"true"}}, Capacity: 1, Contain: mode})
	if err != nil {
		return err
	}
	return m.Close()
}

// TestContainTimeoutKillsEscapees: a recovery command
// starts a setsid daemon and a double-forked one, then hangs. After its
// timeout, both are dead, not only its process group; no zombie is left.
func TestContainTimeoutKillsEscapees(t *testing.T) {
	for _, mode := range modes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := newTestManager(t, Config{Command: escapeeCmd(dir, false), Capacity: 2, Timeout: 500 * time.Millisecond, Contain: mode})
			if got, _ := m.Containment(); got != mode {
				t.Fatalf("containment %v, want %v", got, mode)
			}
			if o := m.OnStall(4242, 1, true, now()); o != OutcomeSpawned {
				t.Fatalf("OnStall = %v", o)
			}
			setsid, double := readPid(t, filepath.Join(dir, "setsid")), readPid(t, filepath.Join(dir, "double"))
			tickUntil(t, m, "the timeout kill", func() bool { return m.Counts()[OutcomeKilled] == 1 })
			tickUntil(t, m, "the escapees to die", func() bool {
				return !aliveNotZombie(setsid) && !aliveNotZombie(double) && m.Outstanding() == 0
			})
			tickUntil(t, m, "adopted zombies to be reaped", func() bool { return len(zombieChildren()) == 0 })
		})
	}
}

// TestContainShutdownKillsEscapees: the same tree, still running when
// the observer shuts down: nothing of it survives Shutdown.
func TestContainShutdownKillsEscapees(t *testing.T) {
	for _, mode := range modes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			m, err := New(Config{Command: escapeeCmd(dir, false), Capacity: 2, Contain: mode})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			m.OnStall(4242, 1, true, now())
			setsid, double := readPid(t, filepath.Join(dir, "setsid")), readPid(t, filepath.Join(dir, "double"))
			for i := 0; i < 5; i++ { // let the subreaper see the tree
				m.Tick(now())
				time.Sleep(subreaperScanDur)
			}
			if err := m.Shutdown(200 * time.Millisecond); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the escapees to die", func() bool { return !aliveNotZombie(setsid) && !aliveNotZombie(double) })
			waitFor(t, "no zombie", func() bool { return len(zombieChildren()) == 0 })
		})
	}
}

// TestContainExit0LeavesDaemon: a recovery that exits 0 leaving daemons
// has restarted a service: they are left running, and under the
// subreaper reaped by us when they exit.
func TestContainExit0LeavesDaemon(t *testing.T) {
	for _, mode := range modes(t) {
		t.Run(mode.String(), func(t *testing.T) {
			dir := t.TempDir()
			m := newTestManager(t, Config{Command: escapeeCmd(dir, true), Capacity: 2, Timeout: 5 * time.Second, Contain: mode})
			m.OnStall(4242, 1, true, now())
			setsid, double := readPid(t, filepath.Join(dir, "setsid")), readPid(t, filepath.Join(dir, "double"))
			tickUntil(t, m, "the child to exit 0", func() bool { return m.Counts()[OutcomeReapedZero] == 1 })
			for i := 0; i < 20; i++ {
				m.Tick(now())
				time.Sleep(5 * time.Millisecond)
			}
			if !aliveNotZombie(setsid) || !aliveNotZombie(double) {
				t.Fatalf("a restarted daemon was killed: setsid alive %v, double-forked alive %v", aliveNotZombie(setsid), aliveNotZombie(double))
			}
			if mode == ContainCgroup && !m.full() && len(m.draining) != 0 {
				t.Fatalf("slot still draining")
			}
			// The service dies later: reaped if it is ours.
			for _, pid := range []int{setsid, double} {
				if err := killPid(pid); err != nil {
					t.Fatal(err)
				}
			}
			tickUntil(t, m, "the daemons reaped", func() bool {
				return len(zombieChildren()) == 0 && !aliveNotZombie(setsid) && !aliveNotZombie(double)
			})
		})
	}
}

const subreaperScanDur = time.Duration(subreaperScan)

func killPid(pid int) error { return unixKill(pid) }
