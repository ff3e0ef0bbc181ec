package listen

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// ErrAlreadyRunning means a live observer already receives on the socket
// path ListenUDS was asked to bind. It comes wrapped with the path; test for
// it with errors.Is.
var ErrAlreadyRunning = errors.New("another observer is already running on this socket; stop it first or choose another socket path")

// MaxPath is the longest path a sockaddr_un can hold: sun_path is 108
// bytes and keeps a terminating NUL.
const MaxPath = len(unix.RawSockaddrUnix{}.Path) - 1

// udsRcvBuf is the receive buffer ListenUDS asks for: enough for a burst of
// thousands of 32-byte beats, small enough for a board with little memory.
// The kernel caps it at net.core.rmem_max; failure is not an error. An
// AF_UNIX datagram queue is also bounded in count, by net.unix.max_dgram_qlen
// as it was when the socket was created (10 by default, 512 under systemd):
// that sysctl, not this buffer, is what a busy board may need to raise.
const udsRcvBuf = 1 << 20

// UDS is the observer's bound Unix datagram socket. It owns its fd
// (CLOEXEC, non-blocking, SO_PASSCRED and SO_TIMESTAMPNS set) and the
// socket file at its path until Close.
type UDS struct {
	fd   int
	path string
	dev  uint64 // identity of the socket file we bound, so Close never
	ino  uint64 // unlinks a successor's socket

	dirSyncFailed uint64 // the fsync of the directory after bind failed (0 or 1)
}

func udsErr(path, problem, hint string, err error) error {
	return &sysfile.Error{What: "socket", Path: path, Problem: problem, Hint: hint, Err: err}
}

// ListenUDS binds the observer's SOCK_DGRAM socket at path with file mode
// mode (permission bits only, e.g. 0600), after the path checks of
// cmd/varta-watch/README.md §8:
//
//   - the parent directory must not be a symlink, and must not be writable
//     by group or others unless it has the sticky bit;
//   - an existing non-socket at path is refused;
//   - an existing socket with a live observer behind it is refused with
//     ErrAlreadyRunning; a stale one (ECONNREFUSED: its owner died) is
//     replaced.
//
// The mode is applied through the umask around bind(2), so the socket
// never exists with wider permissions (fchmod on a socket fd does not
// change the file). The umask is process-wide: call ListenUDS at start-up,
// before other goroutines create files.
func ListenUDS(path string, mode uint32) (*UDS, error) {
	if len(path) == 0 || len(path) > MaxPath {
		return nil, udsErr(path, "path must be 1 to "+strconv.Itoa(MaxPath)+" bytes long, it is "+
			strconv.Itoa(len(path)), "choose a shorter path, e.g. under /run", nil)
	}
	if path[0] == '@' { // the unix package would bind an abstract name
		return nil, udsErr(path, "abstract socket names are not supported", "give a filesystem path, e.g. /run/varta.sock", nil)
	}
	if mode&^0o777 != 0 {
		return nil, udsErr(path, "mode 0"+strconv.FormatUint(uint64(mode), 8)+" has bits beyond 0777",
			"give permission bits only, e.g. 0600 or 0660", nil)
	}
	if err := udsCheckDir(path); err != nil {
		return nil, err
	}
	if err := udsClearPath(path); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return nil, udsErr(path, "cannot create the socket", "", os.NewSyscallError("socket", err))
	}
	u, err := udsBind(fd, path, mode)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	return u, nil
}

