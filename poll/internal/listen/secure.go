//go:build !varta_nosecure

package listen

import "github.com/varta-go/varta/vlp"

// SecureUDP reports whether this build opens secure UDP frames. A build
// with -tags varta_nosecure leaves ChaCha20-Poly1305 out of the binary:
// it takes plain UDP frames only, and keys are refused at start.
const SecureUDP = true

// Secure opens the secure UDP frames of vlp/PROTOCOL.md §6 with the
// accepted keys. A nil *Secure (no key configured) opens nothing.
type Secure struct{ open *vlp.Opener }

// NewSecure returns nil, nil when there is no key. agentCache is how many
// master-key agents' derived keys are kept, so a steady set of agents
// never derives again.
func NewSecure(keys []vlp.Key, master *vlp.Key, agentCache int) (*Secure, error) {
	if len(keys) == 0 && master == nil {
		return nil, nil
	}
	op, err := vlp.NewOpener(vlp.OpenerConfig{Keys: keys, MasterKey: master, AgentCache: agentCache})
	if err != nil {
		return nil, err
	}
	return &Secure{open: op}, nil
}

// Open authenticates, decrypts and decodes a 60- or 64-byte datagram
// (vlp.Opener.Open); a nil Secure answers vlp.ErrDecrypt.
func (s *Secure) Open(b []byte) (vlp.Frame, vlp.SecureHeader, vlp.Error) {
	if s == nil {
		return vlp.Frame{}, vlp.SecureHeader{}, vlp.ErrDecrypt
	}
	return s.open.Open(b)
}

// Derivations counts master-key agent keys derived.
func (s *Secure) Derivations() uint64 {
	if s == nil {
		return 0
	}
	return s.open.Derivations()
}

// Attempts counts AEAD openings tried (vlp.Opener.Attempts).
func (s *Secure) Attempts() uint64 {
	if s == nil {
		return 0
	}
	return s.open.Attempts()
}
