package vlp

import (
	"net/netip"

	"golang.org/x/sys/unix"
)

// InetSockaddr turns an IP address and port into what socket(2), bind(2)
// and connect(2) want, with the address family. An IPv4-mapped IPv6
// address becomes IPv4; an IPv6 zone (an interface name or number) becomes
// its interface index. The agent's sender and the observer's listeners
// share it.
func InetSockaddr(ap netip.AddrPort) (unix.Sockaddr, int, error) {
	ip := ap.Addr().Unmap()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}, unix.AF_INET, nil
	}
	zone, err := zoneIndex(ip.Zone())
	if err != nil {
		return nil, 0, err
	}
	return &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16(), ZoneId: zone}, unix.AF_INET6, nil
}
