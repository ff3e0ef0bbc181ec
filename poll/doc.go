// Package poll is the observer loop of varta-watch: everything that owns a
// file descriptor or a tick. Run binds the Unix datagram socket, then one
// goroutine runs a ppoll(2) loop over it, the signal wake-up pipe and the
// metrics listener and connections. Each iteration: receive a bounded
// number of recvmmsg batches (with SCM_CREDENTIALS per datagram) → decode
// (vlp.Parse) → authenticate (uid allow-list, frame pid == kernel pid) →
// rate-limit and track (Tracker) → raise due stalls → hand them to
// recovery → reap children → serve metrics → flush the event file.
//
// With a UDP listener (UDPConfig, SPEC.md §6) the same loop also polls a
// UDP socket, read by the same Receiver without credentials: 32-byte
// plain frames (only when accepted), 60/64-byte secure frames opened by a
// vlp.Opener and checked against the fixed ReplayTable, both tracked
// under their Origin (a pid tracked from the socket is never taken over
// by UDP). UDP agents are recovery-eligible only when the operator opts
// in. Building with -tags varta_nosecure leaves the secure side (and
// ChaCha20-Poly1305) out: see SecureUDP.
//
// Ownership and concurrency: the loop goroutine owns every table, counter
// and fd. The only other goroutines are the signal forwarder, which touches
// two atomics and the wake-up pipe's write end, and, with
// --self-watchdog-secs, the self-watchdog, which reads one atomic (the
// iteration count) and aborts the process when it stops moving. There are
// no locks.
//
// Embedded operations (ops.go and the files it names): the self-watchdog,
// WATCHDOG=1 to the service manager, a hardware watchdog device, the
// heartbeat file, exit detection through pidfds (exitwatch.go) and parent
// beats for shell scripts (parentbeat.go). Test hooks: with
// VARTA_TEST_HOOKS=1 and VARTA_TEST_WEDGE_AFTER_MS=N in the environment the
// loop wedges itself after N ms, so tests can watch the self-watchdog and
// WATCHDOG=1 react (watchdog.go); never set them in production.
//
// Allocation: all tables (the Tracker's slots and index, the receive
// arrays, the replay table, the event buffer, the metrics connection
// slots) are sized once from the Config. Nothing allocates per datagram in
// steady state, for good frames or bad ones (a master-key agent's first
// frame derives its key once); logging of hot-path problems is rate
// limited per kind.
//
// Time: every deadline is on the observer's own clock (monotonic, or
// boottime with --clock-source boottime), never a frame's timestamp. The
// poll timeout is the smallest of --read-timeout-ms, the earliest stall
// deadline, recovery's next child deadline, the metrics connections'
// deadlines and the next periodic duty of ops.go (a WATCHDOG=1, a
// hardware-watchdog kick, a heartbeat), so a stall is raised within a few
// ms of its deadline.
//
// Layering: poll imports vlp, ring, promtext and recovery; nothing of ours
// imports poll except cmd/varta-watch.
package poll
