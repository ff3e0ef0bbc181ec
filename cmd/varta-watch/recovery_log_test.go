package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestRecoveryOutcomesLogged: a recovery command that does not exit 0, or
// cannot be started at all, leaves a log line saying how, with the first
// line of its output when output is captured (--recovery-capture-bytes N,
// or upstream's --recovery-capture-stdio with its 4096-byte cap).
func TestRecoveryOutcomesLogged(t *testing.T) {
	pid := strconv.Itoa(int(ourPid()))
	bytes256 := []string{"--recovery-capture-bytes", "256"}
	for _, tc := range []struct {
		name, cmd string
		capture   []string
		want      string
	}{
		{"false", "/bin/false", bytes256, `msg="recovery command failed" pid=` + pid + ` name=\S+ how=exited exit=1 signal=- ms=\d+ output=-`},
		{"exit 2 with output", "/bin/sh -c 'echo oops; echo more; exit 2'", []string{"--recovery-capture-stdio"},
			`msg="recovery command failed" pid=` + pid + ` name=\S+ how=exited exit=2 .*output=oops$`},
		{"killed", "/bin/sh -c 'kill -9 $$'", bytes256, `msg="recovery command failed" pid=` + pid + ` name=\S+ how="killed by a signal" exit=-1 signal=SIGKILL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWatch(t, append([]string{"--threshold-ms", "200", "--recovery-exec", tc.cmd}, tc.capture...)...)
			dialRaw(t, w.socket).frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
			if w.waitLog(tc.want, 10*time.Second) == "" {
				t.Fatalf("no log line matching %q:\n%s", tc.want, w.logText())
			}
		})
	}
	t.Run("cannot start", func(t *testing.T) {
		prog := filepath.Join(t.TempDir(), "restart")
		if err := os.WriteFile(prog, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		w := startWatch(t, "--threshold-ms", "200", "--recovery-exec", prog)
		os.Remove(prog) // gone after start: the spawn fails
		dialRaw(t, w.socket).frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
		if w.waitLog(`msg="recovery command could not be started" pid=`+pid+` name=\S+ err=.*no such file`, 10*time.Second) == "" {
			t.Fatalf("no log line for the failed start:\n%s", w.logText())
		}
	})
}
