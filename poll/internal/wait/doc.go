// Package wait is where the observer loop sleeps: one private epoll set
// holds every fd the loop owns, with a timerfd for the next deadline to
// the nanosecond, and only that epoll fd is handed to the Go runtime, so
// the loop's goroutine parks in the runtime's netpoller (one thread
// switch per wake) instead of in a blocking system call of its own
// (several). Registration is re-declared each pass and kept in step with
// the kernel by difference; each wake runs the loop's passes until
// nothing is ready and nothing is due.
//
// Allocation: NewEpoll sizes every table for its capacity; a pass
// allocates nothing, and its system calls on the epoll set, the timer and
// the loop's non-blocking sockets are raw (no hand-over to another
// thread). One goroutine, the loop's, owns a Waiter.
package wait
