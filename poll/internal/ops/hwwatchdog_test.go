package ops

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
)

// No test machine has a watchdog device to spare (opening a real one arms
// a reboot), so these tests use the two stand-ins the device code must
// tolerate anyway: a regular file, which keeps every byte written for
// inspection, and a FIFO, which shows the bytes as they arrive and that a
// full pipe cannot block the loop. The ioctls fail on both (ENOTTY), as
// they would on a character device that is not a watchdog, and are
// skipped after the warning.

func hwTestLogger() (*sink.Logger, *lockedBuffer) {
	var b lockedBuffer
	return sink.NewLogger(&b), &b
}

func TestHWWatchdogRegularFile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		disarm bool
		want   string
	}{
		{"clean exit writes the magic V", true, "..V"},
		{"failure leaves it armed", false, ".."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "watchdog")
			if err := os.WriteFile(path, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			log, out := hwTestLogger()
			w, err := openHWWatchdog(path, 10, log)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out.String(), "not a character device") {
				t.Errorf("no warning for a regular file:\n%s", out.String())
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
			if b, _ := os.ReadFile(path); string(b) != tc.want {
				t.Errorf("device received %q, want %q", b, tc.want)
			}
		})
	}
}

func TestHWWatchdogFIFO(t *testing.T) {
	path := filepath.Join(t.TempDir(), "watchdog")
	if err := unix.Mkfifo(path, 0o600); err != nil {
		t.Skip("mkfifo:", err)
	}
	log, _ := hwTestLogger()
	// Without a reader a non-blocking open of a FIFO fails (ENXIO) rather
	// than hang: the observer must never block on its device.
	if _, err := openHWWatchdog(path, 10, log); err == nil {
		t.Fatal("opened a FIFO without a reader")
	}
	r, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(r)
	w, err := openHWWatchdog(path, 10, log)
	if err != nil {
		t.Fatal(err)
	}
	// Fill the pipe: kicks then fail with EAGAIN, counted, never blocking.
	var failed error
	for i := 0; i < 1<<20 && failed == nil; i++ {
		failed = w.kick(int64(i))
	}
	if !errors.Is(failed, unix.EAGAIN) || w.errs != 1 {
		t.Errorf("kick into a full pipe = %v (errors %d), want EAGAIN counted once", failed, w.errs)
	}
	buf := make([]byte, 1<<20)
	for {
		n, err := unix.Read(r, buf)
		if n <= 0 || err != nil {
			break
		}
	}
	if err := w.close(true); err != nil {
		t.Fatal(err)
	}
	n, _ := unix.Read(r, buf)
	if string(buf[:max(n, 0)]) != "V" {
		t.Errorf("after the drain the reader got %q, want the magic V", buf[:max(n, 0)])
	}
}

func TestHWWatchdogOpenFailures(t *testing.T) {
	log, _ := hwTestLogger()
	dir := t.TempDir()
	for _, tc := range []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "nope"), "check the path"},
		{"directory", dir, "is a directory"},
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
