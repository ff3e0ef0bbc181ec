package recovery

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// auditManager makes a Manager with an audit log and no child ever
// running long, exercised through decisions that need no child.
func auditManager(t *testing.T, path string) *Manager {
	t.Helper()
	m, err := New(Config{Command: Command{Path: "/bin/true", Args: []string{"true"}}, Capacity: 4, AuditFile: path})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func closeManager(t *testing.T, m *Manager) {
	t.Helper()
	if err := m.Shutdown(0); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

func seqOf(t *testing.T, rec string) uint64 {
	t.Helper()
	s, _, _ := strings.Cut(rec, "\t")
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("record %q: bad seq", rec)
	}
	return n
}

// writeSample produces a log with a boot, a spawn, a complete and a
// refused record and returns its path.
func writeSample(t *testing.T) string {
	t.Helper()
	path := tempPath(t, "audit.log")
	m := auditManager(t, path)
	m.OnStall(7, 1, true, now())
	tickUntil(t, m, "the child reaped", func() bool { return m.Outstanding() == 0 })
	m.OnStall(8, 1, false, now())
	closeManager(t, m)
	return path
}

func TestAuditLogFormat(t *testing.T) {
	path := writeSample(t)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := fi.Mode().Perm(); perm != 0o600 {
		t.Fatalf("audit file mode %v, want 0600", perm)
	}
	lines := readLines(t, path)
	if lines[0] != AuditHeader {
		t.Fatalf("line 1 = %q, want the header", lines[0])
	}
	var kinds []string
	for i, rec := range lines[1:] {
		cols := strings.Split(rec, "\t")
		if seqOf(t, rec) != uint64(i+1) || len(cols[len(cols)-1]) != 64 {
			t.Fatalf("record %q: want seq %d and a 64-hex hash last", rec, i+1)
		}
		kinds = append(kinds, cols[2])
	}
	if want := []string{"boot", "spawn", "complete", "refused"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	spawn := lines[2]
	for _, kv := range []string{"agent=7", "program=/bin/true", "argc=1"} {
		k, v, _ := strings.Cut(kv, "=")
		if got, _ := field(spawn, k); got != v {
			t.Errorf("spawn record %q: %s=%q, want %q", spawn, k, got, v)
		}
	}
	if c, _ := field(lines[3], "child"); c != mustField(t, spawn, "child") {
		t.Errorf("complete record's child %q differs from spawn's", c)
	}
	if o, _ := field(lines[3], "outcome"); o != "reaped" {
		t.Errorf("complete outcome %q, want reaped", o)
	}
	if r, _ := field(lines[4], "reason"); r != "unattested" {
		t.Errorf("refused reason %q, want unattested", r)
	}
	if n, err := VerifyAudit(path); err != nil || n != 4 {
		t.Fatalf("VerifyAudit = %d, %v; want 4, nil", n, err)
	}
	// The chain recomputed here, not by VerifyAudit (which could share a
	// mistake with the writer): each hash is SHA-256 of the previous hash
	// in hex, a tab, and the record up to its hash column.
	prev := GenesisHash
	for _, rec := range lines[1:] {
		i := strings.LastIndexByte(rec, '\t')
		sum := sha256.Sum256([]byte(prev + "\t" + rec[:i]))
		if got, want := rec[i+1:], hex.EncodeToString(sum[:]); got != want {
			t.Fatalf("record %q: hash %s, want %s", rec, got, want)
		}
		prev = rec[i+1:]
	}
}

func mustField(t *testing.T, rec, key string) string {
	t.Helper()
	v, ok := field(rec, key)
	if !ok {
		t.Fatalf("record %q has no %s", rec, key)
	}
	return v
}

func TestAuditSeqContinuesAcrossRestarts(t *testing.T) {
	path := writeSample(t)
	for round := 0; round < 2; round++ {
		m := auditManager(t, path)
		m.OnStall(9, 1, false, now())
		closeManager(t, m)
	}
	lines := readLines(t, path)
	for i, rec := range lines[1:] {
		if got := seqOf(t, rec); got != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, got)
		}
	}
	if n, err := VerifyAudit(path); err != nil || n != 8 {
		t.Fatalf("VerifyAudit = %d, %v; want 8, nil", n, err)
	}
}

