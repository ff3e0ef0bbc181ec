package main

import (
	"crypto/cipher"
	"encoding/hex"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/vlp"
)

// UDP and secure UDP (vlp/PROTOCOL.md §6) end to end: the real varta-watch with a
// UDP listener on loopback, the real varta-beat as agent, and crafted
// datagrams from the test for what no honest agent sends.

var (
	keyCur    = vlp.Key{0x6b, 0x65, 0x79, 0x2d, 0x6e, 0x65, 0x77, 1, 2, 3, 4, 5, 6, 7, 8, 9}
	keyOld    = vlp.Key{0x6b, 0x65, 0x79, 0x2d, 0x6f, 0x6c, 0x64, 9, 8, 7, 6, 5, 4, 3, 2, 1}
	keyMaster = vlp.Key{0x6d, 0x61, 0x73, 0x74, 0x65, 0x72, 0x21}
	keyWrong  = vlp.Key{0x77, 0x72, 0x6f, 0x6e, 0x67}
)

// families are the loopbacks a listener is tested on.
var families = []struct{ name, addr string }{{"ipv4", "127.0.0.1:0"}, {"ipv6", "[::1]:0"}}

// skipNoFamily skips an IPv6 test where the IPv6 loopback cannot be bound.
func skipNoFamily(t *testing.T, name string) {
	t.Helper()
	if name != "ipv6" {
		return
	}
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err == nil {
		defer unix.Close(fd)
		err = unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}})
	}
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
}

// writeKeys writes keys, one per line in hex, to a 0600 file in dir.
func writeKeys(t *testing.T, dir, name string, keys ...vlp.Key) string {
	t.Helper()
	text := "# varta test keys\n"
	for _, k := range keys {
		text += hex.EncodeToString(k[:]) + "\n"
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

var udpListening = regexp.MustCompile(`msg="listening on UDP" addr=(\S+)`)

// startUDP starts varta-watch with the extra flags (which include a UDP
// listener) and returns it with the UDP address as bound.
func startUDP(t *testing.T, extra ...string) (*watcher, string) {
	t.Helper()
	w := startWatch(t, extra...)
	m := udpListening.FindStringSubmatch(w.logText())
	if m == nil {
		t.Fatalf("no UDP listener in the log:\n%s", w.logText())
	}
	return w, m[1]
}

// dialUDP is a UDP socket connected to addr, for crafted datagrams.
func dialUDP(t *testing.T, addr string) *rawSender {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	family, sa := unix.AF_INET6, unix.Sockaddr(&unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()})
	if ip := ap.Addr().Unmap(); ip.Is4() {
		family, sa = unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	return &rawSender{t: t, fd: fd}
}

func aeadFor(t *testing.T, k vlp.Key) cipher.AEAD {
	t.Helper()
	a, err := vlp.NewAEAD(k)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pidKey(family string, pid int) string { return family + `{pid="` + strconv.Itoa(pid) + `"}` }

// TestUDPBeatAndStall: plain, shared-key and master-key agents (the real
// varta-beat) are tracked over IPv4 and IPv6, then stall when they stop.
func TestUDPBeatAndStall(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			if testing.Short() && fam.name != families[0].name {
				t.Skip("slow: one address family is enough for -short; run without -short for the other")
			}
			skipNoFamily(t, fam.name)
			dir := t.TempDir()
			shared := writeKeys(t, dir, "shared.key", keyCur)
			master := writeKeys(t, dir, "master.key", keyMaster)
			w, addr := startUDP(t, "--threshold-ms", "150", "--udp-addr", fam.addr, "--i-accept-plaintext-udp",
				"--key-file", shared, "--master-key-file", master, "--prom-addr", "127.0.0.1:0")
			for _, mode := range []struct{ name, flag, key string }{
				{"plain", "", ""}, {"shared", "--key-file", shared}, {"master", "--master-key-file", master},
			} {
				args := []string{"--udp", addr, "--count", "3", "--interval-ms", "10"}
				if mode.flag != "" {
					args = append(args, mode.flag, mode.key)
				}
				pid := beatWith(t, args...)
				if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
					t.Fatalf("%s: no stall for varta-beat pid %d:\n%s", mode.name, pid, w.logText())
				}
				if n := count(w.eventLines(), "beat", pid); n != 3 {
					t.Errorf("%s: %d beat events, want 3", mode.name, n)
				}
				m := w.scrape()
				if got := m[pidKey("varta_beats_total", pid)]; got != 3 {
					t.Errorf("%s: varta_beats_total = %v, want 3", mode.name, got)
				}
				if got := m[pidKey("varta_status", pid)]; got != 3 {
					t.Errorf("%s: varta_status = %v, want 3 (stall)", mode.name, got)
				}
			}
			m := w.scrape()
			for _, k := range []string{"varta_frame_decrypt_failures_total", "varta_secure_replay_refused_total",
				"varta_udp_plaintext_refused_total", "varta_truncated_datagrams_total"} {
				if m[k] != 0 {
					t.Errorf("%s = %v, want 0", k, m[k])
				}
			}
			if m["varta_udp_senders"] != 2 || m["varta_udp_agent_key_derivations_total"] != 1 {
				t.Errorf("senders %v, derivations %v; want 2 and 1", m["varta_udp_senders"], m["varta_udp_agent_key_derivations_total"])
			}
		})
	}
}

