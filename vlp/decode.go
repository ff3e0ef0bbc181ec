package vlp

import "encoding/binary"

// Parse checks b against PROTOCOL.md §2 and returns the frame, or the first
// failure in the normative order with a zero Frame. It never allocates, for
// any input, which is why the observer's receive path uses it.
func Parse(b []byte) (Frame, Error) {
	if len(b) != Size {
		return Frame{}, ErrLength
	}
	if b[0] != Magic0 || b[1] != Magic1 {
		return Frame{}, ErrBadMagic
	}
	if b[2] != Version {
		return Frame{}, ErrBadVersion
	}
	if binary.LittleEndian.Uint32(b[crcOffset:]) != Checksum(b[:crcOffset]) {
		return Frame{}, ErrBadCrc
	}
	f := Frame{
		Status:    Status(b[statusOffset]),
		Pid:       binary.LittleEndian.Uint32(b[pidOffset:]),
		Timestamp: binary.LittleEndian.Uint64(b[tsOffset:]),
		Nonce:     binary.LittleEndian.Uint64(b[nonceOffset:]),
		Payload:   binary.LittleEndian.Uint32(b[payloadOffset:]),
	}
	switch {
	case f.Status > Stall:
		return Frame{}, ErrBadStatus
	case f.Status == Stall:
		return Frame{}, ErrStallOnWire
	case f.Pid < firstUserPid:
		return Frame{}, ErrBadPid
	case f.Timestamp == TimestampMax:
		return Frame{}, ErrBadTimestamp
	case f.Nonce == NonceTerminal && f.Status != Critical:
		return Frame{}, ErrBadNonce
	}
	return f, 0
}

// Decode is Parse with a Go error: nil on success, otherwise a value for
// which errors.Is(err, ErrX) holds. BadCrc comes as *CrcError carrying the
// stored and computed checksums, BadStatus as StatusError carrying the byte.
func Decode(b []byte) (Frame, error) {
	f, e := Parse(b)
	switch e {
	case 0:
		return f, nil
	case ErrBadCrc:
		return Frame{}, &CrcError{
			Expected: binary.LittleEndian.Uint32(b[crcOffset:]),
			Actual:   Checksum(b[:crcOffset]),
		}
	case ErrBadStatus:
		return Frame{}, StatusError(b[statusOffset])
	}
	return Frame{}, e
}
