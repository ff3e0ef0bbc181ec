package recovery

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var fuzzOpts = auditOpts{syncEvery: 1 << 20, bufCap: 256, pid: 4242}

// auditSeeds are files an observer can meet at start: its own logs, a
// crash's torn tail or header, an edit, a log in the earlier key=value
// layout, a schema v1 log, and someone else's file.
func auditSeeds(t testing.TB) [][]byte {
	path := filepath.Join(t.TempDir(), "seed.log")
	for range 3 {
		a, err := openAudit(path, fuzzOpts, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.begin("refused", 7)
		a.uint(99)
		a.text("unauthenticated_transport")
		a.commit("refused")
		a.close()
	}
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr := []byte(AuditHeader + "\n")
	edited := bytes.Replace(good, []byte("\t99\t"), []byte("\t98\t"), 1)
	kv := AuditHeader + "\n1\t2025-01-02T03:04:05.000006Z\tboot\treason=start\t" + strings.Repeat("ab", 32) + "\n"
	return [][]byte{
		good,
		hdr,
		hdr[:10],
		{},
		append(append([]byte{}, good...), "7\t1700000000000\t0\tbo"...),
		good[:len(good)-1],
		edited,
		[]byte(kv),
		[]byte("# varta-watch recovery audit v1\n1\tsomething\n"),
		[]byte("#!/bin/sh\necho not an audit log\n"),
	}
}

// FuzzAuditReopen: whatever the audit file holds when the observer starts,
// opening it never panics and never destroys evidence. Either the file is
// refused with a message and left byte for byte as it was; or it is moved
// aside whole (a log in another layout) and a new one started; or at most
// a torn last line (or a torn header) is cut off and a boot record
// appended. And a file that verified intact verifies intact after the
// boot record, with one record more.
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
		a, err := openAudit(path, fuzzOpts, nil)
		got, rerr := os.ReadFile(path)
		if rerr != nil {
			t.Fatal(rerr)
		}
		if err != nil {
			if !bytes.Equal(got, content) {
				t.Fatalf("refused (%v) and still changed the file", err)
			}
			if verr == nil && before.Layout == LayoutV2 {
				t.Fatalf("refused a file that verifies intact with %d records: %v", before.Records, err)
			}
			return
		}
		defer a.close()
		o := a.open
		if o.MovedTo != "" {
			moved, err := os.ReadFile(o.MovedTo)
			if err != nil || !bytes.Equal(moved, content) {
				t.Fatalf("moved aside to %s, which does not hold the original (%v)", o.MovedTo, err)
			}
			if o.Reason != BootSchemaDrift && o.Reason != BootLegacyV1 {
				t.Fatalf("moved aside with boot reason %s", o.Reason)
			}
			content = nil // the live file is new
		}
		// What stays of the original: all of it but a torn tail.
		kept := content
		switch {
		case len(content) < len(hdr) && bytes.HasPrefix(hdr, content):
			if o.Repaired != int64(len(content)) {
				t.Fatalf("torn header %q: repaired %d, want %d", content, o.Repaired, len(content))
			}
			kept = hdr
		case o.Repaired < 0 || o.Repaired > int64(len(content)):
			t.Fatalf("repaired %d bytes of %d", o.Repaired, len(content))
		default:
			kept = content[:len(content)-int(o.Repaired)]
			if o.Repaired > 0 && bytes.Contains(content[len(kept):], []byte("\n")) {
				t.Fatalf("cut %d bytes holding a complete line: %q", o.Repaired, content[len(kept):])
			}
		}
		if !bytes.HasPrefix(got, kept) {
			t.Fatalf("the file is not the original (cut at a torn tail) with records after it:\nwas %q\nnow %q", content, got)
		}
		after, err := VerifyAudit(path)
		if err != nil && (verr == nil || o.MovedTo != "" || bytes.Equal(kept, hdr)) {
			t.Fatalf("after open the log does not verify: %v\n%q", err, got)
		}
		if verr == nil && before.Layout == LayoutV2 && o.MovedTo == "" && after.Records != before.Records+1 {
			t.Fatalf("intact file of %d records: after the boot record, verify says %d", before.Records, after.Records)
		}
	})
}
