package vlp

import (
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadSecretFile reads a file that decides what the observer trusts or
// runs (a key, a bearer token, a recovery command). what names it in
// errors ("key file", ...). The file is opened without following a symlink
// and must be a regular file owned by the effective uid with no group or
// other permission bits (0600 or stricter) and at most max bytes: whoever
// can write or read it could otherwise choose what we trust or learn it.
func ReadSecretFile(what, path string, max int64) ([]byte, error) {
	fail := func(msg string) ([]byte, error) { return nil, &FileError{What: what, Path: path, Problem: msg} }
	failErr := func(err error, hint string) ([]byte, error) {
		return nil, &FileError{What: what, Path: path, Err: err, Hint: hint}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	switch err {
	case nil:
	case unix.ELOOP:
		return fail("is a symlink; point the flag at the real file")
	case unix.ENOENT, unix.ENOTDIR:
		return failErr(os.NewSyscallError("open", err), "check the path given to the flag")
	case unix.EACCES:
		return failErr(os.NewSyscallError("open", err), "the file and its directories must be readable by uid "+
			strconv.Itoa(os.Geteuid())+", the uid this process runs as")
	default:
		return failErr(os.NewSyscallError("open", err), "")
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return failErr(os.NewSyscallError("fstat", err), "")
	}
	euid := strconv.Itoa(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return fail("not a regular file; point the flag at the file itself")
	case strconv.FormatUint(uint64(st.Uid), 10) != euid:
		return fail("owned by uid " + strconv.FormatUint(uint64(st.Uid), 10) +
			", must be owned by uid " + euid + ", the uid this process runs as (chown " + euid + " " + path + ")")
	case st.Mode&0o077 != 0:
		return fail("mode 0" + strconv.FormatUint(uint64(st.Mode&0o777), 8) +
			" gives group/other access, must be 0600 or stricter (chmod 600 " + path + ")")
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return failErr(err, "")
	}
	if int64(len(b)) > max {
		return fail("larger than " + strconv.FormatInt(max, 10) + " bytes; is it the right file?")
	}
	return b, nil
}

// FileError is a file, socket or device refused or failed: which one
// (What: "key file", "socket", "event file"...; Path), what was wrong
// (Problem, and the system error Err, which Unwrap returns so that
// errors.Is(err, fs.ErrNotExist) works), and what to do (Hint, may be
// empty). Its text is one line fit for stderr. ReadSecretFile returns
// it; the observer uses it for every file it owns.
type FileError struct {
	What    string
	Path    string
	Problem string
	Err     error
	Hint    string
}

func (e *FileError) Error() string {
	s := e.What + " " + e.Path + ": " + e.Problem
	if e.Err != nil {
		if e.Problem != "" {
			s += ": "
		}
		s += e.Err.Error()
	}
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

func (e *FileError) Unwrap() error { return e.Err }
