package ops

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
)

// hwWatchdog is an open watchdog device (the kernel's watchdog API,
// Documentation/watchdog/watchdog-api.rst). Opening the device starts its
// timer; every write is a keep-alive; a write containing 'V' followed by
// close(2) stops it ("magic close"), unless the driver was built with
// nowayout. The loop kicks it from opsTick, so a wedged loop stops the
// kicks and the board reboots after the timeout.
//
// Only a character device is taken: a regular file or a FIFO given by
// mistake would take the keep-alives and protect nothing. The fd is opened
// non-blocking: a real device never blocks a write, and a stand-in (tests
// use a pty, since no CI machine has a watchdog to spare) must not be able
// to block the loop either.
type hwWatchdog struct {
	fd      int
	path    string
	timeout int   // seconds, as the driver reports it; 0 when unknown
	every   int64 // kick interval, ns
	next    int64 // earliest time of the next kick
	kicks   uint64
	errs    uint64
}

// Bytes written to the device: any byte is a keep-alive; 'V' arms the
// magic close.
var (
	hwKickByte  = []byte{'.'}
	hwMagicByte = []byte{'V'}
)

// openHWWatchdog opens the device at path and asks for timeout seconds
// (best effort: a driver may refuse or round it; the value it reports is
// what counts). A path that cannot be opened, or is no character device,
// is a start-up failure. A device that does not answer WDIOC_GETSUPPORT
// (ENOTTY: a driver without the watchdog API, or a pty in tests) is kept,
// with a warning.
func openHWWatchdog(path string, timeout int, log *sink.Logger) (*hwWatchdog, error) {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NONBLOCK|unix.O_NOCTTY, 0)
	var st unix.Stat_t
	if err != nil && unix.Stat(path, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return nil, notCharDevice(path, st.Mode) // the better reason (a FIFO without reader fails with ENXIO)
	}
	if err != nil {
		hint := ""
		switch err {
		case unix.ENOENT, unix.ENODEV, unix.ENXIO:
			hint = "check the path and that the watchdog driver is loaded; modprobe softdog for a trial"
		case unix.EBUSY:
			hint = "another process (a watchdog daemon?) holds the device; only one may"
		case unix.EACCES, unix.EPERM:
			hint = "the observer's user needs write access to the device"
		}
		return nil, &sysfile.Error{What: "hardware watchdog", Path: path, Problem: "cannot open it",
			Hint: hint, Err: os.NewSyscallError("open", err)}
	}
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		unix.Close(fd)
		return nil, notCharDevice(path, st.Mode)
	}
	w := &hwWatchdog{fd: fd, path: path, every: hwKickEvery}
	info, err := unix.IoctlGetWatchdogInfo(fd)
	if err != nil {
		log.Warn("--hw-watchdog does not answer WDIOC_GETSUPPORT: no watchdog driver behind it (a pty standing in?); "+
			"keep-alives are written to it anyway", sink.Str("path", path), sink.Str("err", os.NewSyscallError("ioctl", err).Error()))
		return w, nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.WDIOC_SETTIMEOUT, timeout); err != nil {
		log.Warn("the hardware watchdog refused the timeout; keeping its own", sink.Str("path", path),
			sink.Num("asked_s", int64(timeout)), sink.Str("err", os.NewSyscallError("ioctl WDIOC_SETTIMEOUT", err).Error()))
	}
	if t, err := unix.IoctlGetInt(fd, unix.WDIOC_GETTIMEOUT); err == nil && t > 0 {
		w.timeout = t
		// Four kicks per timeout at least, for a driver that keeps a
		// short one.
		w.every = min(w.every, int64(t)*1e9/4)
	}
	id := info.Identity[:]
	if i := bytes.IndexByte(id, 0); i >= 0 {
		id = id[:i]
	}
	log.Info("hardware watchdog armed", sink.Str("path", path), sink.Str("identity", string(id)),
		sink.Num("firmware", int64(info.Version)), sink.Num("timeout_s", int64(w.timeout)),
		sink.Str("kick_every", strconv.FormatFloat(float64(w.every)/1e9, 'f', -1, 64)+"s"))
	return w, nil
}

// notCharDevice is the error for a --hw-watchdog path of the wrong kind
// (mode 0 when fstat failed, which no open fd should).
func notCharDevice(path string, mode uint32) error {
	return &sysfile.Error{What: "hardware watchdog", Path: path, Problem: "is " + sysfile.Kind(mode) + ", not a character device",
		Hint: "--hw-watchdog wants the watchdog driver's device, such as /dev/watchdog0"}
}

// kick writes one keep-alive byte and schedules the next kick.
func (w *hwWatchdog) kick(now int64) error {
	w.next = now + w.every
	if err := hwWrite(w.fd, hwKickByte); err != nil {
		w.errs++
		return &sysfile.Error{What: "hardware watchdog", Path: w.path, Problem: "keep-alive failed",
			Err: os.NewSyscallError("write", err)}
	}
	w.kicks++
	return nil
}

// close disarms the watchdog with the magic 'V' when disarm is set, then
// closes it. Without the 'V' (a crash, a failed loop) the kernel keeps
// the timer running: the board reboots unless an observer reopens the
// device in time.
func (w *hwWatchdog) close(disarm bool) error {
	var err error
	if disarm {
		if werr := hwWrite(w.fd, hwMagicByte); werr != nil {
			err = &sysfile.Error{What: "hardware watchdog", Path: w.path, Problem: "magic close failed, the timer keeps running",
				Err: os.NewSyscallError("write", werr)}
		}
	}
	if cerr := unix.Close(w.fd); cerr != nil && err == nil {
		err = &sysfile.Error{What: "hardware watchdog", Path: w.path, Problem: "cannot close it",
			Err: os.NewSyscallError("close", cerr)}
	}
	w.fd = -1
	return err
}

// hwWrite is write(2) of b with EINTR retried once.
func hwWrite(fd int, b []byte) error {
	n, err := unix.Write(fd, b)
	if err == unix.EINTR {
		n, err = unix.Write(fd, b)
	}
	if err == nil && n != len(b) {
		err = unix.EIO
	}
	return err
}
