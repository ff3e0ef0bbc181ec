//go:build varta_nosecure

package poll

import "errors"

// SecureUDP reports whether this build opens secure UDP frames: not this
// one, built with -tags varta_nosecure to leave ChaCha20-Poly1305 out.
const SecureUDP = false

// secureUDP stands in for the secure side; it is always nil here.
type secureUDP struct{}

func newSecureUDP(cfg *UDPConfig) (*secureUDP, error) {
	if len(cfg.Keys) > 0 || cfg.MasterKey != nil {
		return nil, errors.New("poll: secure UDP is not in this build (built with -tags varta_nosecure)")
	}
	return nil, nil
}

// handleSecure: no key can open the frame.
func (o *observer) handleSecure(b []byte, now int64) {
	o.udp.c.Decrypt++
	o.log.limited(logUDP, now, "refused a secure UDP frame: this build has no secure UDP (varta_nosecure)")
}

func (s *secureUDP) expire(now int64)    {}
func (s *secureUDP) senders() int        { return 0 }
func (s *secureUDP) capacity() int       { return 0 }
func (s *secureUDP) derivations() uint64 { return 0 }
