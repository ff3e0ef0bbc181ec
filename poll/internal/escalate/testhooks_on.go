//go:build varta_testhooks

package escalate

import (
	"os"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/recovery/resetreason"
)

// Test hooks, compiled in only with -tags varta_testhooks (the tests'
// builds of varta-watch, see cmd/internal/testbin):
//
//	VARTA_TEST_REBOOT_LOG=PATH  the reboot path appends its steps to PATH
//	                            ("sync", "ask-init <init> <signal>",
//	                            "reboot") instead of syncing, signalling
//	                            pid 1 and calling reboot(2)
//	VARTA_TEST_BOOT_ID=PATH     the boot id is read from PATH instead of
//	                            /proc/sys/kernel/random/boot_id, so a test
//	                            can make a "new boot"
//
// Either is read at each use: the observer under test never reboots.
const (
	testRebootEnv = "VARTA_TEST_REBOOT_LOG"
	testBootEnv   = "VARTA_TEST_BOOT_ID"
)

func newRebooter(l *sink.Logger) rebooter {
	if p := os.Getenv(testRebootEnv); p != "" {
		l.Warn("test hook: the reboot path is recorded, not taken (" + testRebootEnv + ")")
		return recordRebooter{path: p}
	}
	return sysRebooter{}
}

func bootIDPath() string {
	if p := os.Getenv(testBootEnv); p != "" {
		return p
	}
	return resetreason.BootIDPath
}

// recordRebooter writes what sysRebooter would do, one line per step.
type recordRebooter struct{ path string }

func (r recordRebooter) add(line string) error {
	f, err := os.OpenFile(r.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	_, err = f.WriteString(line + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (r recordRebooter) Sync() { r.add("sync") }

func (r recordRebooter) AskInit() (string, error) {
	comm, _ := os.ReadFile("/proc/1/comm")
	exe, _ := os.Readlink("/proc/1/exe")
	how, sig := initSignal(string(trimNL(comm)), exe)
	how += " " + signalName(sig)
	return how, r.add("ask-init " + how)
}

func (r recordRebooter) Reboot() error { return r.add("reboot") }

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}
