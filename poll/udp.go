package poll

import (
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// udpCounters are the UDP listener's refusals, beyond the counters its
// frames share with the Unix socket (decode errors, truncation, tracking).
type udpCounters struct {
	PlainRefused uint64 // 32-byte frames while plaintext is not accepted
	Decrypt      uint64 // 60/64-byte frames no accepted key opens
	AgentPid     uint64 // master-key frames whose inner pid differs from agent_pid
	Replays      uint64 // secure frames the replay table has seen (or older)
	TableFull    uint64 // secure frames from new senders while the replay table was full
}

// udpListener is the UDP socket and what judges its frames; the observer
// loop owns it.
type udpListener struct {
	cfg    UDPConfig
	fd     int
	addr   string // as bound, with the real port
	rx     *listen.Receiver
	sec    *listen.Secure     // nil without keys
	replay *track.ReplayTable // nil without keys
	c      udpCounters
}

// newUDPListener binds cfg.Addr and prepares the secure side.
func newUDPListener(cfg *UDPConfig) (*udpListener, error) {
	if !cfg.Plaintext && len(cfg.Keys) == 0 && cfg.MasterKey == nil {
		return nil, errors.New("poll: UDPConfig accepts nothing: enable Plaintext or give keys")
	}
	// One cached agent key per sender the replay table can hold, so a
	// steady set of master-key agents never derives again.
	sec, err := listen.NewSecure(cfg.Keys, cfg.MasterKey, track.ReplaySenders)
	if err != nil {
		return nil, err
	}
	fd, bound, err := listen.ListenUDP(cfg.Addr)
	if err != nil {
		return nil, err
	}
	u := &udpListener{cfg: *cfg, fd: fd, addr: bound, rx: listen.NewReceiver(fd, recvBatch), sec: sec}
	if sec != nil {
		u.replay = track.NewReplayTable(track.ReplaySenders, track.ReplayIdle)
	}
	return u, nil
}

// accepts names the frames the listener takes, for the start-up log.
func (u *udpListener) accepts() string {
	s := ""
	add := func(ok bool, what string) {
		if ok {
			if s != "" {
				s += ","
			}
			s += what
		}
	}
	add(u.cfg.Plaintext, "plain")
	add(len(u.cfg.Keys) > 0, "shared_key")
	add(u.cfg.MasterKey != nil, "master_key")
	return s
}

func (u *udpListener) close() {
	if u != nil {
		unix.Close(u.fd)
	}
}

// expire ends idle replay-table entries, a bounded number per tick.
func (u *udpListener) expire(now int64) {
	if u != nil && u.replay != nil {
		u.replay.Expire(now, track.ReplayExpiryPerTick)
	}
}

// receiveUDP drains the UDP socket as receive does the Unix one.
func (o *observer) receiveUDP(now int64) { o.drain(o.udp.rx, true, now) }

// handleUDP sorts datagram i by length (vlp/PROTOCOL.md §6). There are no
// kernel credentials over UDP: a plain frame's pid is the sender's word, a
// secure frame's that of a key holder.
func (o *observer) handleUDP(i int, now int64) {
	rx := o.udp.rx
	switch n := rx.Len(i); {
	case rx.Truncated(i):
		o.c.Truncated++
	case n == vlp.Size:
		o.handlePlain(rx.Data(i), now)
	case n == vlp.SharedSize || n == vlp.MasterSize:
		o.handleSecure(rx.Data(i), now)
	default:
		o.c.Truncated++
	}
}

func (o *observer) handlePlain(b []byte, now int64) {
	u := o.udp
	if !u.cfg.Plaintext {
		u.c.PlainRefused++
		o.log.Limited(logUDP, now, "refused a plain UDP frame: this listener takes only secure frames (see --i-accept-plaintext-udp)")
		return
	}
	f, e := vlp.Parse(b)
	if e != 0 {
		o.decodeError(now, e, b, "udp")
		return
	}
	o.track(f, track.OriginUDP, now)
}

// handleSecure runs a 60- or 64-byte datagram through the opener (which
// also decodes the plaintext), the replay table and the tracker. Nothing
// here allocates once a master-key agent's key is cached.
func (o *observer) handleSecure(b []byte, now int64) {
	u := o.udp
	if u.sec == nil {
		u.c.Decrypt++
		why := "refused a secure UDP frame: no key is configured (see --key-file, --master-key-file)"
		if !listen.SecureUDP {
			why = "refused a secure UDP frame: this build has no secure UDP (varta_nosecure)"
		}
		o.log.Limited(logUDP, now, why)
		return
	}
	f, h, e := u.sec.Open(b)
	switch e {
	case 0:
	case vlp.ErrDecrypt:
		u.c.Decrypt++
		o.log.Limited(logUDP, now, "refused a secure UDP frame: no accepted key authenticates it (wrong key, or tampered)",
			num("bytes", int64(len(b))))
		return
	case vlp.ErrAgentPid:
		// Authenticated under agent_pid's key, yet it speaks for another
		// pid: a key holder claiming a process it is not.
		pid := binary.LittleEndian.Uint32(b)
		u.c.AgentPid++
		o.refuse(now, pid, sink.MismatchAuthFailure, &o.c.AuthFailures, "master-key frame's pid differs from its agent_pid")
		return
	default:
		o.decodeError(now, e, nil, "udp") // the plaintext stays inside the opener
		return
	}
	switch u.replay.Check(f, h, now) {
	case track.ReplayRepeated:
		u.c.Replays++
		o.log.Limited(logReplay, now, "dropped a replayed secure UDP frame", num("pid", int64(f.Pid)))
		return
	case track.ReplayTableFull:
		u.c.TableFull++
		o.log.Limited(logReplay, now, "secure UDP replay table full of live senders, new sender refused",
			num("pid", int64(f.Pid)), num("capacity", int64(u.replay.Cap())))
		return
	}
	o.track(f, track.OriginSecureUDP, now)
}

// recoveryEligible reports whether a stall of a pid tracked from origin
// may run the recovery command: kernel-attested pids always, UDP pids
// only from a listener the operator said to trust.
func (o *observer) recoveryEligible(origin track.Origin) bool {
	switch origin {
	case track.OriginUDS:
		return true
	case track.OriginUDP:
		return o.udp != nil && o.udp.cfg.RecoverPlain
	case track.OriginSecureUDP:
		return o.udp != nil && o.udp.cfg.RecoverSecure
	}
	return false
}
