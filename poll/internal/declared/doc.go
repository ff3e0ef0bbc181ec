// Package declared is the observer's side of the declared agents file
// (--agents-file; the file itself is package agents): it ties each new
// kernel-attested session to its declared agent (once per session, never
// per beat), gives it its own threshold, follows the agents that must be
// beating by a time and reports the missing ones (event line, log line,
// gauge, their recovery command), answers recovery and the escalation
// ladder with an agent's own command and count, reloads the file at
// SIGHUP, and renders the varta_declared_* metric families.
//
// Allocation contract: nothing here runs per beat. Matching a new session
// reads /proc/PID/cmdline and /proc/PID/cgroup (only when the file needs
// them) into fixed buffers of the Set and allocates nothing; a missing
// report, a reload and starting a recovery child allocate.
package declared
