//go:build race

package testutil

// RaceEnabled: the race detector's instrumentation allocates inside some
// syscall wrappers, so exact allocation counts are checked without it.
const RaceEnabled = true
