package main

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash/crc32"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// The opener below is independent of vlp: it restates vlp/PROTOCOL.md §6 with
// chacha20poly1305, crypto/hkdf and hash/crc32 directly.

const (
	sharedHex = "8f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0"
	masterHex = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0"
)

type udpListener struct {
	fd   int
	addr string
}

// listenUDP binds a loopback UDP socket; ok is false when the family is
// unavailable (no IPv6 on this host or in this sandbox).
func listenUDP(t *testing.T, v6 bool) (udpListener, bool) {
	t.Helper()
	family, sa, host := unix.AF_INET, unix.Sockaddr(&unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}), "127.0.0.1"
	if v6 {
		family, sa, host = unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, "[::1]"
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return udpListener{}, false
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, sa); err != nil {
		return udpListener{}, false
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	got, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	switch a := got.(type) {
	case *unix.SockaddrInet4:
		port = a.Port
	case *unix.SockaddrInet6:
		port = a.Port
	}
	return udpListener{fd: fd, addr: host + ":" + strconv.Itoa(port)}, true
}

type udpFrame struct {
	ivRandom []byte
	counter  uint32
	pid      uint32
	status   byte
	nonce    uint64
	payload  uint32
}

// openUDP reads one datagram and opens it as mode ("plain", "shared",
// "master") would have sealed it.
func openUDP(t *testing.T, fd int, mode string) udpFrame {
	t.Helper()
	buf := make([]byte, 128)
	n, err := unix.Read(fd, buf)
	for err == unix.EINTR { // SO_RCVTIMEO makes a signal (SIGCHLD, SIGURG) end the wait early
		n, err = unix.Read(fd, buf)
	}
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	b := buf[:n]
	var plain []byte
	var f udpFrame
	switch mode {
	case "plain":
		plain = b
	case "shared":
		if len(b) != 60 {
			t.Fatalf("shared-key datagram of %d bytes, want 60", len(b))
		}
		key, _ := hex.DecodeString(sharedHex)
		aead, _ := chacha20poly1305.New(key)
		if plain, err = aead.Open(nil, b[:12], b[12:], nil); err != nil {
			t.Fatalf("open %x: %v", b, err)
		}
		f.ivRandom, f.counter = b[:8], binary.LittleEndian.Uint32(b[8:12])
	case "master":
		if len(b) != 64 {
			t.Fatalf("master-key datagram of %d bytes, want 64", len(b))
		}
		master, _ := hex.DecodeString(masterHex)
		info := append([]byte("varta-agent-v1\x00"), b[:4]...)
		key, err := hkdf.Key(sha256.New, master, nil, string(info), 32)
		if err != nil {
			t.Fatal(err)
		}
		aead, _ := chacha20poly1305.New(key)
		if plain, err = aead.Open(nil, b[4:16], b[16:], b[:4]); err != nil {
			t.Fatalf("open %x: %v", b, err)
		}
		if !bytes.Equal(plain[4:8], b[:4]) {
			t.Errorf("inner pid %x differs from agent_pid %x", plain[4:8], b[:4])
		}
		f.ivRandom, f.counter = b[4:12], binary.LittleEndian.Uint32(b[12:16])
	}
	if len(plain) != 32 || plain[0] != 'V' || plain[1] != 'A' || plain[2] != 2 {
		t.Fatalf("not a VLP v2 frame: %x", plain)
	}
	if binary.LittleEndian.Uint32(plain[28:]) != crc32.Checksum(plain[:28], crc32.MakeTable(crc32.Castagnoli)) {
		t.Fatalf("bad CRC in %x", plain)
	}
	f.status, f.pid = plain[3], binary.LittleEndian.Uint32(plain[4:])
	f.nonce, f.payload = binary.LittleEndian.Uint64(plain[16:]), binary.LittleEndian.Uint32(plain[24:])
	return f
}

func writeKey(t *testing.T, name, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode) // WriteFile's mode is filtered by umask
	return p
}

