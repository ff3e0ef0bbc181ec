package main

// The audit log's schema v2 through the binary (cmd/varta-watch/README.md
// §6): a log built by hand from the format verifies, a cut tail is caught
// by the checkpoint and the next start, the earlier key=value layout is
// moved aside, --recovery-audit-max-bytes rotates, and the head is served
// as metrics. And the event file's --export-kinds (§5).

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// handRecord appends one record to text, chaining it from *chain by the
// format's description: SHA-256 of "VARTA-AUDIT-v2", kind, the previous
// chain value (raw) and the record up to its chain column, each followed
// by a zero byte but the last.
func handRecord(text *strings.Builder, chain *[32]byte, cols ...string) {
	body := strings.Join(cols, "\t")
	h := sha256.New()
	h.Write([]byte("VARTA-AUDIT-v2\x00" + cols[3] + "\x00"))
	h.Write(chain[:])
	h.Write([]byte("\x00" + body))
	copy(chain[:], h.Sum(nil))
	text.WriteString(body + "\t" + hex.EncodeToString(chain[:]) + "\n")
}

// TestAuditVerifyHandBuilt: `audit verify` accepts a log written by hand
// as the Rust observer writes it, and names an edit in it.
func TestAuditVerifyHandBuilt(t *testing.T) {
	var text strings.Builder
	var chain [32]byte
	text.WriteString("# varta-watch recovery audit v2\n")
	handRecord(&text, &chain, "1", "1700000000000", "0", "boot", "321", "-", "fresh")
	handRecord(&text, &chain, "2", "1700000000500", "1500000000", "spawn", "4321", "4400", "exec", "/usr/local/bin/restart", "inline", "27")
	handRecord(&text, &chain, "3", "1700000000900", "1900000000", "complete", "4321", "4400", "reaped", "1", "-", "400000000", "0", "0", "false")
	handRecord(&text, &chain, "4", "1700000001000", "2000000000", "refused", "77", "unauthenticated_transport")
	path := filepath.Join(t.TempDir(), "upstream.log")
	os.WriteFile(path, []byte(text.String()), 0o600)
	code, out, errOut := verifyAudit(t, path)
	if want := path + ": intact, 4 records (seq 1..4); no checkpoint " + path + ".chk: records cut from the end would not show\n"; code != 0 || out != want {
		t.Fatalf("verify: exit %d, stdout %q, stderr %q; want 0 and %q", code, out, errOut, want)
	}
	os.WriteFile(path, []byte(strings.Replace(text.String(), "\t4321\t4400\treaped\t1\t", "\t4321\t4400\treaped\t0\t", 1)), 0o600)
	if code, _, errOut := verifyAudit(t, path); code != 1 || !strings.Contains(errOut, path+": line 4: chain mismatch") {
		t.Fatalf("verify of an edited exit code: exit %d, stderr %q; want 1 naming line 4", code, errOut)
	}
}

