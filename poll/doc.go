// Package poll is the observer loop of varta-watch: Run binds the sockets,
// then one goroutine waits on every fd the loop owns (registered in one
// place, register in run.go, each with what handles it; it parks in the Go
// runtime's netpoller, see package wait) and runs each iteration:
// receive a bounded number of recvmmsg batches → decode (vlp.Parse) →
// authenticate (uid allow-list, frame pid == kernel pid, parent beats,
// pid namespaces) → rate-limit and track → raise due stalls → hand them
// to recovery → reap children → serve metrics → flush the event file →
// the periodic duties of package ops.
//
// poll keeps only the loop: its state (observer.go), configuration
// (config.go), dispatch of a batch (ingest.go, udp.go), exit reports
// (exits.go), signals, the clock and the metrics it renders. The rest
// lives in rooms under poll/internal, which never import poll and import
// each other only downward:
//
//	track     the pid table, slots, rate limits, the replay table (pure)
//	listen    the sockets, the recvmmsg receiver, /proc identity helpers
//	sink      the event file and log lines: bounded, never block
//	ops       sd_notify, self and hardware watchdogs, the heartbeat file
//	exitwatch pidfds in one epoll set: an agent's death within ms
//	scrape    the /metrics listener and connections (HTTP is promtext's)
//	control   the control socket: varta-watch status, pause, resume
//	wait      the epoll set the loop parks on in the runtime's netpoller
//	sysfile   the file error type and allocation-free openat
//	enum      the spellings of small enumerations
//	testutil  helpers the rooms' tests share (tests only)
//
// With a UDP listener (UDPConfig, vlp/PROTOCOL.md §6) the loop also reads
// a UDP socket: 32-byte plain frames (only when accepted), 60/64-byte
// secure frames opened by listen.Secure and checked against the replay
// table, both tracked under their origin (a pid tracked from the socket is
// never taken over by UDP). UDP agents are recovery-eligible only when the
// operator opts in.
//
// Ownership and concurrency: the loop goroutine owns every table, counter
// and fd. The only other goroutines are the signal forwarder, which touches
// two atomics and the wake-up pipe's write end, and, with
// --self-watchdog-secs, the self-watchdog, which reads one atomic (the
// iteration count). There are no locks.
//
// Allocation: all tables (the tracker's slots and index, the receive
// arrays, the replay table, the event buffer, the metrics connection
// slots, the wait's fd table) are sized once from the Config. Nothing
// allocates per datagram in steady state, for good frames or bad ones (a
// master-key agent's first frame derives its key once); logging of
// hot-path problems is rate limited per kind.
//
// Time: every deadline is on the observer's own clock (monotonic, or
// boottime with --clock-source boottime; it never runs backwards), never a
// frame's timestamp. The wait ends at the earliest of --read-timeout-ms,
// the next stall deadline, recovery's next child deadline, the metrics
// connections' deadlines and the next periodic duty of ops, so a stall is
// raised within a few ms of its deadline.
//
// Layering: poll imports vlp, ring, promtext, recovery and its rooms;
// nothing of ours imports poll except cmd/varta-watch and bench.
package poll
