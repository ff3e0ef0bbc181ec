// Package sdnotify lets agents built for systemd's watchdog beat to the
// observer: a second Unix datagram socket (--notify-socket, the path a
// daemon finds in $NOTIFY_SOCKET) that speaks systemd's notify protocol,
// each message judged by its sender's kernel credentials
// (cmd/varta-watch/README.md "sd_notify agents").
//
// Parse reads one message, newline-separated KEY=VALUE lines, into a
// Message; Handler receives the socket's datagrams, parses them and
// applies them to the observer's tracker: WATCHDOG=1 is a beat for the
// sender's pid, WATCHDOG_USEC= the agent's own threshold, WATCHDOG=trigger
// an immediate stall, STATUS= the agent's status text, STOPPING=1 an
// orderly exit. What an accepted beat means for events, logs and exit
// detection stays the observer's: the Handler hands beats to a function
// of the observer's (Config.Track), as the VLP socket's frames are.
//
// Allocation: Listen allocates the receive buffers (Batch messages of
// MaxMessage bytes each) and the counters once; Parse and a handled
// message allocate nothing. Nothing here starts a goroutine or is safe for
// concurrent use: the observer loop owns it.
package sdnotify
