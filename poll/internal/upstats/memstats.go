package upstats

import (
	"runtime/metrics"

	"github.com/varta-go/varta/promtext"
)

// memStats exports the Go runtime's allocation counters, so that an
// outside harness can check the no-allocation invariant on the running
// binary: Δ allocations over Δ beats in steady state (bench/ does).
//
// runtime/metrics rather than runtime.ReadMemStats: the first
// ReadMemStats made about 0.2–0.4 MiB of the runtime's own bookkeeping
// resident (measured: 0.93 to 1.33 MiB of anonymous memory at the first
// scrape of an idle observer), against 56 KiB for these four samples, and
// it stops the world on every scrape. The price is about 20 KB of binary
// (the runtime's metric table). Reading uint64 samples allocates nothing
// after the first call.
//
// The runtime folds a P's allocation counts into these totals when it
// hands a cached span back, so they can lag by a span's worth of objects
// per size class: noise for a delta over many beats.
type memStats struct{ s [6]metrics.Sample }

// The samples memStats reads, in its array's order.
const (
	sampleObjects = iota // objects, tiny ones excluded
	sampleTiny           // tiny objects (Go folds several into one block)
	sampleBytes
	sampleCycles
	sampleStacks    // goroutine and thread stacks, on the heap's pages
	sampleHeapBytes // live and not yet swept objects
)

// init names the samples.
func (r *memStats) init() {
	r.s[sampleObjects].Name = "/gc/heap/allocs:objects"
	r.s[sampleTiny].Name = "/gc/heap/tiny/allocs:objects"
	r.s[sampleBytes].Name = "/gc/heap/allocs:bytes"
	r.s[sampleCycles].Name = "/gc/cycles/total:gc-cycles"
	r.s[sampleStacks].Name = "/memory/classes/heap/stacks:bytes"
	r.s[sampleHeapBytes].Name = "/memory/classes/heap/objects:bytes"
}

// value is sample i, 0 if this runtime does not know it.
func (r *memStats) value(i int) uint64 {
	if v := r.s[i].Value; v.Kind() == metrics.KindUint64 {
		return v.Uint64()
	}
	return 0
}

// render appends the varta_go_* families.
func (r *memStats) render(e *promtext.Encoder) {
	metrics.Read(r.s[:])
	counter(e, "varta_go_heap_allocs_objects_total",
		"Heap objects allocated by the observer process since start, tiny ones included (Go runtime/metrics /gc/heap/allocs:objects plus /gc/heap/tiny/allocs:objects).",
		r.value(sampleObjects)+r.value(sampleTiny))
	counter(e, "varta_go_heap_allocs_bytes_total", "Bytes allocated on the heap since start (Go runtime/metrics /gc/heap/allocs:bytes).", r.value(sampleBytes))
	counter(e, "varta_go_gc_cycles_total", "Completed garbage collection cycles (Go runtime/metrics /gc/cycles/total:gc-cycles).", r.value(sampleCycles))
	gauge(e, "varta_go_heap_object_bytes", "Bytes of heap objects, live or not yet collected (Go runtime/metrics /memory/classes/heap/objects:bytes).",
		r.value(sampleHeapBytes))
	gauge(e, "varta_go_stack_bytes", "Bytes of goroutine and thread stacks (Go runtime/metrics /memory/classes/heap/stacks:bytes).",
		r.value(sampleStacks))
}
