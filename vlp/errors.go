package vlp

import "strconv"

// Error is a decode failure kind. Its values are the package's sentinel
// errors: compare with errors.Is(err, vlp.ErrBadCrc). An Error fits in a
// byte, so returning one as an error never allocates.
type Error uint8

// The failures of PROTOCOL.md §2, in their normative order, after the transport
// failure ErrLength (a datagram that is not exactly 32 bytes, or for
// Opener.Open neither 60 nor 64). The two secure-frame failures of PROTOCOL.md
// §6 follow; they are never decode errors of the plaintext.
const (
	ErrLength Error = iota + 1
	ErrBadMagic
	ErrBadVersion
	ErrBadCrc
	ErrBadStatus
	ErrStallOnWire
	ErrBadPid
	ErrBadTimestamp
	ErrBadNonce
	ErrDecrypt  // no accepted key authenticates the secure frame
	ErrAgentPid // a master-key frame's inner pid differs from its agent_pid
)

// NumErrors is one more than the largest Error, for arrays indexed by kind.
const NumErrors = int(ErrAgentPid) + 1

var errorNames = [NumErrors]string{"", "Length", "BadMagic", "BadVersion", "BadCrc",
	"BadStatus", "StallOnWire", "BadPid", "BadTimestamp", "BadNonce",
	"DecryptFailed", "AgentPidMismatch"}

var errorLabels = [NumErrors]string{"", "length", "bad_magic", "bad_version", "bad_crc",
	"bad_status", "stall_on_wire", "bad_pid", "bad_timestamp", "bad_nonce",
	"decrypt_failed", "agent_pid_mismatch"}

var errorText = [NumErrors]string{"",
	"datagram is not exactly 32 bytes",
	"bad magic: frame does not start with \"VA\"",
	"bad version: only VLP version 0x02 is accepted",
	"bad crc: CRC-32C of bytes 0..28 does not match the stored value",
	"bad status: status byte is not 0, 1 or 2",
	"stall on wire: status 3 (stall) is observer-only",
	"bad pid: pid 0 and 1 are reserved",
	"bad timestamp: u64 max is reserved",
	"bad nonce: the terminal nonce requires status critical",
	"decrypt failed: no accepted key authenticates the secure frame",
	"agent pid mismatch: the master-key frame's inner pid differs from its agent_pid",
}

func (e Error) valid() bool { return e > 0 && int(e) < NumErrors }

// Name is the spec spelling (BadMagic ...), used in the event file.
func (e Error) Name() string {
	if e.valid() {
		return errorNames[e]
	}
	return "Unknown"
}

// Label is the snake_case spelling (bad_magic ...), used in metric labels.
func (e Error) Label() string {
	if e.valid() {
		return errorLabels[e]
	}
	return "unknown"
}

func (e Error) Error() string {
	if e.valid() {
		return "vlp: " + errorText[e]
	}
	return "vlp: unknown error " + strconv.Itoa(int(e))
}

// DecodeErrors lists the eight decode failures of PROTOCOL.md §2 in order (not
// ErrLength, which is a transport failure).
var DecodeErrors = [...]Error{ErrBadMagic, ErrBadVersion, ErrBadCrc, ErrBadStatus,
	ErrStallOnWire, ErrBadPid, ErrBadTimestamp, ErrBadNonce}

// SecureErrors lists the failures only Opener.Open reports, beyond
// ErrLength and the decode failures of the opened plaintext.
var SecureErrors = [...]Error{ErrDecrypt, ErrAgentPid}

// CrcError is the BadCrc failure with both checksums.
type CrcError struct {
	Expected uint32 // the checksum stored in bytes 28..32
	Actual   uint32 // the checksum computed over bytes 0..28
}

func (e *CrcError) Error() string {
	return "vlp: bad crc: frame carries 0x" + hex32(e.Expected) +
		" but bytes 0..28 hash to 0x" + hex32(e.Actual)
}

// Unwrap makes errors.Is(err, ErrBadCrc) hold.
func (e *CrcError) Unwrap() error { return ErrBadCrc }

// StatusError is the BadStatus failure with the offending status byte.
type StatusError uint8

func (e StatusError) Error() string {
	return "vlp: bad status: byte " + strconv.Itoa(int(e)) + " is not 0, 1 or 2"
}

// Unwrap makes errors.Is(err, ErrBadStatus) hold.
func (e StatusError) Unwrap() error { return ErrBadStatus }

func hex32(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	for len(s) < 8 {
		s = "0" + s
	}
	return s
}
