package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// TestSingleP: the observer runs with one P from its first instruction:
// it executes itself once more with GOMAXPROCS=1 and keeps its pid (the
// pid the test started is the one that listens and whose /proc environ
// shows the second start), and a recovery command given the observer's
// environment (--recovery-inherit-env) inherits neither that nor the
// marker. An operator's own GOMAXPROCS is left alone, for the observer and
// its children.
func TestSingleP(t *testing.T) {
	for _, tc := range []struct {
		name      string
		env       []string
		reexec    bool   // the observer executes itself again
		wantChild string // GOMAXPROCS in the recovery command's environment, "" none
	}{
		{"default", nil, true, ""},
		{"operator's own", []string{"GOMAXPROCS=2"}, false, "2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := slices.DeleteFunc(os.Environ(), func(kv string) bool { // whatever the test runs under
				return strings.HasPrefix(kv, "GOMAXPROCS=") || strings.HasPrefix(kv, singlePMark+"=")
			})
			env = append(env, tc.env...)
			dir := t.TempDir()
			out := filepath.Join(dir, "env")
			w := newWatcher(t, dir)
			w.env = env
			w.startArgs(w.baseArgs("--threshold-ms", "200", "--recovery-inherit-env",
				"--recovery-exec", "/bin/sh -c 'env > "+out+".tmp; mv "+out+".tmp "+out+"'"))
			if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu == "" {
				// Under qemu-user the observer's /proc entry is the
				// emulator's, and without binfmt it cannot execute itself
				// (it carries on with runtime.GOMAXPROCS(1)).
				b, err := os.ReadFile("/proc/" + strconv.Itoa(w.cmd.Process.Pid) + "/environ")
				if err != nil {
					t.Fatal(err)
				}
				vars := strings.Split(string(b), "\x00")
				reexec := slices.Contains(vars, singlePMark+"=1") && slices.Contains(vars, "GOMAXPROCS=1")
				if reexec != tc.reexec {
					t.Errorf("pid %d: executed itself again %v, want %v; environ %q", w.cmd.Process.Pid, reexec, tc.reexec, vars)
				}
			}
			agent := testbin.Command(beatBin(t), "--socket", w.socket, "--count", "1000", "--interval-ms", "50")
			if err := agent.Start(); err != nil {
				t.Fatal(err)
			}
			if w.waitLog(`msg="tracking a new agent" pid=`+strconv.Itoa(agent.Process.Pid), 10*time.Second) == "" {
				t.Fatalf("agent not tracked:\n%s", w.logText())
			}
			agent.Process.Kill() // its stall runs the recovery command
			agent.Wait()
			var vars []string
			waitFor(t, 10*time.Second, func() bool {
				b, err := os.ReadFile(out)
				vars = strings.Split(string(b), "\n")
				return err == nil
			}, "the recovery command's environment")
			got := ""
			for _, v := range vars {
				if g, ok := strings.CutPrefix(v, "GOMAXPROCS="); ok {
					got = g
				}
				if strings.HasPrefix(v, singlePMark+"=") {
					t.Errorf("the recovery command inherited %s", v)
				}
			}
			if got != tc.wantChild {
				t.Errorf("the recovery command's GOMAXPROCS is %q, want %q", got, tc.wantChild)
			}
		})
	}
}
