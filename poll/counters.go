package poll

import (
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/vlp"
)

// Counters are the observer's totals, owned and written by the loop
// goroutine only; the metrics renderer reads them on the same goroutine.
type Counters struct {
	Received     uint64                 // datagrams taken off the sockets
	Beats        uint64                 // frames accepted
	Stalls       uint64                 // stalls raised
	Recovered    uint64                 // stalled agents that beat again
	Unverifiable uint64                 // stalls whose process could not be told from a successor
	DecodeErrors [vlp.NumErrors]uint64  // by vlp.Error; ErrLength is unused (see Truncated)
	Truncated    uint64                 // datagrams whose length is not 32
	AuthFailures uint64                 // frame pid != kernel pid, or no credentials
	UIDRefused   uint64                 // kernel uid not in --allow-uid
	NSRefused    uint64                 // sender in another pid namespace
	IOErrors     uint64                 // failed receives, event-file and audit-log writes
	RateLimited  [numRateReasons]uint64 // by reason
	OutOfOrder   uint64                 // nonce not above the last accepted one
	TermReplays  uint64                 // repeated terminal frame, timestamp not above
	OriginClash  uint64                 // frames for a pid tracked from a stronger origin
	NonceWraps   uint64
	Evictions    uint64
	CapExceeded  uint64                   // new pids refused because the table was full
	Retired      uint64                   // pids found recycled at stall time
	PidRecycled  uint64                   // pids found naming a new process (retired, or restarted by a beat)
	ClosedFds    uint64                   // unsolicited SCM_RIGHTS fds closed
	Iterations   uint64                   // loop iterations
	Parent       [numParentResults]uint64 // --allow-parent-beats frames, by result
}

type rateReason uint8

const (
	ratePerPid rateReason = iota
	rateGlobal
	numRateReasons
)

var rateReasonLabels = [numRateReasons]string{"per_pid", "global"}

// parentResult is what became of a frame claiming its sender's parent.
type parentResult uint8

const (
	parentVerified   parentResult = iota // the frame's pid was the sender's parent
	parentSenderGone                     // the sender's /proc entry was gone
	numParentResults
)

var parentResultLabels = [numParentResults]string{"verified", "sender_gone"}

// The hot-path message classes the log rate-limits apart, so a flood of
// one cannot hide the others.
const (
	logDecode sink.LogKind = iota
	logAuth
	logIO
	logRate
	logCapacity
	logEvents
	logUDP          // UDP frames refused: plaintext off, decrypt failures
	logReplay       // secure UDP replays and a full replay table
	logAudit        // audit-log writes that failed
	logMetrics      // metrics connections that could not be accepted
	logExit         // pidfds that could not be opened
	logRecovery     // recovery children that could not be signalled
	logUnverifiable // stalls whose process could not be checked
	logReopen       // SIGHUP reopens (a storm of them)
	logState        // --state-file writes that failed
	logNotify       // sd_notify messages refused
	numLogKinds
)

// The table of kinds must fit the Logger's.
var _ [sink.MaxLogKinds - numLogKinds]struct{}
