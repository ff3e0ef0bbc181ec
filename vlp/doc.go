// Package vlp implements VLP, the Varta Lifeline Protocol (version byte
// 0x02): the 32-byte heartbeat frame an agent sends to varta-watch, its
// decoder and encoder, the secure UDP envelopes (PROTOCOL.md §6) and the
// agent-side emitter over a Unix datagram socket or UDP. The protocol
// itself, byte by byte, is written out in PROTOCOL.md beside this package.
//
// Secure frames: SealShared and SealMaster wrap a frame in the 60-byte
// shared-key or 64-byte master-key ChaCha20-Poly1305 envelope; an Opener
// (observer side) authenticates either, trying every accepted key, and
// runs the plaintext through Parse. AgentKey, IVPrefix and EpochKey are
// the protocol's HKDF-SHA256 derivations. Key files are read with
// ParseKeyFile and ReadKey, which apply ReadSecretFile's checks.
//
// Allocation contract: Parse, Encode, Append (into a buffer with room),
// SealShared and SealMaster (into a buffer with room), Opener.Open (once
// an agent's key is cached) and Emitter.Beat (any transport) never
// allocate. Decode allocates only to carry the expected and actual
// checksums of a BadCrc failure; hot paths use Parse, which reports the
// same failures as a plain Error value. Key derivation, NewAEAD, NewOpener
// and the Dial functions allocate; they run at start-up, once per agent
// or once per sender session.
//
// Concurrency: Frame, Error, Key and SecureHeader are values and safe to
// share; a cipher.AEAD from NewAEAD may be shared. An Emitter and an
// Opener each belong to one goroutine at a time.
//
// The package imports nothing of varta's own; only the standard library,
// golang.org/x/sys/unix (sockets, key files) and
// golang.org/x/crypto/chacha20poly1305 (secure UDP).
package vlp
