package vlp

import (
	"math"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// udpListener is a real observer-side UDP socket on a loopback address.
type udpListener struct {
	t    *testing.T
	fd   int
	addr string // "127.0.0.1:port" or "[::1]:port"
}

var families = []struct {
	name string
	ip   string
}{{"ipv4", "127.0.0.1"}, {"ipv6", "::1"}}

func listenUDP(t *testing.T, ip string) *udpListener {
	t.Helper()
	var sa unix.Sockaddr = &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	family, host := unix.AF_INET, ip
	if ip == "::1" {
		sa, family, host = &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, unix.AF_INET6, "["+ip+"]"
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no %s UDP socket: %v", ip, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, sa); err != nil {
		t.Skipf("cannot bind %s (no loopback for this family?): %v", ip, err)
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	port := 0
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return &udpListener{t: t, fd: fd, addr: host + ":" + strconv.Itoa(port)}
}

// next returns the next datagram, failing the test after 5 s without one.
func (l *udpListener) next() []byte {
	l.t.Helper()
	b := make([]byte, 128)
	n, err := unix.Read(l.fd, b)
	for err == unix.EINTR { // SO_RCVTIMEO makes a signal (SIGURG) end the wait early
		n, err = unix.Read(l.fd, b)
	}
	if err != nil {
		l.t.Fatalf("read: %v", err)
	}
	return b[:n]
}

func dialUDPT(t *testing.T, addr string, o UDPOptions) *Emitter {
	t.Helper()
	e, err := DialUDP(addr, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e
}

func TestUDPPlain(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			l := listenUDP(t, fam.ip)
			e := dialUDPT(t, l.addr, UDPOptions{})
			for i := uint64(1); i <= 3; i++ {
				if err := e.Beat(Degraded, uint32(i)); err != nil {
					t.Fatal(err)
				}
				b := l.next()
				f, err := Decode(b)
				if err != nil || f.Nonce != i || f.Pid != uint32(os.Getpid()) || f.Payload != uint32(i) {
					t.Errorf("Decode(%x) = %+v, %v, want nonce %d", b, f, err, i)
				}
			}
			if err := e.Terminal(5); err != nil {
				t.Fatal(err)
			}
			if f, err := Decode(l.next()); err != nil || !f.Terminal() {
				t.Errorf("terminal frame = %+v, %v", f, err)
			}
		})
	}
}

// TestUDPSecure checks the sender IV rules on the wire: one prefix per
// session, the counter from 0 up by one per frame (terminal frames too),
// and every frame opens.
func TestUDPSecure(t *testing.T) {
	for _, fam := range families {
		for _, mode := range []struct {
			name string
			opts UDPOptions
			size int
		}{
			{"shared", UDPOptions{SharedKey: &keyA}, SharedSize},
			{"master", UDPOptions{MasterKey: &keyB}, MasterSize},
		} {
			t.Run(fam.name+"/"+mode.name, func(t *testing.T) {
				l := listenUDP(t, fam.ip)
				e := dialUDPT(t, l.addr, mode.opts)
				o := openerT(t, OpenerConfig{Keys: []Key{keyA}, MasterKey: &keyB})
				var prefix [IVRandomSize]byte
				for i := 0; i < 5; i++ {
					var err error
					if i < 4 {
						err = e.Beat(Ok, uint32(i))
					} else {
						err = e.Terminal(9)
					}
					if err != nil {
						t.Fatal(err)
					}
					b := l.next()
					if len(b) != mode.size {
						t.Fatalf("datagram of %d bytes, want %d", len(b), mode.size)
					}
					f, h, kind := o.Open(b)
					if kind != 0 || f.Pid != uint32(os.Getpid()) || h.Counter != uint32(i) {
						t.Fatalf("Open(%x) = %+v, %+v, %v, want counter %d", b, f, h, kind, i)
					}
					if i == 0 {
						prefix = h.IVRandom
						if prefix != IVPrefix(e.sec.iv.salt, 0) {
							t.Errorf("first prefix %x is not IVPrefix(salt, 0)", prefix)
						}
					} else if h.IVRandom != prefix {
						t.Errorf("frame %d: prefix changed to %x without a wrap", i, h.IVRandom)
					}
					if i < 4 && f.Nonce != uint64(i+1) || i == 4 && !f.Terminal() {
						t.Errorf("frame %d = %+v", i, f)
					}
				}
			})
		}
	}
}