// TestUDPRejections: a replayed datagram, a flipped tag bit, a wrong key,
// a master-key frame speaking for another pid, a plain frame on a secure
// listener and a datagram of no frame's size: each dropped and counted,
// and none creates a pid.
func TestUDPRejections(t *testing.T) {
	for _, fam := range families {
		t.Run(fam.name, func(t *testing.T) {
			skipNoFamily(t, fam.name)
			dir := t.TempDir()
			w, addr := startUDP(t, "--threshold-ms", "60000", "--udp-addr", fam.addr, "--prom-addr", "127.0.0.1:0",
				"--key-file", writeKeys(t, dir, "shared.key", keyCur),
				"--master-key-file", writeKeys(t, dir, "master.key", keyMaster))
			testUDPRejections(t, w, dialUDP(t, addr))
		})
	}
}

func testUDPRejections(t *testing.T, w *watcher, s *rawSender) {
	const good, agent, other = 3_000_001, 3_000_002, 3_000_003
	cur, wrong := aeadFor(t, keyCur), aeadFor(t, keyWrong)
	iv := [vlp.IVRandomSize]byte{1, 2, 3, 4, 5, 6, 7, 8}
	beat := vlp.SealShared(nil, cur, iv, 0, vlp.Frame{Pid: good, Nonce: 1})
	s.send(beat)
	if w.waitEvent(5*time.Second, kindPid("beat", good)) == nil {
		t.Fatalf("no beat for the good frame:\n%s", w.logText())
	}
	flipped := vlp.SealShared(nil, cur, iv, 1, vlp.Frame{Pid: good, Nonce: 2})
	flipped[len(flipped)-1] ^= 0x80
	s.send(beat) // replayed
	s.send(flipped)
	s.send(vlp.SealShared(nil, wrong, iv, 2, vlp.Frame{Pid: good, Nonce: 3}))
	agentKey := aeadFor(t, vlp.AgentKey(keyMaster, agent))
	s.send(vlp.SealMaster(nil, agentKey, agent, iv, 0, vlp.Frame{Pid: other, Nonce: 1}))
	s.send(vlp.Append(nil, vlp.Frame{Pid: other, Nonce: 1}))
	s.send(make([]byte, 61))
	if ev := w.waitEvent(5*time.Second, kindPid("mismatch", agent)); ev == nil || ev[5] != "auth_failure" {
		t.Errorf("mismatch event for the agent pid = %v, want auth_failure", ev)
	}
	w.waitMetric("varta_truncated_datagrams_total", 1, 5*time.Second)
	m := w.scrape()
	want := map[string]float64{
		"varta_secure_replay_refused_total":  1,
		"varta_frame_decrypt_failures_total": 2, // flipped tag bit, wrong key
		"varta_udp_agent_pid_mismatch_total": 1,
		"varta_frame_auth_failures_total":    1,
		"varta_udp_plaintext_refused_total":  1,
		"varta_truncated_datagrams_total":    1,
		"varta_watch_pids_tracked":           1,
		pidKey("varta_beats_total", good):    1,
		"varta_sender_state_full_total":      0,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v", k, m[k], v)
		}
	}
	// Secure failures are not decode errors: the family keeps its 8 kinds.
	var kinds []string
	for k, v := range m {
		if strings.HasPrefix(k, "varta_decode_errors_total{") {
			kinds = append(kinds, k)
			if v != 0 {
				t.Errorf("%s = %v, want 0", k, v)
			}
		}
	}
	if len(kinds) != len(vlp.DecodeErrors) {
		t.Errorf("varta_decode_errors_total has %d kinds, want %d: %v", len(kinds), len(vlp.DecodeErrors), kinds)
	}
	if n := count(w.eventLines(), "beat", good); n != 1 {
		t.Errorf("%d beat events for pid %d, want 1", n, good)
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		body := scrapeBody(t, w.metrics, "")
		if lint := promtoolLint(promtool, body); lint != "" {
			t.Errorf("promtool check metrics:\n%s\non:\n%s", lint, body)
		}
	}
}

