// Package control is the observer's control socket: a Unix stream socket
// (mode 0600, only the observer's own uid and root served, checked with
// SO_PEERCRED) through which `varta-watch status` reads one line per
// tracked agent and a summary, and `varta-watch pause` and `resume` hold
// and release an agent's recovery during maintenance. It also keeps the
// per-agent recovery bookkeeping status shows (track.Slot's Recoveries,
// Held, LastOutcome, Paused) through recovery's hooks, and logs
// --recovery-dry-run's commands.
//
// The protocol is one request line of at most RequestMax bytes ("status",
// "status json", "pause NAME|PID", "resume NAME|PID") and a response,
// after which the server closes the connection (cmd/varta-watch/README.md,
// "Status and maintenance").
//
// Serving never holds the loop up: the listener and the connections are
// non-blocking fds in the loop's wait; at most MaxConns connections at
// once (more are refused and counted); each connection has Timeout for
// its whole exchange and is cut off at it, so a client that stops
// reading costs a slot for at most that long. A status response is not
// built whole: it is rendered into the connection's fixed buffer a chunk
// at a time as the client drains it, in pid order by a pid cursor into a
// sorted snapshot of the tracked pids (taken when a status request
// arrives, one sort as a metrics scrape does, in an array of the table's
// capacity made once), so a table of 65536 agents costs OutCap bytes per
// connection, not megabytes; a row is rendered from the slot as it is
// then, and an agent gone since the snapshot is skipped.
//
// Allocation: Listen allocates the connection slots and their buffers;
// rendering status allocates nothing per agent. Accepting a connection
// (SO_PEERCRED), pause, resume and their log lines allocate a little,
// per request. The observer loop's goroutine owns a Server; it imports
// track, exitwatch, listen and sink (rooms below it) and recovery, never
// poll.
package control
