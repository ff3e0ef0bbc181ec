package vlp

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
)

type vectorFile struct {
	CRC []struct {
		ID       string `json:"id"`
		Input    string `json:"input_hex"`
		Expected string `json:"expected_crc_hex"`
	} `json:"crc32c_vectors"`
	Frames []struct {
		ID     string `json:"id"`
		Kind   string `json:"kind"`
		Inputs *struct {
			Status    string      `json:"status"`
			Pid       uint32      `json:"pid"`
			Timestamp json.Number `json:"timestamp"`
			Nonce     json.Number `json:"nonce"`
			Payload   uint32      `json:"payload"`
		} `json:"inputs"`
		ExpectedWire  string `json:"expected_wire_hex"`
		Wire          string `json:"wire_hex"`
		ExpectedError string `json:"expected_decode_error"`
	} `json:"frame_vectors"`
	Secure []secureVector `json:"secure_frame_vectors"`
}

// secureVector holds the fields of all five secure kinds; each uses some.
type secureVector struct {
	ID           string      `json:"id"`
	Kind         string      `json:"kind"`
	Key          string      `json:"key_hex"`
	MasterKey    string      `json:"master_key_hex"`
	AgentKey     string      `json:"agent_key_hex"`
	DerivedKey   string      `json:"derived_agent_key_hex"`
	AgentPid     uint32      `json:"agent_pid"`
	AgentID      uint32      `json:"agent_id"`
	IVRandom     string      `json:"iv_random_hex"`
	IVCounter    uint32      `json:"iv_counter"`
	Plaintext    string      `json:"plaintext_hex"`
	ExpectedWire string      `json:"expected_wire_hex"`
	Info         string      `json:"info_hex"`
	ExpectedOKM  string      `json:"expected_okm_hex"`
	SessionSalt  string      `json:"session_salt_hex"`
	PrefixIndex  uint32      `json:"prefix_index"`
	ExpectedIV   string      `json:"expected_iv_prefix_hex"`
	Epoch        json.Number `json:"epoch"`
}

func loadVectors(t *testing.T) vectorFile {
	t.Helper()
	raw, err := os.ReadFile("testdata/vlp-test-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func mustU64(t *testing.T, n json.Number) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(n.String(), 10, 64) // above 2^53: never via float64
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectorsCRC(t *testing.T) {
	v := loadVectors(t)
	if len(v.CRC) != 5 {
		t.Fatalf("want 5 crc vectors, have %d", len(v.CRC))
	}
	for _, c := range v.CRC {
		t.Run(c.ID, func(t *testing.T) {
			want, err := strconv.ParseUint(c.Expected, 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			if got := Checksum(mustHex(t, c.Input)); got != uint32(want) {
				t.Errorf("Checksum(%s) = %08x, want %08x", c.Input, got, want)
			}
		})
	}
}

func TestVectorsFrames(t *testing.T) {
	v := loadVectors(t)
	var roundtrips, failures int
	for _, c := range v.Frames {
		t.Run(c.ID, func(t *testing.T) {
			switch c.Kind {
			case "encode_decode_roundtrip":
				roundtrips++
				st, ok := ParseStatus(c.Inputs.Status)
				if !ok {
					t.Fatalf("unknown status %q", c.Inputs.Status)
				}
				want := Frame{Status: st, Pid: c.Inputs.Pid, Timestamp: mustU64(t, c.Inputs.Timestamp),
					Nonce: mustU64(t, c.Inputs.Nonce), Payload: c.Inputs.Payload}
				wire := mustHex(t, c.ExpectedWire)
				if got := Append(nil, want); hex.EncodeToString(got) != c.ExpectedWire {
					t.Errorf("Append(%+v) = %x, want %s", want, got, c.ExpectedWire)
				}
				got, err := Decode(wire)
				if err != nil || got != want {
					t.Errorf("Decode(%x) = %+v, %v, want %+v", wire, got, err, want)
				}
			case "decode_error":
				failures++
				wire := mustHex(t, c.Wire)
				got, err := Decode(wire)
				var kind Error
				if !errors.As(err, &kind) || kind.Name() != c.ExpectedError {
					t.Errorf("Decode(%x) = %v, want %s", wire, err, c.ExpectedError)
				}
				if got != (Frame{}) {
					t.Errorf("Decode(%x) returned frame %+v with error", wire, got)
				}
			default:
				t.Fatalf("unknown vector kind %q", c.Kind)
			}
		})
	}
	if roundtrips != 6 || failures != 9 {
		t.Errorf("ran %d round-trip and %d error vectors, want 6 and 9", roundtrips, failures)
	}
}