// TestUDPKeyRotation: agents keep their key and keep running while the
// observer moves to a new one. The observer first knows only the old key;
// it is restarted on the same port with --key-file new and
// --accepted-key-file old; the running old-key agent is accepted again,
// and a new-key agent too.
func TestUDPKeyRotation(t *testing.T) {
	dir := t.TempDir()
	oldFile := writeKeys(t, dir, "old.key", keyOld)
	newFile := writeKeys(t, dir, "new.key", keyCur)
	accepted := writeKeys(t, dir, "accepted.keys", keyOld, keyCur) // the current key may be listed too
	first, addr := startUDP(t, "--threshold-ms", "60000", "--udp-addr", "127.0.0.1:0", "--key-file", oldFile)

	// The old-key agent beats every 20 ms for 8 s, across the restart.
	agent := testbin.Command(beatBin(t), "--udp", addr, "--key-file", oldFile, "--count", "400", "--interval-ms", "20")
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { agent.Process.Kill(); agent.Wait() })
	oldPid := agent.Process.Pid
	if first.waitEvent(5*time.Second, kindPid("beat", oldPid)) == nil {
		t.Fatalf("first observer: no beat from the old-key agent:\n%s", first.logText())
	}
	first.signal(syscall.SIGTERM)
	if code := first.wait(10 * time.Second); code != 0 {
		t.Fatalf("first observer: exit %d", code)
	}

	second, addr2 := startUDP(t, "--threshold-ms", "60000", "--udp-addr", addr, "--key-file", newFile,
		"--accepted-key-file", accepted, "--prom-addr", "127.0.0.1:0")
	if addr2 != addr {
		t.Fatalf("second observer on %s, want %s", addr2, addr)
	}
	newPid := beatWith(t, "--udp", addr, "--key-file", newFile, "--count", "3", "--interval-ms", "10")
	for _, pid := range []int{oldPid, newPid} {
		if second.waitEvent(5*time.Second, kindPid("beat", pid)) == nil {
			t.Errorf("second observer: no beat from pid %d:\n%s", pid, second.logText())
		}
	}
	// A key nobody accepts any more is refused.
	s := dialUDP(t, addr)
	s.send(vlp.SealShared(nil, aeadFor(t, keyWrong), [vlp.IVRandomSize]byte{9}, 0, vlp.Frame{Pid: 3_000_010, Nonce: 1}))
	if got := second.waitMetric("varta_frame_decrypt_failures_total", 1, 5*time.Second); got != 1 {
		t.Errorf("varta_frame_decrypt_failures_total = %v, want 1", got)
	}
}

