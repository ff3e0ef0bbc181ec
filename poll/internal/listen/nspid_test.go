package listen

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/varta-go/varta/poll/internal/testutil"
)

// TestNsInnermostPid checks the NSpid reading against what the kernel
// says independently: we see ourselves as os.Getpid() in our own
// namespace, and a child started in a new pid namespace is pid 1 there.
func TestNsInnermostPid(t *testing.T) {
	testutil.RequireProc(t)
	self := uint32(os.Getpid())
	// Outside any child namespace NSpid has one field and there is nothing
	// to report; inside one (a container) the last field is getpid().
	if inner, ok := nsInnermostPid(self); ok && inner != self {
		t.Errorf("nsInnermostPid(self) = %d, true, want %d (getpid in our own namespace)", inner, self)
	}
	if _, ok := nsInnermostPid(1 << 30); ok {
		t.Error("nsInnermostPid(no such pid) = ok")
	}

	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep:", err)
	}
	cmd := exec.Command(sleep, "10")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
	if err := cmd.Start(); err != nil {
		// EPERM without CAP_SYS_ADMIN; EINVAL from qemu-user, which does
		// not emulate namespace clone flags.
		t.Skip("cannot start a child in a new pid namespace:", err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if inner, ok := nsInnermostPid(uint32(cmd.Process.Pid)); !ok || inner != 1 {
		t.Errorf("nsInnermostPid(child %d in a new pid namespace) = %d, %v, want 1, true", cmd.Process.Pid, inner, ok)
	}
}

// TestNsLookupCachesPerTick: within one tick a repeated sender costs no
// /proc read (no allocation); a new tick reads afresh.
func TestNsLookupCachesPerTick(t *testing.T) {
	var c NSCache
	self := uint32(os.Getpid())
	inner, ok := c.Get(self, 1)
	if wantInner, wantOK := nsInnermostPid(self); inner != wantInner || ok != wantOK {
		t.Fatalf("get(self) = %d, %v, want %d, %v", inner, ok, wantInner, wantOK)
	}
	if n := testing.AllocsPerRun(100, func() { c.Get(self, 1) }); n != 0 {
		t.Errorf("cached get: %v allocs/op, want 0 (no /proc read)", n)
	}
	if n := testing.AllocsPerRun(10, func() { c.at = 0; c.Get(self, 2) }); n == 0 {
		t.Errorf("a new tick did not read /proc again")
	}
}
