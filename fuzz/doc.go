// Package fuzz holds the go test -fuzz targets that cross package lines.
// It has no code of its own: the targets live in the _test files and their
// committed corpus under testdata/fuzz/, which plain `go test ./fuzz/`
// replays (so a crasher once found stays fixed, on every architecture).
//
// Run a target on the host, e.g.
//
//	go test -run=^$ -fuzz=FuzzDecode -fuzztime=60s ./fuzz/
package fuzz
