package sink

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

const eventTestOrigin = 1_000_000_000

func eventTestOpen(t testing.TB, maxBytes int64) (*EventFile, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.tsv")
	e, err := OpenEventFile(path, maxBytes, eventTestOrigin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, path
}

func eventTestRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// eventTestLine is the line TestEventFile* write for event i.
func eventTestLine(i int) string {
	return strconv.Itoa(i) + "\teviction\t" + strconv.Itoa(i) + "\t-\t-\t-\n"
}

func eventTestLines(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(eventTestLine(i))
	}
	return b.String()
}

// eventTestSwap points the EventFile's descriptor at another file, the
// way a disk filling up (or emptying) changes what write(2) does.
func eventTestSwap(t *testing.T, e *EventFile, path string) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Dup3(fd, e.out.fd, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
}

func TestEventFileFormat(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	const o = eventTestOrigin
	e.Beat(o+1234567, 5678, 1, vlp.Ok, 0)
	e.Stall(o+2345678, 5678, 1)
	e.Decode(o+3456789, vlp.ErrBadMagic, nil)
	e.Decode(o+3456790, vlp.ErrLength, nil)
	e.Beat(o+4, 7, vlp.NonceTerminal, vlp.Critical, ^uint32(0))
	e.Beat(o+5, 8, 0, vlp.Degraded, 9)
	e.IO(o+6, "recvmmsg: bad\tthing\n\r\\\x00\x1f\x7f")
	e.IO(o+7, "")
	e.IO(o+8, strings.Repeat("x", 300))
	e.Mismatch(o+9, 42, MismatchAuthFailure)
	e.Mismatch(o+10, 42, MismatchOriginConflict)
	e.Mismatch(o+11, 42, MismatchNamespaceConflict)
	e.Eviction(o+12, 43)
	e.Exit(o+13, 44, 99, vlp.Degraded, 5)
	e.Beat(o-5, 45, 1, vlp.Ok, 0) // before the origin: clamped to 0
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"1234567\tbeat\t5678\t1\tok\t0",
		"2345678\tstall\t5678\t1\tstall\t-",
		"3456789\tdecode\t-\t-\t-\tBadMagic",
		"3456790\tdecode\t-\t-\t-\tLength",
		"4\tbeat\t7\t18446744073709551615\tcritical\t4294967295",
		"5\tbeat\t8\t0\tdegraded\t9",
		"6\tio\t-\t-\t-\trecvmmsg: bad\\tthing\\n\\r\\\\\\x00\\x1f\\x7f",
		"7\tio\t-\t-\t-\t-",
		"8\tio\t-\t-\t-\t" + strings.Repeat("x", eventMaxText),
		"9\tmismatch\t42\t-\t-\tauth_failure",
		"10\tmismatch\t42\t-\t-\torigin_conflict",
		"11\tmismatch\t42\t-\t-\tnamespace_conflict",
		"12\teviction\t43\t-\t-\t-",
		"13\texit\t44\t99\tdegraded\t5",
		"0\tbeat\t45\t1\tok\t0",
	}
	got := strings.Split(strings.TrimSuffix(eventTestRead(t, path), "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("file has %d lines, want %d:\n%s", len(got), len(want), strings.Join(got, "\n"))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d = %q, want %q", i+1, got[i], want[i])
		}
		if n := strings.Count(got[i], "\t"); n != 5 {
			t.Errorf("line %d has %d tabs, want 5 (six columns)", i+1, n)
		}
	}
	if e.Errors() != 0 || e.Dropped() != 0 || e.Err() != nil {
		t.Errorf("Errors, Dropped, Err = %d, %d, %v after clean writes", e.Errors(), e.Dropped(), e.Err())
	}
}

