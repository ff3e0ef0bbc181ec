package vlp

import (
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"testing"
)

var (
	keyA = Key{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32}
	keyB = Key{0xb0, 0xb1, 0xb2, 0xb3}
	keyC = Key{0xc0, 0xc1}
	iv1  = [IVRandomSize]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}
)

func aeadT(t testing.TB, k Key) cipher.AEAD {
	t.Helper()
	a, err := NewAEAD(k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func openerT(t testing.TB, c OpenerConfig) *Opener {
	t.Helper()
	o, err := NewOpener(c)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// sealRaw seals arbitrary plaintext bytes, so tests can put frames the
// encoder would never produce (bad CRC, status 3) inside a valid envelope.
func sealRaw(t testing.TB, k Key, agentPid uint32, master bool, plain []byte) []byte {
	t.Helper()
	var b []byte
	if master {
		b = binary.LittleEndian.AppendUint32(b, agentPid)
		k = AgentKey(k, agentPid)
	}
	aad := b
	nonce := append(iv1[:], 7, 0, 0, 0)
	b = append(b, nonce...)
	return aeadT(t, k).Seal(b, nonce, plain, aad)
}

// master seals f as agent pid under master key keyA, iv1, counter 7.
func master(pid uint32, f Frame) []byte {
	a, err := NewAEAD(AgentKey(keyA, pid))
	if err != nil {
		panic(err)
	}
	return SealMaster(nil, a, pid, iv1, 7, f)
}

func TestOpenErrors(t *testing.T) {
	f := Frame{Status: Degraded, Pid: 4242, Timestamp: 9, Nonce: 3, Payload: 5}
	shared := SealShared(nil, aeadT(t, keyA), iv1, 7, f)
	mk := master(4242, f)
	flip := func(b []byte, i int) []byte {
		c := append([]byte(nil), b...)
		c[i] ^= 1
		return c
	}
	badCrc := Append(nil, f)
	badCrc[31]++
	stall := frameBytes(f, true, func(b []byte) { b[3] = byte(Stall) })
	both := OpenerConfig{Keys: []Key{keyA}, MasterKey: &keyA}
	tests := []struct {
		name string
		c    OpenerConfig
		b    []byte
		want Error
	}{
		{"shared ok", both, shared, 0},
		{"master ok", both, mk, 0},
		{"plain 32-byte frame", both, Append(nil, f), ErrLength},
		{"empty", both, nil, ErrLength},
		{"59 bytes", both, shared[:59], ErrLength},
		{"61 bytes", both, append(append([]byte(nil), shared...), 0), ErrLength},
		{"63 bytes", both, mk[:63], ErrLength},
		{"65 bytes", both, append(append([]byte(nil), mk...), 0), ErrLength},
		{"shared tag bit", both, flip(shared, 59), ErrDecrypt},
		{"shared ciphertext bit", both, flip(shared, 20), ErrDecrypt},
		{"shared iv_random bit", both, flip(shared, 0), ErrDecrypt},
		{"shared iv_counter bit", both, flip(shared, 8), ErrDecrypt},
		{"shared wrong key", OpenerConfig{Keys: []Key{keyB, keyC}}, shared, ErrDecrypt},
		{"master tag bit", both, flip(mk, 63), ErrDecrypt},
		{"master agent_pid bit (AAD)", both, flip(mk, 0), ErrDecrypt},
		{"master iv bit", both, flip(mk, 4), ErrDecrypt},
		{"master wrong key", OpenerConfig{MasterKey: &keyB}, mk, ErrDecrypt},
		{"shared frame, master-only opener", OpenerConfig{MasterKey: &keyA}, shared, ErrDecrypt},
		{"master frame, shared-only opener", OpenerConfig{Keys: []Key{keyA}}, mk, ErrDecrypt},
		{"master key used as shared key", OpenerConfig{Keys: []Key{keyA}}, SealShared(nil, aeadT(t, AgentKey(keyA, 4242)), iv1, 7, f), ErrDecrypt},
		{"inner pid differs from agent_pid", both, SealMaster(nil, aeadT(t, AgentKey(keyA, 4243)), 4243, iv1, 7, f), ErrAgentPid},
		{"shared inner bad crc", both, sealRaw(t, keyA, 0, false, badCrc), ErrBadCrc},
		{"master inner bad crc", both, sealRaw(t, keyA, 4242, true, badCrc), ErrBadCrc},
		{"shared inner stall", both, sealRaw(t, keyA, 0, false, stall), ErrStallOnWire},
		{"master inner pid 1 and agent_pid 1", both, master(1, Frame{Pid: 1, Nonce: 1}), ErrBadPid},
		{"master inner bad magic", both, sealRaw(t, keyA, 4242, true, make([]byte, 32)), ErrBadMagic},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := openerT(t, tc.c)
			got, h, e := o.Open(tc.b)
			if e != tc.want {
				t.Fatalf("Open(%x) = %v, want %v", tc.b, e, tc.want)
			}
			if e != 0 && (got != Frame{} || h != SecureHeader{}) {
				t.Errorf("Open(%x) failed with %v but returned %+v, %+v", tc.b, e, got, h)
			}
			if e == 0 && (got != f || h.IVRandom != iv1 || h.Counter != 7) {
				t.Errorf("Open(%x) = %+v, %+v, want %+v under iv %x counter 7", tc.b, got, h, f, iv1)
			}
		})
	}
}

// TestOpenRotation: every accepted key is tried on every frame, so agents
// still on the old key and agents already on the new one both get in.
func TestOpenRotation(t *testing.T) {
	o := openerT(t, OpenerConfig{Keys: []Key{keyB, keyA}})
	f := Frame{Pid: 77, Nonce: 1}
	for _, tc := range []struct {
		key  Key
		want int
	}{{keyB, 0}, {keyA, 1}} {
		got, h, e := o.Open(SealShared(nil, aeadT(t, tc.key), iv1, 0, f))
		if e != 0 || got != f || h.Key != tc.want || h.AgentPid != 0 {
			t.Errorf("Open(frame under key %d) = %+v, %+v, %v", tc.want, got, h, e)
		}
	}
	if _, _, e := o.Open(SealShared(nil, aeadT(t, keyC), iv1, 0, f)); e != ErrDecrypt {
		t.Errorf("Open(frame under a retired key) = %v, want ErrDecrypt", e)
	}
}

func TestOpenerAgentCache(t *testing.T) {
	o := openerT(t, OpenerConfig{MasterKey: &keyA, AgentCache: 64})
	frames := map[uint32][]byte{}
	for pid := uint32(100); pid < 164; pid++ {
		frames[pid] = master(pid, Frame{Pid: pid, Nonce: 1})
	}
	for round := 0; round < 3; round++ {
		for pid, b := range frames {
			if f, h, e := o.Open(b); e != 0 || f.Pid != pid || h.AgentPid != pid {
				t.Fatalf("Open(pid %d) = %+v, %+v, %v", pid, f, h, e)
			}
		}
	}
	// 64 pids in 16 sets of 4 may collide in a set; most must stay cached.
	if d := o.Derivations(); d < 64 || d > 64+3*16 {
		t.Errorf("Derivations() = %d after 3 rounds of 64 agents, want about 64", d)
	}

	// Frames nobody could have sealed cost a derivation each but are never
	// cached, so they cannot evict real agents.
	o = openerT(t, OpenerConfig{MasterKey: &keyA, AgentCache: 4}) // one set
	for pid := uint32(2); pid < 6; pid++ {
		o.Open(master(pid, Frame{Pid: pid, Nonce: 1}))
	}
	forged := master(999, Frame{Pid: 999, Nonce: 1})
	forged[40] ^= 1
	for i := 0; i < 10; i++ {
		if _, _, e := o.Open(forged); e != ErrDecrypt {
			t.Fatalf("Open(forged) = %v", e)
		}
	}
	before := o.Derivations()
	for pid := uint32(2); pid < 6; pid++ {
		o.Open(master(pid, Frame{Pid: pid, Nonce: 2}))
	}
	if d := o.Derivations() - before; d != 0 {
		t.Errorf("forged frames evicted real agents: %d derivations after them, want 0", d)
	}
	// A fifth real agent evicts the least recently used one (pid 2).
	o.Open(master(6, Frame{Pid: 6, Nonce: 1}))
	before = o.Derivations()
	o.Open(master(5, Frame{Pid: 5, Nonce: 3}))
	if o.Derivations() != before {
		t.Errorf("pid 5, recently used, was evicted")
	}
	o.Open(master(2, Frame{Pid: 2, Nonce: 3}))
	if o.Derivations() != before+1 {
		t.Errorf("pid 2, least recently used, was not the one evicted")
	}
}

func TestNewOpenerRefuses(t *testing.T) {
	for _, c := range []OpenerConfig{
		{},
		{Keys: []Key{keyA}, MasterKey: &keyA, AgentCache: -1},
		{MasterKey: &keyA, AgentCache: MaxAgentCache + 1},
	} {
		if _, err := NewOpener(c); err == nil {
			t.Errorf("NewOpener(%d keys, master %v, cache %d) succeeded", len(c.Keys), c.MasterKey != nil, c.AgentCache)
		}
	}
}

func TestSealAppends(t *testing.T) {
	f := Frame{Pid: 9, Nonce: 1}
	prefix := []byte("hdr")
	b := SealShared(prefix, aeadT(t, keyA), iv1, 1, f)
	if len(b) != 3+SharedSize || string(b[:3]) != "hdr" {
		t.Fatalf("SealShared(%q, ...) = %x", prefix, b)
	}
	b = SealMaster(b, aeadT(t, AgentKey(keyA, 9)), 9, iv1, 2, f)
	if len(b) != 3+SharedSize+MasterSize {
		t.Fatalf("SealMaster appended %d bytes", len(b)-3-SharedSize)
	}
	o := openerT(t, OpenerConfig{Keys: []Key{keyA}, MasterKey: &keyA})
	if got, _, e := o.Open(b[3 : 3+SharedSize]); e != 0 || got != f {
		t.Errorf("Open(appended shared) = %+v, %v", got, e)
	}
	if got, h, e := o.Open(b[3+SharedSize:]); e != 0 || got != f || h.Counter != 2 {
		t.Errorf("Open(appended master) = %+v, %+v, %v", got, h, e)
	}
}

func TestKeyRedacted(t *testing.T) {
	s := fmt.Sprintf("%v %s %+v %#v %x", keyA, keyA, keyA, keyA, keyA)
	if strings.Contains(s, "0102") || strings.Contains(s, "[1 2 3") {
		t.Errorf("formatting a Key shows its bytes: %s", s)
	}
}

func TestIVState(t *testing.T) {
	var s ivState
	s.reset()
	for want := uint32(0); want < 3; want++ {
		if p, c := s.take(); c != want || p != IVPrefix(s.salt, 0) {
			t.Fatalf("take() = %x, %d, want prefix 0 and counter %d", p, c, want)
		}
	}
	// The last counter of a prefix, then the next prefix from counter 0.
	s.next = math.MaxUint32
	first := s.prefix
	if p, c := s.take(); p != first || c != math.MaxUint32 {
		t.Fatalf("take() = %x, %d, want the old prefix at MaxUint32", p, c)
	}
	if p, c := s.take(); p == first || p != IVPrefix(s.salt, 1) || c != 0 || s.index != 1 {
		t.Fatalf("take() after the wrap = %x, %d (index %d), want IVPrefix(salt, 1) and counter 0", p, c, s.index)
	}
	// A new session draws a new salt: no nonce of the old one comes back.
	salt := s.salt
	s.reset()
	if s.salt == salt || s.next != 0 || s.index != 0 {
		t.Errorf("reset kept the salt or the counter")
	}
	// The prefix index wrapping draws a fresh salt too.
	s.index, s.next = math.MaxUint32, math.MaxUint32+1
	salt = s.salt
	s.take()
	if s.salt == salt || s.index != 0 {
		t.Errorf("prefix index wrap kept the salt (index %d)", s.index)
	}
}

var sinkHeader SecureHeader

func TestSecureNoAllocs(t *testing.T) {
	f := Frame{Status: Ok, Pid: 4242, Timestamp: 1, Nonce: 2}
	shared := SealShared(nil, aeadT(t, keyA), iv1, 1, f)
	rotated := SealShared(nil, aeadT(t, keyC), iv1, 1, f)
	mk := master(4242, f)
	forged := append([]byte(nil), shared...)
	forged[59] ^= 1
	mismatch := SealMaster(nil, aeadT(t, AgentKey(keyA, 4243)), 4243, iv1, 7, f)
	o := openerT(t, OpenerConfig{Keys: []Key{keyA, keyB, keyC}, MasterKey: &keyA})
	a := aeadT(t, keyA)
	agent := aeadT(t, AgentKey(keyA, 4242))
	buf := make([]byte, 0, MasterSize)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Open shared", func() { sinkFrame, sinkHeader, sinkKind = o.Open(shared) }},
		{"Open shared, third key", func() { sinkFrame, sinkHeader, sinkKind = o.Open(rotated) }},
		{"Open master (cached)", func() { sinkFrame, sinkHeader, sinkKind = o.Open(mk) }},
		{"Open forged", func() { sinkFrame, sinkHeader, sinkKind = o.Open(forged) }},
		{"Open agent pid mismatch (cached)", func() { sinkFrame, sinkHeader, sinkKind = o.Open(mismatch) }},
		{"Open wrong length", func() { sinkFrame, sinkHeader, sinkKind = o.Open(shared[:40]) }},
		{"SealShared", func() { sinkBytes = SealShared(buf[:0], a, iv1, 3, f) }},
		{"SealMaster", func() { sinkBytes = SealMaster(buf[:0], agent, 4242, iv1, 3, f) }},
	}
	o.Open(mk) // warm up: derive and cache pid 4242
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
	if sinkKind != 0 && sinkKind != ErrLength {
		t.Errorf("last case: %v", sinkKind)
	}
}

