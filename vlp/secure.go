package vlp

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"

	"golang.org/x/crypto/chacha20poly1305"
)

// Secure UDP (PROTOCOL.md §6): the 32-byte frame is the plaintext of
// ChaCha20-Poly1305 (RFC 8439), in one of two envelopes told apart by
// length alone.
//
//	shared-key, 60 bytes: iv_random[8] | iv_counter u32 | ciphertext[32] | tag[16]
//	master-key, 64 bytes: agent_pid u32 | iv_random[8] | iv_counter u32 | ciphertext[32] | tag[16]
const (
	KeySize      = chacha20poly1305.KeySize // 32
	IVRandomSize = 8                        // the random (or derived) half of the AEAD nonce
	SaltSize     = 16                       // a sender's session salt for IVPrefix
	TagSize      = chacha20poly1305.Overhead
	SharedSize   = IVRandomSize + 4 + Size + TagSize // 60
	MasterSize   = 4 + SharedSize                    // 64
)

// Key is a 256-bit ChaCha20-Poly1305 key: a shared key, a master key or a
// derived agent key. String never shows the bytes, so a key that reaches a
// log line by mistake does not leak.
type Key [KeySize]byte

// String returns a placeholder, never the key.
func (Key) String() string { return "vlp.Key(redacted)" }

// GoString keeps %#v from printing the key too.
func (Key) GoString() string { return "vlp.Key(redacted)" }

// NewAEAD returns the ChaCha20-Poly1305 instance for k. It fails only when
// the process runs in FIPS 140-only mode, which forbids ChaCha20-Poly1305.
// Construction allocates; keep the AEAD and reuse it for every frame.
func NewAEAD(k Key) (cipher.AEAD, error) { return chacha20poly1305.New(k[:]) }

// The HKDF info labels, each followed by a NUL and a little-endian integer.
const (
	infoAgent    = "varta-agent-v1\x00"
	infoIVPrefix = "varta-iv-prefix-v1\x00"
	infoEpoch    = "varta-epoch-v1\x00"
)

// AgentKey derives the per-agent key of master-key mode:
// HKDF-SHA256(ikm = master, salt = empty, info = "varta-agent-v1\0" || u32le(pid), 32).
func AgentKey(master Key, pid uint32) Key {
	var info [len(infoAgent) + 4]byte
	copy(info[:], infoAgent)
	binary.LittleEndian.PutUint32(info[len(infoAgent):], pid)
	var k Key
	copy(k[:], derive(master[:], info[:], KeySize))
	return k
}

// IVPrefix derives the index-th iv_random of a sender session:
// HKDF-SHA256(ikm = salt, salt = empty, info = "varta-iv-prefix-v1\0" || u32le(index), 8).
// The salt argument of HKDF is empty, whatever the conformance suite's
// description says (PROTOCOL.md §6): the vector's value was computed that way.
func IVPrefix(sessionSalt [SaltSize]byte, index uint32) [IVRandomSize]byte {
	var info [len(infoIVPrefix) + 4]byte
	copy(info[:], infoIVPrefix)
	binary.LittleEndian.PutUint32(info[len(infoIVPrefix):], index)
	var p [IVRandomSize]byte
	copy(p[:], derive(sessionSalt[:], info[:], IVRandomSize))
	return p
}

// EpochKey derives an epoch key from an agent key:
// HKDF-SHA256(ikm = agentKey, salt = empty, info = "varta-epoch-v1\0" || u64le(epoch), 32).
// It is reserved by the protocol and unused on the wire today.
func EpochKey(agentKey Key, epoch uint64) Key {
	var info [len(infoEpoch) + 8]byte
	copy(info[:], infoEpoch)
	binary.LittleEndian.PutUint64(info[len(infoEpoch):], epoch)
	var k Key
	copy(k[:], derive(agentKey[:], info[:], KeySize))
	return k
}

// derive is HKDF-SHA256 with an empty salt. hkdf.Key fails only for an
// output longer than 255 hash lengths or, in FIPS 140-only mode, a secret
// under 112 bits; our lengths are at most 32 and our secrets at least 128
// bits, so an error here is a bug, not an input problem.
func derive(secret, info []byte, n int) []byte {
	out, err := hkdf.Key(sha256.New, secret, nil, string(info), n)
	if err != nil {
		panic("vlp: HKDF-SHA256 failed: " + err.Error())
	}
	return out
}

// SealShared appends the 60-byte shared-key frame carrying f to dst and
// returns the extended slice. aead must come from NewAEAD of the shared
// key; the caller guarantees that (ivRandom, counter) never repeats under
// that key (PROTOCOL.md §6). It allocates only when dst lacks room.
func SealShared(dst []byte, aead cipher.AEAD, ivRandom [IVRandomSize]byte, counter uint32, f Frame) []byte {
	dst, b := grow(dst, SharedSize)
	sealInto(b, 0, aead, ivRandom, counter, f)
	return dst
}

// SealMaster appends the 64-byte master-key frame carrying f to dst and
// returns the extended slice. aead must come from NewAEAD(AgentKey(master,
// agentPid)); a sender passes its own pid, which is also f.Pid (an
// observer refuses a frame where the two differ). The same nonce rule as
// SealShared applies per agent key.
func SealMaster(dst []byte, aead cipher.AEAD, agentPid uint32, ivRandom [IVRandomSize]byte, counter uint32, f Frame) []byte {
	dst, b := grow(dst, MasterSize)
	binary.LittleEndian.PutUint32(b, agentPid)
	sealInto(b, 4, aead, ivRandom, counter, f)
	return dst
}

// grow extends dst by n bytes and returns it with the new tail.
func grow(dst []byte, n int) (all, tail []byte) {
	l := len(dst)
	if cap(dst)-l < n {
		dst = append(dst[:l:l], make([]byte, n)...)
	}
	dst = dst[:l+n]
	return dst, dst[l:]
}

// sealInto writes the envelope at b[off:]: nonce, then the frame sealed in
// place. Whatever precedes off (agent_pid) is the associated data.
func sealInto(b []byte, off int, aead cipher.AEAD, ivRandom [IVRandomSize]byte, counter uint32, f Frame) {
	copy(b[off:], ivRandom[:])
	binary.LittleEndian.PutUint32(b[off+IVRandomSize:], counter)
	nonceEnd := off + chacha20poly1305.NonceSize
	plain := b[nonceEnd : nonceEnd+Size]
	Encode((*[Size]byte)(plain), f)
	aead.Seal(plain[:0], b[off:nonceEnd], plain, b[:off])
}