func udsBind(fd int, path string, mode uint32) (*UDS, error) {
	// Before bind, so no datagram is ever queued without credentials.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return nil, udsErr(path, "cannot enable sender credentials", "",
			os.NewSyscallError("setsockopt SO_PASSCRED", err))
	}
	if err := udsStamp(fd); err != nil {
		return nil, udsErr(path, "cannot enable receive timestamps", "", os.NewSyscallError("setsockopt SO_TIMESTAMPNS", err))
	}
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, udsRcvBuf) // best effort

	old := unix.Umask(int(^mode & 0o777))
	err := unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	switch err {
	case nil:
	case unix.EADDRINUSE:
		return nil, udsErr(path, "something was created at the path while the observer was starting", "check that no other program uses it, then retry", os.NewSyscallError("bind", err))
	case unix.EACCES, unix.EPERM, unix.EROFS:
		return nil, udsErr(path, "not allowed to create the socket", "run as a user that may write to "+filepath.Dir(path)+", or choose another path", os.NewSyscallError("bind", err))
	default:
		return nil, udsErr(path, "cannot bind", "", os.NewSyscallError("bind", err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, udsErr(path, "socket vanished right after bind", "check that no other program removes files there", os.NewSyscallError("lstat", err))
	}
	u := &UDS{fd: fd, path: path, dev: uint64(st.Dev), ino: uint64(st.Ino)}
	if syncDir(filepath.Dir(path)) != nil {
		u.dirSyncFailed++ // counted, not fatal: the socket works, only its entry's durability is in doubt
	}
	return u, nil
}

// syncDir fsyncs directory dir, so that the socket's unlink and bind are
// on disk before agents are told where to beat.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Fsync(fd)
}

// DirSyncFailures is 1 if the fsync of the socket's directory after bind
// failed, else 0.
func (u *UDS) DirSyncFailures() uint64 { return u.dirSyncFailed }

// SetRcvBuf asks for a receive buffer of n bytes (--uds-rcvbuf-bytes) in
// place of ListenUDS's 1 MiB; 0 keeps that, a negative n asks for the
// kernel's default (net.core.rmem_default). Above net.core.rmem_max the kernel caps it,
// unless the observer may use SO_RCVBUFFORCE (CAP_NET_ADMIN), which it
// tries then. It returns the size the kernel reports (RcvBuf).
func (u *UDS) SetRcvBuf(n int) int {
	if n < 0 {
		n = readSysctlInt("/proc/sys/net/core/rmem_default", 0)
	}
	if n > 0 {
		_ = unix.SetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF, n)
		if u.RcvBuf() < n { // capped at rmem_max: only CAP_NET_ADMIN may go beyond
			_ = unix.SetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
		}
	}
	return u.RcvBuf()
}

// RcvBuf is the socket's SO_RCVBUF as the kernel reports it: twice what
// was asked, for its bookkeeping, and capped; 0 if it cannot be read.
func (u *UDS) RcvBuf() int {
	v, err := unix.GetsockoptInt(u.fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0
	}
	return v
}

// readSysctlInt reads a decimal integer file such as /proc/sys/...; def if
// it cannot.
func readSysctlInt(path string, def int) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return def
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return def
	}
	return v
}

// PidMaxPath is the kernel's highest pid plus one.
const PidMaxPath = "/proc/sys/kernel/pid_max"

// PidMax reads /proc/sys/kernel/pid_max without allocating (the loop
// rereads it once a minute); 4194304, the kernel's ceiling, when it
// cannot (no /proc): no real pid is then refused.
func PidMax() uint32 {
	const ceiling = 1 << 22
	fd, err := unix.Open(PidMaxPath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return ceiling
	}
	defer unix.Close(fd)
	var b [16]byte
	n, err := unix.Read(fd, b[:])
	if err != nil || n <= 0 {
		return ceiling
	}
	var v uint32
	for _, c := range b[:n] {
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + uint32(c-'0')
	}
	if v == 0 || v > ceiling {
		return ceiling
	}
	return v
}

// udsCheckDir refuses a parent directory through which someone other than
// the observer's user could swap the socket for their own.
// udsStamp has the kernel stamp every datagram with the time it was
// queued (CLOCK_REALTIME, taken in sendmsg), delivered as a control
// message. It is how the observer tells a frame whose sender died and
// whose pid went to another process before the frame was read (package
// reuse): the frame was queued before that process started. It costs no
// file descriptor and no system call per datagram. SO_TIMESTAMPNS_NEW
// (Linux 5.1) gives 64-bit seconds on 32-bit boards too; older kernels
// get the old option; the microsecond options come last, for an emulator
// that knows only those (qemu-user translates SO_TIMESTAMP alone). Set
// before bind, so no datagram goes unstamped.
func udsStamp(fd int) (err error) {
	for _, opt := range [...]int{unix.SO_TIMESTAMPNS_NEW, unix.SO_TIMESTAMPNS, unix.SO_TIMESTAMP_NEW, unix.SO_TIMESTAMP} {
		if err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, opt, 1); err != unix.ENOPROTOOPT {
			return err
		}
	}
	return err
}

