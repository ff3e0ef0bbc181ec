//go:build race

package poll

// raceEnabled: the race detector's instrumentation allocates inside some
// syscall wrappers, so exact allocation counts are checked without it.
const raceEnabled = true
