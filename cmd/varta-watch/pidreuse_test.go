package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// nsLastPid is the pid namespace's last allocated pid; writing it (root,
// CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE over the namespace) makes the
// next fork get the pid after it.
const nsLastPid = "/proc/sys/kernel/ns_last_pid"

// TestPidReuseBeforeRead is pid reuse before the frame is read, with real
// processes (cmd/varta-watch/README.md §3): an agent sends one frame to a
// stopped observer and exits; an unrelated process gets its pid; then the
// observer reads the frame. The kernel
// names the sender by the pid as it reads, so the frame names the new
// process. The observer must not track it, stall it or run recovery
// against it: the frame was queued before that process started, so it is
// dropped and counted (varta_tracker_pid_recycle_total).
func TestPidReuseBeforeRead(t *testing.T) {
	f, err := os.OpenFile(nsLastPid, os.O_WRONLY, 0)
	if err != nil {
		t.Skipf("cannot steer pid allocation (%v): the test needs root in its pid namespace to give a process a chosen pid", err)
	}
	f.Close()
	sleepBin, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep(1) to stand in for the unrelated process")
	}
	const threshold = 300 * time.Millisecond
	recovered := t.TempDir()
	prog := writeScript(t, t.TempDir(), "recover", `: > `+recovered+`/pid.$1`+"\n")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(threshold.Milliseconds(), 10),
		"--recovery-exec", prog+" {pid}", "--recovery-debounce-ms", "0", "--prom-addr", "127.0.0.1:0")

	w.signal(syscall.SIGSTOP)
	waitStopped(t, w.cmd.Process.Pid)
	pid := oneShot(t, w.socket) // queued in the stopped observer's socket; the sender is reaped
	// The next process starts well past the start time's 10 ms tick
	// after the frame, so the frame is provably older than it.
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	other := takePid(t, sleepBin, pid)
	t.Logf("pid %d given to %s in %v", pid, sleepBin, time.Since(t0))
	w.signal(syscall.SIGCONT)

	// The frame is read and judged at once; a tracked one would show a
	// beat event first.
	deadline := time.Now().Add(10 * time.Second)
	for w.scrape()["varta_tracker_pid_recycle_total"] < 1 {
		if w.waitEvent(0, kindPid("beat", pid)) != nil {
			t.Fatalf("the frame of exited pid %d was tracked as its next owner's (%s, %v):\n%s",
				pid, other.Path, other.Process.Pid, w.logText())
		}
		if time.Now().After(deadline) {
			t.Fatalf("varta_tracker_pid_recycle_total did not move:\n%s", w.logText())
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Past three thresholds nothing happened to the new owner.
	time.Sleep(3 * threshold)
	for _, kind := range []string{"beat", "stall", "exit"} {
		if cols := w.waitEvent(0, kindPid(kind, pid)); cols != nil {
			t.Errorf("a %s event for pid %d, now an unrelated process's: %q", kind, pid, cols)
		}
	}
	if ents, _ := os.ReadDir(recovered); len(ents) != 0 {
		t.Errorf("recovery ran against the pid's next owner: %s", ents[0].Name())
	}
	if strings.Contains(w.logText(), "pid="+strconv.Itoa(pid)+" ") && strings.Contains(w.logText(), "tracking a new agent") {
		t.Errorf("the log shows pid %d tracked:\n%s", pid, w.logText())
	}
	if m := w.scrape(); m["varta_watch_pids_tracked"] != 0 || m["varta_tracker_pid_unverifiable_total"] != 0 {
		t.Errorf("pids tracked %v, unverifiable frames %v; want 0, 0", m["varta_watch_pids_tracked"], m["varta_tracker_pid_unverifiable_total"])
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the unrelated process is gone: %v", err)
	}
}

// waitStopped waits until process pid is in state T (stopped).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && len(b) > i+2 && b[i+2] == 'T' {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process %d did not stop: %q", pid, b)
		}
		time.Sleep(time.Millisecond)
	}
}

// takePid starts sleep(1) on pid, now free, by setting the namespace's
// last pid just before the fork, and stops it at the end of the test.
// Any process forking in between takes the pid instead; the attempt is
// then repeated while the pid is still free.
func takePid(t *testing.T, sleepBin string, pid int) *exec.Cmd {
	t.Helper()
	for try := 0; try < 100; try++ {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Skipf("pid %d went to another process of this machine before the test could give it one", pid)
		}
		if err := os.WriteFile(nsLastPid, []byte(strconv.Itoa(pid-1)), 0); err != nil {
			t.Skipf("cannot set %s: %v", nsLastPid, err)
		}
		cmd := exec.Command(sleepBin, "1000")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if cmd.Process.Pid == pid {
			t.Cleanup(func() {
				cmd.Process.Kill()
				cmd.Wait()
			})
			return cmd
		}
		cmd.Process.Kill()
		cmd.Wait()
	}
	t.Skipf("could not give pid %d to a new process in 100 tries (a busy machine forks in between)", pid)
	return nil
}
