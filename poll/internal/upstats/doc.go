// Package upstats is the observer's share of upstream varta-watch's
// metric catalogue (cmd/varta-watch/README.md §7): the loop's own timing
// (per-iteration and per-stage histograms, the iteration and scrape
// budgets, clock jumps), and the rendering of the upstream families whose
// counters live in the rooms (track, listen, scrape, sink, ops) and in
// package recovery. Families this design cannot move are rendered at 0,
// their HELP saying why.
//
// It also exports the Go runtime's allocation counters (MemStats).
//
// Allocation contract: New allocates the histograms once; Begin, Mark and
// End, called once per loop iteration, allocate nothing and read only the
// runtime's vDSO monotonic clock; Render allocates nothing once the
// encoder's buffer has grown. Everything runs on the loop goroutine.
package upstats
