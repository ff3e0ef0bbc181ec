package listen

import (
	"math"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// procStartField is the 1-based field number of starttime in /proc/PID/stat
// (proc(5)): the process start time in clock ticks after boot. A pid's
// (pid, starttime) pair names one process for the life of the system, which
// is how a recycled pid is told apart from the agent that used to own it.
const procStartField = 22

// procPathMax holds "/proc/4294967295/cmdline" (the longest file read)
// and its NUL terminator.
const procPathMax = len("/proc/") + 10 + len("/cmdline") + 1

// procStatMax is read in one go. The comm field is at most 16 bytes
// (TASK_COMM_LEN) but may itself contain spaces and parentheses; fields 3
// to 22 are decimal numbers, at most 20 digits each, so 22 fields always fit.
const procStatMax = 1024

// ProcStartTime returns field 22 (starttime) of /proc/<pid>/stat, or false
// when the file cannot be opened or parsed, which in practice means the
// process no longer exists. It wraps openat(2), read(2) and close(2) on
// caller-stack buffers and never allocates: the observer calls it for every
// new kernel-attested pid and for every stall it raises.
func ProcStartTime(pid uint32) (uint64, bool) {
	v, err := procStatNumber(pid, procStartField)
	return v, err == 0
}

// ProcStartTimeErr is ProcStartTime telling "gone" from "cannot tell":
// errno 0 with the start time; ENOENT or ESRCH when no process has the
// pid; anything else (EMFILE and ENFILE when the observer is out of file
// descriptors, EACCES, EINVAL for a stat file it cannot parse) means the
// answer is unknown, and the process may well be alive.
func ProcStartTimeErr(pid uint32) (uint64, unix.Errno) { return procStatNumber(pid, procStartField) }

// procStatNumber reads /proc/<pid>/stat into stack buffers and returns
// its numeric field n, or why it could not (see ProcStartTimeErr).
func procStatNumber(pid uint32, n int) (uint64, unix.Errno) {
	var path [procPathMax]byte
	procPidPath(&path, pid, "/stat")
	fd, e := sysfile.OpenAt(&path[0], unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if e != 0 {
		return 0, e
	}
	var buf [procStatMax]byte
	m, e := procReadErr(fd, buf[:])
	unix.Close(fd)
	if e != 0 {
		return 0, e
	}
	v, ok := procStatField(buf[:m], n)
	if !ok {
		return 0, unix.EINVAL
	}
	return v, 0
}

// procReadErr is procRead with the reason: a process that died between
// open and read gives ESRCH; an empty read, ESRCH too.
func procReadErr(fd int, buf []byte) (int, unix.Errno) {
	for {
		n, err := unix.Read(fd, buf)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return 0, err.(unix.Errno)
		case n <= 0:
			return 0, unix.ESRCH
		}
		return n, 0
	}
}

// procOpen opens a NUL-terminated /proc path read-only.
func procOpen(path *byte) (int, bool) {
	fd, e := sysfile.OpenAt(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	return fd, e == 0
}

// procRead reads once, retrying EINTR: /proc files are generated whole by
// the first read when the buffer is large enough.
func procRead(fd int, buf []byte) (int, bool) {
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		return n, err == nil && n > 0
	}
}

// procPutPid writes v in decimal at the start of b, which must hold ten
// bytes, and returns the number of bytes written.
func procPutPid(b []byte, v uint32) int {
	var tmp [10]byte
	i := len(tmp)
	for {
		i--
		tmp[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			break
		}
	}
	return copy(b, tmp[i:])
}

// parseProcStartTime extracts field 22 (starttime) from a stat file.
func parseProcStartTime(stat []byte) (uint64, bool) { return procStatField(stat, procStartField) }

// procStatField returns numeric field n (n ≥ 3) of a stat file's content,
// counting from the LAST ')' since comm (field 2) is the program's name
// verbatim and may contain ") (" itself. Field n must be followed by
// another field: a stat cut short is not trusted.
func procStatField(stat []byte, n int) (uint64, bool) {
	end := -1
	for i := len(stat) - 1; i >= 0; i-- {
		if stat[i] == ')' {
			end = i
			break
		}
	}
	if end < 0 || n < 3 {
		return 0, false
	}
	field := 2 // the ')' ends field 2
	var v uint64
	digits := 0
	for _, c := range stat[end+1:] {
		switch {
		case c == ' ':
			if field == n {
				return v, digits > 0
			}
			field++
		case field == n:
			if c < '0' || c > '9' || v > math.MaxUint64/10-1 {
				return 0, false
			}
			v = v*10 + uint64(c-'0')
			digits++
		}
	}
	return 0, false
}

// procPPidField is the 1-based field number of ppid in /proc/PID/stat.
const procPPidField = 4

// ProcParentPid returns field 4 (ppid) of /proc/<pid>/stat, or false when
// the process no longer exists (or the file cannot be parsed). Like
// ProcStartTime it reads into stack buffers and never allocates.
func ProcParentPid(pid uint32) (uint32, bool) {
	v, e := procStatNumber(pid, procPPidField)
	if e != 0 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// CommMax is the most bytes of a process name (comm) the kernel keeps:
// TASK_COMM_LEN less its terminating NUL.
const CommMax = 15

// procPidPath writes "/proc/<pid>/<file>" NUL-terminated into path.
func procPidPath(path *[procPathMax]byte, pid uint32, file string) {
	k := copy(path[:], "/proc/")
	k += procPutPid(path[k:], pid)
	k += copy(path[k:], file)
	path[k] = 0
}

// ProcComm reads the name of process pid (/proc/PID/comm, which the
// process itself may set to anything: treat the bytes as untrusted) into
// name, and returns its length; false when the process is gone. It
// allocates nothing.
func ProcComm(pid uint32, name *[CommMax]byte) (int, bool) {
	var path [procPathMax]byte
	procPidPath(&path, pid, "/comm")
	fd, ok := procOpen(&path[0])
	if !ok {
		return 0, false
	}
	var buf [CommMax + 2]byte
	n, ok := procRead(fd, buf[:])
	unix.Close(fd)
	if !ok {
		return 0, false
	}
	if n > 0 && buf[n-1] == '\n' {
		n--
	}
	return copy(name[:], buf[:n]), true
}

// ProcExe reads the path of process pid's program (the /proc/PID/exe
// link) into dst and returns its length, cut to len(dst); false when it
// cannot be read (gone, or another user's process without the right to
// look). It allocates nothing.
func ProcExe(pid uint32, dst []byte) (int, bool) {
	var path [procPathMax]byte
	procPidPath(&path, pid, "/exe")
	if len(dst) == 0 {
		return 0, false
	}
	dirfd := unix.AT_FDCWD
	n, _, e := unix.Syscall6(unix.SYS_READLINKAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
		uintptr(unsafe.Pointer(&dst[0])), uintptr(len(dst)), 0, 0)
	if e != 0 || int(n) <= 0 {
		return 0, false
	}
	return int(n), true
}
