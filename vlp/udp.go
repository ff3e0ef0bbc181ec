package vlp

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// UDPOptions chooses how DialUDP seals frames. The zero value sends plain
// 32-byte frames, which an observer accepts only when told to accept
// unauthenticated UDP (PROTOCOL.md §6).
type UDPOptions struct {
	// SharedKey seals every frame into the 60-byte shared-key envelope.
	SharedKey *Key
	// MasterKey seals every frame into the 64-byte master-key envelope,
	// under AgentKey(*MasterKey, pid) for the sender's current pid.
	MasterKey *Key
}

// DialUDP creates an emitter that sends one datagram per frame to the
// observer at addr, an IP literal with a port: "192.0.2.7:9700",
// "[2001:db8::7]:9700" or, link-local, "[fe80::7%eth0]:9700". The socket
// (socket(2) with SOCK_CLOEXEC|SOCK_NONBLOCK, then connect(2)) is owned by
// the emitter. As with Dial, an unreachable network is not an error here:
// Beat reports it and connects again until it succeeds.
//
// Nothing over UDP tells the sender that a frame arrived; a connected
// socket only learns, one datagram late, that the port refused one (then
// Beat returns ErrNoObserver). Secure frames follow the sender IV rules of
// PROTOCOL.md §6: see ivState.
func DialUDP(addr string, opts UDPOptions) (*Emitter, error) {
	sa, family, err := udpSockaddr(addr)
	if err != nil {
		return nil, err
	}
	var sec *sealer
	switch {
	case opts.SharedKey != nil && opts.MasterKey != nil:
		return nil, errors.New("vlp: DialUDP: a shared key and a master key are exclusive")
	case opts.SharedKey != nil:
		sec, err = newSharedSealer(*opts.SharedKey)
	case opts.MasterKey != nil:
		sec, err = newMasterSealer(*opts.MasterKey)
	}
	if err != nil {
		return nil, err
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_UDP)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	e := &Emitter{peer: NewPeer(fd, sa, true), udp: true, sec: sec, wait: DefaultSendWait}
	e.start = time.Now()
	if err := e.refresh(); err != nil { // the first session's IV state and key
		unix.Close(fd)
		return nil, err
	}
	e.connect()
	return e, nil
}

// udpSockaddr parses an IP-literal address with a port for socket(2).
// Host names are refused: resolving them would pull in the resolver and
// block, and an agent must name its observer unambiguously.
func udpSockaddr(addr string) (unix.Sockaddr, int, error) {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, 0, errors.New("vlp: UDP address " + strconv.Quote(addr) +
			" must be IPv4:PORT or [IPv6]:PORT with an IP literal (no host names)")
	}
	if ap.Port() == 0 {
		return nil, 0, errors.New("vlp: UDP address " + strconv.Quote(addr) + " needs a non-zero port")
	}
	sa, family, err := InetSockaddr(ap) // ::ffff:a.b.c.d is sent as IPv4
	if err != nil {
		return nil, 0, &AddrError{Addr: addr, Err: err}
	}
	return sa, family, nil
}

// zoneIndex turns an IPv6 zone (an interface name or number) into the
// interface index sockaddr_in6 wants, via SIOCGIFINDEX.
func zoneIndex(zone string) (uint32, error) {
	if zone == "" {
		return 0, nil
	}
	if n, err := strconv.ParseUint(zone, 10, 32); err == nil {
		return uint32(n), nil
	}
	ifr, err := unix.NewIfreq(zone)
	if err != nil {
		return 0, errors.New("zone " + strconv.Quote(zone) + " is not an interface name")
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr); err != nil {
		return 0, &ZoneError{Zone: zone, Err: err}
	}
	return ifr.Uint32(), nil
}

// AddrError is a UDP address that names something this host cannot
// reach, such as an IPv6 zone with no such interface.
type AddrError struct {
	Addr string
	Err  error // a *ZoneError, ...
}

func (e *AddrError) Error() string {
	return "vlp: UDP address " + strconv.Quote(e.Addr) + ": " + e.Err.Error()
}
func (e *AddrError) Unwrap() error { return e.Err }

// ZoneError is an IPv6 zone that names no interface; Err is the errno of
// the SIOCGIFINDEX lookup (ENODEV, ...).
type ZoneError struct {
	Zone string
	Err  error
}

func (e *ZoneError) Error() string {
	return "no interface " + strconv.Quote(e.Zone) + " for the zone: " + e.Err.Error()
}
func (e *ZoneError) Unwrap() error { return e.Err }
