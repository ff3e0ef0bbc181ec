package main

import "strings"

const helpHead = `usage: varta-watch --socket PATH --threshold-ms MS [flags]
       varta-watch audit verify FILE
       varta-watch status [--json] (--socket PATH | --control-socket PATH)
       varta-watch pause|resume NAME|PID (--socket PATH | --control-socket PATH)

Watch VLP heartbeats on a Unix datagram socket (and UDP, if asked) and act
when an agent stalls.
`

const helpTail = `
Signals: SIGINT/SIGTERM exit cleanly, SIGHUP reopens the export and audit
files. Under systemd (Type=notify) it sends READY=1, WATCHDOG=1 at half of
WatchdogSec= while the loop makes progress, and STOPPING=1. Exit status: 0
clean, 1 start-up or runtime failure, 2 usage error, 134 wedged loop.
`

// helpColumn is where the help text of a flag starts.
const helpColumn = 34

// helpText is --help, built from flagTable: the defaults and bounds it
// prints are the parser's own.
func helpText() string {
	defs := flagTable(new(settings))
	var b strings.Builder
	b.WriteString(helpHead)
	for g := range numGroups {
		b.WriteString("\n" + groupTitles[g] + "\n")
		for i := range defs {
			if d := &defs[i]; d.grp == g {
				writeFlag(&b, "--"+d.name, d.arg, d.expand())
			}
		}
		if g == numGroups-1 {
			writeFlag(&b, "-h, --help", "", "show this help")
		}
	}
	b.WriteString(helpTail)
	return b.String()
}

// writeFlag writes "  --name ARG" and the help lines beside it, from
// helpColumn; a long left side gets a line of its own.
func writeFlag(b *strings.Builder, name, arg, help string) {
	left := "  " + name
	if arg != "" {
		left += " " + arg
	}
	b.WriteString(left)
	pad := helpColumn - len(left)
	if pad < 1 {
		b.WriteString("\n")
		pad = helpColumn
	}
	for i, line := range strings.Split(help, "\n") {
		if i > 0 {
			pad = helpColumn
		}
		b.WriteString(strings.Repeat(" ", pad) + line + "\n")
	}
}
