package upstats

import (
	"runtime"

	"github.com/varta-go/varta/promtext"
)

// memStats exports the Go runtime's allocation counters, so that an
// outside harness can check the no-allocation invariant on the running
// binary: Δ allocations over Δ beats in steady state (bench/ does).
//
// runtime.ReadMemStats rather than runtime/metrics: it fills a struct the
// observer owns without allocating, and costs a stop-the-world of a few
// microseconds per scrape on the loop's single goroutine, while importing
// runtime/metrics (its metric table) grows the static binary by about
// 20 KB, a 64 KiB page step on arm64, against a 2.5 MiB budget.
//
// The runtime folds a P's allocation counts into these totals when it
// hands a cached span back, so they can lag by a span's worth of objects
// per size class: noise for a delta over many beats.
type memStats struct{ ms runtime.MemStats }

// render appends the varta_go_* families.
func (r *memStats) render(e *promtext.Encoder) {
	runtime.ReadMemStats(&r.ms)
	counter(e, "varta_go_heap_allocs_objects_total",
		"Heap objects allocated by the observer process since start, tiny ones included (Go runtime MemStats.Mallocs).", r.ms.Mallocs)
	counter(e, "varta_go_heap_allocs_bytes_total", "Bytes allocated on the heap since start (Go runtime MemStats.TotalAlloc).", r.ms.TotalAlloc)
	counter(e, "varta_go_gc_cycles_total", "Completed garbage collection cycles (Go runtime MemStats.NumGC).", uint64(r.ms.NumGC))
}