// TestEventFileDecodeText: a decode line names the error as the Rust
// observer's Debug form does, with the values read from the frame.
func TestEventFileDecodeText(t *testing.T) {
	frame := func(edit func(b []byte), crc bool) []byte {
		b := vlp.Append(nil, vlp.Frame{Status: vlp.Ok, Pid: 4242, Timestamp: 7, Nonce: 3, Payload: 1})
		edit(b)
		if crc {
			binary.LittleEndian.PutUint32(b[28:], vlp.Checksum(b[:28]))
		}
		return b
	}
	badCrc := frame(func(b []byte) { b[31] ^= 1 }, false)
	for _, tc := range []struct {
		frame []byte
		want  string
	}{
		{frame(func(b []byte) { b[0] = 'X' }, true), "BadMagic"},
		{frame(func(b []byte) { b[2] = 9 }, true), "BadVersion"},
		{badCrc, "BadCrc { expected: " + strconv.FormatUint(uint64(vlp.Checksum(badCrc[:28])), 10) +
			", actual: " + strconv.FormatUint(uint64(binary.LittleEndian.Uint32(badCrc[28:])), 10) + " }"},
		{frame(func(b []byte) { b[3] = 7 }, true), "BadStatus(7)"},
		{frame(func(b []byte) { b[3] = 3 }, true), "StallOnWire"},
		{frame(func(b []byte) { binary.LittleEndian.PutUint32(b[4:], 1) }, true), "BadPid(1)"},
		{frame(func(b []byte) { binary.LittleEndian.PutUint64(b[8:], ^uint64(0)) }, true), "BadTimestamp(18446744073709551615)"},
		{frame(func(b []byte) { binary.LittleEndian.PutUint64(b[16:], ^uint64(0)); b[3] = 1 }, true),
			"BadNonce { nonce: 18446744073709551615, status: Degraded }"},
	} {
		_, perr := vlp.Parse(tc.frame)
		if perr == 0 {
			t.Fatalf("frame for %q parses", tc.want)
		}
		if got := string(appendDecodeText(nil, perr, tc.frame)); got != tc.want {
			t.Errorf("decode text %q, want %q", got, tc.want)
		}
	}
}

// TestEventFileUpstreamKinds: with the Rust observer's kinds only, exit
// lines are left out and the others written.
func TestEventFileUpstreamKinds(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	e.SetUpstreamKinds(true)
	e.Exit(eventTestOrigin+1, 44, 99, vlp.Degraded, 5)
	e.Ctrunc(eventTestOrigin+2, "cut")
	e.Eviction(eventTestOrigin+3, 43)
	e.Flush()
	want := "2\tctrunc\t-\t-\t-\tcut\n3\teviction\t43\t-\t-\t-\n"
	if got := eventTestRead(t, path); got != want || e.Dropped() != 0 {
		t.Fatalf("file %q (dropped %d), want %q", got, e.Dropped(), want)
	}
}

func TestEventFileLongestLine(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	e.Beat(1<<62, ^uint32(0), ^uint64(0), vlp.Degraded, ^uint32(0))
	e.Mismatch(1<<62, ^uint32(0), MismatchNamespaceConflict)
	e.IO(1<<62, strings.Repeat("\x01", 1000))
	e.Flush()
	for _, l := range strings.SplitAfter(eventTestRead(t, path), "\n") {
		if len(l) > eventMaxLine {
			t.Errorf("line of %d bytes exceeds eventMaxLine %d: %q", len(l), eventMaxLine, l)
		}
	}
}

func TestEventFileCreateAndAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ev")
	e, err := OpenEventFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	e.Eviction(1, 1)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("created with mode %v, want 0600", st.Mode())
	}
	e, err = OpenEventFile(path, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if fl, _ := unix.FcntlInt(uintptr(e.out.fd), unix.F_GETFD, 0); fl&unix.FD_CLOEXEC == 0 {
		t.Error("event file fd is not close-on-exec")
	}
	e.Eviction(2, 2)
	e.Close()
	if got, want := eventTestRead(t, path), eventTestLines(1, 3); got != want {
		t.Errorf("after reopening, file = %q, want %q (appended, not truncated)", got, want)
	}
}