// TestUDPIVRotationAndFork drives the counter to its last value and fakes a
// fork; neither may ever repeat a (key, nonce) pair.
func TestUDPIVRotationAndFork(t *testing.T) {
	for _, opts := range []UDPOptions{{SharedKey: &keyA}, {MasterKey: &keyA}} {
		l := listenUDP(t, "127.0.0.1")
		e := dialUDPT(t, l.addr, opts)
		o := openerT(t, OpenerConfig{Keys: []Key{keyA}, MasterKey: &keyA})
		type nonce struct {
			p [IVRandomSize]byte
			c uint32
		}
		seen := map[nonce]bool{}
		recv := func() (Frame, SecureHeader) {
			t.Helper()
			f, h, kind := o.Open(l.next())
			if kind != 0 {
				t.Fatalf("Open: %v", kind)
			}
			n := nonce{h.IVRandom, h.Counter}
			if seen[n] {
				t.Fatalf("nonce %x/%d sent twice", n.p, n.c)
			}
			seen[n] = true
			return f, h
		}
		e.Beat(Ok, 0)
		_, first := recv()
		e.sec.iv.next = math.MaxUint32
		e.Beat(Ok, 0)
		if _, h := recv(); h.IVRandom != first.IVRandom || h.Counter != math.MaxUint32 {
			t.Errorf("last counter of a prefix: %+v", h)
		}
		e.Beat(Ok, 0)
		_, rotated := recv()
		if rotated.IVRandom == first.IVRandom || rotated.Counter != 0 || rotated.IVRandom != IVPrefix(e.sec.iv.salt, 1) {
			t.Errorf("after the counter's last value: %+v, want IVPrefix(salt, 1) from counter 0", rotated)
		}
		salt := e.sec.iv.salt
		e.pid = 12345 // what a forked child sees: the remembered pid is not its own
		e.Beat(Ok, 0)
		f, h := recv()
		if f.Nonce != 1 || h.Counter != 0 || h.IVRandom == rotated.IVRandom || e.sec.iv.salt == salt {
			t.Errorf("after fork: %+v %+v, want nonce 1, counter 0 and a fresh salt", f, h)
		}
	}
}

func TestUDPNoObserver(t *testing.T) {
	l := listenUDP(t, "127.0.0.1")
	addr := l.addr
	unix.Close(l.fd) // nothing listens on the port now
	e := dialUDPT(t, addr, UDPOptions{SharedKey: &keyA})
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = e.Beat(Ok, 0) // the port-unreachable answer arrives after the first
		time.Sleep(time.Millisecond)
	}
	if err != ErrNoObserver || !IsDrop(err) || e.Dropped() == 0 {
		t.Errorf("Beat to a closed port = %v (dropped %d), want ErrNoObserver", err, e.Dropped())
	}
}

func TestDialUDPRefuses(t *testing.T) {
	for _, tc := range []struct {
		addr string
		opts UDPOptions
	}{
		{"localhost:9700", UDPOptions{}},
		{"127.0.0.1", UDPOptions{}},
		{"127.0.0.1:0", UDPOptions{}},
		{"::1:9700", UDPOptions{}},
		{"[fe80::1%no-such-if]:9700", UDPOptions{}},
		{"127.0.0.1:9700", UDPOptions{SharedKey: &keyA, MasterKey: &keyA}},
	} {
		if e, err := DialUDP(tc.addr, tc.opts); err == nil {
			e.Close()
			t.Errorf("DialUDP(%q) succeeded", tc.addr)
		}
	}
	if sa, _, err := udpSockaddr("[::ffff:127.0.0.1]:5"); err != nil {
		t.Errorf("udpSockaddr(v4-mapped) = %v", err)
	} else if _, ok := sa.(*unix.SockaddrInet4); !ok {
		t.Errorf("a v4-mapped address gave %T, want IPv4", sa)
	}
	if sa, _, err := udpSockaddr("[fe80::1%1]:5"); err != nil || sa.(*unix.SockaddrInet6).ZoneId != 1 {
		t.Errorf("udpSockaddr(zone 1) = %v, %v", sa, err)
	}
	if sa, _, err := udpSockaddr("[fe80::1%lo]:5"); err != nil || sa.(*unix.SockaddrInet6).ZoneId == 0 {
		t.Errorf("udpSockaddr(zone lo) = %v, %v", sa, err)
	}
}

func TestUDPBeatNoAllocs(t *testing.T) {
	for _, mode := range []struct {
		name string
		opts UDPOptions
	}{{"plain", UDPOptions{}}, {"shared", UDPOptions{SharedKey: &keyA}}, {"master", UDPOptions{MasterKey: &keyA}}} {
		l := listenUDP(t, "127.0.0.1")
		e := dialUDPT(t, l.addr, mode.opts)
		var b [MasterSize]byte
		n := testing.AllocsPerRun(1000, func() {
			sinkErr = e.Beat(Ok, 1)
			unix.Read(l.fd, b[:])
		})
		if n != 0 || sinkErr != nil {
			t.Errorf("%s: Beat over UDP: %v allocs/op (err %v), want 0", mode.name, n, sinkErr)
		}
	}
}

// BenchmarkBeatUDPShared measures a sealed Beat into a real loopback socket
// that nobody reads: the kernel drops what overflows its buffer.
func BenchmarkBeatUDPShared(b *testing.B) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		b.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	e, err := DialUDP("127.0.0.1:"+strconv.Itoa(sa.(*unix.SockaddrInet4).Port), UDPOptions{SharedKey: &keyA})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := e.Beat(Ok, 1); err != nil && err != ErrQueueFull {
			b.Fatal(err)
		}
	}
}