func BenchmarkOpenShared(b *testing.B) {
	o := openerT(b, OpenerConfig{Keys: []Key{keyA}})
	wire := SealShared(nil, aeadT(b, keyA), iv1, 1, Frame{Pid: 4242, Nonce: 1})
	benchOpen(b, o, wire)
}

// BenchmarkOpenSharedThirdKey is the rotation cost: two failed tag checks first.
func BenchmarkOpenSharedThirdKey(b *testing.B) {
	o := openerT(b, OpenerConfig{Keys: []Key{keyA, keyB, keyC}})
	wire := SealShared(nil, aeadT(b, keyC), iv1, 1, Frame{Pid: 4242, Nonce: 1})
	benchOpen(b, o, wire)
}

func BenchmarkOpenMaster(b *testing.B) {
	o := openerT(b, OpenerConfig{MasterKey: &keyA})
	benchOpen(b, o, master(4242, Frame{Pid: 4242, Nonce: 1}))
}

// BenchmarkOpenMasterUncached is the cost of a frame whose agent key is
// not cached (a new agent, or a forged agent_pid): one HKDF and one AEAD.
func BenchmarkOpenMasterUncached(b *testing.B) {
	o := openerT(b, OpenerConfig{MasterKey: &keyA})
	wire := master(4242, Frame{Pid: 4242, Nonce: 1})
	wire[40] ^= 1 // forged: never cached
	b.ReportAllocs()
	for b.Loop() {
		sinkFrame, sinkHeader, sinkKind = o.Open(wire)
	}
}

func BenchmarkOpenForged(b *testing.B) {
	o := openerT(b, OpenerConfig{Keys: []Key{keyA}})
	wire := SealShared(nil, aeadT(b, keyA), iv1, 1, Frame{Pid: 4242, Nonce: 1})
	wire[59] ^= 1
	b.ReportAllocs()
	for b.Loop() {
		sinkFrame, sinkHeader, sinkKind = o.Open(wire)
	}
}

func benchOpen(b *testing.B, o *Opener, wire []byte) {
	if _, _, e := o.Open(wire); e != 0 {
		b.Fatal(e)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		sinkFrame, sinkHeader, sinkKind = o.Open(wire)
	}
}

func BenchmarkSealShared(b *testing.B) {
	a := aeadT(b, keyA)
	buf := make([]byte, 0, SharedSize)
	f := Frame{Pid: 4242, Nonce: 1}
	b.ReportAllocs()
	b.SetBytes(SharedSize)
	for b.Loop() {
		sinkBytes = SealShared(buf[:0], a, iv1, 1, f)
	}
}
