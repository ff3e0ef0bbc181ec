package vlp

import (
	"crypto/cipher"
	"math"

	"golang.org/x/sys/unix"
)

// ivState is a sender's source of AEAD nonces (PROTOCOL.md §6). iv_counter
// counts from 0 under one iv_random; before it would wrap, iv_random moves
// to the next IVPrefix of the session salt. The salt is drawn from
// crypto/rand once per session, so a new session (a restart, a forked
// child) never replays an earlier session's nonces, and 2^32 frames under
// one prefix cost one HKDF, not one read of the random source per frame.
type ivState struct {
	salt   [SaltSize]byte
	index  uint32 // which prefix of salt is current
	prefix [IVRandomSize]byte
	next   uint64 // the next counter; above MaxUint32 means the prefix is used up
}

// reset starts a new session: a fresh salt and its first prefix.
func (s *ivState) reset() {
	randomSalt(&s.salt)
	s.index = 0
	s.prefix = IVPrefix(s.salt, 0)
	s.next = 0
}

// take returns the nonce for the next frame and consumes it, whether or not
// the frame then reaches the wire: a nonce is never offered twice.
func (s *ivState) take() ([IVRandomSize]byte, uint32) {
	if s.next > math.MaxUint32 {
		s.rotate()
	}
	c := uint32(s.next)
	s.next++
	return s.prefix, c
}

// rotate moves to the next prefix of the salt. Distinct indexes give
// independent HKDF outputs; the comparison guards the one-in-2^64 chance
// that two in a row coincide, which would repeat every counter.
func (s *ivState) rotate() {
	old := s.prefix
	for s.prefix == old {
		s.index++
		if s.index == 0 { // 2^32 prefixes of 2^32 frames each: start a new salt
			randomSalt(&s.salt)
		}
		s.prefix = IVPrefix(s.salt, s.index)
	}
	s.next = 0
}

// sealer turns frames into secure datagrams for one Emitter.
type sealer struct {
	master    bool
	masterKey Key         // master-key mode: the key agent keys derive from
	aead      cipher.AEAD // the shared key's, or the current pid's agent key's
	iv        ivState
}

// newSharedSealer seals with one shared key (60-byte frames).
func newSharedSealer(k Key) (*sealer, error) {
	a, err := NewAEAD(k)
	if err != nil {
		return nil, err
	}
	return &sealer{aead: a}, nil
}

// newMasterSealer seals with keys derived from master (64-byte frames).
// The agent key depends on the pid, so newSession derives it.
func newMasterSealer(master Key) (*sealer, error) {
	if _, err := NewAEAD(master); err != nil { // fail at dial, not at the first beat
		return nil, err
	}
	return &sealer{master: true, masterKey: master}, nil
}

// newSession gives a new session (pid) fresh IV state and, in master-key
// mode, the agent key for pid. It allocates; it runs once per session.
func (s *sealer) newSession(pid uint32) error {
	if s.master {
		a, err := NewAEAD(AgentKey(s.masterKey, pid))
		if err != nil {
			return err
		}
		s.aead = a
	}
	s.iv.reset()
	return nil
}

// seal writes the secure datagram for f into b and returns its length.
func (s *sealer) seal(b *[MasterSize]byte, f Frame) int {
	prefix, counter := s.iv.take()
	if s.master {
		return len(SealMaster(b[:0], s.aead, f.Pid, prefix, counter, f))
	}
	return len(SealShared(b[:0], s.aead, prefix, counter, f))
}

// randomSalt fills salt from the kernel's CSPRNG with getrandom(2), which
// blocks only until the pool is first initialised after boot. It is used
// instead of crypto/rand, whose math/big dependency drags fmt and reflect
// into the static binaries. A failure here (a kernel without getrandom,
// before 3.17) must not yield a predictable salt, so it aborts.
func randomSalt(salt *[SaltSize]byte) {
	for n := 0; n < len(salt); {
		m, err := unix.Getrandom(salt[n:], 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			panic("vlp: getrandom(2) failed, no safe IV salt: " + err.Error())
		}
		n += m
	}
}
