// Package recoverylog holds what the observer says about recovery in
// words: the log line for a recovery command that ended badly or could
// not start, the line about what opening the audit log found, and the
// environment a command is given about the agent it recovers.
//
// It runs once per recovery child or once at start, never per beat;
// building a log line's fields or an environment may allocate.
package recoverylog
