package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// TestAgentNames: an agent run as varta-beat is known by that name in the
// log line that starts tracking it and in varta_agent_info, with its
// program's path.
func TestAgentNames(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "5000", "--prom-addr", "127.0.0.1:0")
	cmd := testbin.Command(beatBin(t), "--socket", w.socket, "--count", "50", "--interval-ms", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := strconv.Itoa(cmd.Process.Pid)
	name, exe := "varta-beat", "varta-beat"
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		// Under qemu-user the agent's process is the emulator's.
		name, exe = `[^ "]+`, `[^"]+`
	}
	if w.waitLog(`msg="tracking a new agent" pid=`+pid+` name=`+name+` origin=uds`, 10*time.Second) == "" {
		t.Fatalf("no tracking line naming the agent %s:\n%s", name, w.logText())
	}
	info := regexp.MustCompile(`^varta_agent_info\{pid="` + pid + `",name="` + name + `",exe="[^"]*` + exe + `",origin="uds"\}$`)
	waitFor(t, 5*time.Second, func() bool {
		for k, v := range w.scrape() {
			if info.MatchString(k) && v == 1 {
				return true
			}
		}
		return false
	}, "varta_agent_info for the varta-beat agent")
}

// TestRecoveryKnowsTheAgent: the recovery command finds the agent's pid,
// name, program, silence and, for an agent that exited, that it is gone,
// in its environment.
func TestRecoveryKnowsTheAgent(t *testing.T) {
	if os.Getenv("VARTA_TEST_EMULATOR") != "" {
		t.Skip("under qemu-user the agent's name and program are the emulator's")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "env")
	w := startWatchIn(t, dir, "--threshold-ms", "300", "--recovery-exec", "/bin/sh -c 'env > "+out+".tmp; mv "+out+".tmp "+out+"'")
	cmd := testbin.Command(beatBin(t), "--socket", w.socket, "--count", "1000", "--interval-ms", "50")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if w.waitLog(`msg="tracking a new agent" pid=`+strconv.Itoa(cmd.Process.Pid), 10*time.Second) == "" {
		t.Fatalf("agent not tracked:\n%s", w.logText())
	}
	cmd.Process.Kill() // dies: its stall is recovered with the process gone
	cmd.Wait()
	var env string
	waitFor(t, 10*time.Second, func() bool {
		b, err := os.ReadFile(out)
		env = string(b)
		return err == nil
	}, "the recovery command's environment")
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, want := range []string{"VARTA_AGENT_PID=" + pid + "\n", "VARTA_AGENT_NAME=varta-beat\n", "VARTA_AGENT_GONE=1\n"} {
		if !strings.Contains(env, want) {
			t.Errorf("environment lacks %q:\n%s", want, env)
		}
	}
	if !regexp.MustCompile(`(?m)^VARTA_AGENT_EXE=/\S*varta-beat$`).MatchString(env) {
		t.Errorf("environment lacks the agent's program path:\n%s", env)
	}
	m := regexp.MustCompile(`(?m)^VARTA_SILENT_MS=(\d+)$`).FindStringSubmatch(env)
	if ms, _ := strconv.Atoi(m[1]); m == nil || ms < 300 {
		t.Errorf("VARTA_SILENT_MS %v, want at least the 300 ms threshold:\n%s", m, env)
	}
}
