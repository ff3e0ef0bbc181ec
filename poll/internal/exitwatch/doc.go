// Package exitwatch notices the death of kernel-attested agents within
// milliseconds, through pidfds gathered in one epoll set (Watch), and
// keeps what the observer needs to report each exit once: a fixed entry
// per tracker slot, and the exits whose recovery was deferred.
//
// It owns file descriptors (the epoll fd and one pidfd per watched agent)
// but no clock and no log: it returns errors and slot ids, and the
// observer loop reports. Allocation: New sizes every table from the
// tracker's capacity; nothing allocates afterwards except an error on a
// failure path. One goroutine, the loop's, owns a Watch.
package exitwatch
