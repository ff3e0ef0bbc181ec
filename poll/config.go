package poll

import (
	"io"
	"time"

	"github.com/varta-go/varta/recovery"
)

// Clock selects the observer's time base for silence.
type Clock uint8

const (
	ClockMonotonic Clock = iota // suspended time does not count
	ClockBoottime               // suspended time counts as silence
)

// Config is everything Run needs; cmd/varta-watch fills it from flags and
// checks the values a user can get wrong, so Run only re-checks what would
// break its invariants.
type Config struct {
	SocketPath string
	SocketMode uint32 // file mode of the socket, applied through umask at bind

	Threshold   time.Duration // silence before a stall
	ReadTimeout time.Duration // upper bound of one poll wait

	TrackerCapacity int
	Policy          Policy
	MaxBeatRate     int // per pid per second; 0 disables
	GlobalBeatRate  int // all senders per second; 0 disables
	GlobalBeatBurst int
	AllowUIDs       []uint32 // senders' kernel uids that may beat
	AllowCrossNS    bool     // admit agents from another pid namespace
	Clock           Clock

	ExportFile     string // event file; empty disables
	ExportMaxBytes int64  // rotate above this size; 0 = unbounded

	ShutdownGrace time.Duration // time to kill and reap children at exit
	ShutdownAfter time.Duration // exit cleanly after this long; 0 = never

	Recovery *recovery.Config // nil: no recovery command
	Ops      OpsConfig        // watchdogs, heartbeat file, exit detection, parent beats (ops.go)
	Metrics  *MetricsConfig   // nil: no metrics endpoint
	UDP      *UDPConfig       // nil: no UDP listener

	Log     io.Writer // log lines; nil means discard
	Version string    // for varta_build_info
}

// MetricsConfig is the /metrics endpoint.
type MetricsConfig struct {
	Addr  string // IP:PORT, IPv4 or [IPv6]
	Token []byte // bearer token; nil means none
}
