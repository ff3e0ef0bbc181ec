package ops

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHeartbeatWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hb")
	h, err := openHeartbeat(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		loops uint64
		ns    int64
		want  string
	}{
		{0, 0, "0 0\n"},
		{12, 3456789, "12 3456789\n"},
		{1<<64 - 1, 1<<63 - 1, "18446744073709551615 9223372036854775807\n"},
	} {
		if err := h.write(tc.loops, tc.ns); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(path); string(b) != tc.want {
			t.Errorf("write(%d, %d): file holds %q, want %q", tc.loops, tc.ns, b, tc.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the heartbeat file (no temporary left)", len(ents))
	}
}

// TestHeartbeatNeverFollowsSymlinks: a symlink at the path is refused at
// start-up; one planted later is replaced, its target untouched; a stale
// temporary file from a crash does not block updates, and a symlink at
// the temporary name is removed, not followed.
func TestHeartbeatNeverFollowsSymlinks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "hb")
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("precious\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	if _, err := openHeartbeat(path); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Fatalf("openHeartbeat(symlink) = %v, want a refusal naming the symlink", err)
	}
	os.Remove(path)
	h, err := openHeartbeat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(dir, ".hb.tmp")
	if err := os.Symlink(victim, tmp); err != nil {
		t.Fatal(err)
	}
	if err := h.write(7, 8); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("the symlinks' target now holds %q", b)
	}
	if fi, err := os.Lstat(path); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("path is %v (%v), want a regular file", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(path); string(b) != "7 8\n" {
		t.Errorf("heartbeat holds %q", b)
	}
}

func TestHeartbeatRefuses(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ name, path, want string }{
		{"directory", dir, "directory"},
		{"trailing slash", dir + "/", "not a file path"},
		{"empty", "", "not a file path"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := openHeartbeat(tc.path); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("openHeartbeat(%q) = %v, want an error mentioning %q", tc.path, err, tc.want)
			}
		})
	}
	// A missing directory passes the check and fails the first write,
	// which the observer does at start-up.
	h, err := openHeartbeat(filepath.Join(dir, "no", "hb"))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.write(0, 0); err == nil || !strings.Contains(err.Error(), "temporary file") ||
		!strings.Contains(err.Error(), "create the directory") {
		t.Errorf("write into a missing directory = %v", err)
	}
}

func TestHeartbeatNoAllocs(t *testing.T) {
	h, err := openHeartbeat(filepath.Join(t.TempDir(), "hb"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	allocs := testing.AllocsPerRun(100, func() {
		n++
		if err := h.write(n, int64(n)*1000); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("heartbeat write allocates %v times, want 0", allocs)
	}
}
