package poll

import (
	"io"
	"time"

	"github.com/varta-go/varta/poll/internal/agents"
	"github.com/varta-go/varta/poll/internal/escalate"
	"github.com/varta-go/varta/poll/internal/exitwatch"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/ops"
	"github.com/varta-go/varta/poll/internal/scrape"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/upstats"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// AgentsFile is a parsed --agents-file (package agents), LoadAgents's.
type AgentsFile = agents.File

// LoadAgents reads and checks an agents file: its error names the file
// and the line.
func LoadAgents(path string) (*AgentsFile, error) { return agents.Load(path) }

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
	SocketPath   string
	SocketMode   uint32 // file mode of the socket, applied through umask at bind
	NotifySocket string // sd_notify agents' socket (--notify-socket, same mode); empty: none

	Threshold   time.Duration // silence before a stall
	ReadTimeout time.Duration // upper bound of one wait
	// Batch > 0 reads the sockets on a tick of this period instead of on
	// every datagram (--batch-ms): fewer wakes, stalls raised up to one
	// period later, and the socket's queue must hold a period's beats.
	Batch time.Duration

	TrackerCapacity int
	Policy          Policy
	MaxBeatRate     int // per pid per second; 0 disables
	GlobalBeatRate  int // all senders per second; 0 disables
	GlobalBeatBurst int
	AllowUIDs       []uint32 // senders' kernel uids that may beat
	AllowCrossNS    bool     // admit agents from another pid namespace
	StrictNS        bool     // --strict-namespace-check: such a frame stops the observer with an error instead
	Clock           Clock
	Loop            LoopConfig // --iteration-budget-ms, --scrape-budget-ms, --eviction-scan-window
	UDSRcvBuf       int        // SO_RCVBUF asked for (--uds-rcvbuf-bytes); 0 keeps 1 MiB, < 0 the kernel default

	ExportFile     string // event file; empty disables
	ExportMaxBytes int64  // rotate above this size; 0 = unbounded
	ControlSocket  string // varta-watch status, pause, resume (package control); "" none
	// Agents is the declared agents file (--agents-file, package
	// declared); nil none.
	Agents *agents.File
	// ExportSyncEvery fdatasyncs the event file every N lines; 0 only at
	// rotation and exit.
	ExportSyncEvery int
	// ExportUpstreamKinds writes only the Rust observer's seven event
	// kinds (no exit lines).
	ExportUpstreamKinds bool
	ExportWallTime      bool // the event file's first column in Unix-epoch ns (--export-time wall)

	ShutdownGrace time.Duration // time to kill and reap children at exit
	ShutdownAfter time.Duration // exit cleanly after this long; 0 = never

	Recovery *recovery.Config // nil: no recovery command
	Ops      OpsConfig        // watchdogs, heartbeat file, exit detection, parent beats
	Metrics  *MetricsConfig   // nil: no metrics endpoint
	UDP      *UDPConfig       // nil: no UDP listener
	Escalate escalate.Config  // --escalate-* and --reset-reason-file; zero: off

	Log           io.Writer // log lines; nil means discard
	LogTimestamps bool      // start each log line with the UTC time (RFC 3339)
	Version       string    // for varta_build_info
}

// MetricsConfig is the /metrics endpoint.
type MetricsConfig struct {
	Addr  string    // IP:PORT, IPv4 or [IPv6]
	Token []byte    // bearer token; nil means none
	Limit RateLimit // per-source-IP token bucket; PerSec 0 off
}

