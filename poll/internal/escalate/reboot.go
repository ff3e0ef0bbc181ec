package escalate

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// rebooter is the reboot path of --escalate-reboot, a seam: release
// builds always get sysRebooter; test builds (varta_testhooks) may get
// one that records the steps instead (testhooks_on.go), since a test
// must never reboot the machine.
type rebooter interface {
	Sync()
	// AskInit signals pid 1 the way its init wants a reboot asked for,
	// and says which init it took it for and what it sent.
	AskInit() (how string, err error)
	// Reboot is reboot(2) with LINUX_REBOOT_CMD_RESTART: the last step,
	// after init had its grace.
	Reboot() error
}

type sysRebooter struct{}

func (sysRebooter) Sync() { unix.Sync() }

// The signal systemd takes as "reboot": SIGRTMIN+5 in glibc's numbering,
// whose SIGRTMIN is 34 (the kernel's 32, plus the two glibc keeps for
// threads), and systemd is built against glibc's.
const sigSystemdReboot = syscall.Signal(34 + 5)

// initSignal is what pid 1 expects for a reboot, found from its name
// (/proc/1/comm) and program (/proc/1/exe):
//
//   - systemd: SIGRTMIN+5 starts reboot.target (systemd(1)); SIGTERM
//     would only make it re-execute itself, and SIGINT starts
//     ctrl-alt-del.target, which a site may have masked.
//   - BusyBox init (OpenRC on Alpine runs under it) and OpenWrt's procd:
//     SIGTERM is reboot (SIGUSR1 halt, SIGUSR2 power-off).
//   - openrc-init and sysvinit, and any other init: SIGINT, the
//     kernel's own Ctrl-Alt-Del signal; openrc-init reboots on it, and
//     sysvinit runs inittab's ctrlaltdel entry (shutdown -r on most
//     systems).
func initSignal(comm, exe string) (string, syscall.Signal) {
	switch base := filepath.Base(exe); {
	case comm == "systemd" || base == "systemd":
		return "systemd", sigSystemdReboot
	case base == "busybox":
		return "busybox", unix.SIGTERM
	case comm == "procd" || base == "procd":
		return "procd", unix.SIGTERM
	case comm == "openrc-init" || base == "openrc-init":
		return "openrc-init", unix.SIGINT
	}
	return "sysvinit or other (" + comm + ")", unix.SIGINT
}

func (sysRebooter) AskInit() (string, error) {
	comm, _ := os.ReadFile("/proc/1/comm")
	exe, _ := os.Readlink("/proc/1/exe")
	how, sig := initSignal(strings.TrimSpace(string(comm)), exe)
	how += " " + signalName(sig)
	return how, unix.Kill(1, sig)
}

func (sysRebooter) Reboot() error {
	unix.Sync()
	return os.NewSyscallError("reboot", unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART))
}

// signalName spells a signal: its name, or SIGRTMIN+N, or its number.
func signalName(sig syscall.Signal) string {
	if s := unix.SignalName(sig); s != "" {
		return s
	}
	if sig >= 34 && sig <= 64 {
		return "SIGRTMIN+" + strconv.Itoa(int(sig)-34)
	}
	return strconv.Itoa(int(sig))
}
