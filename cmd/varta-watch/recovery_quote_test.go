package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestRecoveryExecQuoting: --recovery-exec splits like a shell would,
// without being one, so a script handed to sh -c arrives as one argument;
// an unbalanced quote is a usage error naming the flag.
func TestRecoveryExecQuoting(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "F")
	w := startWatchIn(t, dir, "--threshold-ms", "200", "--recovery-exec", "/bin/sh -c 'echo {pid} >> "+out+"'")
	dialRaw(t, w.socket).frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	want := strconv.Itoa(int(ourPid())) + "\n"
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(out)
		return string(b) == want
	}, "the recovery command to write the stalled pid into F")

	bad := newWatcher(t, t.TempDir())
	bad.launch(bad.baseArgs("--threshold-ms", "200", "--recovery-exec", "/bin/sh -c 'echo {pid}"))
	if code := bad.wait(10 * time.Second); code != 2 {
		t.Fatalf("unbalanced quote: exit %d, want 2 (usage):\n%s", code, bad.logText())
	}
	if log := bad.logText(); !strings.Contains(log, "--recovery-exec") || !strings.Contains(log, "single quote") {
		t.Errorf("the usage error does not name the flag and the open quote:\n%s", log)
	}
}
