package vlp

import (
	"encoding/binary"
	"encoding/hex"
	"testing"
)

func mustKey(t *testing.T, s string) Key {
	t.Helper()
	b := mustHex(t, s)
	if len(b) != KeySize {
		t.Fatalf("key %s has %d bytes", s, len(b))
	}
	return Key(b)
}

// TestVectorsSecure runs the five secure_frame_vectors: both seals byte
// for byte (and their opening), and the three HKDF derivations, including
// the info strings the suite spells out.
func TestVectorsSecure(t *testing.T) {
	v := loadVectors(t)
	if len(v.Secure) != 5 {
		t.Fatalf("want 5 secure vectors, have %d", len(v.Secure))
	}
	if n := len(v.CRC) + len(v.Frames) + len(v.Secure); n != 25 {
		t.Errorf("the suite has %d vectors, want 25", n)
	}
	seen := map[string]bool{}
	for _, c := range v.Secure {
		t.Run(c.ID, func(t *testing.T) {
			seen[c.Kind] = true
			switch c.Kind {
			case "shared_key_seal":
				key := mustKey(t, c.Key)
				f := plaintextFrame(t, c.Plaintext)
				a, err := NewAEAD(key)
				if err != nil {
					t.Fatal(err)
				}
				got := SealShared(nil, a, [8]byte(mustHex(t, c.IVRandom)), c.IVCounter, f)
				if hex.EncodeToString(got) != c.ExpectedWire {
					t.Fatalf("SealShared = %x, want %s", got, c.ExpectedWire)
				}
				o, _ := NewOpener(OpenerConfig{Keys: []Key{key}})
				back, h, e := o.Open(got)
				if e != 0 || back != f || h.Counter != c.IVCounter || hex.EncodeToString(h.IVRandom[:]) != c.IVRandom || h.Key != 0 {
					t.Errorf("Open(%x) = %+v, %+v, %v, want %+v", got, back, h, e, f)
				}
			case "master_key_seal":
				master := mustKey(t, c.MasterKey)
				agent := AgentKey(master, c.AgentPid)
				if hex.EncodeToString(agent[:]) != c.DerivedKey {
					t.Fatalf("AgentKey(master, %d) = %x, want %s", c.AgentPid, agent[:], c.DerivedKey)
				}
				f := plaintextFrame(t, c.Plaintext)
				a, err := NewAEAD(agent)
				if err != nil {
					t.Fatal(err)
				}
				got := SealMaster(nil, a, c.AgentPid, [8]byte(mustHex(t, c.IVRandom)), c.IVCounter, f)
				if hex.EncodeToString(got) != c.ExpectedWire {
					t.Fatalf("SealMaster = %x, want %s", got, c.ExpectedWire)
				}
				o, _ := NewOpener(OpenerConfig{MasterKey: &master})
				back, h, e := o.Open(got)
				if e != 0 || back != f || h.AgentPid != c.AgentPid || h.Key != -1 {
					t.Errorf("Open(%x) = %+v, %+v, %v, want %+v", got, back, h, e, f)
				}
			case "kdf_agent_key":
				checkInfo(t, infoAgent, binary.LittleEndian.AppendUint32(nil, c.AgentID), c.Info)
				got := AgentKey(mustKey(t, c.MasterKey), c.AgentID)
				if hex.EncodeToString(got[:]) != c.ExpectedOKM {
					t.Errorf("AgentKey(%d) = %x, want %s", c.AgentID, got[:], c.ExpectedOKM)
				}
			case "kdf_iv_prefix":
				checkInfo(t, infoIVPrefix, binary.LittleEndian.AppendUint32(nil, c.PrefixIndex), c.Info)
				salt := mustHex(t, c.SessionSalt)
				got := IVPrefix([SaltSize]byte(salt), c.PrefixIndex)
				if hex.EncodeToString(got[:]) != c.ExpectedIV {
					t.Errorf("IVPrefix(%x, %d) = %x, want %s", salt, c.PrefixIndex, got[:], c.ExpectedIV)
				}
			case "kdf_epoch_key":
				epoch := mustU64(t, c.Epoch)
				checkInfo(t, infoEpoch, binary.LittleEndian.AppendUint64(nil, epoch), c.Info)
				got := EpochKey(mustKey(t, c.AgentKey), epoch)
				if hex.EncodeToString(got[:]) != c.ExpectedOKM {
					t.Errorf("EpochKey(%d) = %x, want %s", epoch, got[:], c.ExpectedOKM)
				}
			default:
				t.Fatalf("unknown secure vector kind %q", c.Kind)
			}
			t.Logf("%s (%s): pass", c.ID, c.Kind)
		})
	}
	if len(seen) != 5 {
		t.Errorf("secure vector kinds covered: %v, want all five", seen)
	}
}

// plaintextFrame decodes a vector's plaintext and checks that encoding the
// frame gives the same bytes, so the seals above start from that exact text.
func plaintextFrame(t *testing.T, s string) Frame {
	t.Helper()
	b := mustHex(t, s)
	f, err := Decode(b)
	if err != nil {
		t.Fatalf("plaintext %s: %v", s, err)
	}
	if hex.EncodeToString(Append(nil, f)) != s {
		t.Fatalf("plaintext %s does not re-encode to itself", s)
	}
	return f
}

func checkInfo(t *testing.T, label string, n []byte, want string) {
	t.Helper()
	if got := hex.EncodeToString(append([]byte(label), n...)); got != want {
		t.Errorf("info = %s, want %s", got, want)
	}
}
