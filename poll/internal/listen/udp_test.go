package listen

import (
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/testutil"
)

func TestListenUDP(t *testing.T) {
	for _, tc := range []struct{ name, addr, prefix string }{
		{"ipv4", "127.0.0.1:0", "127.0.0.1:"},
		{"ipv6", "[::1]:0", "[::1]:"},
		{"ipv4-mapped", "[::ffff:127.0.0.1]:0", "127.0.0.1:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.prefix, "[") && !testutil.HasIPv6() {
				t.Skip("no IPv6 loopback here")
			}
			fd, bound, err := ListenUDP(tc.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fd)
			if !strings.HasPrefix(bound, tc.prefix) || strings.HasSuffix(bound, ":0") {
				t.Errorf("ListenUDP(%q) bound %q, want %s and a real port", tc.addr, bound, tc.prefix)
			}
			fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
			if err != nil || fl&unix.O_NONBLOCK == 0 {
				t.Errorf("socket is blocking (flags %#x, %v)", fl, err)
			}
			fdfl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
			if err != nil || fdfl&unix.FD_CLOEXEC == 0 {
				t.Errorf("socket lacks FD_CLOEXEC (%#x, %v)", fdfl, err)
			}
			typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
			if err != nil || typ != unix.SOCK_DGRAM {
				t.Errorf("SO_TYPE = %d (%v), want SOCK_DGRAM", typ, err)
			}
		})
	}
}

func TestListenUDPErrors(t *testing.T) {
	fd, bound, err := ListenUDP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	for _, tc := range []struct{ name, addr, want string }{
		{"host name", "localhost:9700", "IP:PORT"},
		{"no port", "127.0.0.1", "IP:PORT"},
		{"zone names no interface", "[fe80::1%no-such-if]:9700", "no-such-if"},
		{"zone is passed to bind", "[fe80::1%lo]:9700", "no interface has that address"},
		{"port taken", bound, "another observer on that port"},
		{"not ours", "192.0.2.1:0", "no interface has that address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, _, err := ListenUDP(tc.addr)
			if err == nil {
				unix.Close(fd)
				t.Fatalf("ListenUDP(%q) succeeded", tc.addr)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ListenUDP(%q) = %v, want it to mention %q", tc.addr, err, tc.want)
			}
		})
	}
}
