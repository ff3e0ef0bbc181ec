package listen

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/varta-go/varta/poll/internal/testutil"
)

// naiveStartTime is the obvious, allocating way to read field 22
// (starttime, proc(5)); it names the field itself rather than borrow
// procStartField from the code under test.
func naiveStartTime(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatalf("reading stat of %d: %v", pid, err)
	}
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, err := strconv.ParseUint(fields[22-3], 10, 64) // fields starts at field 3, the state
	if err != nil {
		t.Fatalf("stat of %d: field 22: %v", pid, err)
	}
	return v
}

func TestProcStartTimeSelf(t *testing.T) {
	testutil.RequireProc(t)
	pid := os.Getpid()
	got, ok := ProcStartTime(uint32(pid))
	if want := naiveStartTime(t, pid); !ok || got != want {
		t.Errorf("ProcStartTime(%d) = %d, %v, want %d, true", pid, got, ok, want)
	}
}

func TestProcStartTimeChild(t *testing.T) {
	testutil.RequireProc(t)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep:", err)
	}
	odd := filepath.Join(t.TempDir(), "a) b (c")
	copyExecutable(t, sleep, odd)

	for _, tc := range []struct{ name, program string }{
		{"sleep", sleep},
		{"comm with ') (' in it", odd},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := testutil.StartChild(t, tc.program)
			pid := cmd.Process.Pid
			got, ok := ProcStartTime(uint32(pid))
			if want := naiveStartTime(t, pid); !ok || got != want {
				t.Errorf("ProcStartTime(%d) = %d, %v, want %d, true", pid, got, ok, want)
			}
			if self := naiveStartTime(t, os.Getpid()); got < self {
				t.Errorf("ProcStartTime(child %d) = %d, before the test's own %d", pid, got, self)
			}
			if tc.program == odd {
				b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
				if !strings.Contains(string(b), "(a) b (c)") {
					t.Errorf("stat of %d = %q, want comm %q", pid, b, "a) b (c")
				}
			}
			cmd.Process.Kill()
			cmd.Wait() // reaped: the pid no longer exists
			if got, ok := ProcStartTime(uint32(pid)); ok {
				t.Errorf("ProcStartTime(%d) after reap = %d, true, want false", pid, got)
			}
		})
	}
}

func copyExecutable(t *testing.T, from, to string) {
	t.Helper()
	src, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestProcStartTimeMissing(t *testing.T) {
	for _, pid := range []uint32{0, 1<<32 - 1, 1 << 30} {
		if got, ok := ProcStartTime(pid); ok {
			t.Errorf("ProcStartTime(%d) = %d, true, want false", pid, got)
		}
	}
}

func TestParseProcStartTime(t *testing.T) {
	// Field k holds k (field 3, the state, is S) except starttime, 4242.
	const upTo21 = " S 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21"
	const tail = upTo21 + " 4242 23 24"
	tests := []struct {
		name string
		stat string
		want uint64
		ok   bool
	}{
		{"plain", "77 (sleep)" + tail, 4242, true},
		{"comm with ') ('", "77 (a) b (c)" + tail, 4242, true},
		{"comm of a paren", "77 ())" + tail, 4242, true},
		{"comm with spaces and digits", "77 (1 2 3 4 5 6)" + tail, 4242, true},
		{"newline ends a later field", "77 (x)" + tail + "\n", 4242, true},
		{"starttime is the last field", "77 (x)" + upTo21 + " 4242", 0, false},
		{"cut before starttime", "77 (x) S 1 2 3", 0, false},
		{"no paren", "77 x" + tail, 0, false},
		{"empty", "", 0, false},
		{"starttime not a number", "77 (x)" + upTo21 + " 42x2 23", 0, false},
		{"starttime empty", "77 (x)" + upTo21 + "  23", 0, false},
		{"starttime max", "77 (x)" + upTo21 + " 1844674407370955160 23", 1844674407370955160, true},
		{"starttime overflows", "77 (x)" + upTo21 + " 99999999999999999999 23", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := parseProcStartTime([]byte(tc.stat))
			if got != tc.want || ok != tc.ok {
				t.Errorf("parseProcStartTime(%q) = %d, %v, want %d, %v", tc.stat, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestProcPutPid(t *testing.T) {
	for _, v := range []uint32{0, 7, 10, 4242, 1<<32 - 1} {
		var b [10]byte
		n := procPutPid(b[:], v)
		if got, want := string(b[:n]), strconv.FormatUint(uint64(v), 10); got != want {
			t.Errorf("procPutPid(%d) = %q, want %q", v, got, want)
		}
	}
}

var trkSinkStart uint64

func BenchmarkProcStartTime(b *testing.B) {
	pid := uint32(os.Getpid())
	b.ReportAllocs()
	for b.Loop() {
		trkSinkStart, _ = ProcStartTime(pid)
	}
}

func TestProcCommAndExe(t *testing.T) {
	testutil.RequireProc(t)
	self := uint32(os.Getpid())
	var name [CommMax]byte
	n, ok := ProcComm(self, &name)
	want, _ := os.ReadFile("/proc/self/comm")
	if !ok || string(name[:n]) != strings.TrimSuffix(string(want), "\n") {
		t.Errorf("ProcComm(self) = %q, %v; want %q", name[:n], ok, want)
	}
	var buf [256]byte
	n, ok = ProcExe(self, buf[:])
	exe, _ := os.Readlink("/proc/self/exe")
	if !ok || string(buf[:n]) != exe[:min(len(exe), len(buf))] {
		t.Errorf("ProcExe(self) = %q, %v; want %q", buf[:n], ok, exe)
	}
	if _, ok := ProcComm(1<<31, &name); ok {
		t.Error("ProcComm of a pid no process has succeeded")
	}
	if !testutil.RaceEnabled {
		if a := testing.AllocsPerRun(50, func() { ProcComm(self, &name); ProcExe(self, buf[:]) }); a != 0 {
			t.Errorf("ProcComm and ProcExe: %v allocs, want 0", a)
		}
	}
}
