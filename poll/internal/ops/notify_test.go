package ops

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
)

// notifyTestManager binds a datagram socket at name (a path or @abstract),
// as a service manager does, and returns a Receiver on it.
func notifyTestManager(t *testing.T, name string) (int, *listen.Receiver) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: name}); err != nil {
		t.Fatal(err)
	}
	return fd, listen.NewReceiver(fd, 4)
}

// notifyTestExpect checks that the manager received exactly state, from us.
func notifyTestExpect(t *testing.T, r *listen.Receiver, state string) {
	t.Helper()
	n, err := r.Recv()
	if n != 1 || err != nil {
		t.Fatalf("manager Recv() = %d, %v, want one notification", n, err)
	}
	if got := string(r.Data(0)); got != state {
		t.Errorf("manager received %q, want %q", got, state)
	}
	if pid, _, _, ok := r.Cred(0); !ok || pid != uint32(os.Getpid()) {
		t.Errorf("notification came from pid %d (ok %v), want %d", pid, ok, os.Getpid())
	}
}

func TestNotifyUnset(t *testing.T) {
	t.Setenv(NotifySocketEnv, "")
	n, err := NotifyFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if n.Enabled() || n.Send(NotifyReady) != nil || n.Close() != nil {
		t.Error("a Notifier without NOTIFY_SOCKET is not a silent no-op")
	}
	var nilN *Notifier
	if nilN.Enabled() || nilN.Send(NotifyReady) != nil || nilN.Close() != nil {
		t.Error("a nil Notifier is not a silent no-op")
	}
}

func TestNotifySend(t *testing.T) {
	for _, tc := range []struct{ name, addr string }{
		{"path", filepath.Join(t.TempDir(), "notify")},
		{"abstract", "@varta-poll-test-" + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, r := notifyTestManager(t, tc.addr)
			t.Setenv(NotifySocketEnv, tc.addr)
			n, err := NotifyFromEnv()
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if v, ok := os.LookupEnv(NotifySocketEnv); ok {
				t.Errorf("NOTIFY_SOCKET still set to %q: children would inherit it", v)
			}
			if !n.Enabled() {
				t.Fatal("Enabled() = false with NOTIFY_SOCKET set")
			}
			if fl, _ := unix.FcntlInt(uintptr(n.peer.Fd()), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
				t.Error("notify fd is not close-on-exec")
			}
			if fl, _ := unix.FcntlInt(uintptr(n.peer.Fd()), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
				t.Error("notify fd is not non-blocking")
			}
			for _, state := range []string{NotifyReady, NotifyWatchdog, "STATUS=tracking 3 agents", NotifyStopping} {
				if err := n.Send(state); err != nil {
					t.Fatalf("Send(%q) = %v", state, err)
				}
				notifyTestExpect(t, r, state)
			}
		})
	}
}

func TestNotifyManagerRestarted(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	fd, r := notifyTestManager(t, path)
	t.Setenv(NotifySocketEnv, path)
	n, err := NotifyFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	n.Send(NotifyReady)
	notifyTestExpect(t, r, NotifyReady)

	// The manager goes away: Send reports it and does not block.
	unix.Close(fd)
	os.Remove(path)
	if err := n.Send(NotifyWatchdog); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("Send with no manager = %v, want an error naming %s", err, path)
	}
	// A new manager at the same path is found again.
	_, r = notifyTestManager(t, path)
	if err := n.Send(NotifyWatchdog); err != nil {
		t.Fatalf("Send after the manager came back = %v", err)
	}
	notifyTestExpect(t, r, NotifyWatchdog)
}

func TestNotifyBadValue(t *testing.T) {
	for _, v := range []string{"relative/notify", "vsock:2:1234", "/" + strings.Repeat("x", 200)} {
		t.Setenv(NotifySocketEnv, v)
		if n, err := NotifyFromEnv(); err == nil || !strings.Contains(err.Error(), NotifySocketEnv) {
			n.Close()
			t.Errorf("NotifyFromEnv with %q = %v, want an error naming %s", v, err, NotifySocketEnv)
		}
	}
}

func TestNotifyNoAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	_, r := notifyTestManager(t, path)
	t.Setenv(NotifySocketEnv, path)
	n, err := NotifyFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	var bad int
	allocs := testing.AllocsPerRun(100, func() {
		if n.Send(NotifyWatchdog) != nil {
			bad++
		}
		r.Recv()
	})
	if bad > 0 || allocs != 0 {
		t.Fatalf("Send(WATCHDOG=1) failed %d times, allocates %v times per call, want 0", bad, allocs)
	}
}
