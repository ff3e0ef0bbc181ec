package listen

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// udsTestDir is a fresh directory with the given mode to bind in.
func udsTestDir(t *testing.T, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "d")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
	return dir
}

func udsLstat(t *testing.T, path string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// udsStale leaves a socket file at path whose owner is gone, as a crashed
// observer does.
func udsStale(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
}

func TestListenUDSModeAndFlags(t *testing.T) {
	for _, mode := range []uint32{0o600, 0o660, 0o666, 0o620} {
		t.Run("0"+strconv.FormatUint(uint64(mode), 8), func(t *testing.T) {
			oldMask := unix.Umask(0o077)
			defer unix.Umask(oldMask)
			path := filepath.Join(udsTestDir(t, 0o755), "s")
			u, err := ListenUDS(path, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer u.Close()
			st := udsLstat(t, path)
			if st.Mode&unix.S_IFMT != unix.S_IFSOCK || st.Mode&0o7777 != mode {
				t.Errorf("socket file mode = %o, want socket with %o", st.Mode, mode)
			}
			if got := unix.Umask(oldMask); got != 0o077 {
				t.Errorf("umask after ListenUDS = %o, want it restored to 077", got)
			}
			if v, err := unix.GetsockoptInt(u.Fd(), unix.SOL_SOCKET, unix.SO_PASSCRED); v != 1 || err != nil {
				t.Errorf("SO_PASSCRED = %d, %v, want 1", v, err)
			}
			// One of them is set: the new one, an old one on a kernel
			// before 5.1, a microsecond one under qemu-user (which
			// options read back as set then varies).
			set := 0
			for _, opt := range []int{unix.SO_TIMESTAMPNS_NEW, unix.SO_TIMESTAMPNS, unix.SO_TIMESTAMP_NEW, unix.SO_TIMESTAMP} {
				if v, _ := unix.GetsockoptInt(u.Fd(), unix.SOL_SOCKET, opt); v == 1 {
					set++
				}
			}
			if set == 0 {
				t.Error("no receive timestamp option reads back as set")
			}
			if typ, _ := unix.GetsockoptInt(u.Fd(), unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_DGRAM {
				t.Errorf("SO_TYPE = %d, want SOCK_DGRAM", typ)
			}
			if fl, _ := unix.FcntlInt(uintptr(u.Fd()), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
				t.Error("socket fd is not close-on-exec")
			}
			if fl, _ := unix.FcntlInt(uintptr(u.Fd()), unix.F_GETFL, 0); fl&unix.O_NONBLOCK == 0 {
				t.Error("socket fd is not non-blocking")
			}
		})
	}
}

func TestListenUDSParentDir(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode os.FileMode
		ok   bool
	}{
		{"owner only", 0o700, true},
		{"world readable", 0o755, true},
		{"world writable", 0o777, false},
		{"group writable", 0o775, false},
		{"other writable", 0o757, false},
		{"sticky world writable", 0o777 | os.ModeSticky, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(udsTestDir(t, tc.mode), "s")
			u, err := ListenUDS(path, 0o600)
			if tc.ok {
				if err != nil {
					t.Fatalf("ListenUDS in a %v directory: %v", tc.mode, err)
				}
				u.Close()
				return
			}
			if err == nil {
				u.Close()
				t.Fatalf("ListenUDS in a %v directory succeeded, want refusal", tc.mode)
			}
			if !strings.Contains(err.Error(), "sticky") {
				t.Errorf("error %q does not explain the problem", err)
			}
			if _, serr := os.Lstat(path); !os.IsNotExist(serr) {
				t.Errorf("a refused ListenUDS left %s behind", path)
			}
		})
	}
}

func TestListenUDSSymlinkParent(t *testing.T) {
	real := udsTestDir(t, 0o755)
	link := filepath.Join(filepath.Dir(real), "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	u, err := ListenUDS(filepath.Join(link, "s"), 0o600)
	if err == nil {
		u.Close()
		t.Fatal("ListenUDS through a symlinked parent succeeded")
	}
	if !strings.Contains(err.Error(), "symlink") {
		t.Errorf("error %q does not name the symlink", err)
	}
	if _, serr := os.Lstat(filepath.Join(real, "s")); !os.IsNotExist(serr) {
		t.Error("a socket was created through the symlink")
	}
}

func TestListenUDSNonSocket(t *testing.T) {
	dir := udsTestDir(t, 0o755)
	other := filepath.Join(dir, "other")
	udsStale(t, other)
	for _, tc := range []struct {
		name   string
		create func(path string) error
	}{
		{"regular file", func(p string) error { return os.WriteFile(p, []byte("keep me"), 0o600) }},
		{"directory", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"symlink to a socket", func(p string) error { return os.Symlink(other, p) }},
		{"fifo", func(p string) error { return unix.Mkfifo(p, 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if err := tc.create(path); err != nil {
				t.Fatal(err)
			}
			before := udsLstat(t, path)
			u, err := ListenUDS(path, 0o600)
			if err == nil {
				u.Close()
				t.Fatalf("ListenUDS over a %s succeeded", tc.name)
			}
			if !strings.Contains(err.Error(), "not a socket") {
				t.Errorf("error %q does not say it is not a socket", err)
			}
			if after := udsLstat(t, path); after.Ino != before.Ino {
				t.Errorf("the %s was replaced", tc.name)
			}
		})
	}
}

func TestListenUDSAlreadyRunning(t *testing.T) {
	path := filepath.Join(udsTestDir(t, 0o755), "s")
	first, err := ListenUDS(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := ListenUDS(path, 0o600)
	if err == nil {
		second.Close()
		t.Fatal("second ListenUDS on a live socket succeeded")
	}
	if !errors.Is(err, ErrAlreadyRunning) {
		t.Fatalf("second ListenUDS = %v, want ErrAlreadyRunning", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the path", err)
	}
	// The first observer is untouched and still receives.
	client := recvTestClient(t, path)
	if _, err := unix.Write(client, []byte("x")); err != nil {
		t.Fatalf("first observer no longer reachable: %v", err)
	}
	if n, err := NewReceiver(first.Fd(), 1).Recv(); n != 1 || err != nil {
		t.Fatalf("first observer Recv() = %d, %v", n, err)
	}
}

func TestListenUDSStreamSocket(t *testing.T) {
	path := filepath.Join(udsTestDir(t, 0o755), "s")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	u, err := ListenUDS(path, 0o600)
	if err == nil {
		u.Close()
		t.Fatal("ListenUDS over another program's stream socket succeeded")
	}
	if errors.Is(err, ErrAlreadyRunning) || !strings.Contains(err.Error(), "another program") {
		t.Errorf("ListenUDS = %v, want a refusal naming another program", err)
	}
}

func TestListenUDSReplacesStale(t *testing.T) {
	path := filepath.Join(udsTestDir(t, 0o755), "s")
	udsStale(t, path)
	u, err := ListenUDS(path, 0o600)
	if err != nil {
		t.Fatalf("ListenUDS over a stale socket: %v", err)
	}
	defer u.Close()
	// The stale file refused connections; the replacement is ours. (Its
	// inode number may be the stale one's, freed and reused.)
	client := recvTestClient(t, path)
	if _, err := unix.Write(client, []byte("x")); err != nil {
		t.Fatalf("send to the replacement: %v", err)
	}
	if n, err := NewReceiver(u.Fd(), 1).Recv(); n != 1 || err != nil {
		t.Fatalf("Recv() on the replacement = %d, %v, want 1, nil", n, err)
	}
}

func TestUDSCloseUnlinks(t *testing.T) {
	path := filepath.Join(udsTestDir(t, 0o755), "s")
	u, err := ListenUDS(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	fd := u.Fd()
	if err := u.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("Close left %s behind (%v)", path, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("fd still open after Close: %v", err)
	}
	if err := u.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestUDSCloseSparesSuccessor(t *testing.T) {
	path := filepath.Join(udsTestDir(t, 0o755), "s")
	old, err := ListenUDS(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	// A successor took the path over (it found ours stale, or an operator
	// removed it) before the old observer's Close ran.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	next, err := ListenUDS(path, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	want := udsLstat(t, path)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if got := udsLstat(t, path); got.Ino != want.Ino {
		t.Fatal("the old observer's Close removed its successor's socket")
	}
}

func TestListenUDSBadArgs(t *testing.T) {
	dir := udsTestDir(t, 0o755)
	for _, tc := range []struct {
		name, path string
		mode       uint32
		want       string
	}{
		{"empty path", "", 0o600, "1 to 107 bytes"},
		{"long path", "/" + strings.Repeat("x", 107), 0o600, "1 to 107 bytes"},
		{"abstract name", "@varta", 0o600, "abstract"},
		{"setuid mode", filepath.Join(dir, "s"), 0o4600, "beyond 0777"},
		{"missing parent", filepath.Join(dir, "nope", "s"), 0o600, "parent directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := ListenUDS(tc.path, tc.mode)
			if err == nil {
				u.Close()
				t.Fatalf("ListenUDS(%q, %o) succeeded", tc.path, tc.mode)
			}
			var pe *sysfile.Error
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("ListenUDS(%q, %o) = %v, want a FileError mentioning %q", tc.path, tc.mode, err, tc.want)
			}
		})
	}
}

// TestUDSRcvBuf: SetRcvBuf asks the kernel for a receive buffer and
// RcvBuf says what it granted (twice the request, for its bookkeeping);
// 0 keeps ListenUDS's 1 MiB, a negative size the kernel default; the
// directory fsync after bind succeeded.
func TestUDSRcvBuf(t *testing.T) {
	u, err := ListenUDS(filepath.Join(udsTestDir(t, 0o700), "s"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	if u.DirSyncFailures() != 0 {
		t.Errorf("the fsync of a tmpfs directory failed")
	}
	first := u.RcvBuf()
	if got := u.SetRcvBuf(0); got != first || got == 0 {
		t.Errorf("SetRcvBuf(0) changed the buffer from %d to %d", first, got)
	}
	if got := u.SetRcvBuf(8192); got != 2*8192 {
		t.Errorf("SetRcvBuf(8192): kernel reports %d, want %d", got, 2*8192)
	}
	if def := readSysctlInt("/proc/sys/net/core/rmem_default", 0); def > 0 {
		if got := u.SetRcvBuf(-1); got != 2*def {
			t.Errorf("SetRcvBuf(-1): %d, want twice rmem_default %d", got, def)
		}
	}
}

// TestPidMax: the kernel's pid_max is read as the file says.
func TestPidMax(t *testing.T) {
	want := readSysctlInt(PidMaxPath, 0)
	if want == 0 {
		t.Skip("no " + PidMaxPath)
	}
	if got := PidMax(); int(got) != want {
		t.Errorf("PidMax() = %d, the file says %d", got, want)
	}
}
