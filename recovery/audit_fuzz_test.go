package recovery

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// appendBoot writes one boot record the way the Manager does at start.
func appendBoot(a *auditLog, repaired int64) error {
	a.begin("boot")
	a.int("observer_pid", 4242)
	a.int("observer_ns", 1)
	a.str("reason", "start")
	a.int("repaired_bytes", repaired)
	a.str("prev_file_hash", "-")
	a.str("program", "/bin/true")
	a.int("argc", 1)
	return a.commit()
}

// auditSeeds are files an observer can meet at start: its own logs, a
// crash's torn tail or header, an edit, and someone else's file.
func auditSeeds(t testing.TB) [][]byte {
	path := filepath.Join(t.TempDir(), "seed.log")
	a, _, err := openAudit(path, SyncNone, 0, 256)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := appendBoot(a, 0); err != nil {
			t.Fatal(err)
		}
	}
	a.close()
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte(AuditHeader + "\n")
	edited := bytes.Replace(good, []byte("observer_pid=4242"), []byte("observer_pid=4243"), 1)
	return [][]byte{
		good,
		hdr,
		hdr[:10],
		{},
		append(append([]byte{}, good...), "0000\t4\t2026-"...),
		good[:len(good)-1],
		edited,
		[]byte("#!/bin/sh\necho not an audit log\n"),
	}
}

// FuzzAuditReopen: whatever the audit file holds when the observer starts,
// opening it never panics and never destroys evidence. Either the file is
// refused with a message and left byte for byte as it was, or at most a
// torn last line (or a torn header) is cut off. And a file that verified
// intact verifies intact after the observer appends its boot record, with
// one record more.
func FuzzAuditReopen(f *testing.F) {
	for _, s := range auditSeeds(f) {
		f.Add(s)
	}
	hdr := []byte(AuditHeader + "\n")
	f.Fuzz(func(t *testing.T, content []byte) {
		path := filepath.Join(t.TempDir(), "audit.log")
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		before, verr := VerifyAudit(path)
		a, repaired, err := openAudit(path, SyncNone, 0, 256)
		got, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(got, content) {
				t.Fatalf("refused (%v) and still changed the file", err)
			}
			if verr == nil {
				t.Fatalf("refused a file that verifies intact with %d records: %v", before, err)
			}
			return
		}
		defer a.close()
		switch {
		case len(content) < len(hdr) && bytes.HasPrefix(hdr, content):
			if !bytes.Equal(got, hdr) || repaired != int64(len(content)) {
				t.Fatalf("torn header %q: file now %q, repaired %d; want the header alone, repaired %d",
					content, got, repaired, len(content))
			}
		case repaired < 0 || repaired > int64(len(content)) || !bytes.Equal(got, content[:len(content)-int(repaired)]):
			t.Fatalf("repaired %d bytes, but the file is not the original cut at its end:\nwas %q\nnow %q", repaired, content, got)
		case repaired > 0 && bytes.Contains(content[len(content)-int(repaired):], []byte("\n")):
			t.Fatalf("cut %d bytes holding a complete line: %q", repaired, content[len(content)-int(repaired):])
		}
		if err := appendBoot(a, repaired); err != nil {
			t.Fatalf("appending after open: %v", err)
		}
		if verr != nil {
			return
		}
		after, err := VerifyAudit(path)
		if err != nil || after != before+1 {
			t.Fatalf("intact file of %d records: after one more, verify says %d, %v", before, after, err)
		}
	})
}