func TestEventFileRefuses(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		plant      func(path string) error
	}{
		{"symlink", "symlink", func(p string) error { return os.Symlink(victim, p) }},
		{"dangling symlink", "symlink", func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) }},
		{"hard link", "hard links", func(p string) error { return os.Link(victim, p) }},
		{"directory", "not a regular file", func(p string) error { return os.Mkdir(p, 0o700) }},
		{"fifo", "", func(p string) error { return unix.Mkfifo(p, 0o600) }}, // ENXIO, or refused: never hangs
		{"missing directory", "create the directory", func(string) error { return nil }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			if tc.name == "missing directory" {
				path = filepath.Join(path, "ev")
			}
			if err := tc.plant(path); err != nil {
				t.Fatal(err)
			}
			e, err := OpenEventFile(path, 0, 0)
			if err == nil {
				e.Close()
				t.Fatalf("OpenEventFile over a %s succeeded", tc.name)
			}
			var fe *sysfile.Error
			if !errors.As(err, &fe) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("OpenEventFile = %v, want a FileError mentioning %q", err, tc.want)
			}
		})
	}
	if got := eventTestRead(t, victim); got != "keep\n" {
		t.Errorf("victim changed to %q", got)
	}
	if _, err := os.Lstat(filepath.Join(dir, "nowhere")); !os.IsNotExist(err) {
		t.Error("a dangling symlink's target was created")
	}
}

// eventTestCheckRotation checks the live file and its generations: at most
// maxBytes each, whole lines, and together the newest lines up to last.
func eventTestCheckRotation(t *testing.T, path string, maxBytes int64, last int) {
	t.Helper()
	if _, err := os.Lstat(path + "." + strconv.Itoa(EventGenerations+1)); !os.IsNotExist(err) {
		t.Errorf("generation %d exists, want only %d", EventGenerations+1, EventGenerations)
	}
	var all string
	for g := EventGenerations; g >= 0; g-- {
		p := path
		if g > 0 {
			p += "." + strconv.Itoa(g)
		}
		s := eventTestRead(t, p)
		if int64(len(s)) > maxBytes || len(s) == 0 || !strings.HasSuffix(s, "\n") {
			t.Errorf("%s holds %d bytes %q, want 1..%d bytes of whole lines", p, len(s), s, maxBytes)
		}
		all += s
	}
	first, _ := strconv.Atoi(all[:strings.IndexByte(all, '\t')])
	if want := eventTestLines(first, last); all != want {
		t.Errorf("generations hold\n%s\nwant the consecutive lines %d..%d", all, first, last-1)
	}
}

func TestEventFileRotation(t *testing.T) {
	const maxBytes = 100
	e, path := eventTestOpen(t, maxBytes)
	const total = 60
	for i := range total {
		e.Eviction(eventTestOrigin+int64(i), uint32(i))
		if i%3 == 2 {
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.Flush()
	eventTestCheckRotation(t, path, maxBytes, total)
	if e.Errors() != 0 {
		t.Errorf("Errors() = %d, want 0: %v", e.Errors(), e.Err())
	}
}

func TestEventFileRotationInOneFlush(t *testing.T) {
	const maxBytes = 100
	e, path := eventTestOpen(t, maxBytes)
	const total = 200
	for i := range total {
		e.Eviction(eventTestOrigin+int64(i), uint32(i))
	}
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	eventTestCheckRotation(t, path, maxBytes, total)
}

func TestEventFileReopen(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	e.Eviction(eventTestOrigin+0, 0)
	e.Flush()
	if err := os.Rename(path, path+".old"); err != nil { // logrotate
		t.Fatal(err)
	}
	e.Eviction(eventTestOrigin+1, 1) // buffered: written before the reopen
	if err := e.Reopen(); err != nil {
		t.Fatal(err)
	}
	e.Eviction(eventTestOrigin+2, 2)
	e.Flush()
	if got, want := eventTestRead(t, path+".old"), eventTestLines(0, 2); got != want {
		t.Errorf("moved file = %q, want %q", got, want)
	}
	if got, want := eventTestRead(t, path), eventTestLines(2, 3); got != want {
		t.Errorf("reopened file = %q, want %q", got, want)
	}
}

func TestEventFileReopenRefusesSymlink(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	victim := filepath.Join(filepath.Dir(path), "victim")
	os.WriteFile(victim, nil, 0o600)
	os.Rename(path, path+".old")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if err := e.Reopen(); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("Reopen onto a symlink = %v, want a refusal", err)
	}
	e.Eviction(eventTestOrigin+0, 0)
	e.Flush() // retries the open, fails again, keeps the old file
	if got := eventTestRead(t, victim); got != "" {
		t.Fatalf("symlink target received %q", got)
	}
	if e.Errors() != 2 {
		t.Errorf("Errors() = %d, want 2 (Reopen and the retry in Flush)", e.Errors())
	}
	os.Remove(path)
	e.Eviction(eventTestOrigin+1, 1)
	e.Flush()
	if got, want := eventTestRead(t, path+".old"), eventTestLines(0, 1); got != want {
		t.Errorf("old file = %q, want %q", got, want)
	}
	if got, want := eventTestRead(t, path), eventTestLines(1, 2); got != want {
		t.Errorf("new file = %q, want %q (the open is retried until it works)", got, want)
	}
}

func TestEventFileDiskFull(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	eventTestSwap(t, e, "/dev/full")
	for i := range 3 {
		e.Eviction(eventTestOrigin+int64(i), uint32(i))
	}
	err := e.Flush()
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "free disk space") {
		t.Fatalf("Flush to a full disk = %v, want ENOSPC with a hint", err)
	}
	if e.Errors() != 1 || e.Buffered() != len(eventTestLines(0, 3)) {
		t.Fatalf("Errors, Buffered = %d, %d, want 1 and the 3 lines kept", e.Errors(), e.Buffered())
	}
	// Keep going until the buffer is full and lines are dropped.
	total := 3
	for e.Dropped() < 10 {
		e.Eviction(eventTestOrigin+int64(total), uint32(total))
		total++
	}
	kept := total - int(e.Dropped())
	// Space returns.
	fresh := path + ".fresh"
	eventTestSwap(t, e, fresh)
	if err := e.Flush(); err != nil {
		t.Fatalf("Flush after space returned: %v", err)
	}
	if got, want := eventTestRead(t, fresh), eventTestLines(0, kept); got != want {
		t.Errorf("after recovery the file holds %d bytes, want the first %d lines (%d bytes), whole",
			len(got), kept, len(want))
	}
	if e.Buffered() != 0 || e.Dropped() != uint64(total-kept) {
		t.Errorf("Buffered, Dropped = %d, %d, want 0, %d", e.Buffered(), e.Dropped(), total-kept)
	}
	e.Eviction(eventTestOrigin+int64(total), uint32(total))
	e.Flush()
	if got := eventTestRead(t, fresh); !strings.HasSuffix(got, eventTestLine(total)) {
		t.Errorf("new lines are not written after recovery")
	}
}

