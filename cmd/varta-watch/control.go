package main

// The control socket from the command line (cmd/varta-watch/README.md,
// "Status and maintenance"): --control-socket, the status, pause and
// resume client commands, and --check-config.

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/recovery"
)

// controlSuffix makes the default control socket path from --socket's.
const controlSuffix = ".ctl"

// controlWait bounds the client's wait for a complete answer; the
// observer cuts a connection off after 5 s anyway.
const controlWait = 10 * time.Second

// checkControl settles --control-socket: absent, the --socket path plus
// .ctl; "none", no control socket.
func (s *settings) checkControl() error {
	switch s.control {
	case "none":
		s.cfg.ControlSocket = ""
		return nil
	case "":
		if p := s.cfg.SocketPath + controlSuffix; len(p) > 107 {
			return bad("control-socket", "the default, the --socket path plus "+controlSuffix+", is longer than the 107 bytes "+
				"a Unix socket address holds; give --control-socket PATH, or none")
		}
		s.cfg.ControlSocket = s.cfg.SocketPath + controlSuffix
		return nil
	}
	switch {
	case len(s.control) > 107:
		return bad("control-socket", "path is longer than the 107 bytes a Unix socket address holds")
	case s.control[0] == '@':
		return bad("control-socket", "abstract socket names are not supported; give a filesystem path")
	case s.control == s.cfg.SocketPath:
		return bad("control-socket", "must not be the --socket path; the default is that path plus "+controlSuffix)
	}
	s.cfg.ControlSocket = s.control
	return nil
}

func isControlCommand(arg string) bool { return arg == "status" || arg == "pause" || arg == "resume" }

const controlUsage = `usage: varta-watch status [--json] (--socket PATH | --control-socket PATH)
       varta-watch pause NAME|PID (--socket PATH | --control-socket PATH)
       varta-watch resume NAME|PID (--socket PATH | --control-socket PATH)

  --socket PATH          the observer's --socket; its control socket is PATH.ctl
  --control-socket PATH  the observer's --control-socket
  --json                 status: one JSON object instead of the table
NAME|PID: an agent's pid, or its process name as status shows it (pause
and resume act on every agent of that name).
`

// controlCommand is `varta-watch status|pause|resume`: one request to a
// running observer's control socket, its answer on standard output. Exit
// 0 answered, 1 refused or failed (the observer's reason on standard
// error), 2 usage.
func controlCommand(verb string, args []string, stdout, stderr io.Writer) int {
	usage := func(why string) int {
		io.WriteString(stderr, "varta-watch "+verb+": "+why+"\n"+controlUsage)
		return 2
	}
	var path, target string
	asJSON := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case a == "-h" || a == "--help":
			io.WriteString(stdout, controlUsage)
			return 0
		case verb == "status" && (a == "--json" || a == "-json"):
			asJSON = true
		case strings.HasPrefix(a, "-") && (name == "socket" || name == "control-socket"):
			if !hasVal {
				if i+1 == len(args) {
					return usage("--" + name + " needs a path")
				}
				i++
				val = args[i]
			}
			if path != "" {
				return usage("give --socket or --control-socket once")
			}
			if path = val; name == "socket" {
				path += controlSuffix
			}
		case strings.HasPrefix(a, "-"):
			return usage("unknown flag " + strconv.Quote(a))
		case verb != "status" && target == "":
			target = a
		default:
			return usage("unexpected argument " + strconv.Quote(a))
		}
	}
	switch {
	case path == "":
		return usage("which observer? give its --socket PATH (the control socket is PATH" + controlSuffix +
			") or --control-socket PATH")
	case verb != "status" && target == "":
		return usage("name the agent: its pid, or its name as varta-watch status shows it")
	case strings.ContainsAny(target, " \t\r\n") || len(target) > 48:
		return usage("an agent is a pid or a process name: no white space, at most 15 bytes")
	}
	req := verb
	if verb != "status" {
		req += " " + target
	} else if asJSON {
		req += " json"
	}
	resp, err := controlRequest(path, req)
	if err != nil {
		io.WriteString(stderr, "varta-watch "+verb+": "+err.Error()+"\n")
		return 1
	}
	if strings.HasPrefix(resp, "error: ") {
		io.WriteString(stderr, "varta-watch "+verb+": "+strings.TrimPrefix(resp, "error: "))
		return 1
	}
	io.WriteString(stdout, resp)
	if verb == "status" && !statusComplete(resp, asJSON) {
		io.WriteString(stderr, "varta-watch status: the answer was cut off before its summary "+
			"(the observer closes a connection that has not read its answer within 5 s)\n")
		return 1
	}
	return 0
}

// statusComplete reports whether a status answer ends with its summary.
func statusComplete(resp string, asJSON bool) bool {
	if asJSON {
		return strings.HasSuffix(resp, "}\n")
	}
	body := strings.TrimSuffix(resp, "\n")
	return strings.HasSuffix(resp, "\n") && strings.HasPrefix(body[strings.LastIndexByte(body, '\n')+1:], "varta-watch ")
}

