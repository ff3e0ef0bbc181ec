//go:build race

package poll

// raceEnabled: under the race detector unix.Read reports its buffer to the
// race runtime, which moves a caller's stack buffer to the heap, so
// allocation counts of code that reads are not meaningful.
const raceEnabled = true
