package vlp

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// Wire constants (PROTOCOL.md §1).
const (
	Size          = 32         // bytes in every frame
	Magic0        = 0x56       // 'V'
	Magic1        = 0x41       // 'A'
	Version       = 0x02       // the only version this package speaks
	NonceTerminal = ^uint64(0) // reserved for the dying-gasp frame
	TimestampMax  = ^uint64(0) // reserved; never a valid timestamp
	crcOffset     = Size - 4   // the CRC covers bytes [0, crcOffset)
	statusOffset  = 3          // offset of the status byte
	pidOffset     = 4          // offset of the pid field
	tsOffset      = 8          // offset of the timestamp field
	nonceOffset   = 16         // offset of the nonce field
	payloadOffset = 24         // offset of the payload field
	firstUserPid  = 2          // pids 0 and 1 are reserved
)

// Status is the health an agent reports. Stall exists only inside the
// observer; it is never valid on the wire.
type Status uint8

const (
	Ok       Status = 0
	Degraded Status = 1
	Critical Status = 2
	Stall    Status = 3
)

var statusNames = [...]string{"ok", "degraded", "critical", "stall"}

// String returns the lowercase name used in logs, the event file and
// metrics; an out-of-range value prints as "invalid".
func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "invalid"
}

// ParseStatus is the inverse of String for the three wire statuses.
func ParseStatus(name string) (Status, bool) {
	for i, n := range statusNames[:Stall] {
		if n == name {
			return Status(i), true
		}
	}
	return 0, false
}

// Frame is one decoded heartbeat. It is a small comparable value.
type Frame struct {
	Status    Status
	Pid       uint32
	Timestamp uint64 // sender-local monotonic ns
	Nonce     uint64 // per-session counter; NonceTerminal marks a dying gasp
	Payload   uint32 // opaque application value
}

// Terminal reports whether f is a dying-gasp frame.
func (f Frame) Terminal() bool { return f.Nonce == NonceTerminal && f.Status == Critical }

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C (Castagnoli) of p, the checksum VLP uses.
func Checksum(p []byte) uint32 { return crc32.Checksum(p, castagnoli) }

// Encode writes f into b, checksum included. It does not validate f: the
// emitter is responsible for never sending reserved values (PROTOCOL.md §3).
func Encode(b *[Size]byte, f Frame) {
	b[0], b[1], b[2], b[statusOffset] = Magic0, Magic1, Version, byte(f.Status)
	binary.LittleEndian.PutUint32(b[pidOffset:], f.Pid)
	binary.LittleEndian.PutUint64(b[tsOffset:], f.Timestamp)
	binary.LittleEndian.PutUint64(b[nonceOffset:], f.Nonce)
	binary.LittleEndian.PutUint32(b[payloadOffset:], f.Payload)
	binary.LittleEndian.PutUint32(b[crcOffset:], Checksum(b[:crcOffset]))
}

// Append appends the 32-byte encoding of f to dst and returns the extended
// slice. It allocates only when dst lacks room.
func Append(dst []byte, f Frame) []byte {
	// Encode in place: a local array would escape through the CRC call.
	dst = slices.Grow(dst, Size)
	n := len(dst)
	dst = dst[:n+Size]
	Encode((*[Size]byte)(dst[n:]), f)
	return dst
}
