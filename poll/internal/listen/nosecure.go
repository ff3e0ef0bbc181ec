//go:build varta_nosecure

package listen

import (
	"errors"

	"github.com/varta-go/varta/vlp"
)

// SecureUDP reports whether this build opens secure UDP frames: not this
// one, built with -tags varta_nosecure to leave ChaCha20-Poly1305 out.
const SecureUDP = false

// ErrNoSecureBuild refuses keys in a build without secure UDP.
var ErrNoSecureBuild = errors.New("secure UDP is not in this build (built with -tags varta_nosecure); rebuild without the tag or use plain UDP")

// Secure stands in for the secure side; it is always nil here.
type Secure struct{}

// NewSecure refuses any key.
func NewSecure(keys []vlp.Key, master *vlp.Key, agentCache int) (*Secure, error) {
	if len(keys) > 0 || master != nil {
		return nil, ErrNoSecureBuild
	}
	return nil, nil
}

// Open opens nothing.
func (s *Secure) Open(b []byte) (vlp.Frame, vlp.SecureHeader, vlp.Error) {
	return vlp.Frame{}, vlp.SecureHeader{}, vlp.ErrDecrypt
}

// Derivations is always 0.
func (s *Secure) Derivations() uint64 { return 0 }

// Attempts is 0: this build opens no secure frame.
func (s *Secure) Attempts() uint64 { return 0 }
