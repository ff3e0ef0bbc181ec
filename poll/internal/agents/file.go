package agents

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/varta-go/varta/recovery"
)

// The file (cmd/varta-watch/README.md, "Declared agents"): one agent per
// line, a name then key=value settings, split as --recovery-exec is (single
// and double quotes, backslash escapes, no expansion); # starts a comment
// line.
//
//	sshd    exe=/usr/sbin/sshd threshold-ms=5000 expect-within-ms=30000
//	worker  exe=/usr/bin/python3 arg=/opt/worker.py recovery-exec="/etc/init.d/worker restart"
const (
	// MaxAgents bounds the declared agents.
	MaxAgents = 256
	// MaxName bounds a declared name: it appears in log lines, metric
	// labels and the status table.
	MaxName = 32
	// maxLine bounds a line.
	maxLine = 4096
)

// Agent is one declared agent.
type Agent struct {
	Name string
	// How its process is recognised: every given criterion must hold.
	Exe    string // the program (/proc/PID/exe), an absolute path
	Arg    string // one of its arguments after the program, exactly
	Cgroup string // its cgroup v2 path, or one below it
	Comm   string // its process name: a hint any process can set
	// What is particular to it; zero means the global flag's.
	ThresholdMs    int64
	Recovery       *recovery.Command
	ExpectWithinMs int64 // must be beating this long after start or its last exit; 0 none
	EscalateAfter  int
	Line           int // where it is declared, for messages
}

// WeakOnly reports whether only the process name identifies the agent.
func (a *Agent) WeakOnly() bool { return a.Exe == "" && a.Arg == "" && a.Cgroup == "" }

// File is a parsed agents file.
type File struct {
	Path   string
	Agents []Agent
	// NeedArgs and NeedCgroup say whether any agent matches on an
	// argument or a cgroup, so the observer reads those only then.
	NeedArgs, NeedCgroup bool
}

// Error is a bad agents file: the file, the line, what is wrong.
type Error struct {
	Path string
	Line int // 0: the file as a whole
	What string
	Err  error
}

func (e *Error) Error() string {
	s := "agents file " + e.Path
	if e.Line > 0 {
		s += " line " + strconv.Itoa(e.Line)
	}
	s += ": " + e.What
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Load reads and parses the agents file at path.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Path: path, What: "cannot open it (check --agents-file)", Err: err}
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse parses an agents file read from r; path names it in errors.
func Parse(r io.Reader, path string) (*File, error) {
	out := &File{Path: path}
	br := bufio.NewReaderSize(r, maxLine)
	names := map[string]int{}
	for n := 1; ; n++ {
		raw, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			return nil, &Error{Path: path, Line: n, What: "a line longer than " + strconv.Itoa(maxLine) + " bytes"}
		}
		if err != nil && err != io.EOF {
			return nil, &Error{Path: path, What: "cannot read it", Err: err}
		}
		line := strings.TrimSpace(string(bytes.TrimSuffix(raw, []byte{'\n'})))
		if line != "" && line[0] != '#' {
			a, perr := parseLine(line, n)
			if perr != nil {
				return nil, &Error{Path: path, Line: n, What: perr.Error()}
			}
			if prev, dup := names[a.Name]; dup {
				return nil, &Error{Path: path, Line: n, What: "agent " + strconv.Quote(a.Name) + " is already declared on line " + strconv.Itoa(prev)}
			}
			if len(out.Agents) == MaxAgents {
				return nil, &Error{Path: path, Line: n, What: "more than " + strconv.Itoa(MaxAgents) + " agents"}
			}
			names[a.Name] = n
			out.Agents = append(out.Agents, a)
			out.NeedArgs = out.NeedArgs || a.Arg != ""
			out.NeedCgroup = out.NeedCgroup || a.Cgroup != ""
		}
		if err == io.EOF {
			return out, nil
		}
	}
}

func parseLine(line string, n int) (Agent, error) {
	words, err := recovery.SplitWords(line)
	if err != nil {
		return Agent{}, err
	}
	a := Agent{Name: words[0], Line: n}
	if !validName(a.Name) {
		return a, errors.New("name " + strconv.Quote(a.Name) + ": want 1 to " + strconv.Itoa(MaxName) +
			" letters, digits, '.', '_', '-' or '@'")
	}
	for _, w := range words[1:] {
		key, val, ok := strings.Cut(w, "=")
		if !ok || val == "" {
			return a, errors.New(strconv.Quote(w) + ": want key=value")
		}
		if err := a.set(key, val); err != nil {
			return a, errors.New(key + ": " + err.Error())
		}
	}
	if a.Exe == "" && a.Comm == "" {
		return a, errors.New("no way to recognise it: give exe= (and arg= or cgroup= where programs are shared), or comm=")
	}
	return a, nil
}

// The bounds of the numbers, as the command line's flags have them.
const (
	minThresholdMs = 10
	maxThresholdMs = 604_800_000
	maxExpectMs    = 604_800_000
	maxEscalate    = 1000
)

func (a *Agent) set(key, val string) error {
	var err error
	switch key {
	case "exe":
		if !strings.HasPrefix(val, "/") {
			return errors.New("want an absolute path, got " + strconv.Quote(val))
		}
		a.Exe = val
	case "arg":
		a.Arg = val
	case "cgroup":
		if !strings.HasPrefix(val, "/") {
			return errors.New("want a cgroup path from the cgroup root, such as /system.slice/x.service")
		}
		a.Cgroup = strings.TrimSuffix(val, "/")
	case "comm":
		if len(val) > 15 {
			return errors.New("the kernel keeps at most 15 bytes of a process name")
		}
		a.Comm = val
	case "threshold-ms":
		a.ThresholdMs, err = number(val, minThresholdMs, maxThresholdMs)
	case "expect-within-ms":
		a.ExpectWithinMs, err = number(val, 1, maxExpectMs)
	case "escalate-after":
		var v int64
		v, err = number(val, 1, maxEscalate)
		a.EscalateAfter = int(v)
	case "recovery-exec":
		var c recovery.Command
		if c, err = recovery.ParseCommand(val); err == nil {
			a.Recovery = &c
		}
	default:
		return errors.New("unknown setting; known: exe, arg, cgroup, comm, threshold-ms, recovery-exec, expect-within-ms, escalate-after")
	}
	return err
}

func number(s string, lo, hi int64) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < lo || v > hi {
		return 0, errors.New("want a number from " + strconv.FormatInt(lo, 10) + " to " + strconv.FormatInt(hi, 10) + ", got " + strconv.Quote(s))
	}
	return v, nil
}

func validName(s string) bool {
	if s == "" || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '@') {
			return false
		}
	}
	return true
}
