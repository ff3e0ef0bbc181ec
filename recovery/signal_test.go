package recovery

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// victimEnv names, for the helper process of TestSignalEPERM, the process
// group it must fail to signal.
const victimEnv = "VARTA_TEST_SIGNAL_VICTIM"

// TestSignalGroupGone: a group that no longer exists was signalled (ESRCH
// is success), and pgids 0 and 1, which kill(2) reads as "our group" and
// "everyone", are refused.
func TestSignalGroupGone(t *testing.T) {
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	if err := signalGroup(cmd.Process.Pid, unix.SIGKILL); err != nil {
		t.Errorf("signalGroup(reaped child) = %v, want nil (ESRCH is success)", err)
	}
	for _, pgid := range []int{-1, 0, 1} {
		if err := signalGroup(pgid, 0); !errors.Is(err, unix.EINVAL) {
			t.Errorf("signalGroup(%d) = %v, want EINVAL", pgid, err)
		}
	}
}

// TestSignalEPERM: a signal to a recovery child's group that the kernel
// refuses (EPERM) is counted, kept, retried and reported, with a real
// kill(2): this test (root) starts a process group of its own, then runs
// the test binary again as uid 65534, which cannot signal it. There the
// manager's kill is pointed at that group while it runs a real child.
func TestSignalEPERM(t *testing.T) {
	if os.Getenv(victimEnv) != "" {
		signalHelper(t)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a process as another uid")
	}
	if os.Getenv("VARTA_TEST_EMULATOR") != "" {
		t.Skip("re-runs the test binary, which the emulator would have to run")
	}
	victim := exec.Command("/bin/sleep", "60")
	victim.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		victim.Process.Kill()
		victim.Wait()
	}()

	// The go test work directory is private to root: copy the binary
	// where uid 65534 can run it.
	dir, err := os.MkdirTemp("", "varta-signal-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "recovery.test")
	if err := copyFile(self, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(bin, "-test.run=^TestSignalEPERM$", "-test.v", "-test.count=1")
	helper.Dir = "/"
	helper.Env = []string{"PATH=/usr/bin:/bin", victimEnv + "=" + strconv.Itoa(victim.Process.Pid)}
	helper.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := helper.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "signal helper: done") {
		t.Fatalf("helper as uid 65534: %v\n%s", err, out)
	}
	if err := victim.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the victim group is gone (%v): the helper signalled it", err)
	}
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// signalHelper runs as uid 65534 in TestSignalEPERM's child process.
func signalHelper(t *testing.T) {
	victim, err := strconv.Atoi(os.Getenv(victimEnv))
	if err != nil || victim < 2 {
		t.Fatalf("bad %s", victimEnv)
	}
	if os.Geteuid() == 0 {
		t.Fatal("helper runs as root: it could signal anything")
	}
	// The real system call first: EPERM, not dropped.
	if err := signalGroup(victim, 0); !errors.Is(err, unix.EPERM) {
		t.Fatalf("signalGroup(root's group) = %v, want EPERM", err)
	}

	// A timed-out child whose SIGKILL is refused: counted, kept, retried
	// later rather than marked killed, and named in its Completion.
	var done []Completion
	// The first child lives long past its timeout (2 s against MinTimeout),
	// so it is still running when the refused SIGKILL is looked at, however
	// slowly the machine ticks (a 0.6 s child was once reaped first).
	m, err := New(Config{Command: shCmd(`if [ "$0" = 4243 ]; then exec sleep 5; fi; sleep 2`), Capacity: 2, Timeout: MinTimeout, OnComplete: collect(&done), Contain: ContainGroup})
	if err != nil {
		t.Fatal(err)
	}
	m.kill = func(_ int, sig syscall.Signal) error { return signalGroup(victim, sig) }
	start := now()
	if o := m.OnStall(4242, 7, true, start); o != OutcomeSpawned {
		t.Fatalf("OnStall = %v, want spawned", o)
	}
	var failedAt int64
	tickUntil(t, m, "the refused SIGKILL", func() bool {
		n, _ := m.SignalFailures()
		if n > 0 && failedAt == 0 {
			failedAt = m.lastTick
		}
		return n > 0
	})
	c := &m.children[m.active[0]]
	if c.killed {
		t.Error("child marked killed although SIGKILL was refused")
	}
	if d := m.NextDeadline(); d < failedAt+signalRetry {
		t.Errorf("NextDeadline %d ns after the failure, want the retry %v later", d-failedAt, time.Duration(signalRetry))
	}
	n, last := m.SignalFailures()
	var se *SignalError
	if n != 1 || !errors.As(last, &se) || !errors.Is(last, syscall.EPERM) ||
		se.Signal != unix.SIGKILL || se.Agent != 4242 || se.Child != c.pid {
		t.Errorf("SignalFailures = %d, %v; want 1, a SIGKILL SignalError for agent 4242 wrapping EPERM", n, last)
	}
	tickUntil(t, m, "the child's own exit", func() bool { return len(done) == 1 })
	if got := done[0]; got.Outcome != OutcomeReapedZero || !errors.Is(got.SignalErr, syscall.EPERM) {
		t.Errorf("Completion = %v, SignalErr %v; want reaped_zero with the EPERM", got.Outcome, got.SignalErr)
	}

	// Shutdown: SIGTERM and SIGKILL refused, the child outlives the
	// wait, and the error says why.
	if o := m.OnStall(4243, 8, true, now()); o != OutcomeSpawned {
		t.Fatalf("OnStall = %v, want spawned", o)
	}
	m.children[m.active[0]].deadline = NoDeadline // no timeout kill here
	pid := m.children[m.active[0]].pid
	err = m.Shutdown(10 * time.Millisecond)
	// At least the SIGTERM and the SIGKILL more than before (containment
	// may try the group's SIGKILL once more).
	if n, _ := m.SignalFailures(); n < 3 || !errors.Is(err, syscall.EPERM) || !errors.As(err, &se) || se.Child != pid {
		t.Errorf("Shutdown = %v with %d signal failures; want the child not reaped, EPERM, at least 3 failures", err, n)
	}
	unix.Kill(-pid, unix.SIGKILL) // ours after all
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	m.Close()
	t.Log("signal helper: done")
}
