package recovery

import (
	"math"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// cloexecFrom3 marks every fd from 3 up close-on-exec, so that no fd of the
// observer reaches a recovery child. Go opens its own fds close-on-exec,
// but a daemon also holds whatever its parent leaked to it (an init script's
// pipe, a shell's fd 10), and syscall.ForkExec closes nothing it is not
// told about. close_range(2) with CLOSE_RANGE_CLOEXEC (Linux 5.11) does it
// in one call; it reports whether that worked.
func cloexecFrom3() bool {
	return unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC) == nil
}

// cloexecScan is the start-up fallback for kernels without close_range:
// it walks /proc/self/fd and sets FD_CLOEXEC on each fd from 3 up. Fds
// opened later are close-on-exec by the package-wide rule (O_CLOEXEC
// everywhere), so once is enough.
func cloexecScan() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // no /proc: nothing better to do; Go's own fds are CLOEXEC
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && fl&unix.FD_CLOEXEC == 0 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, fl|unix.FD_CLOEXEC)
		}
	}
}
