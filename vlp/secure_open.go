package vlp

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"strconv"

	"golang.org/x/crypto/chacha20poly1305"
)

// OpenerConfig is what an observer's secure UDP listener trusts.
type OpenerConfig struct {
	// Keys are the accepted shared keys. Every one is tried on every
	// 60-byte frame, in order, so agents can move to a new key while the
	// old one is still accepted (put the current key first: it is tried
	// first). Empty: 60-byte frames are refused (ErrDecrypt).
	Keys []Key
	// MasterKey opens 64-byte frames under AgentKey(*MasterKey, agent_pid).
	// Nil: 64-byte frames are refused (ErrDecrypt).
	MasterKey *Key
	// AgentCache is how many derived agent keys are kept; 0 means
	// DefaultAgentCache. Size it to the number of master-key agents (the
	// observer's sender table) so a steady beat never derives.
	AgentCache int
}

// DefaultAgentCache and MaxAgentCache bound OpenerConfig.AgentCache.
const (
	DefaultAgentCache = 256
	MaxAgentCache     = 1 << 16
)

// SecureHeader is the cleartext that travels around a secure frame's
// ciphertext. Open fills it in only for a frame it authenticated; the
// observer's replay table keys on it (PROTOCOL.md §6).
type SecureHeader struct {
	AgentPid uint32             // master-key frames: agent_pid (equal to the frame's pid); 0 for shared-key frames
	IVRandom [IVRandomSize]byte // the sender's current IV prefix
	Counter  uint32             // iv_counter: rises by one per frame within a prefix
	Key      int                // shared-key frames: index in OpenerConfig.Keys of the key that opened it; -1 for master-key frames
}

// Opener authenticates and decodes secure frames for one observer. It holds
// a ChaCha20-Poly1305 instance per accepted key and a fixed cache of
// derived agent keys, so in steady state Open allocates nothing. It is not
// safe for concurrent use: it decrypts into a buffer of its own, and the
// observer's loop owns it.
type Opener struct {
	shared    []cipher.AEAD
	master    Key
	hasMaster bool
	agents    agentCache
	derived   uint64
	attempts  uint64 // AEAD openings tried (Attempts)
	plain     [Size]byte
}

// NewOpener prepares an Opener. It fails when c trusts nothing, when the
// cache size is out of range, or when the process runs in FIPS 140-only
// mode (which forbids ChaCha20-Poly1305).
func NewOpener(c OpenerConfig) (*Opener, error) {
	if len(c.Keys) == 0 && c.MasterKey == nil {
		return nil, errors.New("vlp: NewOpener: no shared key and no master key, nothing could be opened")
	}
	size := c.AgentCache
	if size == 0 {
		size = DefaultAgentCache
	}
	if size < 0 || size > MaxAgentCache {
		return nil, errors.New("vlp: NewOpener: agent cache size " + strconv.Itoa(c.AgentCache) +
			" is out of range 1.." + strconv.Itoa(MaxAgentCache))
	}
	o := &Opener{shared: make([]cipher.AEAD, len(c.Keys))}
	for i, k := range c.Keys {
		a, err := NewAEAD(k)
		if err != nil {
			return nil, err
		}
		o.shared[i] = a
	}
	if c.MasterKey != nil {
		if _, err := NewAEAD(*c.MasterKey); err != nil {
			return nil, err
		}
		o.master, o.hasMaster = *c.MasterKey, true
		o.agents.init(size)
	}
	return o, nil
}

// Derivations counts agent keys derived by Open: one per agent on its first
// frame, and again after the cache evicted it. A count that keeps rising
// with a steady set of agents means the cache is too small; frames with a
// made-up agent_pid also derive (and then fail to open).
func (o *Opener) Derivations() uint64 { return o.derived }

// Attempts counts AEAD openings tried: one per accepted key tried on a
// shared-key frame (the first that authenticates ends the trial), one per
// master-key frame.
func (o *Opener) Attempts() uint64 { return o.attempts }

// Open authenticates a secure datagram and decodes the frame inside. The
// length alone picks the envelope: 60 bytes shared-key, 64 master-key,
// anything else ErrLength (a transport rejection, as in Parse). A frame no
// accepted key authenticates is ErrDecrypt, never ErrBadCrc; the plaintext
// then goes through Parse (PROTOCOL.md §2) and a master-key frame whose inner
// pid differs from agent_pid is ErrAgentPid. Any failure returns a zero
// Frame and a zero SecureHeader.
//
// Open never allocates except to derive an agent key missing from the
// cache, which happens only for 64-byte frames.
func (o *Opener) Open(b []byte) (Frame, SecureHeader, Error) {
	switch len(b) {
	case SharedSize:
		return o.openShared(b)
	case MasterSize:
		return o.openMaster(b)
	}
	return Frame{}, SecureHeader{}, ErrLength
}

