// Package bench is varta-go's performance harness: a load generator of
// real agent processes, a baseline receiver that marks the machine's
// ceiling, and the measurements behind every performance claim in the
// README.
//
//	go run ./bench/cmd/report          # the whole table, a few minutes
//	go run ./bench/cmd/report -quick   # the same in seconds (CI)
//	go run ./bench/cmd/loadgen -socket /tmp/varta.sock -n 4 -rate 0 -block
//	go test -run '^$' -bench . ./bench/
//
// Senders must be separate processes: the observer takes each datagram's
// pid from SCM_CREDENTIALS and refuses a frame claiming another, so one
// process cannot stand in for many agents. The harness therefore re-executes
// its own binary in a child role (see Child), which is why every main and
// TestMain that uses this package calls Child first.
//
// Measurements run one after another, never overlapping, so no measurement
// steals CPU from another; each one starts its own varta-watch (the binary
// built from this tree with the release flags) and stops it after.
//
// Allocation: the harness allocates freely; the sender's beat loop does
// not, so a sender measures Beat and not itself.
package bench