// TestUDPKeyFileRefused: a key file that is unsafe or malformed is a
// start-up failure: exit 1, one line naming the flag, the file and what to
// do, and nothing bound.
func TestUDPKeyFileRefused(t *testing.T) {
	dir := t.TempDir()
	good := writeKeys(t, dir, "good.key", keyCur)
	loose := writeKeys(t, dir, "loose.key", keyCur)
	os.Chmod(loose, 0o644)
	group := writeKeys(t, dir, "group.keys", keyCur, keyOld)
	os.Chmod(group, 0o640)
	link := filepath.Join(dir, "link.key")
	os.Symlink(good, link)
	two := writeKeys(t, dir, "two.key", keyCur, keyOld)
	notHex := filepath.Join(dir, "nothex.key")
	os.WriteFile(notHex, []byte(strings.Repeat("zz", 32)+"\n"), 0o600)
	short := filepath.Join(dir, "short.key")
	os.WriteFile(short, []byte("abcdef\n"), 0o600)
	empty := filepath.Join(dir, "empty.key")
	os.WriteFile(empty, []byte("# nothing yet\n"), 0o600)
	cases := []struct {
		name string
		flag string
		path string
		want []string
	}{
		{"world-readable key", "--key-file", loose, []string{"mode 0644", "chmod 600 " + loose}},
		{"group-readable accepted keys", "--accepted-key-file", group, []string{"mode 0640", "chmod 600 " + group}},
		{"symlinked master key", "--master-key-file", link, []string{"symlink", "real file"}},
		{"two keys in --key-file", "--key-file", two, []string{"2 keys", "accepted-keys file"}},
		{"not hex", "--key-file", notHex, []string{"line 1", "column 1 is not a hex digit"}},
		{"too short", "--master-key-file", short, []string{"line 1", "want 64 hex characters"}},
		{"no key", "--accepted-key-file", empty, []string{"no key"}},
		{"missing", "--key-file", filepath.Join(dir, "absent.key"), []string{"no such file"}},
		{"a directory", "--key-file", dir, []string{"not a regular file"}},
	}
	if os.Geteuid() == 0 {
		foreign := writeKeys(t, dir, "foreign.key", keyCur)
		if err := os.Chown(foreign, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name, flag, path string
			want             []string
		}{"owned by another uid", "--key-file", foreign, []string{"uid 65534", "chown 0 " + foreign}})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "obs.sock")
			code, stdout, stderr := runWatch(t, "--socket", sock, "--threshold-ms", "100", "--shutdown-after-secs", "5",
				"--udp-addr", "127.0.0.1:0", tc.flag, tc.path)
			if code != 1 {
				t.Errorf("exit %d, want 1; stderr:\n%s", code, stderr)
			}
			oneLine(t, "stderr", stderr)
			for _, w := range append([]string{tc.flag + ": ", tc.path}, tc.want...) {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, hex.EncodeToString(keyCur[:])) {
				t.Errorf("stderr shows key material: %q", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if _, err := os.Lstat(sock); !os.IsNotExist(err) {
				t.Errorf("a refused start left something at the socket path: %v", err)
			}
		})
	}
}

// TestUDPBadUsage: every bad UDP flag or combination exits 2 with one
// line naming the flag; a plain listener without the explicit opt-in is
// one of them.
func TestUDPBadUsage(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "obs.sock")
	key := writeKeys(t, dir, "shared.key", keyCur)
	base := func(extra ...string) []string {
		return append([]string{"--socket", sock, "--threshold-ms", "100"}, extra...)
	}
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"plain listener without opt-in", base("--udp-addr", "127.0.0.1:9700"),
			[]string{"--udp-addr", "unauthenticated", "--i-accept-plaintext-udp", "--key-file"}},
		{"rust form without opt-in", base("--udp-port", "9700"), []string{"--udp-addr", "--i-accept-plaintext-udp"}},
		{"key file without listener", base("--key-file", key), []string{"--key-file", "needs a UDP listener"}},
		{"accepted keys without listener", base("--accepted-key-file", key), []string{"--accepted-key-file", "--udp-addr"}},
		{"plaintext opt-in without listener", base("--i-accept-plaintext-udp"), []string{"--i-accept-plaintext-udp", "--udp-addr"}},
		{"host name", base("--udp-addr", "example.com:9700", "--key-file", key), []string{"--udp-addr", "IP:PORT"}},
		{"no port", base("--udp-addr=127.0.0.1", "--key-file", key), []string{"--udp-addr", "IP:PORT"}},
		{"ipv6 zone", base("--udp-addr", "[fe80::1%lo]:9700", "--key-file", key), []string{"--udp-addr", "zones"}},
		{"both forms", base("--udp-addr", "127.0.0.1:9700", "--udp-port", "9700", "--key-file", key), []string{"--udp-addr", "--udp-port"}},
		{"bind addr without port", base("--udp-bind-addr", "127.0.0.1", "--key-file", key), []string{"--udp-bind-addr", "--udp-port"}},
		{"port out of range", base("--udp-port", "70000", "--key-file", key), []string{"--udp-port", `"70000"`}},
		{"bind addr a name", base("--udp-port", "9700", "--udp-bind-addr", "eth0", "--key-file", key), []string{"--udp-bind-addr", `"eth0"`}},
		{"udp recovery without command", base("--udp-addr", "127.0.0.1:0", "--key-file", key, "--udp-recovery"),
			[]string{"--udp-recovery", "--recovery-exec"}},
		{"udp recovery without listener", base("--udp-recovery", "--recovery-exec", "/bin/true"), []string{"--udp-recovery", "--udp-addr"}},
		{"plain recovery without plain", base("--udp-addr", "127.0.0.1:0", "--key-file", key, "--recovery-exec", "/bin/true",
			"--plaintext-udp-i-accept-recovery-on-unauthenticated-transport"), []string{"--plaintext-udp-i-accept", "--i-accept-plaintext-udp"}},
		{"secure recovery without keys", base("--udp-addr", "127.0.0.1:0", "--i-accept-plaintext-udp", "--recovery-exec", "/bin/true",
			"--secure-udp-i-accept-recovery-on-unauthenticated-transport"), []string{"--secure-udp-i-accept", "--key-file"}},
		{"secure on every interface", base("--udp-addr", "0.0.0.0:9700", "--key-file", key),
			[]string{"--key-file", "0.0.0.0:9700", "reachable off this host", "--i-accept-secure-udp-non-loopback"}},
		{"rust form secure on a non-loopback address", base("--udp-port", "9700", "--udp-bind-addr", "192.0.2.1", "--master-key-file", key),
			[]string{"--master-key-file", "192.0.2.1:9700", "--i-accept-secure-udp-non-loopback"}},
		{"secure off-host acceptance without keys", base("--udp-addr", "0.0.0.0:9700", "--i-accept-plaintext-udp",
			"--i-accept-secure-udp-non-loopback"), []string{"--i-accept-secure-udp-non-loopback", "--key-file"}},
		{"secure off-host acceptance without listener", base("--i-accept-secure-udp-non-loopback"),
			[]string{"--i-accept-secure-udp-non-loopback", "--udp-addr"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			expectUsageError(t, tc.args, tc.want)
		})
	}
}

