package sysfile

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/vlp"
)

// Error is a refusal or failure concerning a file the observer owns (its
// socket, its event file, a watchdog device...): vlp.FileError, the type
// the agent library's key files use too.
type Error = vlp.FileError

// Kind names the file type in mode (a stat's st_mode) for a message.
func Kind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFIFO:
		return "a FIFO"
	case unix.S_IFSOCK:
		return "a socket"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device"
	}
	return "a special file"
}

// OpenAt is openat(2) relative to the working directory of path, a
// NUL-terminated byte string the caller keeps (on its stack, or a buffer
// it owns), with EINTR retried. unix.Open would allocate a copy of a Go
// string; the observer opens /proc files per new agent and the heartbeat
// file ten times a second.
func OpenAt(path *byte, flags int, mode uint32) (int, unix.Errno) {
	dirfd := unix.AT_FDCWD // a variable: the negative constant does not convert to uintptr
	for {
		fd, _, e := unix.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(path)),
			uintptr(flags), uintptr(mode), 0, 0)
		if e != unix.EINTR {
			return int(fd), e
		}
	}
}