// TestAuditCutTail: records cut from the end of the log are caught by
// `audit verify` (the checkpoint), and the next start writes a
// corrupt_tail boot record, logs how many are missing, and serves the new
// head as metrics.
func TestAuditCutTail(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit")
	flags := []string{"--threshold-ms", "50", "--recovery-exec", "/bin/true", "--recovery-audit-file", audit,
		"--prom-addr", "127.0.0.1:0"}
	w := startWatch(t, flags...)
	for range 3 {
		beatOnce(t, w)
	}
	recs := waitAudit(t, w, audit, "three completions", patience(5*time.Second), func(r []auditRec) bool {
		return len(ofKind(r, "complete", "", "")) == 3
	})
	last := recs[len(recs)-1]
	m := w.scrape()
	if m["varta_audit_last_seq"] != float64(last.seq) || m[`varta_audit_chain_info{head="`+last.kv["chain"][:16]+`"}`] != 1 {
		t.Errorf("metrics say last seq %v and no chain_info for head %s; want seq %d", m["varta_audit_last_seq"], last.kv["chain"][:16], last.seq)
	}
	stopCleanly(t, w)

	lines := strings.SplitAfter(strings.TrimSuffix(mustRead(t, audit), "\n"), "\n")
	os.WriteFile(audit, []byte(strings.Join(lines[:len(lines)-2], "")), 0o600)
	code, out, errOut := verifyAudit(t, audit)
	want := "the log ends at seq " + strconv.FormatUint(last.seq-2, 10) + " but its checkpoint " + audit + ".chk records seq " +
		strconv.FormatUint(last.seq, 10) + " as written: records are missing at the end (the tail was cut)"
	if code != 1 || out != "" || !strings.Contains(errOut, want) {
		t.Fatalf("verify of a cut log: exit %d, stdout %q, stderr %q; want 1 and %q", code, out, errOut, want)
	}

	w = restartWatch(t, w, flags...)
	if w.waitLog(`level=warn msg="audit log opened: it does not end with the last record written; records may be lost" .*boot=corrupt_tail missing_records=2`, time.Second) == "" {
		t.Errorf("the restart does not log the cut:\n%s", w.logText())
	}
	recs = readAudit(t, audit)
	boot := recs[len(recs)-1]
	if boot.kind != "boot" || boot.kv["reason"] != "corrupt_tail" || boot.seq != last.seq+1 {
		t.Fatalf("record after the restart %+v, want a corrupt_tail boot with seq %d", boot, last.seq+1)
	}
	if got := w.scrape()["varta_audit_last_seq"]; got != float64(boot.seq) {
		t.Errorf("varta_audit_last_seq %v after the restart, want %d", got, boot.seq)
	}
	stopCleanly(t, w)
	if code, out, _ := verifyAudit(t, audit); code != 0 || !strings.Contains(out, "2 seqs missing between records") {
		t.Errorf("verify after the restart: exit %d, %q; want intact with the 2 missing seqs reported", code, out)
	}
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuditKVLogMovedAside: a log in the earlier key=value layout (a board
// upgraded in place) verifies by its own rules, and the observer moves it
// aside whole and starts a schema v2 log whose boot record says
// schema_drift, continuing the seq.
func TestAuditKVLogMovedAside(t *testing.T) {
	dir := t.TempDir()
	audit := filepath.Join(dir, "audit")
	prev := strings.Repeat("0", 64)
	text := "# varta-watch recovery audit v2\n"
	for i := 1; i <= 2; i++ {
		body := strconv.Itoa(i) + "\t2025-06-01T10:00:00.000000Z\trefused\tagent=7\tstart_time=1\treason=unattested"
		sum := sha256.Sum256([]byte(prev + "\t" + body))
		prev = hex.EncodeToString(sum[:])
		text += body + "\t" + prev + "\n"
	}
	os.WriteFile(audit, []byte(text), 0o600)
	if code, out, errOut := verifyAudit(t, audit); code != 0 || !strings.Contains(out, "intact, 2 records (seq 1..2) in the earlier key=value layout") {
		t.Fatalf("verify of a key=value log: exit %d, %q, %q", code, out, errOut)
	}
	w := startWatch(t, "--threshold-ms", "1000", "--recovery-exec", "/bin/true", "--recovery-audit-file", audit)
	line := w.waitLog(`msg="audit log opened: the old log was in another layout and was moved aside" .*boot=schema_drift moved_to=`, time.Second)
	stopCleanly(t, w)
	moved, _ := filepath.Glob(audit + ".kv-*")
	if line == "" || len(moved) != 1 || mustRead(t, moved[0]) != text {
		t.Fatalf("moved to %v (log line %q): want the whole old log in one %s.kv-* file", moved, line, audit)
	}
	recs := readAudit(t, audit)
	if len(recs) != 1 || recs[0].kv["reason"] != "schema_drift" || recs[0].seq != 3 {
		t.Fatalf("new log %+v, want one schema_drift boot with seq 3", recs)
	}
}

// TestAuditRotationFlag: --recovery-audit-max-bytes rotates the log; the
// rotated file and the new one both verify against their checkpoints and
// the new one's first record carries the chain on.
func TestAuditRotationFlag(t *testing.T) {
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", "30", "--recovery-exec", "/bin/true", "--recovery-debounce-ms", "0",
		"--recovery-audit-file", audit, "--recovery-audit-max-bytes", "4096", "--recovery-audit-sync-every", "1")
	for i := 0; ; i++ {
		if _, err := os.Stat(audit + ".1"); err == nil {
			break
		}
		if i == 100 {
			t.Fatalf("no rotation after %d recoveries", i)
		}
		beatOnce(t, w)
		time.Sleep(40 * time.Millisecond)
	}
	stopCleanly(t, w)
	for _, p := range []string{audit + ".1", audit} {
		if code, out, errOut := verifyAudit(t, p); code != 0 || !strings.Contains(out, "checkpoint "+p+".chk matches") {
			t.Errorf("verify %s: exit %d, %q, %q", p, code, out, errOut)
		}
	}
	old, cur := readAudit(t, audit+".1"), readAudit(t, audit)
	if cur[0].kv["reason"] != "rotation" || cur[0].kv["prev_chain"] != old[len(old)-1].kv["chain"] || cur[0].seq != old[len(old)-1].seq+1 {
		t.Errorf("the new log starts with %+v, want a rotation boot continuing %+v", cur[0], old[len(old)-1])
	}
}

// TestExportKindsUpstream: --export-kinds upstream leaves this observer's
// own exit lines out; the default writes them.
func TestExportKindsUpstream(t *testing.T) {
	for _, kinds := range []string{"all", "upstream"} {
		t.Run(kinds, func(t *testing.T) {
			w := startWatch(t, "--threshold-ms", "300", "--export-kinds", kinds)
			pid := beatOnce(t, w)
			if ev := w.waitEvent(patience(5*time.Second), kindPid("stall", pid)); ev == nil {
				t.Fatalf("no stall for %d:\n%s", pid, w.logText())
			}
			stopCleanly(t, w)
			exits := count(w.eventLines(), "exit", pid)
			if kinds == "all" && exits != 1 || kinds == "upstream" && exits != 0 {
				t.Errorf("%d exit lines with --export-kinds %s", exits, kinds)
			}
		})
	}
}

// TestAuditExportFlagsRefused: the new flags' bad values and combinations
// are usage errors naming the flag.
func TestAuditExportFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	base := []string{"--socket", filepath.Join(dir, "s"), "--threshold-ms", "100"}
	rec := []string{"--recovery-exec", "/bin/true", "--recovery-audit-file", filepath.Join(dir, "a")}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(rec, "--recovery-audit-max-bytes", "100"), "--recovery-audit-max-bytes: want 0 (no rotation) or at least 4096 bytes"},
		{append(rec, "--recovery-audit-sync-every", "0"), "--recovery-audit-sync-every"},
		{[]string{"--recovery-exec", "/bin/true", "--recovery-audit-max-bytes", "8192"}, "--recovery-audit-max-bytes: needs --recovery-audit-file"},
		{[]string{"--export-file", "-", "--export-file-sync-every", "10"}, "--export-file-sync-every: cannot sync standard output"},
		{[]string{"--export-file-sync-every", "10"}, "--export-file-sync-every: needs --export-file"},
		{[]string{"--export-kinds", "rust"}, `--export-kinds: want all or upstream, got "rust"`},
	} {
		code, out, errOut := runWatch(t, append(append([]string{}, base...), tc.args...)...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) || !strings.HasSuffix(errOut, "; see --help\n") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}