// TestUDPPortForms: the Rust original's --udp-port binds 127.0.0.1, plain
// UDP too (the Rust original binds 0.0.0.0 for plain UDP), or
// --udp-bind-addr; every interface only when named, with a warning, and
// for secure UDP only with --i-accept-secure-udp-non-loopback.
func TestUDPPortForms(t *testing.T) {
	key := writeKeys(t, t.TempDir(), "shared.key", keyCur)
	cases := []struct {
		name string
		args []string
		want string // prefix of the bound address
	}{
		{"secure defaults to loopback", []string{"--udp-port", "0", "--key-file", key}, "127.0.0.1:"},
		{"plain defaults to loopback too", []string{"--udp-port", "0", "--i-accept-plaintext-udp"}, "127.0.0.1:"},
		{"plain on every interface when named", []string{"--udp-port", "0", "--udp-bind-addr", "0.0.0.0", "--i-accept-plaintext-udp"}, "0.0.0.0:"},
		{"secure on every interface when accepted", []string{"--udp-port", "0", "--udp-bind-addr", "0.0.0.0", "--key-file", key,
			"--i-accept-secure-udp-non-loopback"}, "0.0.0.0:"},
		{"bind addr", []string{"--udp-port=0", "--udp-bind-addr=127.0.0.1", "--i-accept-plaintext-udp"}, "127.0.0.1:"},
		{"ipv6 bind addr", []string{"--udp-port", "0", "--udp-bind-addr", "::1", "--key-file", key}, "[::1]:"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.want, "[") {
				skipNoFamily(t, "ipv6")
			}
			w, addr := startUDP(t, append([]string{"--threshold-ms", "60000"}, tc.args...)...)
			if !strings.HasPrefix(addr, tc.want) {
				t.Fatalf("bound %s, want %s...", addr, tc.want)
			}
			warned := strings.Contains(w.logText(), `msg="the UDP listener is reachable from other hosts`)
			if anyIf := tc.want == "0.0.0.0:"; warned != anyIf {
				t.Errorf("bound %s: off-host warning %v, want %v:\n%s", addr, warned, anyIf, w.logText())
			}
			target := addr
			if strings.HasPrefix(addr, "0.0.0.0:") {
				target = "127.0.0.1:" + strings.TrimPrefix(addr, "0.0.0.0:")
			}
			args := []string{"--udp", target}
			if slicesContain(tc.args, "--key-file") {
				args = append(args, "--key-file", key)
			}
			if pid := beatWith(t, args...); w.waitEvent(5*time.Second, kindPid("beat", pid)) == nil {
				t.Errorf("no beat over %s:\n%s", target, w.logText())
			}
		})
	}
}

