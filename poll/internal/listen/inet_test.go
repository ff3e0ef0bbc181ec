package listen

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestListenTCPErrors: a failed bind of the metrics listener says what to
// do for the cause at hand, not always "another exporter".
func TestListenTCPErrors(t *testing.T) {
	fd, _, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	taken := BoundAddr(fd, "")
	for _, tc := range []struct{ name, addr, want, not string }{
		{"port taken", taken, "another exporter on that port", ""},
		{"not ours", "192.0.2.1:0", "no interface has that address", "another exporter"},
		{"zone", "[fe80::1%no-such-if]:0", "no-such-if", "another exporter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fd, _, err := ListenTCP(tc.addr)
			if err == nil {
				unix.Close(fd)
				t.Fatalf("ListenTCP(%q) succeeded", tc.addr)
			}
			if !strings.Contains(err.Error(), tc.want) || (tc.not != "" && strings.Contains(err.Error(), tc.not)) {
				t.Errorf("ListenTCP(%q) = %v, want it to mention %q and not %q", tc.addr, err, tc.want, tc.not)
			}
		})
	}
}

// TestListenErrorsKeepTheirCause: an operator-facing address error is an
// *AddrError that still unwraps to the syscall's errno.
func TestListenErrorsKeepTheirCause(t *testing.T) {
	fd, _, err := ListenTCP("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	_, _, err = ListenUDP("256.0.0.1:1")
	if !errors.Is(err, ErrAddrSyntax) {
		t.Errorf("ListenUDP of a bad address = %v, want ErrAddrSyntax in its chain", err)
	}
	_, _, err = ListenTCP(BoundAddr(fd, ""))
	var ae *AddrError
	if !errors.As(err, &ae) || ae.What != "metrics address" || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("ListenTCP of a taken port = %v, want an *AddrError wrapping EADDRINUSE", err)
	}
}
