// Package sink is where the observer's output goes: the event file
// (EventFile), log lines (Logger, LogOutput) and the inherited standard
// output and error they may be written to. Every write is bounded and
// never waits for a reader: a full disk, a stopped pipeline or a slow
// journal costs lines, which are counted, never the loop's time.
//
// Allocation: the event buffer and the log line buffer are allocated
// once; formatting an event or a log line allocates nothing. Failure
// paths build an error once per distinct cause. A Logger, an EventFile and
// their outputs belong to one goroutine, except LogOutput, whose Write is
// one system call and may be shared with the self-watchdog.
package sink
