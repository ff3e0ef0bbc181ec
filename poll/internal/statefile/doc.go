// Package statefile keeps the observer's memory across its own restarts
// (--state-file): which agents it tracked, their process start times,
// names, last beats and whether their stall was raised, with the boot id
// they belong to. It writes the file (atomically, at most once a second
// and at shutdown), reads it back, and at start replays it: an agent still
// alive as the same process is tracked on; one that died while the
// observer was stopped is reported.
//
// The file is only meaningful within one boot (pids and start times are a
// boot's), so it is never fsynced: a rename is atomic against the
// observer's own crash, and a power loss ends the boot, after which the
// file is dropped anyway. Put it on a tmpfs (/run).
//
// Saving runs at most once a second, off the per-beat path, into a fixed
// buffer written in pieces; reading and replaying run once, at start, and
// may allocate.
package statefile
