// Package escalate is the escalation ladder of varta-watch and the
// controlled reset it can end in (cmd/varta-watch/README.md, "Escalation
// and the reset reason").
//
// Job: count, per agent (by key: its process name, not its pid, since a
// restarted service has a new pid; a declared agent name can take the
// key's place), the recovery
// runs that failed (exit not 0, killed, spawn failure, or the agent still
// silent one threshold after a run that exited 0) within a sliding
// window; at the N-th, escalate that agent once: run the escalate command
// (recovery.Manager.Escalate, audited as a spawn/complete pair whose
// source says escalate), and with --escalate-reset write the reset reason
// (package resetreason) and stop kicking the hardware watchdog
// (ops.HoldWatchdog), with --escalate-reboot ask init for a reboot and
// call reboot(2) after a grace. At start it reads the reset-reason file
// back and tells a controlled reset, an unexpected one and a mere restart
// apart by the boot id.
//
// Allocation: the ladder (Ladder) and the table of pending silence checks
// are fixed-size tables made by New. Nothing here runs per beat: the
// loop calls in once per reaped recovery child, per failed spawn, and per
// tick (Tick does nothing without a due check or reboot, and allocates
// nothing then). The failure paths allocate (keys, log lines), as the
// recovery spawn they follow does. Everything belongs to the loop's
// goroutine. A nil *Escalator is off: every method is safe on it.
package escalate
