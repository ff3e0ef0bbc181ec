// Package vlp implements VLP, the Varta Lifeline Protocol (version byte
// 0x02): the 32-byte heartbeat frame an agent sends to varta-watch, its
// decoder and encoder, and the agent-side emitter.
//
// Allocation contract: Parse, Encode, Append (into a buffer with room) and
// Emitter.Beat never allocate. Decode allocates only to carry the expected
// and actual checksums of a BadCrc failure; hot paths use Parse, which
// reports the same failures as a plain Error value.
//
// Concurrency: Frame and Error are values and safe to share. An Emitter is
// owned by one goroutine at a time.
//
// The package imports nothing of varta's own; only the standard library and
// golang.org/x/sys/unix (for the emitter's socket).
package vlp
