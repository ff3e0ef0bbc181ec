package main

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// Sender identity (cmd/varta-watch/README.md §3): the kernel's uid of a sender must be
// on the allow-list. Frame-pid spoofing is TestSpoofedPid's.

const nobody = 65534

// publicDir is a fresh directory other users may enter but not write, as
// the socket-path rules require, with parents they can traverse too
// (t.TempDir's parent is 0700).
func publicDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "varta-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return chmodDir(t, dir, 0o755)
}

// beatAs runs varta-beat once as uid and returns its pid. The binary's
// directory is opened up for that user (testbin creates it 0700); under
// emulation the user runs the emulator, which is world-executable.
func beatAs(t *testing.T, uid uint32, socket string) int {
	t.Helper()
	bin := beatBin(t)
	chmodDir(t, filepath.Dir(bin), 0o755)
	cmd := testbin.Command(bin, "--socket", socket, "--count", "1")
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("varta-beat as uid %d: %v\n%s", uid, err, out)
	}
	return cmd.Process.Pid
}

// TestForeignUID: a sender of another uid is refused and counted (a
// mismatch auth_failure event, varta_uid_refused_total) unless --allow-uid
// names it.
func TestForeignUID(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a sender as nobody (uid 65534)")
	}
	t.Run("refused", func(t *testing.T) {
		w := startWatchIn(t, publicDir(t), "--threshold-ms", "5000", "--socket-mode", "0666",
			"--prom-addr", "127.0.0.1:0")
		pid := beatAs(t, nobody, w.socket)
		ev := w.waitEvent(5*time.Second, kindPid("mismatch", pid))
		if ev == nil || ev[5] != "auth_failure" {
			t.Fatalf("mismatch event for pid %d = %v, want auth_failure:\n%s", pid, ev, w.logText())
		}
		if got := w.waitMetric("varta_uid_refused_total", 1, 5*time.Second); got != 1 {
			t.Errorf("varta_uid_refused_total = %v, want 1", got)
		}
		m := w.scrape()
		if m["varta_watch_pids_tracked"] != 0 || m[`varta_beats_total{pid="`+strconv.Itoa(pid)+`"}`] != 0 {
			t.Errorf("a refused sender was tracked: %v pids", m["varta_watch_pids_tracked"])
		}
		if n := count(w.eventLines(), "beat", pid); n != 0 {
			t.Errorf("%d beat events from a refused uid", n)
		}
		// Our own uid stays allowed by default.
		mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
	})
	t.Run("allowed", func(t *testing.T) {
		w := startWatchIn(t, publicDir(t), "--threshold-ms", "5000", "--socket-mode", "0666",
			"--prom-addr", "127.0.0.1:0", "--allow-uid", "0,"+strconv.Itoa(nobody))
		pid := beatAs(t, nobody, w.socket)
		if w.waitEvent(5*time.Second, kindPid("beat", pid)) == nil {
			t.Fatalf("no beat from the allowed uid's pid %d:\n%s", pid, w.logText())
		}
		if m := w.scrape(); m["varta_uid_refused_total"] != 0 || m["varta_frame_auth_failures_total"] != 0 {
			t.Errorf("uid refused %v, auth failures %v; want 0 and 0", m["varta_uid_refused_total"], m["varta_frame_auth_failures_total"])
		}
		mustBeat(t, w, &beats{r: dialRaw(t, w.socket)})
	})
}
