package recoverylog

import (
	"slices"
	"testing"
)

func TestEnvEscapesWhatTheAgentChose(t *testing.T) {
	got := Env(Agent{Pid: 42, Known: true, Name: []byte("bad\nname\xff"), SilentNs: 2_500_000_000, Gone: true})
	want := []string{"VARTA_AGENT_PID=42", `VARTA_AGENT_NAME=bad\nname\xff`, `VARTA_AGENT_EXE=bad\nname\xff`,
		"VARTA_SILENT_MS=2500", "VARTA_AGENT_GONE=1"}
	if !slices.Equal(got, want) {
		t.Errorf("Env = %q\nwant  %q", got, want)
	}
	got = Env(Agent{Pid: 7, Known: true, Name: []byte("svc"), Exe: []byte("/usr/bin/svc")})
	if got[2] != "VARTA_AGENT_EXE=/usr/bin/svc" || len(got) != 4 {
		t.Errorf("Env with a program path = %q", got)
	}
	if got = Env(Agent{Pid: 9}); !slices.Equal(got, []string{"VARTA_AGENT_PID=9"}) {
		t.Errorf("Env of an unknown agent = %q", got)
	}
}

func TestFirstLine(t *testing.T) {
	long := make([]byte, 300)
	for i := range long {
		long[i] = 'x'
	}
	for _, c := range []struct {
		in   []byte
		want string
	}{{nil, "-"}, {[]byte("\nsecond"), "-"}, {[]byte("first\nsecond"), "first"}, {long, string(long[:200])}} {
		if got := firstLine(c.in); got != c.want {
			t.Errorf("firstLine(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
