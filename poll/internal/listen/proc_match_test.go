package listen

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestProcCmdlineAndCgroup reads a real child's arguments and cgroup.
func TestProcCmdlineAndCgroup(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skip("no sleep:", err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	pid := uint32(cmd.Process.Pid)
	var buf [256]byte
	// Start returns once execve has closed the child's close-on-exec
	// fds, a moment before the new program's arguments are in place: the
	// command line reads empty until then.
	var n int
	var ok bool
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if n, ok = ProcCmdline(pid, buf[:]); ok && n > 0 {
			break
		}
	}
	if args := bytes.Split(buf[:n], []byte{0}); !ok || len(args) < 2 || !bytes.Equal(args[1], []byte("30")) {
		t.Errorf("ProcCmdline = %q, %v", buf[:n], ok)
	}
	want, err := os.ReadFile("/proc/self/cgroup")
	if err != nil || !strings.Contains(string(want), "0::") {
		t.Skip("no cgroup v2 here")
	}
	cg, ok := ProcCgroup(pid, buf[:])
	mine := strings.TrimSpace(string(want[strings.Index(string(want), "0::")+3:]))
	if !ok || string(cg) != strings.SplitN(mine, "\n", 2)[0] {
		t.Errorf("ProcCgroup = %q, %v; want %q (the parent's)", cg, ok, mine)
	}
	if _, ok := ProcCmdline(1<<22+1, buf[:]); ok {
		t.Errorf("ProcCmdline of no process succeeded")
	}
}