// controlRequest sends one request line to the control socket at path
// and returns the whole answer, read until the observer closes.
func controlRequest(path, req string) (string, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return "", os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	tv := unix.NsecToTimeval(int64(controlWait))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err {
	case nil:
	case unix.ENOENT:
		return "", errors.New("no control socket at " + path + ": is varta-watch running there (see its --control-socket)?")
	case unix.ECONNREFUSED:
		return "", errors.New("nothing listens on " + path + " (a socket left by an observer that is gone?)")
	case unix.EACCES, unix.EPERM:
		return "", errors.New("not allowed to connect to " + path + ": run as the observer's user or root")
	default:
		return "", errors.New("cannot connect to " + path + ": " + err.Error())
	}
	if _, err := unix.Write(fd, []byte(req+"\n")); err != nil && err != unix.EPIPE && err != unix.ECONNRESET {
		return "", errors.New("cannot send the request to " + path + ": " + err.Error())
	} // a refusal ("busy") may have been written and the connection closed before the request was sent: read it

	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECONNRESET && len(out) > 0:
			return string(out), nil // refused: the line came, then the reset
		case err == unix.EAGAIN:
			return "", errors.New("no complete answer from " + path + " within " + controlWait.String())
		case err != nil:
			return "", errors.New("reading the answer from " + path + ": " + err.Error())
		case n == 0:
			return string(out), nil
		}
		out = append(out, buf[:n]...)
	}
}

// checkConfig is --check-config: the flags were parsed and checked and
// the files they name read (loadErr, if that failed); this looks at every
// other file and directory the observer would use, without creating,
// binding, opening a device or starting anything, and lists every
// problem found.
func checkConfig(s *settings, loadErr error, stdout, stderr io.Writer) int {
	var problems []string
	if loadErr != nil {
		problems = append(problems, loadErr.Error())
	}
	add := func(flag, msg string) { problems = append(problems, "--"+flag+": "+msg) }
	c := &s.cfg
	if msg := socketDirProblem(c.SocketPath); msg != "" {
		add("socket", msg)
	}
	if c.ControlSocket != "" {
		if msg := socketDirProblem(c.ControlSocket); msg != "" {
			add("control-socket", msg)
		}
	}
	if c.Recovery != nil {
		flag := "recovery-exec"
		if s.recoveryFile != "" {
			flag = "recovery-exec-file"
		}
		if msg := executableProblem(c.Recovery.Command.Path); c.Recovery.Command.Path != "" && msg != "" {
			add(flag, msg)
		}
	}
	if c.Agents != nil {
		problems = append(problems, agentsProblem(c.Agents)...)
	}
	if c.ExportFile != "" && c.ExportFile != "-" {
		if msg := writableProblem(c.ExportFile); msg != "" {
			add("export-file", msg)
		}
	}
	if s.auditFile != "" {
		if msg := writableProblem(s.auditFile); msg != "" {
			add("recovery-audit-file", msg)
		} else if fi, err := os.Stat(s.auditFile); err == nil && fi.Size() > 0 {
			if _, err := recovery.VerifyAudit(s.auditFile); err != nil {
				add("recovery-audit-file", "the existing log does not verify (varta-watch audit verify): "+err.Error())
			}
		}
	}
	if s.ops.heartbeat != "" {
		if msg := writableProblem(s.ops.heartbeat); msg != "" {
			add("heartbeat-file", msg)
		}
	}
	if d := s.ops.hwWatchdog; d != "" {
		// Looked at, never opened: opening a watchdog device arms it.
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			add("hw-watchdog", d+": "+err.Error())
		} else if st.Mode&unix.S_IFMT != unix.S_IFCHR {
			add("hw-watchdog", d+" is not a character device")
		}
	}
	if len(problems) == 0 {
		io.WriteString(stdout, "config ok\n")
		return 0
	}
	for _, p := range problems {
		io.WriteString(stderr, "varta-watch: --check-config: "+p+"\n")
	}
	io.WriteString(stderr, "varta-watch: --check-config: "+strconv.Itoa(len(problems))+" problem(s); nothing was started\n")
	return 1
}

// socketDirProblem says what would stop a socket from being bound at
// path: its directory missing, not a directory, open to other users
// without the sticky bit, or not ours to create files in; or a file that
// is not a socket at path. "" when none.
func socketDirProblem(path string) string {
	dir := filepath.Dir(path)
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "directory " + dir + ": " + err.Error() + "; create it first"
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return "directory " + dir + " is a symlink; give the path inside the real directory"
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return dir + " is not a directory"
	case st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0:
		return "directory " + dir + " is writable by group or others without the sticky bit; run chmod go-w on it"
	case unix.Access(dir, unix.W_OK|unix.X_OK) != nil:
		return "cannot create files in " + dir
	}
	if err := unix.Lstat(path, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return path + " exists and is not a socket; remove it or choose another path"
	}
	return ""
}

// executableProblem says why path cannot be run as the recovery command.
func executableProblem(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return "the command " + err.Error()
	case !fi.Mode().IsRegular():
		return "the command " + path + " is not a regular file"
	case unix.Access(path, unix.X_OK) != nil:
		return "the command " + path + " is not executable (chmod +x)"
	}
	return ""
}

// writableProblem says why the observer could not append to path (an
// existing regular file) or create it (in an existing directory).
func writableProblem(path string) string {
	fi, err := os.Stat(path)
	switch {
	case err == nil && !fi.Mode().IsRegular():
		return path + " exists and is not a regular file"
	case err == nil && unix.Access(path, unix.W_OK) != nil:
		return path + " is not writable"
	case err == nil:
		return ""
	case !os.IsNotExist(err):
		return err.Error()
	}
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return "directory " + dir + " does not exist; create it first"
	}
	if unix.Access(dir, unix.W_OK|unix.X_OK) != nil {
		return "cannot create " + path + ": " + dir + " is not writable"
	}
	return ""
}