func TestEventFilePartialWrite(t *testing.T) {
	// RLIMIT_FSIZE makes the kernel take only part of a write, as a disk
	// filling up does; a line fragment must not stay in the file. No other
	// test runs meanwhile (these are not parallel).
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		extra int   // bytes of room beyond 4 whole lines
		want  error // what the write that makes no progress reports
	}{
		{"limit at a line end", 0, unix.EFBIG},
		{"limit inside a line", 5, errEventNoProgress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, path := eventTestOpen(t, 0)
			limit := uint64(len(eventTestLines(0, 4)) + tc.extra)
			if err := unix.Setrlimit(unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: limit, Max: old.Max}); err != nil {
				t.Skipf("cannot lower RLIMIT_FSIZE: %v", err)
			}
			for i := range 10 {
				e.Eviction(eventTestOrigin+int64(i), uint32(i))
			}
			err := e.Flush()
			unix.Setrlimit(unix.RLIMIT_FSIZE, &old)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Flush beyond the size limit = %v, want %v", err, tc.want)
			}
			if got, want := eventTestRead(t, path), eventTestLines(0, 4); got != want {
				t.Fatalf("after a partial write the file = %q, want the 4 whole lines %q", got, want)
			}
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			if got, want := eventTestRead(t, path), eventTestLines(0, 10); got != want {
				t.Errorf("after the limit was lifted the file = %q, want %q", got, want)
			}
		})
	}
}

func TestEventFileClose(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	e.Eviction(eventTestOrigin, 0)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if got := eventTestRead(t, path); got != eventTestLine(0) {
		t.Errorf("Close wrote %q, want the buffered line", got)
	}
	e.Eviction(eventTestOrigin+1, 1) // after Close: ignored
	if err := e.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}

	e, _ = eventTestOpen(t, 0)
	eventTestSwap(t, e, "/dev/full")
	e.Eviction(eventTestOrigin, 0)
	e.Eviction(eventTestOrigin+1, 1)
	if err := e.Close(); err == nil {
		t.Error("Close with unwritable lines = nil, want the write error")
	}
	if e.Dropped() != 2 {
		t.Errorf("Dropped() = %d after Close lost 2 lines", e.Dropped())
	}
}

