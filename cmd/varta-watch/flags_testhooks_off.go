//go:build !varta_testhooks

package main

// Release builds have no --inject-wedge-ms, like the Rust original's
// builds without its test-hooks feature: it is an unknown flag there.
func testHookFlags(*settings) []flagDef { return nil }

func applyTestHooks(*settings) {}
