// Package agents reads the declared agents file (--agents-file): the
// agents an operator names in advance, how to recognise each one's
// process, and what is particular to it (its own threshold, recovery
// command, escalation count, and how soon it must be beating). It parses
// and matches; the observer does the rest.
//
// Parsing runs at start and at SIGHUP, and may allocate. Matching runs
// once per new agent session, never per beat, and allocates nothing.
package agents
