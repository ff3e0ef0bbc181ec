package recovery

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChildOOMScoreReset: an observer protected from the OOM killer
// (negative oom_score_adj, inherited by children) starts its recovery
// children back at 0.
func TestChildOOMScoreReset(t *testing.T) {
	old, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		t.Skip(err)
	}
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte("-900"), 0); err != nil {
		t.Skipf("cannot lower oom_score_adj: %v", err)
	}
	defer os.WriteFile("/proc/self/oom_score_adj", old, 0)
	out := filepath.Join(t.TempDir(), "adj")
	m := newTestManager(t, Config{Command: shCmd(`sleep 0.2; cat /proc/self/oom_score_adj > ` + out), Contain: ContainGroup})
	m.OnStall(4242, 1, true, now())
	tickUntil(t, m, "the child", func() bool { return m.Counts()[OutcomeReapedZero] == 1 })
	b, _ := os.ReadFile(out)
	if got := strings.TrimSpace(string(b)); got != "0" {
		t.Fatalf("child's oom_score_adj %q, want 0 (the observer's is -900)", got)
	}
}
