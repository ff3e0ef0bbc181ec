package listen

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// ErrControlRunning means a live observer already serves the control
// socket path ListenStream was asked to bind.
var ErrControlRunning = &sysfile.Error{What: "control socket", Problem: "another observer serves it",
	Hint: "stop it first, or give this one another --control-socket"}

// StreamUDS is a listening Unix stream socket (the control socket): fd
// non-blocking and close-on-exec, the file at path created with the mode
// asked through the umask, removed by Close only while it is still ours.
type StreamUDS struct {
	fd       int
	path     string
	dev, ino uint64
}

// ListenStream binds and listens on a Unix stream socket at path with
// file mode mode, after the same parent-directory checks as ListenUDS. An
// existing socket with a listener behind it is refused; a stale one
// (ECONNREFUSED) is replaced; anything else at path is refused.
func ListenStream(path string, mode uint32, backlog int) (*StreamUDS, error) {
	fail := func(problem, hint string, err error) error {
		return &sysfile.Error{What: "control socket", Path: path, Problem: problem, Hint: hint, Err: err}
	}
	if len(path) == 0 || len(path) > MaxPath || path[0] == '@' {
		return nil, fail("path must be a filesystem path of 1 to "+strconv.Itoa(MaxPath)+" bytes", "choose a path such as /run/varta/varta.sock.ctl", nil)
	}
	if err := udsCheckDir(path); err != nil {
		return nil, err
	}
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == unix.ENOENT:
	case err != nil:
		return nil, fail("cannot inspect the path", "", os.NewSyscallError("lstat", err))
	case st.Mode&unix.S_IFMT != unix.S_IFSOCK:
		return nil, fail("exists and is "+sysfile.Kind(st.Mode)+", not a socket", "remove it if it is not needed, or choose another path", nil)
	default:
		if err := streamProbe(path); err != nil {
			return nil, err
		}
		if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
			return nil, fail("cannot remove the stale control socket of an earlier observer", "remove it by hand", os.NewSyscallError("unlink", err))
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, fail("cannot create the socket", "", os.NewSyscallError("socket", err))
	}
	// Through the umask, so the file never exists with wider permissions:
	// fchmod on a socket's fd does not change its file.
	old := unix.Umask(int(^mode & 0o777))
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err == nil {
		err = unix.Listen(fd, backlog)
	}
	if err == nil {
		err = unix.Lstat(path, &st)
	}
	if err != nil {
		unix.Close(fd)
		return nil, fail("cannot bind and listen", "run as a user that may create files in its directory, or choose another path", os.NewSyscallError("bind", err))
	}
	return &StreamUDS{fd: fd, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}, nil
}

// streamProbe refuses a control socket with a live listener behind it:
// connect succeeds (or the backlog is full) only while one listens.
func streamProbe(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return &sysfile.Error{What: "control socket", Path: path, Problem: "cannot create a probe socket", Err: os.NewSyscallError("socket", err)}
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err {
	case unix.ECONNREFUSED, unix.ENOENT:
		return nil
	case nil, unix.EAGAIN:
		e := *ErrControlRunning
		e.Path = path
		return &e
	case unix.EPROTOTYPE:
		return &sysfile.Error{What: "control socket", Path: path, Problem: "is a datagram socket (the observer's own socket?)",
			Hint: "give the control socket a path of its own", Err: os.NewSyscallError("connect", err)}
	default:
		return &sysfile.Error{What: "control socket", Path: path, Problem: "cannot tell whether the existing socket is in use",
			Hint: "remove it by hand if no observer runs", Err: os.NewSyscallError("connect", err)}
	}
}

// Fd is the listening descriptor; it stays owned by the StreamUDS.
func (u *StreamUDS) Fd() int { return u.fd }

// Path is the bound path.
func (u *StreamUDS) Path() string { return u.path }

// Close removes the socket file if it is still the one bound here (same
// device and inode), then closes the fd; safe to call twice and on nil.
func (u *StreamUDS) Close() {
	if u == nil || u.fd < 0 {
		return
	}
	var st unix.Stat_t
	if unix.Lstat(u.path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK &&
		uint64(st.Dev) == u.dev && uint64(st.Ino) == u.ino {
		unix.Unlink(u.path)
	}
	unix.Close(u.fd)
	u.fd = -1
}