func udsCheckDir(path string) error {
	dir := filepath.Dir(path)
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return udsErr(path, "cannot inspect the parent directory "+dir, "create it first", os.NewSyscallError("lstat", err))
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
	case unix.S_IFLNK:
		target, _ := os.Readlink(dir)
		return udsErr(path, "parent directory "+dir+" is a symlink (to "+target+")",
			"give the socket path inside the real directory", nil)
	default:
		return udsErr(path, "parent "+dir+" is not a directory", "", nil)
	}
	if st.Mode&0o022 != 0 && st.Mode&unix.S_ISVTX == 0 {
		return udsErr(path, "parent directory "+dir+" (mode 0"+strconv.FormatUint(uint64(st.Mode&0o7777), 8)+
			") is writable by group or others without the sticky bit, so another user could replace the socket",
			"run chmod go-w on it, or use a directory such as /run", nil)
	}
	return nil
}

// udsClearPath makes path free for bind: nothing there, or a stale socket
// that it removes. Anything else is refused.
func udsClearPath(path string) error {
	var st unix.Stat_t
	err := unix.Lstat(path, &st)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return udsErr(path, "cannot inspect the path", "", os.NewSyscallError("lstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return udsErr(path, "exists and is "+sysfile.Kind(st.Mode)+", not a socket",
			"remove it if it is not needed, or choose another socket path", nil)
	}
	live, err := udsProbe(path)
	if err != nil {
		return err
	}
	if live {
		return udsErr(path, "", "", ErrAlreadyRunning)
	}
	if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
		return udsErr(path, "cannot remove the stale socket left by an earlier observer", "remove it by hand",
			os.NewSyscallError("unlink", err))
	}
	return nil
}

// udsProbe tells a live datagram socket (connect succeeds) from a stale
// one (ECONNREFUSED: the file outlived its owner).
func udsProbe(path string) (live bool, err error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return false, udsErr(path, "cannot create a probe socket", "", os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	switch err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err {
	case nil:
		return true, nil
	case unix.ECONNREFUSED, unix.ENOENT:
		return false, nil
	case unix.EPROTOTYPE:
		return false, udsErr(path, "is a stream or seqpacket socket in use by another program", "choose another socket path", os.NewSyscallError("connect", err))
	default:
		return false, udsErr(path, "cannot tell whether the existing socket is in use", "remove it by hand if no observer runs", os.NewSyscallError("connect", err))
	}
}

// Fd is the socket's descriptor for poll(2) and NewReceiver. It stays owned
// by the UDS.
func (u *UDS) Fd() int { return u.fd }

// Path is the bound socket path.
func (u *UDS) Path() string { return u.path }

// Close removes the socket file if it is still the one this UDS bound (same
// device and inode: a successor observer's socket is never unlinked), then
// closes the fd. The order matters: while our socket is open it pins its
// inode, so a successor's file cannot have reused the number. It is safe to
// call more than once.
func (u *UDS) Close() error {
	if u == nil || u.fd < 0 {
		return nil
	}
	var err error
	var st unix.Stat_t
	if unix.Lstat(u.path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFSOCK &&
		uint64(st.Dev) == u.dev && uint64(st.Ino) == u.ino {
		if e := unix.Unlink(u.path); e != nil && e != unix.ENOENT {
			err = udsErr(u.path, "cannot remove the socket file", "remove it by hand", os.NewSyscallError("unlink", e))
		}
	}
	if e := unix.Close(u.fd); e != nil && err == nil {
		err = udsErr(u.path, "cannot close the socket", "", os.NewSyscallError("close", e))
	}
	u.fd = -1
	return err
}

// MaxDgramQlen reads net.unix.max_dgram_qlen: how many datagrams a Unix
// socket created now may queue. false when /proc/sys cannot tell.
func MaxDgramQlen() (int, bool) {
	b, err := os.ReadFile("/proc/sys/net/unix/max_dgram_qlen")
	if err != nil {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return n, err == nil && n > 0
}
