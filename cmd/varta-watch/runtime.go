package main

import (
	"os"
	"runtime"
	"slices"
	"strings"
	"syscall"
)

// The subcommands that are not the observer: short-lived clients, which
// keep the runtime as Go starts it.
const (
	auditSubcommand       = "audit"
	resetReasonSubcommand = "reset-reason"
)

func isSubcommand(arg string) bool {
	return arg == auditSubcommand || arg == resetReasonSubcommand || isControlCommand(arg)
}

// singlePMark tells the re-executed observer that GOMAXPROCS=1 in its
// environment is its own doing (tuneRuntime), to be taken out again
// before any child sees it.
const singlePMark = "VARTA_WATCH_SINGLE_P"

// tuneRuntime fits the Go runtime to a daemon whose one goroutine does
// all the work (cmd/varta-watch/README.md §2). $GOMAXPROCS, when set,
// still wins. The numbers are from bench/ (go run ./bench/cmd/report).
//
// One P: a second buys nothing and costs idle CPU (while the loop sleeps
// with a P idle, the runtime's sysmon thread cannot deep-sleep; one P took
// about 40 % off the CPU with 50 agents beating at 1 Hz). And one P from
// the first instruction on, which only the environment can ask for: a
// runtime that starts with one P per CPU and is cut down to one later had,
// in about two starts of three, 175 KiB more of its own bookkeeping and
// 0.3 MiB more anonymous memory for good (an idle observer with
// --tracker-capacity 4096: 1240–1320 KiB against 920–990 KiB started with
// GOMAXPROCS=1). So the observer executes itself once more, at once, with
// GOMAXPROCS=1: the same pid, the same arguments, before it has opened
// anything. Where that cannot be done (no /proc, an emulator without
// binfmt), it carries on with runtime.GOMAXPROCS(1).
//
// GOGC stays at Go's default: the tables are all made at start and the
// /metrics body is streamed, so there is no garbage to collect early, and
// a collection only costs memory (its mark state): GOGC=50 ran two while
// 4096 agents filled the table, for 0.46 MiB more peak RSS than none.
func tuneRuntime() {
	if _, again := os.LookupEnv(singlePMark); again {
		// The re-executed observer: recovery commands inherit the
		// environment, and GOMAXPROCS=1 is not theirs to inherit.
		os.Unsetenv("GOMAXPROCS")
		os.Unsetenv(singlePMark)
		return
	}
	if os.Getenv("GOMAXPROCS") != "" {
		return
	}
	// An empty GOMAXPROCS= is dropped, not shadowed: the runtime would
	// read the first of two.
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GOMAXPROCS=") })
	// Exec returns only when it failed; the fallback is as correct, only
	// larger, so there is nothing to report.
	_ = syscall.Exec("/proc/self/exe", os.Args, append(env, "GOMAXPROCS=1", singlePMark+"=1"))
	runtime.GOMAXPROCS(1)
}
