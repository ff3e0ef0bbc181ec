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
	return auditManagerCfg(t, Config{AuditFile: path})
}

func auditManagerCfg(t *testing.T, cfg Config) *Manager {
	t.Helper()
	cfg.Command = Command{Path: "/bin/true", Args: []string{"true"}}
	if cfg.Capacity == 0 {
		cfg.Capacity = 4
	}
	m, err := New(cfg)
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

func mustField(t *testing.T, rec, key string) string {
	t.Helper()
	v, ok := field(rec, key)
	if !ok {
		t.Fatalf("record %q has no %s", rec, key)
	}
	return v
}

// handChain is the chain of cmd/varta-watch/README.md §6, written out
// here from the text rather than shared with the writer: SHA-256 over
// "VARTA-AUDIT-v2", kind, the previous chain value (raw) and the record
// up to the tab before its chain column, each separated by a zero byte.
func handChain(prev [32]byte, kind, body string) [32]byte {
	h := sha256.New()
	h.Write([]byte("VARTA-AUDIT-v2"))
	h.Write([]byte{0})
	h.Write([]byte(kind))
	h.Write([]byte{0})
	h.Write(prev[:])
	h.Write([]byte{0})
	h.Write([]byte(body))
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// handLog builds an audit log line by line as the format describes it.
type handLog struct {
	lines []string
	chain [32]byte
}

// add appends the record with the given columns (seq through the last
// kind-specific column) and its chain value.
func (h *handLog) add(cols ...string) string {
	body := strings.Join(cols, "\t")
	h.chain = handChain(h.chain, cols[3], body)
	h.lines = append(h.lines, body+"\t"+hex.EncodeToString(h.chain[:]))
	return hex.EncodeToString(h.chain[:])
}

func (h *handLog) write(t *testing.T, path string) {
	t.Helper()
	text := AuditHeader + "\n" + strings.Join(h.lines, "\n") + "\n"
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
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

// TestAuditLogFormat: the records the Manager writes have the columns of
// schema v2, in order, and the chain recomputed here by the format's own
// words matches every record's.
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
	var chain [32]byte
	for i, rec := range lines[1:] {
		cols := strings.Split(rec, "\t")
		kind := kindOf(rec)
		if len(cols) != len(auditColumns[kind]) {
			t.Fatalf("record %q: %d columns, want %d for %s", rec, len(cols), len(auditColumns[kind]), kind)
		}
		if seqOf(t, rec) != uint64(i+1) {
			t.Fatalf("record %q: want seq %d", rec, i+1)
		}
		for _, c := range cols[1:3] {
			if _, err := strconv.ParseUint(c, 10, 64); err != nil {
				t.Fatalf("record %q: wallclock_ms and observer_ns must be decimals", rec)
			}
		}
		j := strings.LastIndexByte(rec, '\t')
		chain = handChain(chain, kind, rec[:j])
		if got := rec[j+1:]; got != hex.EncodeToString(chain[:]) {
			t.Fatalf("record %q: chain %s, want %s", rec, got, hex.EncodeToString(chain[:]))
		}
		kinds = append(kinds, kind)
	}
	if want := []string{"boot", "spawn", "complete", "refused"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	boot, spawn, complete, refused := lines[1], lines[2], lines[3], lines[4]
	want := map[string]map[string]string{
		boot:     {"observer_ns": "0", "daemon_pid": strconv.Itoa(os.Getpid()), "prev_chain": "-", "reason": "fresh"},
		spawn:    {"agent_pid": "7", "mode": "exec", "program": "/bin/true", "source": "inline", "template_len": "4"}, // "true": no {pid} in this Command
		complete: {"agent_pid": "7", "outcome": "reaped", "exit_code": "0", "signal": "-", "stdout_len": "0", "stderr_len": "0", "truncated": "false"},
		refused:  {"agent_pid": "8", "reason": "unauthenticated_transport"},
	}
	for rec, kv := range want {
		for k, v := range kv {
			if got := mustField(t, rec, k); got != v {
				t.Errorf("record %q: %s = %q, want %q", rec, k, got, v)
			}
		}
	}
	if c := mustField(t, complete, "child_pid"); c != mustField(t, spawn, "child_pid") {
		t.Errorf("complete record's child %q differs from spawn's", c)
	}
	s, err := VerifyAudit(path)
	if err != nil || s.Records != 4 || s.Layout != LayoutV2 || s.Checkpoint != CheckpointMatches || s.CheckpointSeq != 4 {
		t.Fatalf("VerifyAudit = %+v, %v; want 4 v2 records, checkpoint at seq 4", s, err)
	}
}

// TestVerifyHandBuiltLog: a log built here by hand from the format's
// description, not by the writer, verifies: every kind and boot reason,
// signal and exit columns, a seq gap (a record the writer lost), a resume
// whose prev_chain names the chain before it, and a rotation: the next
// file's first record chains from the value its boot record names. An
// unchained log (a build without the chain) verifies for shape and seq.
func TestVerifyHandBuiltLog(t *testing.T) {
	dir := t.TempDir()
	var h handLog
	h.add("1", "1700000000000", "0", "boot", "1234", "-", "fresh")
	h.add("2", "1700000000100", "5000", "spawn", "4321", "4400", "exec", "/usr/bin/systemctl", "/etc/varta/recover.cmd", "28")
	h.add("3", "1700000000200", "9000", "complete", "4321", "4400", "reaped", "0", "-", "1200000", "12", "0", "false")
	h.add("4", "1700000000300", "9500", "refused", "99", "cross_namespace_agent")
	// seq 5 was lost (a full ring): its seq is burnt, the chain goes on.
	h.add("6", "1700000000400", "9900", "complete", "4322", "4401", "killed", "-", "9", "30000000000", "0", "0", "false")
	h.add("7", "1700000000500", "9950", "complete", "4323", "4402", "reap_failed", "-", "-", "1", "0", "0", "true")
	head := hex.EncodeToString(h.chain[:])
	h.add("8", "1700000100000", "0", "boot", "1240", head, "resume")
	last := h.add("9", "1700000100001", "77", "refused", "12", "outstanding_capacity")
	rotated := filepath.Join(dir, "audit.log.1")
	h.write(t, rotated)
	s, err := VerifyAudit(rotated)
	if err != nil || s.Records != 8 || s.FirstSeq != 1 || s.LastSeq != 9 || s.Gaps != 1 || s.Checkpoint != CheckpointAbsent {
		t.Fatalf("VerifyAudit(hand-built) = %+v, %v; want 8 records, seq 1..9, 1 gap, no checkpoint", s, err)
	}

	next := handLog{chain: h.chain}
	next.add("10", "1700000200000", "0", "boot", "1240", last, "rotation")
	next.add("11", "1700000200001", "100", "refused", "13", "debounce_capacity")
	live := filepath.Join(dir, "audit.log")
	next.write(t, live)
	if s, err := VerifyAudit(live); err != nil || s.Records != 2 || s.FirstSeq != 10 {
		t.Fatalf("VerifyAudit(after rotation) = %+v, %v; want 2 records from seq 10", s, err)
	}
	// A rotation boot naming another chain value breaks its first link.
	wrong := handLog{}
	wrong.add("10", "1700000200000", "0", "boot", "1240", strings.Repeat("ab", 32), "rotation")
	wrong.lines[0] = strings.Replace(wrong.lines[0], strings.Repeat("ab", 32), last, 1)
	wrong.write(t, live)
	if _, err := VerifyAudit(live); err == nil || !strings.Contains(err.Error(), "line 2: chain mismatch") {
		t.Fatalf("VerifyAudit(rotation boot with the wrong chain) = %v, want a chain mismatch on line 2", err)
	}

	unchained := filepath.Join(dir, "unchained")
	text := AuditHeader + "\n1\t1700000000000\t0\tboot\t1\t-\tfresh\t-\n2\t1700000000001\t3\trefused\t5\tsocket_mode_only\t-\n"
	os.WriteFile(unchained, []byte(text), 0o600)
	if s, err := VerifyAudit(unchained); err != nil || s.Records != 2 || s.Unchained != 2 {
		t.Fatalf("VerifyAudit(unchained) = %+v, %v; want 2 unchained records", s, err)
	}
}

// TestVerifyAuditDetectsTampering: every edit the chain, the shape rules
// or the sequence can show is named with its line.
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
		{name: "edited field", lines: edit(2, func(s string) string { return strings.Replace(s, "\t7\t", "\t6\t", 1) }),
			wantLine: 3, wantMsg: "chain mismatch"},
		{name: "edited chain", lines: edit(4, func(s string) string {
			if s[len(s)-1] == '0' {
				return s[:len(s)-1] + "1"
			}
			return s[:len(s)-1] + "0"
		}),
			wantLine: 5, wantMsg: "chain mismatch"},
		{name: "deleted record", lines: slices.Delete(slices.Clone(orig), 2, 3), wantLine: 3, wantMsg: "chain mismatch"},
		{name: "deleted first record", lines: slices.Delete(slices.Clone(orig), 1, 2), wantLine: 2, wantMsg: "chain mismatch"},
		{name: "swapped records", lines: func() []string {
			l := slices.Clone(orig)
			l[2], l[3] = l[3], l[2]
			return l
		}(), wantLine: 3, wantMsg: "chain mismatch"},
		{name: "duplicated record", lines: slices.Insert(slices.Clone(orig), 3, orig[2]), wantLine: 4, wantMsg: "seq 2 after 2"},
		{name: "bad header", lines: edit(0, func(string) string { return "# something else" }), wantLine: 1, wantMsg: "header"},
		{name: "unknown kind", lines: edit(3, func(s string) string { return strings.Replace(s, "\tcomplete\t", "\tdone\t", 1) }),
			wantLine: 4, wantMsg: "unknown record kind"},
		{name: "extra column", lines: edit(4, func(s string) string { return strings.Replace(s, "\trefused\t", "\trefused\tx\t", 1) }),
			wantLine: 5, wantMsg: "refused record has 8 columns, want 7"},
		{name: "exit and signal", lines: edit(3, func(s string) string { return strings.Replace(s, "\t0\t-\t", "\t0\t9\t", 1) }),
			wantLine: 4, wantMsg: "both an exit code and a signal"},
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

// TestAuditTornTailRepaired: a torn last line fails verification until
// the next start cuts it off; that start's boot record says corrupt_tail
// and continues the sequence and the chain.
func TestAuditTornTailRepaired(t *testing.T) {
	path := writeSample(t)
	before := readLines(t, path)
	torn := "5\t1700000000000\t0\tspawn\t1"
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
	if o := m.AuditOpened(); o.Reason != BootCorruptTail || o.Repaired != int64(len(torn)) {
		t.Errorf("AuditOpened = %+v, want corrupt_tail with %d bytes repaired", o, len(torn))
	}
	closeManager(t, m)
	after := readLines(t, path)
	if !slices.Equal(after[:len(before)], before) || len(after) != len(before)+1 {
		t.Fatalf("repair changed the intact records or added %d lines", len(after)-len(before))
	}
	boot := after[len(after)-1]
	if kindOf(boot) != "boot" || seqOf(t, boot) != 5 || mustField(t, boot, "reason") != BootCorruptTail {
		t.Fatalf("record after repair %q, want boot seq 5, reason corrupt_tail", boot)
	}
	if s, err := VerifyAudit(path); err != nil || s.Records != 5 {
		t.Fatalf("VerifyAudit after repair = %+v, %v; want 5 records", s, err)
	}
}

// TestAuditResume: a restart on an intact log resumes it: the boot record
// says resume, names the chain value before it, and seq goes on.
func TestAuditResume(t *testing.T) {
	path := writeSample(t)
	for round := 0; round < 2; round++ {
		m := auditManager(t, path)
		if o := m.AuditOpened(); o.Reason != BootResume || o.Note != "" {
			t.Errorf("AuditOpened = %+v, want resume", o)
		}
		m.OnStall(9, 1, false, now())
		closeManager(t, m)
	}
	lines := readLines(t, path)
	for i, rec := range lines[1:] {
		if got := seqOf(t, rec); got != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, got)
		}
	}
	prev := lines[len(lines)-3]
	boot := lines[len(lines)-2]
	if mustField(t, boot, "reason") != BootResume || mustField(t, boot, "prev_chain") != mustField(t, prev, "chain") {
		t.Fatalf("boot %q after %q: want resume naming the chain value before it", boot, prev)
	}
	if s, err := VerifyAudit(path); err != nil || s.Records != 8 {
		t.Fatalf("VerifyAudit = %+v, %v; want 8 records", s, err)
	}
}

func TestAuditOpen(t *testing.T) {
	dir := t.TempDir()
	t.Run("torn header", func(t *testing.T) {
		p := filepath.Join(dir, "torn-header")
		os.WriteFile(p, []byte(AuditHeader[:10]), 0o600)
		closeManager(t, auditManager(t, p))
		if s, err := VerifyAudit(p); err != nil || s.Records != 1 {
			t.Fatalf("VerifyAudit = %+v, %v; want 1 record", s, err)
		}
	})
	t.Run("header only", func(t *testing.T) {
		p := filepath.Join(dir, "header-only")
		os.WriteFile(p, []byte(AuditHeader+"\n"), 0o600)
		closeManager(t, auditManager(t, p))
		if l := readLines(t, p); len(l) != 2 || seqOf(t, l[1]) != 1 || mustField(t, l[1], "reason") != BootFresh {
			t.Fatalf("log = %q, want header and boot seq 1, fresh", l)
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
			if tt.content != "" {
				if b, _ := os.ReadFile(p); string(b) != tt.content {
					t.Fatalf("refused file changed: %q", b)
				}
			}
		})
	}
}

// kvLog writes a log in the earlier key=value layout, hash rules and all,
// with n boot records.
func kvLog(t *testing.T, path string, n int) string {
	t.Helper()
	prev := strings.Repeat("0", 64)
	text := AuditHeader + "\n"
	for i := 1; i <= n; i++ {
		body := strconv.Itoa(i) + "\t2025-01-02T03:04:05.000006Z\tboot\tobserver_pid=1\treason=start"
		sum := sha256.Sum256([]byte(prev + "\t" + body))
		prev = hex.EncodeToString(sum[:])
		text += body + "\t" + prev + "\n"
	}
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return text
}

// TestAuditMigratesKVLog: a log in the earlier key=value layout verifies
// by its own rules (and says which), and at start is moved aside whole to
// PATH.kv-<unix seconds>; the new log's boot record says schema_drift and
// its seq goes on from the old log's.
func TestAuditMigratesKVLog(t *testing.T) {
	path := tempPath(t, "audit.log")
	old := kvLog(t, path, 3)
	if s, err := VerifyAudit(path); err != nil || s.Layout != LayoutKV || s.Records != 3 {
		t.Fatalf("VerifyAudit(kv log) = %+v, %v; want 3 records in the kv layout", s, err)
	}
	edited := strings.Replace(old, "reason=start", "reason=stop", 1)
	os.WriteFile(path+".edited", []byte(edited), 0o600)
	if _, err := VerifyAudit(path + ".edited"); err == nil || !strings.Contains(err.Error(), "line 2: hash mismatch (edited or reordered) (key=value layout)") {
		t.Fatalf("VerifyAudit(edited kv log) = %v, want a hash mismatch on line 2", err)
	}

	m := auditManager(t, path)
	o := m.AuditOpened()
	closeManager(t, m)
	if o.Reason != BootSchemaDrift || !strings.HasPrefix(o.MovedTo, path+".kv-") {
		t.Fatalf("AuditOpened = %+v, want schema_drift and the log moved to %s.kv-*", o, path)
	}
	if b, err := os.ReadFile(o.MovedTo); err != nil || string(b) != old {
		t.Fatalf("moved log differs from the original (%v)", err)
	}
	lines := readLines(t, path)
	if len(lines) != 2 || seqOf(t, lines[1]) != 4 || mustField(t, lines[1], "reason") != BootSchemaDrift {
		t.Fatalf("new log %q, want a header and a schema_drift boot with seq 4", lines)
	}
	if s, err := VerifyAudit(path); err != nil || s.Layout != LayoutV2 || s.Checkpoint != CheckpointMatches {
		t.Fatalf("VerifyAudit(new log) = %+v, %v", s, err)
	}
}

// TestAuditReopen: after logrotate (rename + SIGHUP) the new file starts
// with a rotation boot record carrying seq and chain on; a reopen in
// place resumes; each file verifies on its own.
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
	if cur[0] != AuditHeader || seqOf(t, cur[1]) != 3 || mustField(t, cur[1], "reason") != BootRotation {
		t.Fatalf("rotated log starts %q, want header then a rotation boot with seq 3", cur[:2])
	}
	if h := mustField(t, cur[1], "prev_chain"); h != mustField(t, old[len(old)-1], "chain") {
		t.Fatalf("rotation boot prev_chain %q, want the old file's last chain value", h)
	}
	if err := m.ReopenAudit(); err != nil {
		t.Fatalf("second ReopenAudit: %v", err)
	}
	cur = readLines(t, path)
	if b := cur[len(cur)-1]; seqOf(t, b) != 5 || mustField(t, b, "reason") != BootResume {
		t.Fatalf("boot after an in-place reopen %q, want seq 5 and resume", b)
	}
	for _, p := range []string{path, path + ".1"} {
		if _, err := VerifyAudit(p); err != nil {
			t.Fatalf("VerifyAudit(%s): %v", p, err)
		}
	}
}

// TestAuditWriteFailure: a write that fails midway (EFBIG from
// RLIMIT_FSIZE, standing in for ENOSPC) is counted and returned, cut back
// off the file, and its seq is burnt; the manager carries on and the log
// verifies with one gap.
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
	if seqOf(t, lines[len(lines)-1]) != 3 {
		t.Fatalf("record after the failure %q, want seq 3 (seq 2 burnt)", lines[len(lines)-1])
	}
	if s, err := VerifyAudit(path); err != nil || s.Gaps != 1 {
		t.Fatalf("VerifyAudit = %+v, %v; want one gap", s, err)
	}
}
