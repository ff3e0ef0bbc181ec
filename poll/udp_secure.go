//go:build !varta_nosecure

package poll

import (
	"encoding/binary"

	"github.com/varta-go/varta/vlp"
)

// SecureUDP reports whether this build opens secure UDP frames. A build
// with -tags varta_nosecure leaves ChaCha20-Poly1305 out of the binary:
// it takes plain UDP frames only, and a UDPConfig with keys is refused.
const SecureUDP = true

// secureUDP is the secure side of a UDP listener: the Opener holding the
// accepted keys, and the replay table of SPEC.md §6.
type secureUDP struct {
	open   *vlp.Opener
	replay *ReplayTable
}

// newSecureUDP returns nil when cfg has no key.
func newSecureUDP(cfg *UDPConfig) (*secureUDP, error) {
	if len(cfg.Keys) == 0 && cfg.MasterKey == nil {
		return nil, nil
	}
	// One cached agent key per sender the replay table can hold, so a
	// steady set of master-key agents never derives again.
	op, err := vlp.NewOpener(vlp.OpenerConfig{Keys: cfg.Keys, MasterKey: cfg.MasterKey, AgentCache: ReplaySenders})
	if err != nil {
		return nil, err
	}
	return &secureUDP{open: op, replay: NewReplayTable(ReplaySenders, ReplayIdle)}, nil
}

// handleSecure runs a 60- or 64-byte datagram through Open (which also
// decodes the plaintext), the replay table and the tracker. Nothing here
// allocates once a master-key agent's key is cached.
func (o *observer) handleSecure(b []byte, now int64) {
	u := o.udp
	if u.sec == nil {
		u.c.Decrypt++
		o.log.limited(logUDP, now, "refused a secure UDP frame: no key is configured (see --key-file, --master-key-file)")
		return
	}
	f, h, e := u.sec.open.Open(b)
	switch e {
	case 0:
	case vlp.ErrDecrypt:
		u.c.Decrypt++
		o.log.limited(logUDP, now, "refused a secure UDP frame: no accepted key authenticates it (wrong key, or tampered)",
			num("bytes", int64(len(b))))
		return
	case vlp.ErrAgentPid:
		// Authenticated under agent_pid's key, yet it speaks for another
		// pid: a key holder claiming a process it is not.
		pid := binary.LittleEndian.Uint32(b)
		u.c.AgentPid++
		o.refuse(now, pid, MismatchAuthFailure, &o.c.AuthFailures, "master-key frame's pid differs from its agent_pid")
		return
	default:
		o.udpDecodeError(now, e)
		return
	}
	switch u.sec.replay.Check(f, h, now) {
	case ReplayRepeated:
		u.c.Replays++
		o.log.limited(logReplay, now, "dropped a replayed secure UDP frame", num("pid", int64(f.Pid)))
		return
	case ReplayTableFull:
		u.c.TableFull++
		o.log.limited(logReplay, now, "secure UDP replay table full of live senders, new sender refused",
			num("pid", int64(f.Pid)), num("capacity", int64(u.sec.replay.Cap())))
		return
	}
	o.track(f, OriginSecureUDP, now)
}

func (s *secureUDP) expire(now int64) {
	if s != nil {
		s.replay.Expire(now, replayExpiryPerTick)
	}
}

func (s *secureUDP) senders() int {
	if s == nil {
		return 0
	}
	return s.replay.Len()
}

func (s *secureUDP) capacity() int {
	if s == nil {
		return 0
	}
	return s.replay.Cap()
}

func (s *secureUDP) derivations() uint64 {
	if s == nil {
		return 0
	}
	return s.open.Derivations()
}
