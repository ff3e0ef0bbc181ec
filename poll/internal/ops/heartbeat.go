package ops

import (
	"os"
	"path/filepath"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// heartbeat is --heartbeat-file: a file an outside supervisor (a shell
// loop, a monit check, a hardware-watchdog daemon's test script) reads to
// see that the loop is alive. Its whole content is one line,
//
//	<loop_count> <observer_ns>\n
//
// the iterations completed and the ns since the observer started, on its
// clock. It is replaced atomically, never written in place: each update
// creates a temporary file beside it (".<name>.tmp", O_CREAT|O_EXCL|
// O_NOFOLLOW, so never through a symlink or into a file someone else
// planted), writes the line and renames it over the path. rename(2)
// replaces a symlink at the path instead of following it. A reader thus
// sees the old line or the new one, never a mix.
//
// Updates come at most every 100 ms and the loop wakes for one at least
// every second. There is no fsync: the file is meant for a tmpfs such as
// /run, and syncing ten times a second would wear a board's flash. The
// file stays when the observer exits: its count stops advancing, which is
// exactly what a checker watches for.
//
// Paths are kept NUL-terminated and the syscalls are made directly, so an
// update does not allocate.
type heartbeat struct {
	name string // for messages
	path []byte // NUL-terminated
	tmp  []byte // NUL-terminated, same directory
	buf  []byte
	last int64 // observer time of the last update
}

// openHeartbeat checks the path: its directory must exist, and whatever
// is at the path already must be a regular file (a symlink is refused
// rather than silently replaced).
func openHeartbeat(path string) (*heartbeat, error) {
	base := filepath.Base(path)
	if path == "" || base == "." || base == ".." || base == string(filepath.Separator) || path[len(path)-1] == '/' {
		return nil, hbErr(path, "is not a file path", "", nil)
	}
	var st unix.Stat_t
	switch err := unix.Lstat(path, &st); {
	case err == unix.ENOENT:
	case err != nil:
		return nil, hbErr(path, "cannot inspect it", "", os.NewSyscallError("lstat", err))
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return nil, hbErr(path, "is a symlink, which is never followed", "give the real file's path", nil)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return nil, hbErr(path, "is "+sysfile.Kind(st.Mode)+", not a regular file", "give the path of a regular file", nil)
	}
	tmp := filepath.Join(filepath.Dir(path), "."+base+".tmp")
	return &heartbeat{name: path, path: append([]byte(path), 0), tmp: append([]byte(tmp), 0),
		buf: make([]byte, 0, 48)}, nil
}

func hbErr(path, problem, hint string, err error) error {
	return &sysfile.Error{What: "heartbeat file", Path: path, Problem: problem, Hint: hint, Err: err}
}

// write replaces the file's content with "<loops> <ns>\n".
func (h *heartbeat) write(loops uint64, ns int64) error {
	b := strconv.AppendUint(h.buf[:0], loops, 10)
	b = append(b, ' ')
	b = strconv.AppendInt(b, ns, 10)
	b = append(b, '\n')
	h.buf = b

	// A temporary file left by a crash would fail O_EXCL for ever.
	if e := hbUnlink(h.tmp); e != 0 && e != unix.ENOENT {
		return hbErr(h.name, "cannot remove the temporary file", "", os.NewSyscallError("unlinkat", e))
	}
	fd, e := hbOpen(h.tmp)
	if e != 0 {
		hint := ""
		switch e {
		case unix.EEXIST:
			hint = "something re-created the temporary file " + string(h.tmp[:len(h.tmp)-1]) + " between unlink and open"
		case unix.ENOENT:
			hint = "create the directory " + filepath.Dir(h.name) + " first"
		case unix.EACCES, unix.EPERM, unix.EROFS:
			hint = "run as a user that may write to " + filepath.Dir(h.name) + ", or choose another path, on a tmpfs such as /run"
		}
		return hbErr(h.name, "cannot create the temporary file", hint, os.NewSyscallError("open", e))
	}
	werr := hwWrite(fd, b)
	cerr := unix.Close(fd)
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = hbRename(h.tmp, h.path)
		if werr == nil {
			return nil
		}
		hbUnlink(h.tmp)
		return hbErr(h.name, "cannot rename the temporary file over it", "", os.NewSyscallError("rename", werr))
	}
	hbUnlink(h.tmp)
	return hbErr(h.name, "cannot write the temporary file", "", os.NewSyscallError("write", werr))
}

// hbOpen creates path (NUL-terminated), which must not exist yet.
func hbOpen(path []byte) (int, unix.Errno) {
	return sysfile.OpenAt(&path[0], unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
}

// hbUnlink is unlinkat(2) of the NUL-terminated path p.
func hbUnlink(p []byte) unix.Errno {
	dirfd := unix.AT_FDCWD
	_, _, e := unix.Syscall(unix.SYS_UNLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), 0)
	return e
}

// hbRename is renameat2(2) without flags: every Linux architecture has it
// since 3.15, while plain renameat is missing on the newest ones. Older
// kernels (ENOSYS) get unix.Rename, which allocates.
func hbRename(from, to []byte) error {
	dirfd := unix.AT_FDCWD
	_, _, e := unix.Syscall6(unix.SYS_RENAMEAT2, uintptr(dirfd), uintptr(unsafe.Pointer(&from[0])),
		uintptr(dirfd), uintptr(unsafe.Pointer(&to[0])), 0, 0)
	switch e {
	case 0:
		return nil
	case unix.ENOSYS:
		return unix.Rename(string(from[:len(from)-1]), string(to[:len(to)-1]))
	}
	return e
}