func TestUDPFramesOpenedIndependently(t *testing.T) {
	bin := buildBeat(t)
	shared := writeKey(t, "shared.key", "# test key\n"+sharedHex+"\n", 0o600)
	master := writeKey(t, "master.key", masterHex+"\n", 0o400)
	for _, v6 := range []bool{false, true} {
		for _, mode := range []string{"plain", "shared", "master"} {
			name := map[bool]string{false: "ipv4", true: "ipv6"}[v6] + "/" + mode
			t.Run(name, func(t *testing.T) {
				l, ok := listenUDP(t, v6)
				if !ok {
					t.Skip("no loopback for this address family")
				}
				args := []string{"--udp", l.addr, "--count", "3", "--interval-ms=1",
					"--status", "critical", "--payload", "77", "--terminal"}
				switch mode {
				case "shared":
					args = append(args, "--key-file", shared)
				case "master":
					args = append(args, "--master-key-file", master)
				}
				cmd := testbin.Command(bin, args...)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("varta-beat %v: %v\n%s", args, err, out)
				}
				var prefix []byte
				for i := 0; i < 4; i++ {
					f := openUDP(t, l.fd, mode)
					wantNonce := uint64(i + 1)
					if i == 3 {
						wantNonce = ^uint64(0)
					}
					if f.nonce != wantNonce || f.status != 2 || f.payload != 77 || int(f.pid) != cmd.Process.Pid {
						t.Errorf("frame %d = %+v, want nonce %d from pid %d", i, f, wantNonce, cmd.Process.Pid)
					}
					if mode == "plain" {
						continue
					}
					if i == 0 {
						prefix = f.ivRandom
					}
					if f.counter != uint32(i) || !bytes.Equal(f.ivRandom, prefix) {
						t.Errorf("frame %d: iv %x counter %d, want iv %x counter %d", i, f.ivRandom, f.counter, prefix, i)
					}
				}
			})
		}
	}
}

func TestUDPExitCodes(t *testing.T) {
	bin := buildBeat(t)
	l, _ := listenUDP(t, false)
	closed, _ := listenUDP(t, false)
	unix.Close(closed.fd) // nothing listens on this port any more
	key := writeKey(t, "k", sharedHex+"\n", 0o600)
	loose := writeKey(t, "loose", sharedHex+"\n", 0o644)
	two := writeKey(t, "two", sharedHex+"\n"+masterHex+"\n", 0o600)
	short := writeKey(t, "short", sharedHex[:20]+"\n", 0o600)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"socket and udp", []string{"--socket", "/tmp/x.sock", "--udp", l.addr}, 2, "exclusive"},
		{"host name", []string{"--udp", "localhost:9700"}, 2, "IP literal"},
		{"no port", []string{"--udp", "127.0.0.1"}, 2, "--udp must be"},
		{"both key files", []string{"--udp", l.addr, "--key-file", key, "--master-key-file", key}, 2, "exclusive"},
		{"key without udp", []string{"--socket", "/tmp/x.sock", "--key-file", key}, 2, "need --udp"},
		{"loose key file", []string{"--udp", l.addr, "--key-file", loose}, 1, "chmod 600"},
		{"missing key file", []string{"--udp", l.addr, "--master-key-file", key + ".none"}, 1, "no such file"},
		{"two keys", []string{"--udp", l.addr, "--key-file", two}, 1, "want exactly one"},
		{"bad key", []string{"--udp", l.addr, "--key-file", short}, 1, "line 1: 20 characters"},
		{"port refused", []string{"--udp", closed.addr, "--count", "3", "--interval-ms", "20"}, 1, "no observer"},
		{"sent", []string{"--udp", l.addr, "--key-file", key}, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, out := runBeat(t, bin, tc.args, tc.code, tc.msg)
			if strings.Contains(string(out), sharedHex[:16]) {
				t.Errorf("varta-beat %v printed key material: %q", tc.args, out)
			}
		})
	}
}
