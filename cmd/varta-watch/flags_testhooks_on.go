//go:build varta_testhooks

package main

import (
	"os"
	"strconv"
)

// maxInjectWedgeMs bounds --inject-wedge-ms: an hour outlasts any
// self-watchdog test.
const maxInjectWedgeMs = 3600 * 1000

// testHookFlags are the flags of test builds only (-tags varta_testhooks,
// as the tests build varta-watch): --inject-wedge-ms, the Rust original's
// test-hooks flag, stalls the loop at its first iteration so a test can
// watch the self-watchdog fire.
func testHookFlags(s *settings) []flagDef {
	s.injectWedge = newNum(0, 0, maxInjectWedgeMs, "milliseconds", func(int64) {})
	return []flagDef{{name: "inject-wedge-ms", arg: "MS", grp: grpLife, v: s.injectWedge,
		help: "test builds only: stall the loop for MS at\nits first iteration, {min}..{max}"}}
}

// applyTestHooks hands --inject-wedge-ms to the loop's test hook
// (poll/internal/ops/testhooks_on.go), which reads these variables once at
// start and unsets them, so recovery children never see them.
func applyTestHooks(s *settings) {
	if s.injectWedge == nil || !s.injectWedge.given || s.injectWedge.cur == 0 {
		return
	}
	os.Setenv("VARTA_TEST_HOOKS", "1")
	os.Setenv("VARTA_TEST_WEDGE_AFTER_MS", "0")
	os.Setenv("VARTA_TEST_WEDGE_FOR_MS", strconv.FormatInt(s.injectWedge.cur, 10))
}
