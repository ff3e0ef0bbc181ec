//go:build varta_nosecure

package poll

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// TestNoSecureBuild: without secure UDP, keys are refused at start-up and
// a plain-only listener still works.
func TestNoSecureBuild(t *testing.T) {
	if SecureUDP {
		t.Fatal("SecureUDP is true in a varta_nosecure build")
	}
	cfg := func(u UDPConfig) Config {
		u.Addr = "127.0.0.1:0"
		return Config{SocketPath: filepath.Join(t.TempDir(), "obs.sock"), SocketMode: 0o600,
			Threshold: time.Second, ReadTimeout: 100 * time.Millisecond, TrackerCapacity: 8, UDP: &u}
	}
	if o, err := newObserver(cfg(UDPConfig{Keys: []vlp.Key{{1}}})); err == nil || !strings.Contains(err.Error(), "varta_nosecure") {
		if o != nil {
			o.close()
		}
		t.Fatalf("newObserver with a key = %v, want a varta_nosecure refusal", err)
	}
	o, err := newObserver(cfg(UDPConfig{Plaintext: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer o.close()
	o.handlePlain(vlp.Append(nil, vlp.Frame{Pid: 40000, Nonce: 1}), 1)
	o.handleSecure(make([]byte, vlp.SharedSize), 2)
	if o.c.Beats != 1 || o.udp.c.Decrypt != 1 {
		t.Errorf("beats %d, decrypt failures %d; want 1 and 1", o.c.Beats, o.udp.c.Decrypt)
	}
}
