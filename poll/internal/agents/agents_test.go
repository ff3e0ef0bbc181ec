package agents

import (
	"errors"
	"strings"
	"testing"
)

const example = `# declared agents
sshd    exe=/usr/sbin/sshd threshold-ms=5000 expect-within-ms=30000
worker  exe=/usr/bin/python3 arg=/opt/worker.py recovery-exec="/bin/sh -c 'echo {pid} >> /tmp/w'" escalate-after=3
api     exe=/usr/bin/node cgroup=/system.slice/api.service/
hinted  comm=myd
`

func TestParseExample(t *testing.T) {
	f, err := Parse(strings.NewReader(example), "agents.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Agents) != 4 || !f.NeedArgs || !f.NeedCgroup {
		t.Fatalf("parsed %+v", f)
	}
	w := f.Agents[1]
	if w.Name != "worker" || w.Arg != "/opt/worker.py" || w.EscalateAfter != 3 || w.Recovery == nil ||
		strings.Join(w.Recovery.Args, "|") != "/bin/sh|-c|echo {pid} >> /tmp/w" || w.Line != 3 {
		t.Errorf("worker = %+v (args %q)", w, w.Recovery.Args)
	}
	if s := f.Agents[0]; s.ThresholdMs != 5000 || s.ExpectWithinMs != 30000 || s.Recovery != nil {
		t.Errorf("sshd = %+v", s)
	}
	if a := f.Agents[2]; a.Cgroup != "/system.slice/api.service" {
		t.Errorf("api cgroup %q: the trailing slash is dropped", a.Cgroup)
	}
	if !f.Agents[3].WeakOnly() || f.Agents[0].WeakOnly() {
		t.Errorf("WeakOnly wrong")
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"a exe=/x\na exe=/y\n", "line 2: agent \"a\" is already declared on line 1"},
		{"a\n", "line 1: no way to recognise it"},
		{"a exe=relative\n", "line 1: exe: want an absolute path"},
		{"a exe=/x threshold-ms=5\n", "line 1: threshold-ms: want a number from 10"},
		{"a exe=/x colour=red\n", "line 1: colour: unknown setting"},
		{"a exe=/x recovery-exec=\"unbalanced\n", "line 1: "},
		{"bad/name exe=/x\n", "line 1: name \"bad/name\""},
		{"a exe=/x novalue\n", "line 1: \"novalue\": want key=value"},
		{"a comm=waytoolongforacomm\n", "line 1: comm: the kernel keeps at most 15 bytes"},
		{"a exe=/x " + strings.Repeat("y", 5000) + "\n", "line 1: a line longer"},
	} {
		_, err := Parse(strings.NewReader(c.text), "f")
		var e *Error
		if !errors.As(err, &e) || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "agents file f") {
			t.Errorf("Parse(%q) = %v, want an *Error containing %q", c.text, err, c.want)
		}
	}
	var many strings.Builder
	for i := range MaxAgents + 1 {
		many.WriteString("a" + strings.Repeat("x", i%10) + string(rune('0'+i/100)) + string(rune('0'+i/10%10)) + string(rune('0'+i%10)) + " exe=/x\n")
	}
	if _, err := Parse(strings.NewReader(many.String()), "f"); err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Errorf("257 agents: %v", err)
	}
}

func TestMatch(t *testing.T) {
	f, err := Parse(strings.NewReader(example), "f")
	if err != nil {
		t.Fatal(err)
	}
	p := func(exe, comm, cg string, args ...string) *Process {
		q := &Process{Exe: []byte(exe), Comm: []byte(comm), Cgroup: []byte(cg)}
		for _, a := range args {
			q.Args = append(q.Args, []byte(a))
		}
		return q
	}
	for _, c := range []struct {
		p    *Process
		want int
	}{
		{p("/usr/sbin/sshd", "sshd", "/"), 0},
		{p("/usr/bin/python3", "python3", "/", "-u", "/opt/worker.py"), 1},
		{p("/usr/bin/python3", "python3", "/", "/opt/other.py"), -1},
		{p("/usr/bin/node", "node", "/system.slice/api.service"), 2},
		{p("/usr/bin/node", "node", "/system.slice/api.service/sub"), 2},
		{p("/usr/bin/node", "node", "/system.slice/api.service2"), -1},
		{p("/opt/myd", "myd", "/"), 3},
		{p("/opt/other", "other", "/"), -1},
	} {
		if got := f.Match(c.p); got != c.want {
			t.Errorf("Match(%s %q %s) = %d, want %d", c.p.Exe, c.p.Args, c.p.Cgroup, got, c.want)
		}
	}
	var none *File
	if none.Match(p("/x", "x", "/")) != -1 || none.Index("x") != -1 || f.Index("api") != 2 {
		t.Errorf("Index or a nil file wrong")
	}
}

// TestExampleFileParses keeps cmd/varta-watch/init/agents.conf, the
// example operators copy, a file the observer takes.
func TestExampleFileParses(t *testing.T) {
	f, err := Load("../../../cmd/varta-watch/init/agents.conf")
	if err != nil {
		t.Fatal(err)
	}
	if len(f.Agents) != 3 || !f.NeedArgs || !f.NeedCgroup || f.Agents[1].EscalateAfter != 3 {
		t.Errorf("example: %+v", f)
	}
}