func TestVerifyAuditDetectsTampering(t *testing.T) {
	path := writeSample(t)
	orig := readLines(t, path)
	write := func(lines []string) string {
		p := filepath.Join(t.TempDir(), "tampered")
		if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edit := func(i int, f func(string) string) []string {
		l := slices.Clone(orig)
		l[i] = f(l[i])
		return l
	}
	tests := []struct {
		name     string
		lines    []string
		raw      string // used instead of lines when set
		wantLine int
		wantMsg  string
	}{
		{name: "edited field", lines: edit(2, func(s string) string { return strings.Replace(s, "agent=7", "agent=6", 1) }),
			wantLine: 3, wantMsg: "hash mismatch (edited or reordered)"},
		{name: "edited hash", lines: edit(4, func(s string) string {
			if s[len(s)-1] == '0' {
				return s[:len(s)-1] + "1"
			}
			return s[:len(s)-1] + "0"
		}),
			wantLine: 5, wantMsg: "hash mismatch"},
		{name: "deleted record", lines: slices.Delete(slices.Clone(orig), 2, 3), wantLine: 3, wantMsg: "seq 3 after 1"},
		{name: "deleted first record", lines: slices.Delete(slices.Clone(orig), 1, 2), wantLine: 2, wantMsg: "hash mismatch"},
		{name: "swapped records", lines: func() []string {
			l := slices.Clone(orig)
			l[2], l[3] = l[3], l[2]
			return l
		}(), wantLine: 3, wantMsg: "seq 3 after 1"},
		{name: "bad header", lines: edit(0, func(string) string { return "# something else" }), wantLine: 1, wantMsg: "header"},
		{name: "unknown kind", lines: edit(3, func(s string) string { return strings.Replace(s, "\tcomplete\t", "\tdone\t", 1) }),
			wantLine: 4, wantMsg: "unknown record kind"},
		{name: "torn tail", raw: strings.Join(orig, "\n") + "\n5\t2025", wantLine: 6, wantMsg: "torn"},
		{name: "empty", raw: "", wantLine: 1, wantMsg: "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "raw")
			if tt.raw != "" || tt.lines == nil {
				if err := os.WriteFile(p, []byte(tt.raw), 0o600); err != nil {
					t.Fatal(err)
				}
			} else {
				p = write(tt.lines)
			}
			_, err := VerifyAudit(p)
			var ve *VerifyError
			if !errors.As(err, &ve) || ve.Line != tt.wantLine || !strings.Contains(ve.Msg, tt.wantMsg) {
				t.Fatalf("VerifyAudit = %v, want line %d: %s", err, tt.wantLine, tt.wantMsg)
			}
			if want := "line " + strconv.Itoa(tt.wantLine) + ": "; !strings.Contains(err.Error(), want) {
				t.Fatalf("error %q does not name %q", err, want)
			}
		})
	}
}

func TestAuditTornTailRepaired(t *testing.T) {
	path := writeSample(t)
	before := readLines(t, path)
	torn := "5\t2025-01-01T00:00:00.000000Z\tspawn\tagent=1"
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(torn)
	f.Close()
	if _, err := VerifyAudit(path); err == nil {
		t.Fatal("VerifyAudit accepted a torn tail")
	}

	m := auditManager(t, path)
	closeManager(t, m)
	after := readLines(t, path)
	if !slices.Equal(after[:len(before)], before) || len(after) != len(before)+1 {
		t.Fatalf("repair changed the intact records or added %d lines", len(after)-len(before))
	}
	boot := after[len(after)-1]
	if kindOf(boot) != "boot" || seqOf(t, boot) != 5 {
		t.Fatalf("record after repair %q, want boot with seq 5", boot)
	}
	if r, _ := field(boot, "repaired_bytes"); r != strconv.Itoa(len(torn)) {
		t.Fatalf("boot record %q, want repaired_bytes=%d", boot, len(torn))
	}
	if n, err := VerifyAudit(path); err != nil || n != 5 {
		t.Fatalf("VerifyAudit after repair = %d, %v; want 5, nil", n, err)
	}
}

