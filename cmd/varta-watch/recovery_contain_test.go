package main

// Recovery trees are contained: a recovery
// command that starts daemons escaping its process group and session and
// then hangs leaves nothing alive after its timeout or after the
// observer's shutdown; and at most --recovery-max-concurrent children run
// at once, every stall run or counted.

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveProc reports whether pid is a process that is not a zombie.
func liveProc(pid int) bool {
	for _, p := range procTable() {
		if p.pid == pid {
			return p.state != 'Z' && p.state != 'X'
		}
	}
	return false
}

func readPidFile(t *testing.T, path string, d time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pid in %s after %v", path, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRecoveryEscapeesDie(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout bool
	}{{"timeout", true}, {"shutdown", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// $1 is the agent's pid. One daemon leaves the session with
			// setsid and stays our child's child; the other is double-
			// forked, so its parent is gone at once.
			prog := writeScript(t, dir, "recover", `setsid sleep 1001 & echo $! > `+dir+`/setsid
(setsid sh -c 'echo $$ > `+dir+`/double; exec sleep 1002' &)
exec sleep 30
`)
			args := []string{"--threshold-ms", "200", "--recovery-exec", prog}
			if tc.timeout {
				args = append(args, "--recovery-timeout-ms", "600")
			}
			w := startWatch(t, args...)
			l := w.waitLog(`msg="recovery children contained"`, 5*time.Second)
			if l == "" {
				t.Fatalf("no containment line:\n%s", w.logText())
			}
			t.Log(l)
			if strings.Contains(l, "containment=group") {
				// qemu-user, say: neither cgroups nor a subreaper, and the
				// log says so; escapees cannot be followed there.
				t.Skip("this machine offers no containment beyond the process group")
			}
			beatOnce(t, w)
			setsid := readPidFile(t, filepath.Join(dir, "setsid"), patience(10*time.Second))
			double := readPidFile(t, filepath.Join(dir, "double"), patience(10*time.Second))
			t.Cleanup(func() { // never leave them behind, whatever failed
				syscall.Kill(setsid, syscall.SIGKILL)
				syscall.Kill(double, syscall.SIGKILL)
			})
			if !liveProc(setsid) || !liveProc(double) {
				t.Fatal("the daemons did not start")
			}
			if tc.timeout {
				waitGone(t, "alive after the recovery's timeout", patience(5*time.Second), func() []int {
					var left []int
					for _, p := range []int{setsid, double} {
						if liveProc(p) {
							left = append(left, p)
						}
					}
					return left
				})
			} else {
				time.Sleep(100 * time.Millisecond) // the subreaper walks every 10 ms
				w.signal(syscall.SIGTERM)
				if code := w.wait(patience(15 * time.Second)); code != 0 {
					t.Fatalf("exit %d:\n%s", code, w.logText())
				}
				for _, p := range []int{setsid, double} {
					if liveProc(p) {
						t.Errorf("daemon %d of a recovery still running at shutdown survived the observer", p)
					}
				}
			}
			if z := lingeringZombies(w.observerPid(), 2*time.Second); len(z) > 0 && tc.timeout {
				t.Errorf("zombies of the observer: %v", z)
			}
		})
	}
}

// TestRecoveryConcurrencyCap: 40 agents die one after another, each
// recovery takes 300 ms; with --recovery-max-concurrent 4 at most 4
// children of the observer are alive at any moment (read from /proc),
// and all 40 run.
func TestRecoveryConcurrencyCap(t *testing.T) {
	n, maxRun := 40, 4
	if emulated() {
		n = 12
	}
	dir := t.TempDir()
	prog := writeScript(t, dir, "recover", "sleep 0.3\n")
	audit := filepath.Join(dir, "audit")
	w := startWatch(t, "--threshold-ms", "200", "--recovery-exec", prog, "--recovery-max-concurrent", strconv.Itoa(maxRun),
		"--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	for i := 0; i < n; i++ {
		beatOnce(t, w)
	}
	most := 0
	deadline := time.Now().Add(patience(60 * time.Second))
	for {
		live := 0
		for _, p := range procTable() {
			if p.ppid == w.observerPid() && p.state != 'Z' && p.state != 'X' {
				live++
			}
		}
		most = max(most, live)
		if live > maxRun {
			t.Fatalf("%d recovery children alive at once, cap %d", live, maxRun)
		}
		m := w.scrape()
		if m[outcomeKey("reaped_zero")] == float64(n) {
			if m[outcomeKey("spawned")] != float64(n) || m[outcomeKey("refused_outstanding_capacity")] != 0 {
				t.Fatalf("spawned %v, refused_outstanding_capacity %v, want %d and 0", m[outcomeKey("spawned")], m[outcomeKey("refused_outstanding_capacity")], n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: spawned %v, reaped_zero %v", patience(60*time.Second), m[outcomeKey("spawned")], m[outcomeKey("reaped_zero")])
		}
		time.Sleep(5 * time.Millisecond)
	}
	if most < 2 {
		t.Errorf("never more than %d child at once: the test did not exercise the cap", most)
	}
	if got := len(ofKind(readAudit(t, audit), "spawn", "", "")); got != n {
		t.Errorf("%d spawn records, want %d", got, n)
	}
	t.Logf("%d recoveries, most alive at once %d (cap %d)", n, most, maxRun)
}
