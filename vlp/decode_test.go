package vlp

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"testing"
)

// frameBytes encodes f and then lets edit change raw bytes; reseal
// recomputes the CRC afterwards so later checks are reached.
func frameBytes(f Frame, reseal bool, edit func(b []byte)) []byte {
	b := Append(nil, f)
	edit(b)
	if reseal {
		binary.LittleEndian.PutUint32(b[crcOffset:], Checksum(b[:crcOffset]))
	}
	return b
}

var good = Frame{Status: Ok, Pid: 4242, Timestamp: 7, Nonce: 9, Payload: 1}

// TestDecodeOrder covers PROTOCOL.md §2's consequences: when several fields are
// wrong the first check in the normative order wins.
func TestDecodeOrder(t *testing.T) {
	tests := []struct {
		name   string
		reseal bool
		edit   func(b []byte)
		want   Error
	}{
		{"magic and crc wrong", false, func(b []byte) { b[0] = 0; b[crcOffset] ^= 1 }, ErrBadMagic},
		{"second magic byte", true, func(b []byte) { b[1] = 'B' }, ErrBadMagic},
		{"version 1 with right crc", true, func(b []byte) { b[2] = 1 }, ErrBadVersion},
		{"version 1 with wrong crc", false, func(b []byte) { b[2] = 1 }, ErrBadVersion},
		{"status ff wrong crc", false, func(b []byte) { b[3] = 0xff }, ErrBadCrc},
		{"status ff right crc", true, func(b []byte) { b[3] = 0xff }, ErrBadStatus},
		{"status 4", true, func(b []byte) { b[3] = 4 }, ErrBadStatus},
		{"stall with pid 0", true, func(b []byte) { b[3] = 3; binary.LittleEndian.PutUint32(b[4:], 0) }, ErrStallOnWire},
		{"pid 1 with ts max", true, func(b []byte) {
			binary.LittleEndian.PutUint32(b[4:], 1)
			binary.LittleEndian.PutUint64(b[8:], TimestampMax)
		}, ErrBadPid},
		{"pid 0", true, func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 0) }, ErrBadPid},
		{"ts max with terminal nonce on ok", true, func(b []byte) {
			binary.LittleEndian.PutUint64(b[8:], TimestampMax)
			binary.LittleEndian.PutUint64(b[16:], NonceTerminal)
		}, ErrBadTimestamp},
		{"terminal nonce degraded", true, func(b []byte) {
			b[3] = byte(Degraded)
			binary.LittleEndian.PutUint64(b[16:], NonceTerminal)
		}, ErrBadNonce},
		{"only crc wrong", false, func(b []byte) { b[31] ^= 0x80 }, ErrBadCrc},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := frameBytes(good, tc.reseal, tc.edit)
			if f, e := Parse(b); e != tc.want || f != (Frame{}) {
				t.Errorf("Parse(%x) = %+v, %v, want zero frame, %v", b, f, e, tc.want)
			}
			if _, err := Decode(b); !errors.Is(err, tc.want) {
				t.Errorf("Decode(%x) = %v, want %v", b, err, tc.want)
			}
		})
	}
}

func TestDecodeLength(t *testing.T) {
	full := Append(nil, good)
	for _, n := range []int{0, 1, 31, 33, 64, 65535} {
		b := make([]byte, n)
		copy(b, full) // an overlong buffer starting with a valid frame is still refused
		if _, err := Decode(b); err != ErrLength {
			t.Errorf("Decode(len %d) = %v, want ErrLength", n, err)
		}
	}
	if _, err := Decode(nil); err != ErrLength {
		t.Errorf("Decode(nil) = %v, want ErrLength", err)
	}
}