func slicesContain(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// TestUDPOriginConflict: a pid first seen over the Unix socket (kernel
// attested) cannot be taken over by plain or secure UDP frames claiming
// it: each is an origin_conflict mismatch, never a beat.
func TestUDPOriginConflict(t *testing.T) {
	dir := t.TempDir()
	w, addr := startUDP(t, "--threshold-ms", "60000", "--udp-addr", "127.0.0.1:0", "--i-accept-plaintext-udp",
		"--key-file", writeKeys(t, dir, "shared.key", keyCur), "--prom-addr", "127.0.0.1:0")
	pid := int(ourPid())
	dialRaw(t, w.socket).frame(vlp.Frame{Pid: ourPid(), Nonce: 1})
	if w.waitEvent(5*time.Second, kindPid("beat", pid)) == nil {
		t.Fatalf("no beat over the socket:\n%s", w.logText())
	}
	u := dialUDP(t, addr)
	u.send(vlp.Append(nil, vlp.Frame{Pid: ourPid(), Nonce: 2}))
	u.send(vlp.SealShared(nil, aeadFor(t, keyCur), [vlp.IVRandomSize]byte{7}, 0, vlp.Frame{Pid: ourPid(), Nonce: 3}))
	if got := w.waitMetric("varta_origin_conflict_total", 2, 5*time.Second); got != 2 {
		t.Errorf("varta_origin_conflict_total = %v, want 2", got)
	}
	n := 0
	for _, c := range w.eventLines() {
		if kindPid("mismatch", pid)(c) && c[5] == "origin_conflict" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d origin_conflict mismatch events, want 2:\n%v", n, w.eventLines())
	}
	m := w.scrape()
	if m[pidKey("varta_beats_total", pid)] != 1 || count(w.eventLines(), "beat", pid) != 1 {
		t.Errorf("UDP frames counted as beats of the socket agent: %v", m[pidKey("varta_beats_total", pid)])
	}
}

// TestUDPRecovery: a UDP agent's stall runs the recovery command only when
// the operator opted the listener in; by default recovery skips it as
// unattested.
func TestUDPRecovery(t *testing.T) {
	for _, tc := range []struct {
		name    string
		extra   []string
		outcome string
	}{
		{"default", nil, "refused_unauthenticated_transport"},
		{"udp-recovery", []string{"--udp-recovery"}, "spawned"},
		{"rust per-kind opt-in", []string{"--plaintext-udp-i-accept-recovery-on-unauthenticated-transport"}, "spawned"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--threshold-ms", "100", "--udp-addr", "127.0.0.1:0", "--i-accept-plaintext-udp",
				"--recovery-exec", "/bin/true", "--prom-addr", "127.0.0.1:0"}, tc.extra...)
			w, addr := startUDP(t, args...)
			pid := beatWith(t, "--udp", addr)
			if w.waitEvent(5*time.Second, kindPid("stall", pid)) == nil {
				t.Fatalf("no stall:\n%s", w.logText())
			}
			key := `varta_recovery_outcomes_total{outcome="` + tc.outcome + `"}`
			if got := w.waitMetric(key, 1, 5*time.Second); got != 1 {
				t.Errorf("%s = %v, want 1", key, got)
			}
			other := `varta_recovery_outcomes_total{outcome="spawned"}`
			if tc.outcome == "spawned" {
				other = `varta_recovery_outcomes_total{outcome="refused_unauthenticated_transport"}`
			}
			if got := w.scrape()[other]; got != 0 {
				t.Errorf("%s = %v, want 0", other, got)
			}
		})
	}
}

// TestUDPHelp: the help names every UDP flag.
func TestUDPHelp(t *testing.T) {
	code, stdout, _ := runWatch(t, "--help")
	if code != 0 {
		t.Fatalf("--help: exit %d", code)
	}
	for _, f := range []string{"--udp-addr", "--udp-port", "--udp-bind-addr", "--key-file", "--accepted-key-file",
		"--master-key-file", "--i-accept-plaintext-udp", "--udp-recovery"} {
		if !strings.Contains(stdout, f) {
			t.Errorf("help does not mention %s", f)
		}
	}
}
