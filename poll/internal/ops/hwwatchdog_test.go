package ops

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
)

// No test machine has a watchdog device to spare (opening a real one arms
// a reboot), so these tests use a pty's slave: a character device that
// takes writes like /dev/watchdog, shows them on its master as they
// arrive, and answers the watchdog ioctls with ENOTTY, as a device without
// a watchdog driver does.

func hwTestLogger() (*sink.Logger, *lockedBuffer) {
	var b lockedBuffer
	return sink.NewLogger(&b), &b
}

// testPty opens a pty and returns its master, non-blocking, and the
// slave's path.
func testPty(t *testing.T) (int, string) {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Skip("no pty to stand in for a watchdog device:", err)
	}
	t.Cleanup(func() { unix.Close(m) })
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(m, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return m, "/dev/pts/" + strconv.FormatUint(uint64(n), 10)
}

// drainPty reads what the master has.
func drainPty(m int) string {
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := unix.Read(m, buf)
		if n <= 0 || err != nil {
			return string(got)
		}
		got = append(got, buf[:n]...)
	}
}

func TestHWWatchdogPty(t *testing.T) {
	for _, tc := range []struct {
		name   string
		disarm bool
		want   string
	}{
		{"clean exit writes the magic V", true, "..V"},
		{"failure leaves it armed", false, ".."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, path := testPty(t)
			log, out := hwTestLogger()
			w, err := openHWWatchdog(path, 10, log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "does not answer WDIOC_GETSUPPORT") ||
				!(strings.Contains(out.String(), "inappropriate ioctl") || strings.Contains(out.String(), "function not implemented")) ||
				!strings.Contains(out.String(), path) {
				t.Errorf("no ENOTTY warning (ENOSYS under qemu-user, which does not pass unknown ioctls on) naming the pty:\n%s", out.String())
			}
			for i := range 2 {
				if err := w.kick(int64(i) * 1e9); err != nil {
					t.Fatal(err)
				}
			}
			if w.kicks != 2 || w.next != 1e9+hwKickEvery {
				t.Errorf("kicks %d, next %d, want 2 and %d", w.kicks, w.next, 1e9+hwKickEvery)
			}
			if err := w.close(tc.disarm); err != nil {
				t.Fatal(err)
			}
			if got := drainPty(m); got != tc.want {
				t.Errorf("device received %q, want %q", got, tc.want)
			}
		})
	}
}

// TestHWWatchdogFullDevice: a device that takes no more (a pty nobody
// reads) fails the kick with EAGAIN, counted, and never blocks the loop.
func TestHWWatchdogFullDevice(t *testing.T) {
	m, path := testPty(t)
	log, _ := hwTestLogger()
	w, err := openHWWatchdog(path, 10, log)
	if err != nil {
		t.Fatal(err)
	}
	var failed error
	for i := 0; i < 1<<20 && failed == nil; i++ {
		failed = w.kick(int64(i))
	}
	if !errors.Is(failed, unix.EAGAIN) || w.errs != 1 {
		t.Errorf("kick into a full device = %v (errors %d), want EAGAIN counted once", failed, w.errs)
	}
	drainPty(m)
	if err := w.close(true); err != nil {
		t.Fatal(err)
	}
	if got := drainPty(m); got != "V" {
		t.Errorf("after the drain the master got %q, want the magic V", got)
	}
}

func TestHWWatchdogOpenFailures(t *testing.T) {
	log, _ := hwTestLogger()
	dir := t.TempDir()
	regular := filepath.Join(dir, "file")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// A FIFO with a reader opens; it is refused all the same.
	readFifo := filepath.Join(dir, "read-fifo")
	if err := unix.Mkfifo(readFifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := unix.Open(readFifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	notChr := "not a character device (--hw-watchdog wants"
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope"), "check the path"},
		{"directory", dir, "is a directory, " + notChr},
		{"regular file", regular, "is a regular file, " + notChr},
		{"FIFO without reader", fifo, "is a FIFO, " + notChr},
		{"FIFO with reader", readFifo, "is a FIFO, " + notChr},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := openHWWatchdog(tc.path, 10, log)
			var fe *sysfile.Error
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("openHWWatchdog(%s) = %v, want a FileError naming the path and %q", tc.path, err, tc.want)
			}
		})
	}
}