func TestEventFileNil(t *testing.T) {
	var e *EventFile
	e.Beat(1, 2, 3, vlp.Ok, 4)
	e.Stall(1, 2, 3)
	e.Decode(1, vlp.ErrBadCrc, nil)
	e.IO(1, "x")
	e.Ctrunc(1, "x")
	e.SetSyncEvery(1)
	e.SetUpstreamKinds(true)
	e.Mismatch(1, 2, MismatchAuthFailure)
	e.Eviction(1, 2)
	e.Exit(1, 2, 3, vlp.Ok, 4)
	if e.Flush() != nil || e.Reopen() != nil || e.Close() != nil || e.Errors() != 0 ||
		e.Dropped() != 0 || e.Err() != nil || e.Buffered() != 0 {
		t.Error("a nil *EventFile is not a silent no-op")
	}
}

func TestEventFileNoAllocs(t *testing.T) {
	e, _ := eventTestOpen(t, 1<<30)
	e.SetSyncEvery(1000)
	now := int64(eventTestOrigin)
	frame := vlp.Append(nil, vlp.Frame{Status: vlp.Ok, Pid: 2})
	frame[31] ^= 1
	allocs := testing.AllocsPerRun(200, func() {
		now += 1_000_000
		e.Beat(now, 1234, uint64(now), vlp.Ok, 7)
		e.Stall(now, 1234, 9)
		e.Decode(now, vlp.ErrBadCrc, frame)
		e.IO(now, "recvmmsg: no buffer space")
		e.Ctrunc(now, "cut")
		e.Mismatch(now, 1234, MismatchAuthFailure)
		e.Eviction(now, 1234)
		e.Exit(now, 1234, 9, vlp.Critical, 7)
		e.Flush()
	})
	if allocs != 0 {
		t.Fatalf("events and Flush allocate %v times per run, want 0", allocs)
	}
	// Failing writes do not allocate either once the error is known.
	eventTestSwap(t, e, "/dev/full")
	e.Flush()
	allocs = testing.AllocsPerRun(200, func() {
		e.Beat(now, 1234, 1, vlp.Ok, 7)
		e.Flush()
	})
	if allocs != 0 {
		t.Fatalf("failing Flush allocates %v times per run, want 0", allocs)
	}
}

func BenchmarkEventFileBeat(b *testing.B) {
	e, _ := eventTestOpen(b, 0)
	b.ReportAllocs()
	for i := range b.N {
		e.Beat(eventTestOrigin+int64(i)*1000, 1234, uint64(i), vlp.Ok, 7)
		if i%64 == 63 {
			e.Flush()
		}
	}
	e.Flush()
}

// TestEventFileSyncEvery: with sync every N lines the file is synced once
// a flush has written N lines since the last sync, and a failing sync is
// counted like a failed write.
func TestEventFileSyncEvery(t *testing.T) {
	e, _ := eventTestOpen(t, 0)
	e.SetSyncEvery(3)
	for i := range 2 {
		e.Stall(eventTestOrigin+int64(i), 5, 1)
	}
	e.Flush()
	if e.unsynced != 2 {
		t.Fatalf("%d lines unsynced after 2 lines, want 2", e.unsynced)
	}
	e.Stall(eventTestOrigin+3, 5, 1)
	e.Flush()
	if e.unsynced != 0 || e.Errors() != 0 {
		t.Fatalf("%d lines unsynced (errors %d) after the third line, want 0", e.unsynced, e.Errors())
	}
	// A descriptor fdatasync refuses (a pipe reports EINVAL, taken as
	// nothing to sync) versus a closed one (EBADF, counted).
	e.Stall(eventTestOrigin+4, 5, 1)
	e.Stall(eventTestOrigin+5, 5, 1)
	e.buf = e.buf[:0]
	e.unsynced = 3
	fd := e.out.fd
	e.out.fd = 1 << 20 // not open
	if err := e.sync(); err == nil || e.Errors() != 1 {
		t.Fatalf("sync of a bad descriptor = %v, errors %d; want an error, counted", err, e.Errors())
	}
	e.out.fd = fd
}
