package fuzz

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/varta-go/varta/vlp"
)

// refCRC is a bit-at-a-time CRC-32C, deliberately unlike hash/crc32's
// table-driven and hardware paths, so the two check each other.
func refCRC(p []byte) uint32 {
	crc := ^uint32(0)
	for _, b := range p {
		crc ^= uint32(b)
		for i := 0; i < 8; i++ {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0x82F63B78
			} else {
				crc >>= 1
			}
		}
	}
	return ^crc
}

func le(p []byte) uint64 {
	var v uint64
	for i := len(p) - 1; i >= 0; i-- {
		v = v<<8 | uint64(p[i])
	}
	return v
}

// refDecode restates vlp/PROTOCOL.md §2 as plainly as possible.
func refDecode(b []byte) (vlp.Frame, string) {
	if len(b) != 32 {
		return vlp.Frame{}, "Length"
	}
	status, pid, ts, nonce := b[3], le(b[4:8]), le(b[8:16]), le(b[16:24])
	const max = ^uint64(0)
	switch {
	case b[0] != 'V' || b[1] != 'A':
		return vlp.Frame{}, "BadMagic"
	case b[2] != 2:
		return vlp.Frame{}, "BadVersion"
	case uint32(le(b[28:32])) != refCRC(b[:28]):
		return vlp.Frame{}, "BadCrc"
	case status > 3:
		return vlp.Frame{}, "BadStatus"
	case status == 3:
		return vlp.Frame{}, "StallOnWire"
	case pid <= 1:
		return vlp.Frame{}, "BadPid"
	case ts == max:
		return vlp.Frame{}, "BadTimestamp"
	case nonce == max && status != 2:
		return vlp.Frame{}, "BadNonce"
	}
	return vlp.Frame{Status: vlp.Status(status), Pid: uint32(pid), Timestamp: ts,
		Nonce: nonce, Payload: uint32(le(b[24:28]))}, ""
}

// seedFromVectors adds every frame of the conformance suite to the corpus.
func seedFromVectors(f *testing.F) {
	raw, err := os.ReadFile("../vlp/testdata/vlp-test-vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var v struct {
		Frames []struct {
			Wire     string `json:"wire_hex"`
			Expected string `json:"expected_wire_hex"`
		} `json:"frame_vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		f.Fatal(err)
	}
	for _, fr := range v.Frames {
		for _, h := range []string{fr.Wire, fr.Expected} {
			if b, err := hex.DecodeString(h); err == nil && len(b) > 0 {
				f.Add(b)
			}
		}
	}
	f.Add([]byte{})
	f.Add(make([]byte, 33))
}

func FuzzDecode(f *testing.F) {
	seedFromVectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := vlp.Decode(b)
		want, wantErr := refDecode(b)
		if err != nil {
			var kind vlp.Error
			if got != (vlp.Frame{}) {
				t.Fatalf("Decode(%x) = %+v with error %v, want zero frame", b, got, err)
			}
			if !errors.As(err, &kind) || kind.Name() != wantErr {
				t.Fatalf("Decode(%x) = %v, reference says %q", b, err, wantErr)
			}
			return
		}
		if wantErr != "" || got != want {
			t.Fatalf("Decode(%x) = %+v, reference says %+v %q", b, got, want, wantErr)
		}
		again := vlp.Append(nil, got)
		if string(again) != string(b) {
			t.Fatalf("Append(Decode(%x)) = %x, want the input back", b, again)
		}
		if back, err := vlp.Decode(again); err != nil || back != got {
			t.Fatalf("Decode(Append(%+v)) = %+v, %v", got, back, err)
		}
	})
}

// FuzzDecodeSealed builds frames with a correct CRC from fuzzed fields, so
// the checks after the CRC (status, pid, timestamp, nonce) get explored too;
// random bytes almost never carry a valid checksum.
func FuzzDecodeSealed(f *testing.F) {
	f.Add(byte('V'), byte('A'), byte(2), byte(0), uint32(2), uint64(0), uint64(1), uint32(0))
	f.Add(byte('V'), byte('A'), byte(2), byte(2), uint32(99), uint64(5), ^uint64(0), uint32(7))
	f.Add(byte('V'), byte('A'), byte(1), byte(3), uint32(1), ^uint64(0), ^uint64(0), uint32(0))
	f.Fuzz(func(t *testing.T, m0, m1, ver, status byte, pid uint32, ts, nonce uint64, payload uint32) {
		b := make([]byte, 32)
		b[0], b[1], b[2], b[3] = m0, m1, ver, status
		binary.LittleEndian.PutUint32(b[4:], pid)
		binary.LittleEndian.PutUint64(b[8:], ts)
		binary.LittleEndian.PutUint64(b[16:], nonce)
		binary.LittleEndian.PutUint32(b[24:], payload)
		binary.LittleEndian.PutUint32(b[28:], refCRC(b[:28]))
		got, err := vlp.Decode(b)
		want, wantErr := refDecode(b)
		var kind vlp.Error
		switch {
		case err == nil && (wantErr != "" || got != want):
			t.Fatalf("Decode(%x) = %+v, reference says %+v %q", b, got, want, wantErr)
		case err != nil && (!errors.As(err, &kind) || kind.Name() != wantErr || got != (vlp.Frame{})):
			t.Fatalf("Decode(%x) = %+v, %v, reference says %q", b, got, err, wantErr)
		}
	})
}
