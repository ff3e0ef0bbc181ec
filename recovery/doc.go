// Package recovery is the recovery side of varta-watch: when the observer
// raises a stall for an agent, a Manager decides whether to run the
// operator's recovery command for it (attestation, debounce, one child per
// pid, capacity, per-tick spawn budget), spawns it asynchronously, reaps
// and times it out on later ticks, and records every decision in an
// append-only, hash-chained audit log.
//
// # How the loop drives it
//
//	m, err := recovery.New(cfg)            // at start-up; tables sized once
//	...
//	out := m.OnStall(pid, start, attested, now) // per stall, after identity re-check
//	m.Tick(now)                                  // once per loop iteration
//	timeout = min(timeout, m.NextDeadline()-now) // before poll(2)
//	...
//	m.Shutdown(grace); m.Close()                 // at exit
//
// OnStall may defer a stall when the spawn budget (Config.SpawnsPerTick,
// shared by OnStall and the deferred queue between two Ticks) is spent;
// Tick fires deferred stalls in arrival order after asking
// Config.Recheck whether each is still current. Counts and Durations feed
// varta_recovery_outcomes_total{outcome} (labels in OutcomeLabels, all
// present from the start) and the duration histogram.
//
// # Commands and children
//
// The command is split on white space and run by execve(2), never by a
// shell; see ParseCommand for {pid} and program resolution (a bare name is
// resolved through $PATH once, at start-up). Each child leads its own
// process group (timeouts and shutdown signal the whole group; a process
// that moves itself to another group or session escapes that, as a
// daemon must), gets stdin /dev/null, stdout and stderr on /dev/null or
// on capture pipes, and an environment of PATH=/usr/bin:/bin plus the
// configured extras unless InheritEnv. A child that exits normally is
// not followed by a group kill: a recovery script may legitimately leave
// a restarted service running. A signal the kernel refuses (EPERM: the
// child took another uid) is not dropped: it is counted and kept
// (SignalFailures, Completion.SignalErr, Shutdown's error), and a
// timed-out child's SIGKILL is retried every second.
//
// Reaping is wait4(pid, WNOHANG) on each outstanding child's own pid,
// every Tick: at most Capacity calls, so a child that exits is reaped by
// the next Tick. A reap writes a completion record, so at most
// Config.ReapsPerTick are reaped per Tick; when more children exit
// together the rest stay zombies for the following Ticks, which
// NextDeadline asks for within a millisecond. wait4(-1) is never used, so
// children of other parts of the process are left alone.
//
// # Allocation and concurrency
//
// Every method must be called from one goroutine: there are no locks.
// All tables (outstanding children, the per-pid debounce/in-flight table
// with twice Capacity entries and LRU reuse of idle ones, the deferred
// queue) are allocated in New and never grow. OnStall on every path that
// spawns nothing, and Tick with no child to reap or start, do not allocate,
// audit log included except its checkpoint rewrite at a sync point (see
// below); spawning allocates (argv, fork/exec), as does a capture buffer
// on the first use of each child slot.
//
// Nothing blocks the loop except the fork/exec of a spawn (bounded by the
// spawn budget), the audit log's write, fdatasync, checkpoint and rotation (see
// Config.AuditSyncEvery and AuditMaxBytes), and
// Shutdown, which waits out the grace by design.
//
// # File descriptors
//
// The Manager owns /dev/null (opened in New), the read ends of capture
// pipes (one per stream per child, closed at reap), and the audit log fd;
// all are close-on-exec, the pipe read ends non-blocking. The pipe write
// ends are the child's; the parent's copies are closed right after the
// fork. Close releases everything.
//
// Because a daemon may inherit fds its parent forgot to mark (an init
// script's pipe, a shell's fd 10) and syscall.ForkExec closes nothing it
// is not told to, New marks every fd from 3 up close-on-exec, process-wide
// (close_range(2) with CLOSE_RANGE_CLOEXEC, or a /proc/self/fd walk on
// kernels before 5.11), and repeats the one-syscall close_range before each
// spawn where it exists. That changes nothing for the observer's own use
// of those fds.
//
// Signals the process ignores (signal.Ignore, or SIG_IGN inherited from
// the parent) stay ignored in children, as execve(2) keeps SIG_IGN; signals
// Go handles (signal.Notify) are reset to the default. The observer should
// therefore Notify, not Ignore.
//
// # Audit log
//
// The file (created 0600, opened O_APPEND|O_NOFOLLOW|O_CLOEXEC) is schema
// v2 of the Rust observer, byte for byte (cmd/varta-watch/README.md §6):
// AuditHeader, then one record per line of positional, tab-separated
// columns,
//
//	seq \t wallclock_ms \t observer_ns \t kind \t ... \t chain
//
// kinds boot (daemon_pid, prev_chain, reason), spawn (agent_pid,
// child_pid, mode, program, source, template_len; never the arguments),
// complete (agent_pid, child_pid, outcome, exit_code, signal,
// duration_ns, stdout_len, stderr_len, truncated) and refused (agent_pid,
// reason: the Refused* tokens). chain is the hex of SHA-256 over
// "VARTA-AUDIT-v2", the kind, the previous record's chain value (raw) and
// the record up to its last tab, zero-byte separated. seq and the chain
// continue from the last record in the file at every start; a record whose
// write fails is cut back off the file and its seq burnt, so the gap shows.
//
// After every AuditSyncEvery records the log is fdatasync'ed and its
// checkpoint (CheckpointPath: first and last durable seq, chain value) is
// rewritten through a synced temporary file and rename, so a log cut at
// its end is noticed: by VerifyAudit, and at the next start, whose boot
// record then says corrupt_tail (as it does when a torn last line is cut
// off). A log in the earlier key=value layout of this package, or in the
// Rust observer's schema v1, is moved aside at start (path.kv-<unix
// seconds>, path.v1-<unix seconds>) and a new log begun (boot reason
// schema_drift, legacy_v1). With AuditMaxBytes the log rotates like the
// event file, AuditGenerations kept, the new file's boot record (reason
// rotation) carrying the chain on. Writing the checkpoint allocates, so
// with AuditSyncEvery 1 every decision does; with a larger value only
// the decisions that reach a sync point.
package recovery
