package main

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

func buildBeat(t *testing.T) string {
	return testbin.Build(t, "github.com/varta-go/varta/cmd/varta-beat")
}

// credReceiver is an independent VLP receiver: it shares no code with vlp,
// checks the CRC with hash/crc32 directly and takes the sender's pid from
// the kernel (SCM_CREDENTIALS).
type credFrame struct {
	kernelPid int32
	pid       uint32
	status    byte
	nonce     uint64
	payload   uint32
	crcOK     bool
}

func bindCred(t *testing.T, path string) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Sec: 5}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	return fd
}

func recvCred(t *testing.T, fd int) credFrame {
	t.Helper()
	buf := make([]byte, 64)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, 0)
	for err == unix.EINTR { // SO_RCVTIMEO makes a signal (SIGCHLD, SIGURG) end the wait early
		n, oobn, _, _, err = unix.Recvmsg(fd, buf, oob, 0)
	}
	if err != nil {
		t.Fatalf("recvmsg: %v", err)
	}
	if n != 32 || buf[0] != 'V' || buf[1] != 'A' || buf[2] != 2 {
		t.Fatalf("not a VLP v2 frame: %x", buf[:n])
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control message: %v (%d)", err, len(msgs))
	}
	cred, err := unix.ParseUnixCredentials(&msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	sum := crc32.Checksum(buf[:28], crc32.MakeTable(crc32.Castagnoli))
	return credFrame{
		kernelPid: cred.Pid,
		pid:       binary.LittleEndian.Uint32(buf[4:]),
		status:    buf[3],
		nonce:     binary.LittleEndian.Uint64(buf[16:]),
		payload:   binary.LittleEndian.Uint32(buf[24:]),
		crcOK:     binary.LittleEndian.Uint32(buf[28:]) == sum,
	}
}

func TestFramesAcceptedByIndependentReceiver(t *testing.T) {
	bin := buildBeat(t)
	path := filepath.Join(t.TempDir(), "obs.sock")
	fd := bindCred(t, path)
	const n = 5
	cmd := testbin.Command(bin, "--socket", path, "--count", "5", "--interval-ms=1",
		"--status", "degraded", "--payload", "77", "--terminal")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("varta-beat: %v\n%s", err, out)
	}
	for i := uint64(1); i <= n+1; i++ {
		f := recvCred(t, fd)
		want := i
		wantStatus := byte(1)
		if i == n+1 { // the dying gasp
			want, wantStatus = ^uint64(0), 2
		}
		if !f.crcOK || f.nonce != want || f.status != wantStatus || f.payload != 77 {
			t.Errorf("frame %d = %+v, want nonce %d status %d payload 77 and a good CRC", i, f, want, wantStatus)
		}
		if int(f.pid) != cmd.Process.Pid || f.kernelPid != int32(cmd.Process.Pid) {
			t.Errorf("frame %d pid %d, kernel says %d, varta-beat ran as %d", i, f.pid, f.kernelPid, cmd.Process.Pid)
		}
	}
}

func TestExitCodes(t *testing.T) {
	bin := buildBeat(t)
	dir := t.TempDir()
	live := filepath.Join(dir, "live.sock")
	bindCred(t, live)
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no observer", []string{"--socket", filepath.Join(dir, "none.sock")}, 1, "no observer"},
		{"queue full", []string{"--socket", live, "--count", "40", "--interval-ms", "0"}, 1, "queue full"},
		{"missing socket", nil, 2, "--socket PATH or --udp HOST:PORT is required"},
		{"unknown flag", []string{"--socket", live, "--bogus"}, 2, "bogus"},
		{"bad status", []string{"--socket", live, "--status", "stall"}, 2, "--status"},
		{"bad payload", []string{"--socket", live, "--payload", "4294967296"}, 2, "--payload"},
		{"stray argument", []string{"--socket", live, "extra"}, 2, "unexpected argument"},
		{"socket path too long", []string{"--socket", "/" + strings.Repeat("a", 107)}, 2, "107 bytes"},
		{"help", []string{"--help"}, 0, "usage: varta-beat"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out := runBeat(t, bin, tc.args, tc.code, tc.msg)
			if code != 0 && strings.Count(strings.TrimSpace(string(out)), "\n") != 0 {
				t.Errorf("varta-beat %v printed more than one line: %q", tc.args, out)
			}
		})
	}
}

// runBeat runs varta-beat and checks its exit code and that its output
// holds msg; it returns both.
func runBeat(t *testing.T, bin string, args []string, wantCode int, msg string) (int, []byte) {
	t.Helper()
	out, err := testbin.Command(bin, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code != wantCode || !strings.Contains(string(out), msg) {
		t.Errorf("varta-beat %v: exit %d %q, want exit %d containing %q", args, code, out, wantCode, msg)
	}
	return code, out
}

func TestMain(m *testing.M) {
	// Keep a slow machine from hanging the suite on a blocked receive.
	time.AfterFunc(5*time.Minute, func() { panic("varta-beat tests took over 5 minutes") })
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