const nonceSize = chacha20poly1305.NonceSize // iv_random | iv_counter

func (o *Opener) openShared(b []byte) (Frame, SecureHeader, Error) {
	nonce, sealed := b[:nonceSize], b[nonceSize:]
	for i, a := range o.shared {
		o.attempts++
		if _, err := a.Open(o.plain[:0], nonce, sealed, nil); err != nil {
			continue
		}
		f, e := Parse(o.plain[:])
		if e != 0 {
			return Frame{}, SecureHeader{}, e
		}
		return f, header(nonce, 0, i), 0
	}
	return Frame{}, SecureHeader{}, ErrDecrypt
}

func (o *Opener) openMaster(b []byte) (Frame, SecureHeader, Error) {
	if !o.hasMaster {
		return Frame{}, SecureHeader{}, ErrDecrypt
	}
	pid := binary.LittleEndian.Uint32(b)
	aad, nonce, sealed := b[:4], b[4:4+nonceSize], b[4+nonceSize:]
	a := o.agents.lookup(pid)
	fresh := a == nil
	if fresh {
		var err error
		if a, err = NewAEAD(AgentKey(o.master, pid)); err != nil {
			return Frame{}, SecureHeader{}, ErrDecrypt
		}
		o.derived++
	}
	o.attempts++
	if _, err := a.Open(o.plain[:0], nonce, sealed, aad); err != nil {
		return Frame{}, SecureHeader{}, ErrDecrypt
	}
	if fresh {
		// Only a key that authenticated a frame is cached: frames with
		// made-up pids cannot push real agents out of the cache.
		o.agents.insert(pid, a)
	}
	f, e := Parse(o.plain[:])
	switch {
	case e != 0:
		return Frame{}, SecureHeader{}, e
	case f.Pid != pid:
		return Frame{}, SecureHeader{}, ErrAgentPid
	}
	return f, header(nonce, pid, -1), 0
}

func header(nonce []byte, pid uint32, key int) SecureHeader {
	h := SecureHeader{AgentPid: pid, Key: key}
	copy(h.IVRandom[:], nonce)
	h.Counter = binary.LittleEndian.Uint32(nonce[IVRandomSize:])
	return h
}

// agentCache is a fixed set-associative cache of agent AEADs keyed by pid:
// a pid hashes to one set of agentWays entries, and a miss replaces the
// set's least recently used entry. Lookups cost agentWays comparisons
// whatever the size, and nothing grows after init.
type agentCache struct {
	entries []agentEntry // sets of agentWays consecutive entries
	shift   uint         // 32 - log2(number of sets)
	clock   uint32       // advances on every lookup and insert
}

type agentEntry struct {
	aead cipher.AEAD // nil: the entry is empty
	pid  uint32
	used uint32 // clock at the last use
}

const agentWays = 4

// init sizes the cache for at least n agents: a power-of-two number of sets.
func (c *agentCache) init(n int) {
	sets, bits := 1, uint(0)
	for sets*agentWays < n {
		sets, bits = sets*2, bits+1
	}
	c.entries = make([]agentEntry, sets*agentWays)
	c.shift = 32 - bits
}

func (c *agentCache) set(pid uint32) []agentEntry {
	// Fibonacci hashing: consecutive pids spread over the sets. A shift
	// of 32 (one set) yields 0.
	s := int((pid * 0x9E3779B1) >> c.shift)
	return c.entries[s*agentWays : (s+1)*agentWays]
}

func (c *agentCache) lookup(pid uint32) cipher.AEAD {
	c.clock++
	set := c.set(pid)
	for i := range set {
		if set[i].aead != nil && set[i].pid == pid {
			set[i].used = c.clock
			return set[i].aead
		}
	}
	return nil
}

func (c *agentCache) insert(pid uint32, a cipher.AEAD) {
	c.clock++
	set := c.set(pid)
	victim := 0
	for i := range set {
		if set[i].aead == nil {
			victim = i
			break
		}
		// Unsigned age survives the clock wrapping around.
		if c.clock-set[i].used > c.clock-set[victim].used {
			victim = i
		}
	}
	set[victim] = agentEntry{aead: a, pid: pid, used: c.clock}
}
