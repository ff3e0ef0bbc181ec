package listen

import (
	"bytes"

	"golang.org/x/sys/unix"
)

// ProcCmdline reads process pid's command line (/proc/PID/cmdline: its
// arguments, each ending in NUL) into dst and returns its length, cut to
// len(dst); false when it cannot be read. Like the name, these are bytes
// the process chose. It allocates nothing.
func ProcCmdline(pid uint32, dst []byte) (int, bool) {
	return procReadFile(pid, "/cmdline", dst)
}

// ProcCgroup reads process pid's cgroup v2 path (the "0::" line of
// /proc/PID/cgroup) into dst, using dst as its buffer, and returns the
// path; false when it cannot be read or the process is in no cgroup v2
// hierarchy. It allocates nothing.
func ProcCgroup(pid uint32, dst []byte) ([]byte, bool) {
	n, ok := procReadFile(pid, "/cgroup", dst)
	if !ok {
		return nil, false
	}
	for b := dst[:n]; len(b) > 0; {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			return p, true
		}
	}
	return nil, false
}

func procReadFile(pid uint32, file string, dst []byte) (int, bool) {
	var path [procPathMax]byte
	procPidPath(&path, pid, file)
	fd, ok := procOpen(&path[0])
	if !ok {
		return 0, false
	}
	n, ok := procRead(fd, dst)
	unix.Close(fd)
	return n, ok
}
