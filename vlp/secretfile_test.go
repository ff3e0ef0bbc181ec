package vlp

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadSecretFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode) // WriteFile's mode is filtered by umask
		return p
	}
	good := write("good", 0o600, "secret\n")
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)
	at64 := strings.Repeat("k", 64)
	tests := []struct {
		name, path, want string
		body             string // the bytes a success returns
	}{
		{"good", good, "", "secret\n"},
		{"owner read only", write("ro", 0o400, "x"), "", "x"},
		{"exactly the limit", write("full", 0o600, at64), "", at64},
		{"empty", write("empty", 0o600, ""), "", ""},
		{"group readable", write("loose", 0o640, "x"), "chmod 600", ""},
		{"symlink", link, "symlink", ""},
		{"directory", dir, "not a regular file", ""},
		{"too large", write("big", 0o600, strings.Repeat("x", 65)), "larger than 64 bytes", ""},
		{"missing", filepath.Join(dir, "none"), "no such file", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := ReadSecretFile("key file", tc.path, 64)
			switch {
			case tc.want == "" && (err != nil || string(b) != tc.body):
				// The bytes are the point: a reader that checks the file
				// but returns nothing, or a cut copy, must fail here.
				t.Errorf("ReadSecretFile(%s) = %q, %v, want %q", tc.path, b, err, tc.body)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.path)):
				t.Errorf("ReadSecretFile(%s) = %q, %v, want an error naming the path and %q", tc.path, b, err, tc.want)
			}
		})
	}
	if os.Geteuid() == 0 {
		other := write("other", 0o600, "x")
		os.Chown(other, 65534, 65534)
		if _, err := ReadSecretFile("key file", other, 64); err == nil || !strings.Contains(err.Error(), "chown") {
			t.Errorf("file owned by nobody: %v, want an ownership error", err)
		}
	}
}

// TestFileErrorChain: a refused secret file keeps the system error
// behind it, so callers test the cause with errors.Is / errors.As.
func TestFileErrorChain(t *testing.T) {
	_, err := ReadSecretFile("key file", filepath.Join(t.TempDir(), "missing"), 64)
	var se *FileError
	if !errors.As(err, &se) || se.What != "key file" || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadSecretFile(missing) = %v, want a *FileError wrapping fs.ErrNotExist", err)
	}
	if !strings.Contains(err.Error(), "check the path") {
		t.Errorf("error %q lost its hint", err)
	}
}
