package statefile

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/vlp"
)

// The file, version 1 (cmd/varta-watch/README.md, "State file"):
//
//	varta-watch state 1
//	boot_id <the kernel's boot id>
//	written_boottime_ns <CLOCK_BOOTTIME at writing>
//	agent <pid> <start> <nonce> <status> <payload> <last_boottime_ns> <stalled 0|1> <beats> <stalls> <name> <exe>
//	end <number of agent lines>
//
// name and exe are Go-quoted strings (bytes the agent chose, escaped); the
// end line tells a whole file from one cut short.
const (
	magic       = "varta-watch state"
	Version     = 1
	maxLine     = 64 + 2*(4*256+2) // two quoted fields at their widest and the numbers
	saveBufSize = 16 << 10
)

// Agent is one remembered agent.
type Agent struct {
	Pid      uint32
	Start    uint64 // process start time, clock ticks since boot
	Nonce    uint64 // of its last accepted frame
	Status   vlp.Status
	Payload  uint32
	LastBoot int64 // CLOCK_BOOTTIME of its last accepted frame, ns
	Stalled  bool  // its current silence's stall was raised (and handed to recovery)
	Beats    uint64
	Stalls   uint64
	Name     []byte
	Exe      []byte
}

// File is a state file read back.
type File struct {
	BootID  string
	Written int64 // CLOCK_BOOTTIME at writing, ns
	Agents  []Agent
}

// ErrDamaged is wrapped by every error about a file that is not a whole
// state file of a version this observer reads.
var ErrDamaged = errors.New("not a whole state file of version " + strconv.Itoa(Version))

// Read reads the state file at path. A missing file is (nil, nil): the
// first start. Any other failure names the file; a file that is not a
// whole, known state file wraps ErrDamaged.
func Read(path string) (*File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err == unix.ENOENT {
		return nil, nil
	}
	if err != nil {
		return nil, &sysfile.Error{What: "state file", Path: path, Problem: "cannot open it", Err: err,
			Hint: "check the path and its permissions (--state-file)"}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	st, err := parse(bufio.NewReaderSize(f, 4096))
	if err != nil {
		return nil, &sysfile.Error{What: "state file", Path: path, Problem: "cannot be read back", Err: err,
			Hint: "it is ignored; the observer writes a new one"}
	}
	return st, nil
}

func damaged(line int, what string) error {
	return errors.Join(ErrDamaged, errors.New("line "+strconv.Itoa(line)+": "+what))
}

func parse(r *bufio.Reader) (*File, error) {
	st := &File{}
	n, ended := 0, false
	for {
		raw, err := r.ReadSlice('\n')
		if err == io.EOF && len(raw) == 0 {
			break
		}
		if err != nil {
			if err == bufio.ErrBufferFull {
				return nil, damaged(n+1, "a line longer than any the observer writes")
			}
			if err != io.EOF {
				return nil, err
			}
			return nil, damaged(n+1, "the last line has no newline (the file was cut short)")
		}
		n++
		line := string(bytes.TrimSuffix(raw, []byte{'\n'}))
		if ended {
			return nil, damaged(n, "text after the end line")
		}
		key, rest, _ := strings.Cut(line, " ")
		switch {
		case n == 1:
			if line != magic+" "+strconv.Itoa(Version) {
				return nil, damaged(n, "want "+strconv.Quote(magic+" "+strconv.Itoa(Version))+", found "+strconv.Quote(line))
			}
		case n == 2 && key == "boot_id" && rest != "":
			st.BootID = rest
		case n == 3 && key == "written_boottime_ns":
			v, err := strconv.ParseInt(rest, 10, 64)
			if err != nil {
				return nil, damaged(n, "bad written_boottime_ns")
			}
			st.Written = v
		case n > 3 && key == "agent":
			a, err := parseAgent(rest)
			if err != nil {
				return nil, damaged(n, err.Error())
			}
			st.Agents = append(st.Agents, a)
		case n > 3 && key == "end":
			if c, err := strconv.Atoi(rest); err != nil || c != len(st.Agents) {
				return nil, damaged(n, "the end line counts "+rest+" agents, the file has "+strconv.Itoa(len(st.Agents)))
			}
			ended = true
		default:
			return nil, damaged(n, "unexpected "+strconv.Quote(key))
		}
	}
	if !ended {
		return nil, damaged(n, "no end line (the file was cut short)")
	}
	return st, nil
}

func parseAgent(s string) (Agent, error) {
	var a Agent
	var nums [9]uint64
	for i := range nums {
		f, rest, ok := strings.Cut(s, " ")
		if !ok {
			return a, errors.New("an agent line with too few fields")
		}
		s = rest
		if i == 3 { // the status, in words
			st, ok := vlp.ParseStatus(f)
			if !ok {
				return a, errors.New("bad status " + strconv.Quote(f))
			}
			a.Status = st
			continue
		}
		v, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return a, errors.New("bad number " + strconv.Quote(f))
		}
		nums[i] = v
	}
	if nums[0] < 2 || nums[0] > 1<<22 || nums[4] > 1<<32-1 || nums[6] > 1 || nums[5] > 1<<63-1 {
		return a, errors.New("a value out of range")
	}
	a.Pid, a.Start, a.Nonce, a.Payload = uint32(nums[0]), nums[1], nums[2], uint32(nums[4])
	a.LastBoot, a.Stalled, a.Beats, a.Stalls = int64(nums[5]), nums[6] == 1, nums[7], nums[8]
	name, rest, err := unquoteField(s)
	if err != nil {
		return a, err
	}
	exe, rest, err := unquoteField(strings.TrimPrefix(rest, " "))
	if err != nil || rest != "" {
		return a, errors.New("bad name or program field")
	}
	a.Name, a.Exe = []byte(name), []byte(exe)
	return a, nil
}

func unquoteField(s string) (string, string, error) {
	q, err := strconv.QuotedPrefix(s)
	if err != nil {
		return "", "", errors.New("bad quoted field")
	}
	v, err := strconv.Unquote(q)
	return v, s[len(q):], err
}

// BootID is the kernel's id of this boot (a new one at every boot).
func BootID() (string, error) {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", errors.New("/proc/sys/kernel/random/boot_id is empty")
	}
	return id, nil
}
