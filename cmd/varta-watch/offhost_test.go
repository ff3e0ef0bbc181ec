package main

import (
	"strings"
	"testing"
	"time"
)

// TestPlainUDPRecoveryOffHost: recovery for plain UDP frames on an address
// other hosts can reach is refused unless the operator accepts that risk
// by name; then, and for any listener reachable off the host, a warning
// says so at start. On loopback no flag is needed.
func TestPlainUDPRecoveryOffHost(t *testing.T) {
	base := []string{"--threshold-ms", "1000", "--i-accept-plaintext-udp", "--udp-recovery", "--recovery-exec", "/bin/true"}
	w := newWatcher(t, t.TempDir())
	w.launch(w.baseArgs(append(base, "--udp-addr", "0.0.0.0:0")...))
	if code := w.wait(10 * time.Second); code != 2 || !strings.Contains(w.logText(), "--i-accept-recovery-from-unauthenticated-network") {
		t.Fatalf("plain UDP recovery on 0.0.0.0: exit %d, want 2 naming the acceptance flag:\n%s", code, w.logText())
	}
	ok := startWatch(t, append(base, "--udp-addr", "0.0.0.0:0", "--i-accept-recovery-from-unauthenticated-network")...)
	if ok.waitLog(`msg="the UDP listener is reachable from other hosts`, 5*time.Second) == "" {
		t.Errorf("no warning for a UDP listener reachable off the host:\n%s", ok.logText())
	}
	lo := startWatch(t, append(base, "--udp-addr", "127.0.0.1:0")...)
	if strings.Contains(lo.logText(), "reachable from other hosts") {
		t.Errorf("a loopback listener was reported reachable from other hosts:\n%s", lo.logText())
	}
}
