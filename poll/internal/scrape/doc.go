// Package scrape is the glue between the observer loop and the /metrics
// endpoint: the listening TCP socket, accept4(2) without a peer address,
// one non-blocking read and write per ready connection, deadlines, and the
// pause after accept(2) runs out of file descriptors. The HTTP state
// machine and the exposition format are package promtext's; what to render
// is the observer's (Config.Stream), but for the per-pid families, which
// Pids writes a piece at a time from a snapshot of the pid order.
//
// Allocation: connection slots and buffers are allocated by New; a whole
// request allocates nothing once the slot's piece buffer and cursor exist.
// The observer loop's goroutine owns a Server.
package scrape
