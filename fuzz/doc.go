// Package fuzz holds the go test -fuzz targets that cross package lines.
// It has no code of its own: the targets live in the _test files and their
// committed corpus under testdata/fuzz/, which plain `go test ./fuzz/`
// replays (so a crasher once found stays fixed, on every architecture).
//
// Run a target on the host, e.g.
//
//	go test -run=^$ -fuzz=FuzzDecode -fuzztime=4000000x ./fuzz/
//
// (a count, not a duration: Go 1.26 can fail a -fuzztime=60s run at the
// deadline with no failing input, golang/go#75804).
package fuzz
