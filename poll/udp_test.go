//go:build !varta_nosecure

package poll

import (
	"crypto/cipher"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/testutil"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
)

// UDP listener and ingest tests over real loopback sockets, driving an
// observer built by newObserver one datagram at a time.

var (
	udpKeyCur    = vlp.Key{0xc0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	udpKeyOld    = vlp.Key{0x01, 0xd0, 0xd1, 0xd2}
	udpKeyMaster = vlp.Key{0x3a, 0x57, 0xe2}
	udpKeyWrong  = vlp.Key{0xee, 0xee, 0xee}
)

// udpRig is an observer with a UDP listener and a client socket
// connected to it.
type udpRig struct {
	t   testing.TB
	o   *observer
	fd  int
	now int64
}

func newUDPRig(t testing.TB, addr string, cfg UDPConfig) *udpRig {
	t.Helper()
	cfg.Addr = addr
	o, err := newObserver(Config{SocketPath: filepath.Join(t.TempDir(), "obs.sock"), SocketMode: 0o600,
		Threshold: time.Second, ReadTimeout: 100 * time.Millisecond, TrackerCapacity: 2048,
		AllowUIDs: []uint32{uint32(os.Geteuid())}, UDP: &cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.close)
	family, sa := unix.AF_INET, unix.Sockaddr(nil)
	switch a, _ := unix.Getsockname(o.udp.fd); a := a.(type) {
	case *unix.SockaddrInet4:
		sa = &unix.SockaddrInet4{Port: a.Port, Addr: [4]byte{127, 0, 0, 1}}
	case *unix.SockaddrInet6:
		family, sa = unix.AF_INET6, &unix.SockaddrInet6{Port: a.Port, Addr: [16]byte{15: 1}}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	return &udpRig{t: t, o: o, fd: fd, now: 1}
}

// send delivers b and runs the observer's UDP step once, as the loop
// would after poll reported the socket readable.
func (r *udpRig) send(b []byte) {
	r.t.Helper()
	if _, err := unix.Write(r.fd, b); err != nil {
		r.t.Fatalf("send %d bytes: %v", len(b), err)
	}
	r.step()
}

func (r *udpRig) step() {
	r.t.Helper()
	o := r.o
	pfd := []unix.PollFd{{Fd: int32(o.udp.fd), Events: unix.POLLIN}}
	if _, err := unix.Poll(pfd, 2000); err != nil {
		r.t.Fatal(err)
	}
	r.now += int64(time.Millisecond)
	o.receiveUDP(r.now)
}

// udpTally is what a datagram can change.
type udpTally struct {
	beats, truncated, decode, plainRefused, decrypt, agentPid, replays, full, clash, auth uint64
}

func (r *udpRig) tally() udpTally {
	o := r.o
	var decode uint64
	for _, k := range vlp.DecodeErrors {
		decode += o.c.DecodeErrors[k]
	}
	c := &o.udp.c
	return udpTally{beats: o.c.Beats, truncated: o.c.Truncated, decode: decode, plainRefused: c.PlainRefused,
		decrypt: c.Decrypt, agentPid: c.AgentPid, replays: c.Replays, full: c.TableFull,
		clash: o.c.OriginClash, auth: o.c.AuthFailures}
}

func (d udpTally) minus(e udpTally) udpTally {
	return udpTally{d.beats - e.beats, d.truncated - e.truncated, d.decode - e.decode,
		d.plainRefused - e.plainRefused, d.decrypt - e.decrypt, d.agentPid - e.agentPid,
		d.replays - e.replays, d.full - e.full, d.clash - e.clash, d.auth - e.auth}
}

func aead(t testing.TB, k vlp.Key) cipher.AEAD {
	t.Helper()
	a, err := vlp.NewAEAD(k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func iv(p byte) [vlp.IVRandomSize]byte {
	return [vlp.IVRandomSize]byte{p, 0x5e, p, 0xc0, p, 0xde, p, 0x01}
}

func plainFrame(f vlp.Frame) []byte { return vlp.Append(nil, f) }

// TestUDPIngest feeds one observer (plain, two shared keys, a master key)
// every kind of datagram in turn; each must move exactly its counters.
func TestUDPIngest(t *testing.T) {
	for _, fam := range []struct{ name, addr string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}} {
		t.Run(fam.name, func(t *testing.T) {
			if fam.name == "ipv6" && !testutil.HasIPv6() {
				t.Skip("no IPv6 loopback here")
			}
			testUDPIngest(t, fam.addr)
		})
	}
}

func testUDPIngest(t *testing.T, addr string) {
	k := udpKeyMaster
	r := newUDPRig(t, addr, UDPConfig{Plaintext: true, Keys: []vlp.Key{udpKeyCur, udpKeyOld}, MasterKey: &k})
	const pPlain, pShared, pOld, pMaster, pUDS = 40000, 40001, 40002, 40003, 40004
	cur, old, wrong := aead(t, udpKeyCur), aead(t, udpKeyOld), aead(t, udpKeyWrong)
	agent := aead(t, vlp.AgentKey(udpKeyMaster, pMaster))
	r.o.track(beat(pUDS, 1), track.OriginUDS, r.now) // a kernel-attested agent

	sharedBeat := vlp.SealShared(nil, cur, iv(1), 0, beat(pShared, 1))
	flipped := append([]byte(nil), sharedBeat...)
	flipped[len(flipped)-1] ^= 0x01
	masterBeat := vlp.SealMaster(nil, agent, pMaster, iv(2), 0, beat(pMaster, 1))
	rewritten := append([]byte(nil), masterBeat...)
	binary.LittleEndian.PutUint32(rewritten, pMaster+1)
	badCrc := plainFrame(beat(pPlain, 2))
	badCrc[31] ^= 0xff

	cases := []struct {
		name string
		b    []byte
		want udpTally
	}{
		{"plain beat", plainFrame(beat(pPlain, 1)), udpTally{beats: 1}},
		{"plain bad crc", badCrc, udpTally{decode: 1}},
		{"plain for a socket-tracked pid", plainFrame(beat(pUDS, 9)), udpTally{clash: 1}},
		{"shared beat, current key", sharedBeat, udpTally{beats: 1}},
		{"shared beat, accepted old key", vlp.SealShared(nil, old, iv(3), 0, beat(pOld, 1)), udpTally{beats: 1}},
		{"shared replayed", sharedBeat, udpTally{replays: 1}},
		{"shared next counter", vlp.SealShared(nil, cur, iv(1), 1, beat(pShared, 2)), udpTally{beats: 1}},
		{"shared tag bit flipped", flipped, udpTally{decrypt: 1}},
		{"shared unknown key", vlp.SealShared(nil, wrong, iv(4), 0, beat(pShared, 3)), udpTally{decrypt: 1}},
		{"shared plaintext not a frame", vlp.SealShared(nil, cur, iv(5), 0, beat(1, 1)), udpTally{decode: 1}},
		{"master beat", masterBeat, udpTally{beats: 1}},
		{"master replayed", masterBeat, udpTally{replays: 1}},
		{"master inner pid differs", vlp.SealMaster(nil, agent, pMaster, iv(2), 1, beat(pMaster+7, 2)), udpTally{agentPid: 1, auth: 1}},
		{"master agent_pid rewritten", rewritten, udpTally{decrypt: 1}},
		{"secure for a socket-tracked pid", vlp.SealShared(nil, cur, iv(6), 0, beat(pUDS, 10)), udpTally{clash: 1}},
		{"plain for a secure-tracked pid", plainFrame(beat(pShared, 50)), udpTally{clash: 1}},
		{"secure takes a pid over from plain", vlp.SealShared(nil, cur, iv(7), 0, beat(pPlain, 1)), udpTally{beats: 1}},
		{"31 bytes", make([]byte, 31), udpTally{truncated: 1}},
		{"33 bytes", make([]byte, 33), udpTally{truncated: 1}},
		{"61 bytes", make([]byte, 61), udpTally{truncated: 1}},
		{"65 bytes", make([]byte, 65), udpTally{truncated: 1}},
		{"1500 bytes", make([]byte, 1500), udpTally{truncated: 1}},
		{"empty", nil, udpTally{truncated: 1}},
	}
	for _, tc := range cases {
		before := r.tally()
		r.send(tc.b)
		if got := r.tally().minus(before); got != tc.want {
			t.Errorf("%s: counters moved by %+v, want %+v", tc.name, got, tc.want)
		}
	}
	for pid, want := range map[uint32]track.Origin{pPlain: track.OriginSecureUDP, pShared: track.OriginSecureUDP, pOld: track.OriginSecureUDP,
		pMaster: track.OriginSecureUDP, pUDS: track.OriginUDS} {
		if s := r.o.tr.Lookup(pid); s == nil || s.Origin != want {
			t.Errorf("pid %d: slot %+v, want origin %v", pid, s, want)
		}
	}
	if n := r.o.udp.sec.Derivations(); n != 2 { // pMaster, and the rewritten agent_pid
		t.Errorf("derivations = %d, want 2", n)
	}
	if n := r.o.c.Received; n != uint64(len(cases)) {
		t.Errorf("Received = %d, want %d", n, len(cases))
	}
}

// TestUDPPlaintextRefused: without Plaintext a 32-byte frame is counted
// and dropped, and without keys a secure one cannot be opened.
func TestUDPPlaintextRefused(t *testing.T) {
	r := newUDPRig(t, "127.0.0.1:0", UDPConfig{Keys: []vlp.Key{udpKeyCur}})
	r.send(plainFrame(beat(40000, 1)))
	if got := r.tally(); got != (udpTally{plainRefused: 1}) {
		t.Errorf("secure-only listener, plain frame: %+v, want one plaintext refusal", got)
	}
	p := newUDPRig(t, "127.0.0.1:0", UDPConfig{Plaintext: true})
	p.send(vlp.SealShared(nil, aead(t, udpKeyCur), iv(1), 0, beat(40000, 1)))
	if got := p.tally(); got != (udpTally{decrypt: 1}) {
		t.Errorf("plain-only listener, secure frame: %+v, want one decrypt failure", got)
	}
}

// TestUDPSenderTableFull: the 1025th secure sender is refused, not
// admitted by evicting a live one.
func TestUDPSenderTableFull(t *testing.T) {
	r := newUDPRig(t, "127.0.0.1:0", UDPConfig{Keys: []vlp.Key{udpKeyCur}})
	a := aead(t, udpKeyCur)
	for i := range track.ReplaySenders + 1 {
		if _, err := unix.Write(r.fd, vlp.SealShared(nil, a, iv(1), 0, beat(uint32(50000+i), 1))); err != nil {
			t.Fatal(err)
		}
		if i%32 == 31 || i == track.ReplaySenders {
			for r.o.c.Received < uint64(i+1) {
				r.step()
			}
		}
	}
	if got := r.tally(); got != (udpTally{beats: track.ReplaySenders, full: 1}) {
		t.Errorf("%+v, want %d beats and one refusal", got, track.ReplaySenders)
	}
	if r.o.tr.Lookup(50000+track.ReplaySenders) != nil || r.o.tr.Lookup(50000) == nil {
		t.Errorf("the refused sender is tracked, or the first one is not")
	}
}

func TestRecoveryEligible(t *testing.T) {
	tests := []struct {
		name          string
		udp           *UDPConfig
		uds, pl, secr bool
	}{
		{"no listener", nil, true, false, false},
		{"default", &UDPConfig{}, true, false, false},
		{"plain trusted", &UDPConfig{RecoverPlain: true}, true, true, false},
		{"secure trusted", &UDPConfig{RecoverSecure: true}, true, false, true},
		{"both", &UDPConfig{RecoverPlain: true, RecoverSecure: true}, true, true, true},
	}
	for _, tc := range tests {
		o := &observer{}
		if tc.udp != nil {
			o.udp = &udpListener{cfg: *tc.udp}
		}
		for origin, want := range map[track.Origin]bool{track.OriginUDS: tc.uds, track.OriginUDP: tc.pl, track.OriginSecureUDP: tc.secr, 7: false} {
			if got := o.recoveryEligible(origin); got != want {
				t.Errorf("%s: recoveryEligible(%v) = %v, want %v", tc.name, origin, got, want)
			}
		}
	}
}

// TestUDPRecheck: a deferred stall of a UDP agent is not dropped because
// some local process happens to hold the same pid.
func TestUDPRecheck(t *testing.T) {
	r := newUDPRig(t, "127.0.0.1:0", UDPConfig{Plaintext: true})
	self := uint32(os.Getpid()) // certainly a live local process
	r.send(plainFrame(beat(self, 1)))
	r.now += int64(2 * time.Second)
	r.o.raiseStalls(r.now)
	s := r.o.tr.Lookup(self)
	if s == nil || !s.Stalled {
		t.Fatalf("no stall for the UDP agent: %+v", s)
	}
	if r.o.recheck(int32(self), s.StartTime) != recovery.Stands {
		t.Errorf("recheck refused a UDP agent's stall over a local process")
	}
}

// TestUDPRenderMetrics: with a listener, the UDP families appear once
// each from the first scrape, and rendering still allocates nothing.
func TestUDPRenderMetrics(t *testing.T) {
	k := udpKeyMaster
	r := newUDPRig(t, "127.0.0.1:0", UDPConfig{Keys: []vlp.Key{udpKeyCur}, MasterKey: &k})
	r.o.render = r.o.renderMetrics(r.o.render[:0])
	if err := r.o.enc.Err(); err != nil {
		t.Fatalf("renderMetrics: encoder misuse: %v", err)
	}
	body := string(r.o.render)
	for _, fam := range []string{"varta_udp_plaintext_refused_total", "varta_frame_decrypt_failures_total",
		"varta_udp_agent_pid_mismatch_total", "varta_secure_replay_refused_total", "varta_sender_state_full_total",
		"varta_udp_senders", "varta_udp_senders_capacity", "varta_udp_agent_key_derivations_total"} {
		if n := strings.Count(body, "\n"+fam+" "); n != 1 {
			t.Errorf("%s: %d samples, want 1", fam, n)
		}
	}
	if !strings.Contains(body, "\nvarta_udp_senders_capacity 1024\n") {
		t.Errorf("replay table capacity is not 1024:\n%s", body)
	}
	allocs := testing.AllocsPerRun(20, func() { r.o.render = r.o.renderMetrics(r.o.render[:0]) })
	if allocs != 0 {
		t.Errorf("renderMetrics with a UDP listener: %v allocs per scrape, want 0", allocs)
	}
}

// TestUDPNoAllocs: the secure path Open → replay check → track, the plain
// path, and a whole receive of a datagram allocate nothing.
func TestUDPNoAllocs(t *testing.T) {
	k := udpKeyMaster
	r := newUDPRig(t, "127.0.0.1:0", UDPConfig{Plaintext: true, Keys: []vlp.Key{udpKeyOld, udpKeyCur}, MasterKey: &k})
	const runs = 1000 // AllocsPerRun calls each function runs+1 times
	shared, master := aead(t, udpKeyCur), aead(t, vlp.AgentKey(udpKeyMaster, 40003))
	// Every call needs a datagram never accepted before: seal them ahead.
	var sharedFrames, masterFrames [][]byte
	for i := range 2*runs + 2 {
		sharedFrames = append(sharedFrames, vlp.SealShared(nil, shared, iv(1), uint32(i), beat(40001, uint64(i+1))))
	}
	for i := range runs + 2 {
		masterFrames = append(masterFrames, vlp.SealMaster(nil, master, 40003, iv(2), uint32(i), beat(40003, uint64(i+1))))
	}
	r.o.handleSecure(masterFrames[0], r.now) // derive and cache the agent key
	nextShared, nextMaster, nonce := 0, 1, uint64(0)
	var plain [vlp.Size]byte
	cases := []struct {
		name string
		fn   func()
	}{
		{"shared, second key", func() {
			r.now += int64(time.Millisecond)
			r.o.handleSecure(sharedFrames[nextShared], r.now)
			nextShared++
		}},
		{"master", func() {
			r.now += int64(time.Millisecond)
			r.o.handleSecure(masterFrames[nextMaster], r.now)
			nextMaster++
		}},
		{"plain", func() {
			r.now += int64(time.Millisecond)
			nonce++
			vlp.Encode(&plain, beat(40000, nonce))
			r.o.handlePlain(plain[:], r.now)
		}},
		{"replayed", func() { r.o.handleSecure(masterFrames[1], r.now) }},
		{"receive", func() {
			unix.Write(r.fd, sharedFrames[nextShared])
			nextShared++
			r.step()
		}},
	}
	for _, c := range cases {
		if testutil.RaceEnabled && c.name == "receive" {
			continue // the race detector's syscall instrumentation allocates
		}
		if n := testing.AllocsPerRun(runs, c.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
	if got := r.tally(); got.decrypt != 0 || got.decode != 0 || got.agentPid != 0 || got.beats < 3*runs {
		t.Errorf("%+v: not every measured frame was a beat", got)
	}
}

// BenchmarkSecureIngest is the observer's path for one secure datagram,
// Open → replay check → track, over 256 senders (shared key) or 256
// master-key agents with cached keys. Datagrams are sealed in batches
// with the timer stopped; vlp's BenchmarkOpen* measure Open alone.
func BenchmarkSecureIngest(b *testing.B) {
	const senders, batch = 256, 4096
	k := udpKeyMaster
	for _, mode := range []string{"shared", "master"} {
		b.Run(mode, func(b *testing.B) {
			r := newUDPRig(b, "127.0.0.1:0", UDPConfig{Keys: []vlp.Key{udpKeyCur}, MasterKey: &k})
			var aeads [senders]cipher.AEAD
			for p := range aeads {
				aeads[p] = aead(b, udpKeyCur)
				if mode == "master" {
					aeads[p] = aead(b, vlp.AgentKey(udpKeyMaster, uint32(1000+p)))
				}
			}
			size := vlp.SharedSize
			if mode == "master" {
				size = vlp.MasterSize
			}
			frames := make([]byte, 0, batch*size)
			sealed := 0 // frames sealed so far; frame i is sender i%senders's (i/senders)th
			seal := func(n int) {
				frames = frames[:0]
				for ; n > 0; n-- {
					p, c := sealed%senders, uint32(sealed/senders)
					f := beat(uint32(1000+p), uint64(c)+1)
					if mode == "master" {
						frames = vlp.SealMaster(frames, aeads[p], f.Pid, iv(1), c, f)
					} else {
						frames = vlp.SealShared(frames, aeads[p], iv(1), c, f)
					}
					sealed++
				}
			}
			ingest := func() {
				for off := 0; off < len(frames); off += size {
					r.now += 1000
					r.o.handleSecure(frames[off:off+size], r.now)
				}
			}
			seal(senders) // a first round derives and caches the agent keys
			ingest()
			b.ReportAllocs()
			b.ResetTimer()
			for left := b.N; left > 0; left -= batch {
				b.StopTimer()
				seal(min(left, batch))
				b.StartTimer()
				ingest()
			}
			b.StopTimer()
			if r.o.c.Beats != uint64(sealed) {
				b.Fatalf("%d beats of %d frames", r.o.c.Beats, sealed)
			}
		})
	}
}

// BenchmarkPlainIngest is the plain UDP path, Parse → track, for scale.
func BenchmarkPlainIngest(b *testing.B) {
	const senders = 256
	r := newUDPRig(b, "127.0.0.1:0", UDPConfig{Plaintext: true})
	var buf [vlp.Size]byte
	nonces := make([]uint64, senders)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		p := i % senders
		nonces[p]++
		vlp.Encode(&buf, beat(uint32(1000+p), nonces[p]))
		r.now += 1000
		r.o.handlePlain(buf[:], r.now)
		i++
	}
}
func beat(pid uint32, nonce uint64) vlp.Frame {
	return vlp.Frame{Status: vlp.Ok, Pid: pid, Timestamp: nonce, Nonce: nonce, Payload: 7}
}
