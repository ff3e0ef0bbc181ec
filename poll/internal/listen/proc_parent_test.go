package listen

import (
	"os"
	"os/exec"
	"testing"

	"github.com/varta-go/varta/poll/internal/testutil"
)

func TestProcParentPid(t *testing.T) {
	testutil.RequireProc(t)
	if got, ok := ProcParentPid(uint32(os.Getpid())); !ok || got != uint32(os.Getppid()) {
		t.Errorf("ProcParentPid(self) = %d, %v, want %d, true", got, ok, os.Getppid())
	}
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep:", err)
	}
	child := testutil.StartChild(t, sleep)
	pid := uint32(child.Process.Pid)
	if got, ok := ProcParentPid(pid); !ok || got != uint32(os.Getpid()) {
		t.Errorf("ProcParentPid(child) = %d, %v, want us (%d)", got, ok, os.Getpid())
	}
	child.Process.Kill()
	child.Wait()
	if got, ok := ProcParentPid(pid); ok {
		t.Errorf("ProcParentPid(reaped child) = %d, true, want false", got)
	}
}

func TestProcStatField(t *testing.T) {
	const stat = "1234 (a) b (c) S 99 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 777 1000 100\n"
	for _, tc := range []struct {
		name  string
		stat  string
		field int
		want  uint64
		ok    bool
	}{
		{"ppid after odd comm", stat, 4, 99, true},
		{"starttime", stat, 22, 777, true},
		{"last field is not trusted", "1 (x) S 2 3", 5, 0, false},
		{"state is not a number", stat, 3, 0, false},
		{"no comm", "1 x S 2 3", 4, 0, false},
		{"field 2 is not numeric", stat, 2, 0, false},
		{"empty field", "1 (x) S  3 4", 4, 0, false},
		{"overflow", "1 (x) S 99999999999999999999999 3", 4, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, ok := procStatField([]byte(tc.stat), tc.field); got != tc.want || ok != tc.ok {
				t.Errorf("procStatField(%q, %d) = %d, %v, want %d, %v", tc.stat, tc.field, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestProcParentPidNoAllocs(t *testing.T) {
	testutil.RequireProc(t)
	if testutil.RaceEnabled {
		t.Skip("the race detector allocates in syscalls")
	}
	pid := uint32(os.Getpid())
	if a := testing.AllocsPerRun(100, func() { ProcParentPid(pid) }); a != 0 {
		t.Errorf("ProcParentPid allocates %v times, want 0", a)
	}
}
