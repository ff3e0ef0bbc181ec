package poll

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/vlp"
)

// UDPConfig is the observer's UDP listener (SPEC.md §6). One socket takes
// both kinds of frame, told apart by length: 32 bytes plain, 60 and 64
// bytes secure. At least one kind must be enabled.
type UDPConfig struct {
	Addr string // IP:PORT, IPv4 or [IPv6]; port 0 picks a free port

	// Plaintext accepts unauthenticated 32-byte frames
	// (--i-accept-plaintext-udp). Off: they are refused and counted.
	Plaintext bool
	// Keys are the accepted shared keys, the current one first; MasterKey
	// opens master-key frames. Neither: 60- and 64-byte frames fail to
	// open. Both need a build without the varta_nosecure tag (SecureUDP).
	Keys      []vlp.Key
	MasterKey *vlp.Key

	// RecoverPlain and RecoverSecure make agents tracked from this
	// listener's plain or secure frames recovery-eligible. Off (the
	// default), a stall of a UDP agent is reported but recovery skips it
	// as unattested: its pid is only the sender's claim (OBSERVER.md §4).
	RecoverPlain  bool
	RecoverSecure bool
}

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
	cfg  UDPConfig
	fd   int
	addr string // as bound, with the real port
	rx   *Receiver
	sec  *secureUDP // nil without keys
	c    udpCounters
	pfd  int // this socket's entry in the loop's poll set; -1 before the first
}

// ListenUDP wraps socket(2) and bind(2): a non-blocking, close-on-exec UDP
// socket bound to addr (IP:PORT, IPv4 or [IPv6]; port 0 picks a free
// port). It returns the fd, which the caller owns, and the address as
// bound. An IPv6 wildcard also receives IPv4 datagrams (IPV6_V6ONLY off).
func ListenUDP(addr string) (fd int, bound string, err error) {
	ap, err := ParseListenAddr(addr)
	if err != nil {
		return -1, "", err
	}
	ip := ap.Addr()
	if ip.Zone() != "" {
		return -1, "", errors.New("UDP address " + addr + ": IPv6 zones are not supported; listen on [::] or a global address")
	}
	family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()})
	if ip.Is4() || ip.Is4In6() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.Unmap().As4()}
	}
	fd, err = unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err != nil {
		return -1, "", errors.New("UDP address " + addr + ": " + os.NewSyscallError("socket", err).Error())
	}
	if family == unix.AF_INET6 {
		// Best effort: the sysctl default is the same on most systems.
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, "", errors.New("UDP address " + addr + ": " + os.NewSyscallError("bind", err).Error() + bindHint(err, "observer"))
	}
	return fd, boundAddr(fd, addr), nil
}

// bindHint says what to do about a failed bind(2) of an IP listener;
// other names who else may hold the port.
func bindHint(err error, other string) string {
	switch err {
	case unix.EADDRINUSE:
		return " (is another " + other + " on that port? stop it or choose another port)"
	case unix.EADDRNOTAVAIL:
		return " (no interface has that address; give one of this host's addresses, or 0.0.0.0 or [::] for all)"
	case unix.EACCES:
		return " (ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023)"
	}
	return ""
}

