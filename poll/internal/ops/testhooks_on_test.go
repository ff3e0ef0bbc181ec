//go:build varta_testhooks

package ops

import (
	"os"
	"testing"
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