func TestAuditOpen(t *testing.T) {
	dir := t.TempDir()
	t.Run("torn header", func(t *testing.T) {
		p := filepath.Join(dir, "torn-header")
		os.WriteFile(p, []byte(AuditHeader[:10]), 0o600)
		closeManager(t, auditManager(t, p))
		if n, err := VerifyAudit(p); err != nil || n != 1 {
			t.Fatalf("VerifyAudit = %d, %v; want 1, nil", n, err)
		}
	})
	t.Run("header only", func(t *testing.T) {
		p := filepath.Join(dir, "header-only")
		os.WriteFile(p, []byte(AuditHeader+"\n"), 0o600)
		closeManager(t, auditManager(t, p))
		if l := readLines(t, p); len(l) != 2 || seqOf(t, l[1]) != 1 {
			t.Fatalf("log = %q, want header and boot seq 1", l)
		}
	})
	for _, tt := range []struct {
		name, content, wantErr string
		setup                  func(p string)
	}{
		{name: "foreign file", content: "hello\nworld\n", wantErr: "not a varta-watch audit log"},
		{name: "malformed last record", content: AuditHeader + "\nnot a record\n", wantErr: "malformed"},
		{name: "symlink", setup: func(p string) { os.Symlink(filepath.Join(dir, "elsewhere"), p) }, wantErr: "symlink"},
		{name: "directory", setup: func(p string) { os.Mkdir(p, 0o700) }, wantErr: "not a regular file"},
		{name: "fifo", setup: func(p string) { mkfifo(p) }, wantErr: "not a regular file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if tt.setup != nil {
				tt.setup(p)
			} else {
				os.WriteFile(p, []byte(tt.content), 0o600)
			}
			_, err := New(Config{Command: Command{Path: "/bin/true", Args: []string{"true"}}, Capacity: 1, AuditFile: p})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), p) {
				t.Fatalf("New with audit file %s: %v, want an error naming it and containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

// TestAuditReopen: after a rotation (rename + SIGHUP), the new file starts
// with a header, the seq continues, and each file verifies on its own.
func TestAuditReopen(t *testing.T) {
	path := tempPath(t, "audit.log")
	m := auditManager(t, path)
	defer closeManager(t, m)
	m.OnStall(1, 1, false, now())
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := m.ReopenAudit(); err != nil {
		t.Fatalf("ReopenAudit: %v", err)
	}
	m.OnStall(2, 1, false, now())
	old := readLines(t, path+".1")
	cur := readLines(t, path)
	if cur[0] != AuditHeader || seqOf(t, cur[1]) != 3 || kindOf(cur[1]) != "boot" {
		t.Fatalf("rotated log starts %q, want header then boot seq 3", cur[:2])
	}
	lastOld := old[len(old)-1]
	if h, _ := field(cur[1], "prev_file_hash"); h != lastOld[len(lastOld)-64:] {
		t.Fatalf("reopen boot prev_file_hash %q, want the old file's last hash", h)
	}
	// A reopen without rotation continues the same file and chain.
	if err := m.ReopenAudit(); err != nil {
		t.Fatalf("second ReopenAudit: %v", err)
	}
	cur = readLines(t, path)
	if b := cur[len(cur)-1]; kindOf(b) != "boot" || seqOf(t, b) != 5 || mustField(t, b, "prev_file_hash") != "-" {
		t.Fatalf("boot after an in-place reopen %q, want seq 5 and prev_file_hash=-", b)
	}
	for _, p := range []string{path, path + ".1"} {
		if _, err := VerifyAudit(p); err != nil {
			t.Fatalf("VerifyAudit(%s): %v", p, err)
		}
	}
}

// TestAuditWriteFailure: a write that fails midway (EFBIG from
// RLIMIT_FSIZE, standing in for ENOSPC) is counted and returned, cut back
// off the file, and noted in the next record; the manager carries on.
func TestAuditWriteFailure(t *testing.T) {
	path := tempPath(t, "audit.log")
	m := auditManager(t, path)
	defer closeManager(t, m)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	func() {
		defer lowerFsize(t, uint64(fi.Size())+20)() // room for part of a record
		if o := m.OnStall(1, 1, false, now()); o != OutcomeSkippedUnattested {
			t.Fatalf("OnStall = %v with a failing audit", o)
		}
	}()
	written, failed, last := m.AuditStats()
	if failed != 1 || last == nil || written != 1 {
		t.Fatalf("AuditStats = %d written, %d failed, %v; want 1, 1, an error", written, failed, last)
	}
	if fi2, _ := os.Stat(path); fi2.Size() != fi.Size() {
		t.Fatalf("file is %d bytes after the failed write, want it cut back to %d", fi2.Size(), fi.Size())
	}
	m.OnStall(2, 1, false, now())
	lines := readLines(t, path)
	if l, _ := field(lines[len(lines)-1], "lost"); l != "1" || seqOf(t, lines[len(lines)-1]) != 2 {
		t.Fatalf("record after the failure %q, want seq 2 with lost=1", lines[len(lines)-1])
	}
	if _, err := VerifyAudit(path); err != nil {
		t.Fatalf("VerifyAudit: %v", err)
	}
}
