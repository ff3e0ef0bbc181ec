package fuzz

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/varta-go/varta/vlp"
)

// The suite's key (000102...1f) is the first accepted key and the master
// key, so the vectors' sealed frames open; a second shared key exercises
// rotation.
var (
	fuzzKey  = vlp.Key{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31}
	fuzzKey2 = vlp.Key{0xfe, 0xed}
)

func fuzzOpener(t testing.TB) *vlp.Opener {
	o, err := vlp.NewOpener(vlp.OpenerConfig{Keys: []vlp.Key{fuzzKey2, fuzzKey}, MasterKey: &fuzzKey, AgentCache: 8})
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// refSeal builds a secure frame without vlp: chacha20poly1305 and
// crypto/hkdf straight from vlp/PROTOCOL.md §6.
func refSeal(t testing.TB, key vlp.Key, master bool, agentPid uint32, iv []byte, counter uint32, plain []byte) []byte {
	var b []byte
	k := key[:]
	if master {
		b = binary.LittleEndian.AppendUint32(b, agentPid)
		info := binary.LittleEndian.AppendUint32([]byte("varta-agent-v1\x00"), agentPid)
		var err error
		if k, err = hkdf.Key(sha256.New, key[:], nil, string(info), 32); err != nil {
			t.Fatal(err)
		}
	}
	aad := b
	b = append(b, iv...)
	b = binary.LittleEndian.AppendUint32(b, counter)
	aead, err := chacha20poly1305.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return aead.Seal(b, b[len(aad):], plain, aad)
}

func seedSecure(f *testing.F) {
	raw, err := os.ReadFile("../vlp/testdata/vlp-test-vectors.json")
	if err != nil {
		f.Fatal(err)
	}
	var v struct {
		Secure []struct {
			Wire string `json:"expected_wire_hex"`
		} `json:"secure_frame_vectors"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		f.Fatal(err)
	}
	for _, s := range v.Secure {
		if b, err := hex.DecodeString(s.Wire); err == nil && len(b) > 0 {
			f.Add(b)
		}
	}
	iv := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	plain := vlp.Append(nil, vlp.Frame{Pid: 77, Nonce: 1})
	f.Add(refSeal(f, fuzzKey2, false, 0, iv, 9, plain))
	f.Add(refSeal(f, fuzzKey, true, 78, iv, 9, plain)) // agent pid mismatch
	f.Add(make([]byte, 60))
	f.Add(make([]byte, 64))
	f.Add(plain)
}

// FuzzOpenSecure feeds arbitrary datagrams to an Opener. It must never
// panic; a failure comes with a zero Frame and SecureHeader; a success
// re-seals to the very same bytes (ChaCha20-Poly1305 is deterministic for
// a given key and nonce) and agrees with the reference decoder.
func FuzzOpenSecure(f *testing.F) {
	seedSecure(f)
	o := fuzzOpener(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		got, h, kind := o.Open(b)
		if kind != 0 {
			if got != (vlp.Frame{}) || h != (vlp.SecureHeader{}) {
				t.Fatalf("Open(%x) = %+v, %+v with %v, want zero values", b, got, h, kind)
			}
			if len(b) != vlp.SharedSize && len(b) != vlp.MasterSize && kind != vlp.ErrLength {
				t.Fatalf("Open(%d bytes) = %v, want ErrLength", len(b), kind)
			}
			return
		}
		var again []byte
		switch len(b) {
		case vlp.SharedSize:
			key := [...]vlp.Key{fuzzKey2, fuzzKey}[h.Key]
			again = refSeal(t, key, false, 0, h.IVRandom[:], h.Counter, vlp.Append(nil, got))
		case vlp.MasterSize:
			if h.AgentPid != got.Pid {
				t.Fatalf("Open(%x) accepted agent_pid %d for inner pid %d", b, h.AgentPid, got.Pid)
			}
			again = refSeal(t, fuzzKey, true, h.AgentPid, h.IVRandom[:], h.Counter, vlp.Append(nil, got))
		default:
			t.Fatalf("Open accepted %d bytes", len(b))
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("Open(%x) = %+v, %+v, which re-seals to %x", b, got, h, again)
		}
	})
}

// FuzzOpenSealed seals fuzzed plaintext (any fields, CRC made right) in a
// reference envelope, so the checks after authentication are explored:
// Open must report exactly what the reference decoder says about the
// plaintext, then the agent pid rule.
func FuzzOpenSealed(f *testing.F) {
	f.Add(false, uint32(0), byte(0), uint32(2), uint64(0), uint64(1), uint32(0), uint32(0))
	f.Add(true, uint32(99), byte(2), uint32(99), uint64(5), ^uint64(0), uint32(7), uint32(1))
	f.Add(true, uint32(1), byte(3), uint32(1), ^uint64(0), ^uint64(0), uint32(0), ^uint32(0))
	f.Add(true, uint32(99), byte(0), uint32(98), uint64(5), uint64(3), uint32(7), uint32(1))
	o := fuzzOpener(f)
	iv := []byte{9, 8, 7, 6, 5, 4, 3, 2}
	f.Fuzz(func(t *testing.T, master bool, agentPid uint32, status byte, pid uint32, ts, nonce uint64, payload, counter uint32) {
		plain := make([]byte, 32)
		plain[0], plain[1], plain[2], plain[3] = 'V', 'A', 2, status
		binary.LittleEndian.PutUint32(plain[4:], pid)
		binary.LittleEndian.PutUint64(plain[8:], ts)
		binary.LittleEndian.PutUint64(plain[16:], nonce)
		binary.LittleEndian.PutUint32(plain[24:], payload)
		binary.LittleEndian.PutUint32(plain[28:], refCRC(plain[:28]))
		b := refSeal(t, fuzzKey, master, agentPid, iv, counter, plain)
		got, h, kind := o.Open(b)
		want, wantErr := refDecode(plain)
		if wantErr == "" && master && pid != agentPid {
			want, wantErr = vlp.Frame{}, "AgentPidMismatch"
		}
		if kind.Name() != wantErr && !(kind == 0 && wantErr == "") {
			t.Fatalf("Open(sealed %x) = %v, reference says %q", plain, kind, wantErr)
		}
		if got != want {
			t.Fatalf("Open(sealed %x) = %+v, want %+v", plain, got, want)
		}
		if kind == 0 && (h.Counter != counter || !bytes.Equal(h.IVRandom[:], iv) || (master && h.AgentPid != agentPid)) {
			t.Fatalf("Open(sealed %x) header %+v, want iv %x counter %d", plain, h, iv, counter)
		}
	})
}
