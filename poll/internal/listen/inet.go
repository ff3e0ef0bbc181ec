package listen

import (
	"errors"
	"net/netip"
	"os"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/vlp"
)

// AddrError is a listen address that could not be parsed or bound: which
// listener (What: "UDP address", "metrics address"), the address as given,
// the cause, and what to do. Its text is one line fit for stderr.
type AddrError struct {
	What string
	Addr string
	Err  error  // a *os.SyscallError, or ErrAddrSyntax
	Hint string // may be empty
}

func (e *AddrError) Error() string {
	s := e.What + " " + e.Addr + ": " + e.Err.Error()
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *AddrError) Unwrap() error { return e.Err }

// ErrAddrSyntax: an address that is not IP:PORT.
var ErrAddrSyntax = errors.New("want IP:PORT such as 127.0.0.1:9100 or [::1]:9100")

// ParseListenAddr checks an IP:PORT listen address; [::1]:9100 for IPv6,
// [fe80::1%eth0]:9100 with a zone.
func ParseListenAddr(s string) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ap, &AddrError{What: "address", Addr: s, Err: ErrAddrSyntax}
	}
	return ap, nil
}

// bindSocket parses addr, then creates a non-blocking, close-on-exec
// socket of type typ and binds it; what names the listener in errors,
// other who else may hold the port. An IPv6 wildcard also takes IPv4
// (IPV6_V6ONLY off, best effort: most systems' default anyway).
func bindSocket(what, addr, other string, typ, proto int) (int, error) {
	ap, err := ParseListenAddr(addr)
	if err != nil {
		return -1, &AddrError{What: what, Addr: addr, Err: ErrAddrSyntax}
	}
	sa, family, err := vlp.InetSockaddr(ap)
	if err != nil {
		return -1, &AddrError{What: what, Addr: addr, Err: err, Hint: "give the interface's name or number after %"}
	}
	fd, err := unix.Socket(family, typ|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return -1, &AddrError{What: what, Addr: addr, Err: os.NewSyscallError("socket", err)}
	}
	if family == unix.AF_INET6 {
		unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0)
	}
	if typ == unix.SOCK_STREAM {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return -1, &AddrError{What: what, Addr: addr, Err: os.NewSyscallError("bind", err), Hint: bindHint(err, other)}
	}
	return fd, nil
}

// ListenUDP binds a UDP socket to addr (IP:PORT; port 0 picks a free
// port). It returns the fd, which the caller owns, and the address as
// bound.
func ListenUDP(addr string) (fd int, bound string, err error) {
	fd, err = bindSocket("UDP address", addr, "observer", unix.SOCK_DGRAM, unix.IPPROTO_UDP)
	if err != nil {
		return -1, "", err
	}
	return fd, BoundAddr(fd, addr), nil
}

// ListenTCP binds and listens on a TCP socket at addr (IP:PORT; port 0
// picks a free port) for the metrics endpoint. The caller owns the fd.
func ListenTCP(addr string) (fd int, bound string, err error) {
	fd, err = bindSocket("metrics address", addr, "exporter", unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, "", err
	}
	if err := unix.Listen(fd, 64); err != nil {
		unix.Close(fd)
		return -1, "", &AddrError{What: "metrics address", Addr: addr, Err: os.NewSyscallError("listen", err)}
	}
	return fd, BoundAddr(fd, addr), nil
}

// bindHint says what to do about a failed bind(2) of an IP listener;
// other names who else may hold the port.
func bindHint(err error, other string) string {
	switch err {
	case unix.EADDRINUSE:
		return "is another " + other + " on that port? stop it or choose another port"
	case unix.EADDRNOTAVAIL:
		return "no interface has that address; give one of this host's addresses, or 0.0.0.0 or [::] for all"
	case unix.EACCES:
		return "ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023"
	}
	return ""
}

// BoundAddr reports a listener's address as bound (port 0 resolved).
func BoundAddr(fd int, asked string) string {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return asked
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return asked
}
