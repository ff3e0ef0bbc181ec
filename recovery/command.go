package recovery

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/vlp"
)

// PidPlaceholder is replaced by the stalled agent's pid wherever it occurs
// inside an argument of the recovery command.
const PidPlaceholder = "{pid}"

// maxCommandFile bounds what LoadCommandFile reads: a command line is short,
// and a multi-megabyte file is a mistake, not a command.
const maxCommandFile = 64 << 10

// Command is a parsed recovery command. It is run by execve(2) directly,
// never through a shell.
type Command struct {
	// Path is the absolute path of the program, resolved at start-up.
	Path string
	// Args is the argument vector, Args[0] being the program as the
	// operator wrote it. Every argument after Args[0] may contain
	// PidPlaceholder; ParseCommand appends a lone placeholder when the
	// operator wrote none, so the pid always reaches the program.
	Args []string
	// Source is where the command came from, for the audit log's spawn
	// records: "inline" (--recovery-exec, and the zero value) or the
	// path of the --recovery-exec-file it was read from.
	Source string
}

// SourceInline is the Source of a command given on the command line.
const SourceInline = "inline"

func (c *Command) source() string {
	if c.Source == "" {
		return SourceInline
	}
	return c.Source
}

// ParseCommand parses a --recovery-exec command line. The line is split
// into words as a shell would split it, and nothing more (there is no
// shell: no variables, globs or redirections): white space separates
// words; 'single quotes' keep everything inside as it is; "double quotes"
// keep everything but \" and \\, which stand for " and \; a backslash
// outside quotes takes the next character as it is. So
// `/bin/sh -c 'echo {pid} >> F'` gives sh the script as one argument. An
// unbalanced quote or a trailing backslash is an error wrapping
// ErrCommandSyntax. PidPlaceholder inside any argument after the program
// is replaced by the stalled pid at each run, and when no argument
// contains it the pid is appended as the last argument.
//
// The program is resolved once, here, at start-up: a name containing '/'
// must be an absolute path; a bare name is looked up in the observer's
// $PATH (only absolute PATH entries count, so "." or an empty entry never
// makes a file in the working directory run). Either way it must be an
// executable regular file now; if it later disappears, runs fail and are
// counted as spawn_failed.
func ParseCommand(line string) (Command, error) {
	if strings.IndexByte(line, 0) >= 0 {
		return Command{}, errors.New("recovery command: contains a NUL byte")
	}
	args, err := SplitWords(line)
	if err != nil {
		return Command{}, err
	}
	if len(args) == 0 {
		return Command{}, errors.New("recovery command: empty; give a program and its arguments")
	}
	path, err := resolveProgram(args[0])
	if err != nil {
		return Command{}, err
	}
	hasPid := false
	for _, a := range args[1:] {
		if strings.Contains(a, PidPlaceholder) {
			hasPid = true
			break
		}
	}
	if !hasPid {
		args = append(args, PidPlaceholder)
	}
	return Command{Path: path, Args: args, Source: SourceInline}, nil
}

// ErrCommandSyntax: a command line whose quoting is unbalanced.
var ErrCommandSyntax = errors.New("unbalanced quoting")

// CommandSyntaxError says where a command line's quoting went wrong.
type CommandSyntaxError struct {
	Offset  int    // byte offset of the quote or backslash left open
	Problem string // what is open
}

func (e *CommandSyntaxError) Error() string {
	return "recovery command: " + e.Problem + " opened at byte " + strconv.Itoa(e.Offset) +
		" is never closed; close it, or escape it with a backslash"
}

func (e *CommandSyntaxError) Unwrap() error { return ErrCommandSyntax }

// SplitWords splits line into words by the rules ParseCommand gives.
func SplitWords(line string) ([]string, error) {
	var words []string
	var w []byte
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, string(w))
				w, inWord = w[:0], false
			}
		case c == '\\':
			if i+1 == len(line) {
				return nil, &CommandSyntaxError{Offset: i, Problem: "a backslash"}
			}
			i++
			w, inWord = append(w, line[i]), true
		case c == '\'':
			end := strings.IndexByte(line[i+1:], '\'')
			if end < 0 {
				return nil, &CommandSyntaxError{Offset: i, Problem: "a single quote"}
			}
			w, inWord = append(w, line[i+1:i+1+end]...), true
			i += end + 1
		case c == '"':
			open := i
			for i++; ; i++ {
				if i == len(line) {
					return nil, &CommandSyntaxError{Offset: open, Problem: "a double quote"}
				}
				if line[i] == '"' {
					break
				}
				if line[i] == '\\' && i+1 < len(line) && (line[i+1] == '"' || line[i+1] == '\\') {
					i++
				}
				w = append(w, line[i])
			}
			inWord = true
		default:
			w, inWord = append(w, c), true
		}
	}
	if inWord {
		words = append(words, string(w))
	}
	return words, nil
}

