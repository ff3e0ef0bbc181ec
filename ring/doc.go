// Package ring holds the fixed-capacity containers the observer's tables
// are built from: a FIFO ring buffer, an open-addressing index from a
// uint32 key (a pid) to an int32 slot, and intrusive doubly-linked lists
// threaded through int32 slot indices.
//
// Allocation contract: every container allocates once, in its
// constructor, and never grows; no method allocates. A full container
// refuses (Push and Put report false) rather than growing or evicting —
// the caller decides what a refusal means.
//
// Concurrency: none of these types is safe for concurrent use; each is
// owned by one goroutine (the observer loop).
//
// ring imports nothing of varta's own.
package ring
