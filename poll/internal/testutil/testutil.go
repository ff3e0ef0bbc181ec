// Package testutil holds what the observer's tests share across its
// packages: running the test binary again as a child (also under
// qemu-user), telling an emulated run apart, and skipping where /proc is
// missing. Only tests import it.
package testutil

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// SelfArgv runs the test binary again: through $VARTA_TEST_EMULATOR when
// set (cross-arch runs under qemu-user, where the kernel cannot exec it),
// so a child costs one fork, not a failed exec first. qemu-user sometimes
// deadlocks in fork(2) in a multi-threaded program; fewer forks, fewer
// hangs.
func SelfArgv() []string {
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		return []string{emu, os.Args[0]}
	}
	return []string{os.Args[0]}
}

// Emulated reports a run under qemu-user: the host kernel's machine (not
// emulated, unlike uname) cannot run GOARCH natively.
func Emulated() bool {
	b, err := os.ReadFile("/proc/sys/kernel/arch")
	if err != nil {
		return false
	}
	m := strings.TrimSpace(string(b))
	switch runtime.GOARCH {
	case "amd64":
		return m != "x86_64"
	case "arm64":
		return m != "aarch64"
	case "arm":
		return !strings.HasPrefix(m, "arm") && m != "aarch64"
	}
	return false
}

// RequireProc skips a test on a machine without /proc.
func RequireProc(tb testing.TB) {
	tb.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		tb.Skip("no /proc:", err)
	}
}

// StartChild runs program with the argument "5" (sleep 5, say), and kills
// and reaps it when the test ends; it skips the test when it cannot start.
func StartChild(tb testing.TB, program string) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command(program, "5")
	if err := cmd.Start(); err != nil {
		tb.Skip("cannot start", program, ":", err)
	}
	tb.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// qemuName is the qemu-user emulator's name for each GOARCH.
var qemuName = map[string]string{"arm": "arm", "arm64": "aarch64", "amd64": "x86_64", "386": "i386"}

// LookEmulator finds the qemu-user emulator for this GOARCH, for a child
// the kernel refused to exec (ENOEXEC: no binfmt_misc registration).
func LookEmulator() (string, error) {
	return exec.LookPath("qemu-" + qemuName[runtime.GOARCH] + "-static")
}

// HasIPv6 reports whether this host can bind the IPv6 loopback.
func HasIPv6() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}) == nil
}
