// Package ops is what makes the observer at home on a board: the
// self-watchdog, sd_notify (READY=1, STOPPING=1, WATCHDOG=1), a hardware
// watchdog device, and the heartbeat file. The loop drives them through a
// deadline (Ops.Deadline bounds its wait) and a tick (Ops.Tick, once per
// completed iteration, since each of these is proof of progress).
//
// Allocation: everything is opened and sized by New and NotifyFromEnv; a
// tick allocates nothing (the heartbeat is rewritten through NUL-
// terminated paths and raw system calls). Concurrency: the loop's
// goroutine owns every value; the self-watchdog runs one goroutine of its
// own that shares a single atomic with the loop.
package ops
