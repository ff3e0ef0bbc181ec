package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// TestParentFrames: with --parent every frame carries our pid (we are
// varta-beat's parent) while the kernel names varta-beat as the sender;
// nonces are CLOCK_MONOTONIC ns, rising within a run and across runs, so
// a shell calling varta-beat in its loop presents one rising session.
// varta-beat waits until its frames are dequeued, then exits promptly.
func TestParentFrames(t *testing.T) {
	bin := buildBeat(t)
	sock := filepath.Join(t.TempDir(), "obs.sock")
	fd := bindCred(t, sock)
	var last uint64
	for run := range 2 {
		cmd := testbin.Command(bin, "--socket", sock, "--parent", "--count", "3", "--interval-ms", "1",
			"--status", "degraded", "--terminal")
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		for i := range 4 {
			f := recvCred(t, fd)
			if !f.crcOK || int(f.pid) != os.Getpid() || f.kernelPid != int32(cmd.Process.Pid) {
				t.Errorf("run %d frame %d: pid %d from kernel pid %d (crc ok %v), want our pid %d from %d",
					run, i, f.pid, f.kernelPid, f.crcOK, os.Getpid(), cmd.Process.Pid)
			}
			if i == 3 { // the dying gasp
				if f.nonce != ^uint64(0) || f.status != 2 {
					t.Errorf("run %d: last frame nonce %d status %d, want the terminal frame", run, f.nonce, f.status)
				}
				continue
			}
			if f.nonce <= last || f.nonce < 1e6 {
				t.Errorf("run %d frame %d: nonce %d after %d, want a rising clock nonce", run, i, f.nonce, last)
			}
			last = f.nonce
		}
		start := time.Now()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("varta-beat --parent: %v\n%s", err, out)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("varta-beat lingered %v after its frames were read", took)
		}
	}
}

func TestParentUsage(t *testing.T) {
	out, err := testbin.Command(buildBeat(t), "--udp", "127.0.0.1:9", "--parent").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "--parent needs --socket") {
		t.Errorf("--parent with --udp: %v %q, want exit 2 naming --parent", err, out)
	}
}