// newUDPListener binds cfg.Addr and prepares the secure side.
func newUDPListener(cfg *UDPConfig) (*udpListener, error) {
	if !cfg.Plaintext && len(cfg.Keys) == 0 && cfg.MasterKey == nil {
		return nil, errors.New("poll: UDPConfig accepts nothing: enable Plaintext or give keys")
	}
	sec, err := newSecureUDP(cfg)
	if err != nil {
		return nil, err
	}
	fd, bound, err := ListenUDP(cfg.Addr)
	if err != nil {
		return nil, err
	}
	return &udpListener{cfg: *cfg, fd: fd, addr: bound, rx: NewReceiver(fd, recvBatch), sec: sec, pfd: -1}, nil
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

// udpPollSlots is how many poll entries the listener adds.
func udpPollSlots(u *udpListener) int {
	if u == nil {
		return 0
	}
	return 1
}

// addPollFd appends the listener's poll entry and remembers where it is.
func (u *udpListener) addPollFd(fds []unix.PollFd) []unix.PollFd {
	if u == nil {
		return fds
	}
	u.pfd = len(fds)
	return append(fds, unix.PollFd{Fd: int32(u.fd), Events: unix.POLLIN})
}

// receiveUDP is the listener's share of a loop iteration: drain what poll
// reported, in bounded batches as for the Unix socket, then expire idle
// replay-table entries (bounded too).
func (o *observer) receiveUDP(now int64) {
	u := o.udp
	if u == nil {
		return
	}
	if u.pfd >= 0 && u.pfd < len(o.pfds) && o.pfds[u.pfd].Revents != 0 {
		for b := 0; b < batchesPerTick; b++ {
			n, err := u.rx.Recv()
			if err != nil {
				o.c.IOErrors++
				o.events.IO(now, "recv udp")
				o.log.limited(logIO, now, "receiving from the UDP socket failed", str("err", err.Error()))
				break
			}
			o.c.Received += uint64(n)
			for i := 0; i < n; i++ {
				o.handleUDP(i, now)
			}
			if n < u.rx.Batch() {
				break
			}
		}
	}
	u.sec.expire(now)
}

// handleUDP sorts datagram i by length (SPEC.md §6). There are no kernel
// credentials over UDP: a plain frame's pid is the sender's word, a secure
// frame's that of a key holder. Nothing here allocates in steady state.
func (o *observer) handleUDP(i int, now int64) {
	u := o.udp
	rx := u.rx
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
		o.log.limited(logUDP, now, "refused a plain UDP frame: this listener takes only secure frames (see --i-accept-plaintext-udp)")
		return
	}
	f, e := vlp.Parse(b)
	if e != 0 {
		o.udpDecodeError(now, e)
		return
	}
	o.track(f, OriginUDP, now)
}

// udpDecodeError is a plain frame, or a secure frame's plaintext, that
// fails SPEC.md §2: counted like one from the Unix socket.
func (o *observer) udpDecodeError(now int64, e vlp.Error) {
	o.c.DecodeErrors[e]++
	o.events.Decode(now, e)
	o.log.limited(logDecode, now, "dropped a malformed frame", str("kind", e.Name()), str("transport", "udp"))
}

// recoveryEligible reports whether a stall of a pid tracked from origin
// may run the recovery command: kernel-attested pids always, UDP pids
// only from a listener the operator said to trust.
func (o *observer) recoveryEligible(origin Origin) bool {
	switch origin {
	case OriginUDS:
		return true
	case OriginUDP:
		return o.udp != nil && o.udp.cfg.RecoverPlain
	case OriginSecureUDP:
		return o.udp != nil && o.udp.cfg.RecoverSecure
	}
	return false
}

// renderUDP emits the UDP families; all of them from the first scrape
// when a listener is configured, none without one.
func (o *observer) renderUDP(e *promtext.Encoder) {
	u := o.udp
	if u == nil {
		return
	}
	c := &u.c
	counter(e, "varta_udp_plaintext_refused_total", "Plain 32-byte UDP frames refused because --i-accept-plaintext-udp is not set.", c.PlainRefused)
	counter(e, "varta_frame_decrypt_failures_total", "Secure UDP frames that no accepted key authenticates.", c.Decrypt)
	counter(e, "varta_udp_agent_pid_mismatch_total", "Master-key UDP frames whose inner pid differs from agent_pid (also counted in varta_frame_auth_failures_total).", c.AgentPid)
	counter(e, "varta_udp_replays_total", "Secure UDP frames dropped as replays by the replay table.", c.Replays)
	counter(e, "varta_sender_state_full_total", "Secure UDP frames from new senders refused because the replay table was full of live senders.", c.TableFull)
	gauge(e, "varta_udp_senders", "Secure UDP senders in the replay table now.", float64(u.sec.senders()))
	gauge(e, "varta_udp_senders_capacity", "Size of the fixed secure UDP replay table.", float64(u.sec.capacity()))
	counter(e, "varta_udp_agent_key_derivations_total", "Master-key agent keys derived (one per new agent; a steady rise means churn or forged agent_pids).", u.sec.derivations())
}
