//go:build !varta_testhooks

package ops

import "testing"

// TestNoTestHooksInRelease: without the varta_testhooks tag the
// environment cannot wedge the loop, however it is set.
func TestNoTestHooksInRelease(t *testing.T) {
	t.Setenv("VARTA_TEST_HOOKS", "1")
	t.Setenv("VARTA_TEST_WEDGE_AFTER_MS", "1")
	if got := testWedgeAt(1000); got != 0 {
		t.Fatalf("testWedgeAt = %d in a release build, want 0", got)
	}
}