// UDPConfig is the observer's UDP listener (vlp/PROTOCOL.md §6). One
// socket takes both kinds of frame, told apart by length: 32 bytes plain,
// 60 and 64 bytes secure. At least one kind must be enabled.
type UDPConfig struct {
	Addr string // IP:PORT, IPv4 or [IPv6]; port 0 picks a free port

	// Plaintext accepts unauthenticated 32-byte frames
	// (--i-accept-plaintext-udp). Off: they are refused and counted.
	Plaintext bool
	// Keys are the accepted shared keys, the current one first; MasterKey
	// opens master-key frames. Neither: 60- and 64-byte frames fail to
	// open. Both need a build without the varta_nosecure tag (SecureUDP).
	Keys      []vlp.Key
	MasterKey *vlp.Key

	// RecoverPlain and RecoverSecure make agents tracked from this
	// listener's plain or secure frames recovery-eligible. Off (the
	// default), a stall of a UDP agent is reported but recovery skips it
	// as unattested: its pid is only the sender's claim
	// (cmd/varta-watch/README.md §4).
	RecoverPlain  bool
	RecoverSecure bool
}

// OpsConfig configures the embedded operations; the zero value turns every
// one of them off except exit reporting.
type OpsConfig struct {
	// SelfWatchdog > 0 aborts the process with a stack dump of every
	// goroutine when the loop completes no iteration for this long
	// (--self-watchdog-secs).
	SelfWatchdog time.Duration
	// NotifyWatchdog is $WATCHDOG_USEC (see SystemdWatchdog): send
	// WATCHDOG=1 every half of it while the loop makes progress. 0 off.
	NotifyWatchdog time.Duration
	// HWWatchdog is a watchdog device (/dev/watchdog) to open, kick every
	// tick and magic-close on a clean exit (--hw-watchdog). "" off.
	HWWatchdog string
	// HeartbeatFile is rewritten atomically with "<loop_count>
	// <observer_ns>\n" (--heartbeat-file). "" off.
	HeartbeatFile string
	// OnExit is what to do when a kernel-attested agent dies (--on-exit).
	OnExit ExitPolicy
	// StateFile keeps the tracked agents across restarts (--state-file). "" off.
	StateFile string
	// AllowParentBeats admits frames whose pid is the parent of the
	// kernel-reported sender (--allow-parent-beats; see ingest.go).
	AllowParentBeats bool
}

// The names cmd/varta-watch and bench/ use, from the rooms that define
// them, so that nothing outside poll imports poll/internal.
type (
	Policy     = track.Policy     // --tracker-eviction-policy
	LoopConfig = upstats.Config   // the loop's budgets
	RateLimit  = scrape.RateLimit // --prom-rate-limit-*
	ExitPolicy = exitwatch.Policy // --on-exit
	FileError  = sysfile.Error    // a file, socket or device the observer owns
	UDS        = listen.UDS       // the bound Unix datagram socket
	Receiver   = listen.Receiver  // recvmmsg(2) with credentials
	LogOutput  = sink.LogOutput   // standard error that never blocks
)

const (
	PolicyStrict       = track.PolicyStrict
	PolicyBalanced     = track.PolicyBalanced
	EvictionFactor     = track.EvictionFactor
	MaxTrackerCapacity = track.MaxTrackerCapacity
	ExitReport         = exitwatch.Report
	ExitRecover        = exitwatch.Recover
	ExitIgnore         = exitwatch.Ignore
	EventStdout        = sink.EventStdout
	EventGenerations   = sink.EventGenerations
	ExitWedged         = ops.ExitWedged
	SecureUDP          = listen.SecureUDP
)

var (
	ErrAlreadyRunning = listen.ErrAlreadyRunning
	ParsePolicy       = track.ParsePolicy
	ParseExitPolicy   = exitwatch.ParsePolicy
	ParseListenAddr   = listen.ParseListenAddr
	ListenUDS         = listen.ListenUDS
	NewReceiver       = listen.NewReceiver
	OpenLogOutput     = sink.OpenLogOutput
	OpenSyslog        = sink.OpenSyslog
	NewLogger         = sink.NewLogger // for a line cmd/varta-watch logs before Run, in Run's format
	SyslogPath        = sink.SyslogPath
	SystemdWatchdog   = ops.SystemdWatchdog
)