// LoadCommandFile reads a --recovery-exec-file and parses its content with
// ParseCommand. Lines whose first non-blank character is '#' are comments;
// the remaining lines are joined, so a long command may span lines.
//
// The file is opened with O_NOFOLLOW (a symlink is refused) and must be a
// regular file owned by the observer's effective uid with no group or
// other permission bits (mode 0600 or stricter): whoever can write it
// chooses what the observer executes.
func LoadCommandFile(path string) (Command, error) {
	raw, err := vlp.ReadSecretFile("recovery command file", path, maxCommandFile)
	if err != nil {
		return Command{}, err
	}
	var b strings.Builder
	for _, ln := range strings.Split(string(raw), "\n") {
		if t := strings.TrimSpace(ln); t == "" || t[0] == '#' {
			continue
		}
		b.WriteString(ln)
		b.WriteByte(' ')
	}
	cmd, err := ParseCommand(b.String())
	if err != nil {
		// ParseCommand's own "recovery command: " prefix would repeat
		// what the file's name already says.
		return Command{}, &wrapped{msg: "recovery command file " + path, err: err, trim: "recovery command: "}
	}
	cmd.Source = path
	return cmd, nil
}

// resolveProgram turns the program word into an absolute path of an
// executable regular file, as described on ParseCommand.
func resolveProgram(name string) (string, error) {
	if strings.IndexByte(name, '/') >= 0 {
		if name[0] != '/' {
			return "", errors.New("recovery command: program " + strconv.Quote(name) + " is a relative path; give an absolute path (the observer's working directory is not a stable base)")
		}
		if err := checkExecutable(name); err != nil {
			hint := ""
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				hint = "check the path: give the absolute path of an installed program"
			}
			return "", wrapHint("recovery command: program "+name, err, hint)
		}
		return name, nil
	}
	pathEnv := os.Getenv("PATH")
	if pathEnv == "" {
		pathEnv = childPath
	}
	for _, dir := range strings.Split(pathEnv, ":") {
		if dir == "" || dir[0] != '/' {
			continue // relative entries would make the working directory matter
		}
		p := strings.TrimSuffix(dir, "/") + "/" + name
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", errors.New("recovery command: program " + strconv.Quote(name) + " not found as an executable in PATH (" + pathEnv + "); give an absolute path")
}

func checkExecutable(p string) error {
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return os.NewSyscallError("stat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("not a regular file; give the path of a program")
	}
	if st.Mode&0o111 == 0 {
		return errors.New("not executable: no x permission bit (chmod +x it, or give another program)")
	}
	return nil
}

// argv returns the argument vector for one run for agent pid. It allocates,
// as the spawn that follows does anyway.
func (c *Command) argv(pid int32) []string {
	p := strconv.FormatInt(int64(pid), 10)
	out := make([]string, len(c.Args))
	out[0] = c.Args[0]
	for i, a := range c.Args[1:] {
		out[i+1] = strings.ReplaceAll(a, PidPlaceholder, p)
	}
	return out
}

// validate reports a Command that ParseCommand would not have produced.
func (c *Command) validate() error {
	if c.Path == "" || c.Path[0] != '/' {
		return errors.New("recovery: command path " + strconv.Quote(c.Path) + " is not absolute")
	}
	if len(c.Args) == 0 {
		return errors.New("recovery: command has no argv[0]")
	}
	for _, a := range c.Args {
		if strings.IndexByte(a, 0) >= 0 {
			return errors.New("recovery: command argument contains a NUL byte")
		}
	}
	if strings.IndexByte(c.Path, 0) >= 0 {
		return errors.New("recovery: command path contains a NUL byte")
	}
	return nil
}
