package recovery

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

// refusals writes n refused records (unattested stalls) through m.
func refusals(m *Manager, n int) {
	for i := range n {
		m.OnStall(int32(100+i), 1, false, now())
	}
}

// cutRecords removes the last n lines of the log at path.
func cutRecords(t *testing.T, path string, n int) {
	t.Helper()
	lines := readLines(t, path)
	if err := os.WriteFile(path, []byte(strings.Join(lines[:len(lines)-n], "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestAuditCheckpointShowsCutTail: a log missing its last 1, 5 or 1000
// records still has an intact chain, but its checkpoint shows the cut:
// VerifyAudit fails naming it, and the next start writes a corrupt_tail
// boot record whose seq goes on from the last record remembered, so the
// loss stays visible as a gap.
func TestAuditCheckpointShowsCutTail(t *testing.T) {
	dir := t.TempDir()
	orig := dir + "/orig.log"
	m := auditManager(t, orig)
	refusals(m, 1100)
	closeManager(t, m)
	s, err := VerifyAudit(orig)
	if err != nil || s.Checkpoint != CheckpointMatches || s.CheckpointSeq != 1101 {
		t.Fatalf("VerifyAudit(untouched) = %+v, %v; want the checkpoint to match at seq 1101", s, err)
	}
	logText, _ := os.ReadFile(orig)
	chk, _ := os.ReadFile(CheckpointPath(orig))
	for _, cut := range []int{1, 5, 1000} {
		t.Run(strconv.Itoa(cut), func(t *testing.T) {
			path := dir + "/cut" + strconv.Itoa(cut)
			os.WriteFile(path, logText, 0o600)
			os.WriteFile(CheckpointPath(path), chk, 0o600)
			cutRecords(t, path, cut)
			_, err := VerifyAudit(path)
			var ve *VerifyError
			want := "the log ends at seq " + strconv.Itoa(1101-cut) + " but its checkpoint " + CheckpointPath(path) +
				" records seq 1101 as written: records are missing at the end (the tail was cut)"
			if !errors.As(err, &ve) || ve.Msg != want {
				t.Fatalf("VerifyAudit(cut %d) = %v, want %q", cut, err, want)
			}

			m := auditManager(t, path)
			o := m.AuditOpened()
			closeManager(t, m)
			if o.Reason != BootCorruptTail || o.Missing != uint64(cut) {
				t.Errorf("AuditOpened = %+v, want corrupt_tail with %d missing", o, cut)
			}
			lines := readLines(t, path)
			boot := lines[len(lines)-1]
			if seqOf(t, boot) != 1102 || mustField(t, boot, "reason") != BootCorruptTail || mustField(t, boot, "prev_chain") != "-" {
				t.Fatalf("boot after the cut %q, want seq 1102, corrupt_tail", boot)
			}
			// From here on the log verifies again, the gap on record.
			if s, err := VerifyAudit(path); err != nil || s.Gaps != uint64(cut) || s.CheckpointSeq != 1102 {
				t.Fatalf("VerifyAudit after the restart = %+v, %v; want %d seqs missing", s, err, cut)
			}
		})
	}
	t.Run("rewritten last record", func(t *testing.T) {
		path := dir + "/rewritten"
		os.WriteFile(path, logText, 0o600)
		os.WriteFile(CheckpointPath(path), chk, 0o600)
		// Cut one record and write another with the same seq and a valid
		// chain: only the checkpoint's chain value shows it.
		cutRecords(t, path, 1)
		lines := readLines(t, path)
		var h handLog
		decodeHex32([]byte(mustField(t, lines[len(lines)-1], "chain")), &h.chain)
		h.add("1101", "1700000000000", "1", "refused", "1", "forged")
		f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		f.WriteString(h.lines[0] + "\n")
		f.Close()
		_, err := VerifyAudit(path)
		if err == nil || !strings.Contains(err.Error(), "the record with seq 1101 does not have the chain value the checkpoint") {
			t.Fatalf("VerifyAudit(rewritten) = %v", err)
		}
		m := auditManager(t, path)
		if o := m.AuditOpened(); o.Reason != BootCorruptTail {
			t.Errorf("AuditOpened = %+v, want corrupt_tail", o)
		}
		closeManager(t, m)
	})
	t.Run("log deleted", func(t *testing.T) {
		path := dir + "/deleted"
		os.WriteFile(CheckpointPath(path), chk, 0o600)
		m := auditManager(t, path)
		o := m.AuditOpened()
		closeManager(t, m)
		lines := readLines(t, path)
		if o.Reason != BootCorruptTail || o.Missing != 1101 || seqOf(t, lines[1]) != 1102 {
			t.Fatalf("AuditOpened = %+v, first record %q; want corrupt_tail at seq 1102", o, lines[1])
		}
	})
	t.Run("bad checkpoint", func(t *testing.T) {
		path := dir + "/badchk"
		os.WriteFile(path, logText, 0o600)
		os.WriteFile(CheckpointPath(path), []byte("# varta-watch audit checkpoint v9\n"), 0o600)
		_, err := VerifyAudit(path)
		var ce *CheckpointError
		if !errors.As(err, &ce) || !strings.Contains(err.Error(), "unknown version") {
			t.Fatalf("VerifyAudit(bad checkpoint) = %v, want a *CheckpointError naming the version", err)
		}
		m := auditManager(t, path)
		o := m.AuditOpened()
		closeManager(t, m)
		if o.Reason != BootResume || !strings.Contains(o.Note, "unknown version") {
			t.Fatalf("AuditOpened = %+v, want resume with a note on the checkpoint", o)
		}
		if s, err := VerifyAudit(path); err != nil || s.Checkpoint != CheckpointMatches {
			t.Fatalf("VerifyAudit after the restart = %+v, %v: the checkpoint should be rewritten", s, err)
		}
	})
}

// TestAuditSyncEvery: with sync every N records the checkpoint follows
// the syncs (it never names a record not yet synced) and Close catches
// up.
func TestAuditSyncEvery(t *testing.T) {
	path := tempPath(t, "audit.log")
	m := auditManagerCfg(t, Config{AuditFile: path, AuditSyncEvery: 10})
	refusals(m, 15) // seq 2..16: synced after seq 11
	c, ok, err := readCheckpoint(CheckpointPath(path))
	if err != nil || !ok || c.first != 1 || c.last != 11 {
		t.Fatalf("checkpoint after 15 records = %+v, %v, %v; want seq 11", c, ok, err)
	}
	closeManager(t, m)
	if c, _, _ = readCheckpoint(CheckpointPath(path)); c.last != 16 {
		t.Fatalf("checkpoint after Close names seq %d, want 16", c.last)
	}
}

// TestAuditRotation: --recovery-audit-max-bytes rotates the log after the
// record that reaches the size: path.1 ... path.5 are kept with their
// checkpoints, each new file starts with a rotation boot record whose
// prev_chain is the previous file's last chain value, and every file
// verifies.
func TestAuditRotation(t *testing.T) {
	path := tempPath(t, "audit.log")
	m := auditManagerCfg(t, Config{AuditFile: path, AuditMaxBytes: MinAuditMaxBytes})
	refusals(m, 400) // about 80 bytes each: several rotations
	closeManager(t, m)
	if _, err := os.Stat(path + ".6"); err == nil {
		t.Fatal("path.6 exists: more than 5 generations kept")
	}
	var prevLast string
	var prevSeq uint64
	for g := 5; g >= 0; g-- {
		p := path
		if g > 0 {
			p += "." + strconv.Itoa(g)
		}
		s, err := VerifyAudit(p)
		if err != nil || s.Checkpoint != CheckpointMatches || s.CheckpointSeq != s.LastSeq {
			t.Fatalf("VerifyAudit(%s) = %+v, %v; want it intact with its checkpoint", p, s, err)
		}
		lines := readLines(t, p)
		if fi, _ := os.Stat(p); g > 0 && fi.Size() < MinAuditMaxBytes {
			t.Errorf("%s is %d bytes, rotated before reaching the bound", p, fi.Size())
		}
		boot := lines[1]
		if mustField(t, boot, "reason") != BootRotation {
			t.Fatalf("%s starts with %q, want a rotation boot record", p, boot)
		}
		if prevLast != "" && (mustField(t, boot, "prev_chain") != prevLast || seqOf(t, boot) != prevSeq+1) {
			t.Fatalf("%s's boot %q does not continue the previous file (seq %d, chain %s)", p, boot, prevSeq, prevLast)
		}
		prevLast, prevSeq = mustField(t, lines[len(lines)-1], "chain"), s.LastSeq
		if g == 0 {
			if a := mustField(t, lines[len(lines)-1], "agent_pid"); a != "499" {
				t.Fatalf("last record is for agent %s, want the last refusal's, 499", a)
			}
		}
	}
}
