package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// stopClean stops an observer with SIGTERM, which writes the state file
// one last time, and wants exit 0.
func stopClean(t *testing.T, w *watcher) {
	t.Helper()
	if code := stopWatch(t, w); code != 0 {
		t.Fatalf("observer exit %d:\n%s", code, w.logText())
	}
}

// TestStateFileExitWhileStopped: an agent killed while the observer is
// stopped is reported after the restart (an exit event and a log line
// saying so) and, with --on-exit recover, recovered; an agent still alive
// is tracked on with its name and stalled when it stays silent, without a
// beat after the restart.
func TestStateFileExitWhileStopped(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, "state")
	marks := filepath.Join(dir, "recovered")
	w := newWatcher(t, dir)
	w.startArgs(w.baseArgs("--threshold-ms", "3000", "--state-file", state))
	dies := startAgent(t, w.socket, time.Minute) // beats once, then sleeps
	lives := startAgent(t, w.socket, time.Minute)
	waitBeat(t, w, dies.pid)
	waitBeat(t, w, lives.pid)
	stopClean(t, w)
	if b, err := os.ReadFile(state); err != nil || !strings.Contains(string(b), "agent "+strconv.Itoa(dies.pid)+" ") {
		t.Fatalf("state file after stop: %v\n%s", err, b)
	}
	dies.stop()

	w2 := newWatcher(t, dir)
	w2.startArgs(w2.baseArgs("--threshold-ms", "3000", "--state-file", state, "--on-exit", "recover",
		"--recovery-exec", "/bin/sh -c 'echo {pid} >> "+marks+"'"))
	line := w2.waitLog(`msg="agent exited while the observer was stopped" pid=`+strconv.Itoa(dies.pid), 5*time.Second)
	if line == "" || !strings.Contains(line, "name="+agentComm()) {
		t.Fatalf("no line for the agent that died while the observer was stopped:\n%s", w2.logText())
	}
	if w2.waitEvent(5*time.Second, kindPid("exit", dies.pid)) == nil {
		t.Errorf("no exit event for %d after the restart:\n%q", dies.pid, w2.eventLines())
	}
	if !strings.Contains(w2.waitLog(`msg="state file read back"`, 5*time.Second), "tracked_on=1 exited=1") {
		t.Errorf("summary line: want tracked_on=1 exited=1:\n%s", w2.logText())
	}
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(marks)
		return strings.TrimSpace(string(b)) == strconv.Itoa(dies.pid)
	}, "the recovery of the agent that died while the observer was stopped")

	// The live agent never beats again (its next beat is a minute away):
	// tracked on, it is stalled under its own pid and name.
	if w2.waitEvent(10*time.Second, kindPid("stall", lives.pid)) == nil {
		t.Fatalf("the agent tracked on was not stalled:\n%s", w2.logText())
	}
	if l := w2.waitLog(`pid=`+strconv.Itoa(lives.pid)+` name=`+agentComm(), 5*time.Second); l == "" {
		t.Errorf("no log line naming the agent tracked on:\n%s", w2.logText())
	}
}

// TestStateFileOtherBootOrDamaged: a file from another boot is dropped, a
// damaged one ignored; both are said and neither is fatal.
func TestStateFileOtherBootOrDamaged(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"other boot", "varta-watch state 1\nboot_id 00000000-0000-0000-0000-000000000000\nwritten_boottime_ns 5\n" +
			"agent 4242 1 1 ok 0 4 0 1 0 \"x\" \"\"\nend 1\n", `msg="state file is from another boot`},
		{"cut short", "varta-watch state 1\nboot_id x\nwritten_boottime_ns 5\nagent 4242 1 1 ok", `msg="state file ignored"`},
		{"other version", "varta-watch state 9\n", `msg="state file ignored"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			state := filepath.Join(dir, "state")
			if err := os.WriteFile(state, []byte(c.body), 0o600); err != nil {
				t.Fatal(err)
			}
			w := newWatcher(t, dir)
			w.startArgs(w.baseArgs("--threshold-ms", "3000", "--state-file", state))
			if w.waitLog(c.want, 5*time.Second) == "" {
				t.Errorf("want %s:\n%s", c.want, w.logText())
			}
			stopClean(t, w)
			if b, _ := os.ReadFile(state); !strings.HasPrefix(string(b), "varta-watch state 1\nboot_id ") || !strings.HasSuffix(string(b), "end 0\n") {
				t.Errorf("the file was not replaced by a good one: %q", b)
			}
		})
	}
}