func TestDecodeErrorDetails(t *testing.T) {
	b := frameBytes(good, false, func(b []byte) { b[crcOffset] ^= 0xff })
	_, err := Decode(b)
	var ce *CrcError
	if !errors.As(err, &ce) || !errors.Is(err, ErrBadCrc) {
		t.Fatalf("Decode(%x) = %v, want *CrcError", b, err)
	}
	if ce.Expected != binary.LittleEndian.Uint32(b[crcOffset:]) || ce.Actual != Checksum(b[:crcOffset]) {
		t.Errorf("CrcError = %+v, want stored %x and computed %x", ce, b[crcOffset:], Checksum(b[:crcOffset]))
	}
	if errors.Is(err, ErrBadMagic) {
		t.Errorf("errors.Is(%v, ErrBadMagic) = true", err)
	}

	b = frameBytes(good, true, func(b []byte) { b[3] = 0x7e })
	_, err = Decode(b)
	var se StatusError
	if !errors.As(err, &se) || se != 0x7e || !errors.Is(err, ErrBadStatus) {
		t.Errorf("Decode(%x) = %v, want StatusError(0x7e)", b, err)
	}
}

func TestErrorSpellings(t *testing.T) {
	want := []struct{ name, label string }{
		{"BadMagic", "bad_magic"}, {"BadVersion", "bad_version"}, {"BadCrc", "bad_crc"},
		{"BadStatus", "bad_status"}, {"StallOnWire", "stall_on_wire"}, {"BadPid", "bad_pid"},
		{"BadTimestamp", "bad_timestamp"}, {"BadNonce", "bad_nonce"},
	}
	if len(DecodeErrors) != len(want) {
		t.Fatalf("DecodeErrors has %d kinds, PROTOCOL.md §2 has %d", len(DecodeErrors), len(want))
	}
	for i, e := range DecodeErrors {
		if e.Name() != want[i].name || e.Label() != want[i].label {
			t.Errorf("DecodeErrors[%d] = %s/%s, want %s/%s", i, e.Name(), e.Label(), want[i].name, want[i].label)
		}
	}
	if Error(0).Name() != "Unknown" || Error(200).Label() != "unknown" || Error(200).Error() == "" {
		t.Errorf("out-of-range Error spellings are wrong")
	}
}

func TestStatusNames(t *testing.T) {
	for s, name := range []string{"ok", "degraded", "critical", "stall"} {
		if Status(s).String() != name {
			t.Errorf("Status(%d).String() = %q, want %q", s, Status(s).String(), name)
		}
	}
	if Status(9).String() != "invalid" {
		t.Errorf("Status(9).String() = %q", Status(9).String())
	}
	if _, ok := ParseStatus("stall"); ok {
		t.Errorf("ParseStatus(stall) accepted an observer-only status")
	}
}

func TestSpecExample(t *testing.T) {
	const want = "5641020002000000" + "0000000000000000" + "0100000000000000" + "00000000e4116baa"
	got := hex.EncodeToString(Append(nil, Frame{Status: Ok, Pid: 2, Nonce: 1}))
	if got != want {
		t.Errorf("Append(spec example) = %s, want %s", got, want)
	}
	if Checksum([]byte("123456789")) != 0xE3069283 || Checksum(make([]byte, 32)) != 0x8A9136AA || Checksum(nil) != 0 {
		t.Errorf("CRC-32C check values differ from PROTOCOL.md §1")
	}
}

var (
	sinkFrame Frame
	sinkErr   error
	sinkKind  Error
	sinkBytes []byte
)

func TestNoAllocs(t *testing.T) {
	valid := Append(nil, good)
	badCrc := frameBytes(good, false, func(b []byte) { b[0] = 'V'; b[31]++ })
	buf := make([]byte, 0, 64)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Decode valid", func() { sinkFrame, sinkErr = Decode(valid) }},
		{"Decode short", func() { sinkFrame, sinkErr = Decode(valid[:5]) }},
		{"Parse bad crc", func() { sinkFrame, sinkKind = Parse(badCrc) }},
		{"Append", func() { sinkBytes = Append(buf[:0], good) }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	wire := Append(nil, good)
	b.ReportAllocs()
	b.SetBytes(Size)
	for b.Loop() {
		sinkFrame, sinkErr = Decode(wire)
	}
}

func BenchmarkParseBadCrc(b *testing.B) {
	wire := frameBytes(good, false, func(b []byte) { b[31]++ })
	b.ReportAllocs()
	for b.Loop() {
		sinkFrame, sinkKind = Parse(wire)
	}
}

func BenchmarkAppend(b *testing.B) {
	buf := make([]byte, 0, Size)
	b.ReportAllocs()
	b.SetBytes(Size)
	for b.Loop() {
		sinkBytes = Append(buf[:0], good)
	}
}
