package main

import (
	"os"
	"regexp"
	"strconv"
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
