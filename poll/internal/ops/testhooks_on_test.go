//go:build varta_testhooks

package ops

import (
	"io"
	"os"
	"testing"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
)

// TestTestWedgeHook: the wedge hook needs both variables, the first set
// to exactly 1, and unsets them.
func TestTestWedgeHook(t *testing.T) {
	cases := []struct {
		hooks, after string
		want         int64
	}{
		{"", "", 0},
		{"", "100", 0},
		{"1", "", 0},
		{"yes", "100", 0},
		{"1", "-1", 0},
		{"1", "100", 1000 + 100e6},
		{"1", "0", 1000 + 1e6},
	}
	for _, tc := range cases {
		t.Setenv(testHooksEnv, tc.hooks)
		t.Setenv(testWedgeEnv, tc.after)
		if got := testWedgeAt(1000); got != tc.want {
			t.Errorf("testWedgeAt with %s=%q %s=%q = %d, want %d", testHooksEnv, tc.hooks, testWedgeEnv, tc.after, got, tc.want)
		}
		if tc.hooks != "" || tc.after != "" {
			if _, ok := os.LookupEnv(testWedgeEnv); ok {
				t.Errorf("%s not unset", testWedgeEnv)
			}
		}
	}
}

// TestTestWedgeFor: VARTA_TEST_WEDGE_FOR_MS (--inject-wedge-ms) bounds the
// wedge: testWedge returns after it, and the variable is unset.
func TestTestWedgeFor(t *testing.T) {
	t.Setenv(testHooksEnv, "1")
	t.Setenv(testWedgeEnv, "0")
	t.Setenv(testWedgeForEnv, "30")
	if got := testWedgeAt(1000); got != 1000+1e6 || testWedgeFor != 30*time.Millisecond {
		t.Fatalf("testWedgeAt = %d, wedge for %v; want %d and 30ms", got, testWedgeFor, int64(1000+1e6))
	}
	if _, ok := os.LookupEnv(testWedgeForEnv); ok {
		t.Errorf("%s not unset", testWedgeForEnv)
	}
	start := time.Now()
	testWedge(sink.NewLogger(io.Discard))
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Errorf("the wedge lasted %v, want 30ms", d)
	}
	testWedgeFor = 0
}
