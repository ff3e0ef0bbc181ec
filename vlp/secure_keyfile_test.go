package vlp

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	hexA = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20"
	hexB = "B0B1B2B3000000000000000000000000000000000000000000000000000000ff"
)

func TestParseKeys(t *testing.T) {
	kb := Key{0xb0, 0xb1, 0xb2, 0xb3}
	kb[31] = 0xff
	tests := []struct {
		name string
		text string
		want []Key
		err  string
	}{
		{"one key", hexA, []Key{keyA}, ""},
		{"one key with newline", hexA + "\n", []Key{keyA}, ""},
		{"crlf and spaces", "  " + hexA + " \r\n", []Key{keyA}, ""},
		{"comments and blanks", "# rotation 2024-05\n\n" + hexB + "  # new\n#old:\n" + hexA + "\n\n", []Key{kb, keyA}, ""},
		{"empty", "", nil, "no key"},
		{"only comments", "# nothing yet\n\n", nil, "no key"},
		{"short", hexA[:62], nil, "line 1: 62 characters, want 64"},
		{"long", "\n" + hexA + "00", nil, "line 2: 66 characters"},
		{"bad digit high", "x" + hexA[1:], nil, "line 1: column 1 is not a hex digit"},
		{"bad digit low", hexA[:9] + "g" + hexA[10:], nil, "line 1: column 10 is not a hex digit"},
		{"two keys on a line", hexA + " " + hexB, nil, "129 characters"},
		{"zero key", strings.Repeat("0", 64), nil, "all-zero"},
		{"repeated", hexA + "\n" + strings.ToUpper(hexA), nil, "line 2: repeats an earlier key"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseKeys([]byte(tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseKeys(%q) = %v, want an error containing %q", tc.text, err, tc.err)
				}
				if strings.Contains(err.Error(), hexA[:8]) {
					t.Errorf("error quotes key material: %v", err)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("ParseKeys(%q) = %d keys, %v, want %d", tc.text, len(got), err, len(tc.want))
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("key %d differs", i)
				}
			}
		})
	}
}

func TestParseKeyFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, mode os.FileMode, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	one := write("one", 0o600, hexA+"\n")
	two := write("two", 0o400, hexA+"\n"+hexB+"\n")
	loose := write("loose", 0o644, hexA+"\n")
	bad := write("bad", 0o600, "# key\n"+hexA[:10]+"\n")
	link := filepath.Join(dir, "link")
	os.Symlink(one, link)

	if k, err := ReadKey(one); err != nil || k != keyA {
		t.Errorf("ReadKey(one) = %v", err)
	}
	if keys, err := ParseKeyFile(two); err != nil || len(keys) != 2 {
		t.Errorf("ParseKeyFile(two) = %d keys, %v", len(keys), err)
	}
	for _, tc := range []struct {
		name, path, want string
		read             func(string) error
	}{
		{"two keys for one", two, "holds 2 keys, want exactly one", func(p string) error { _, err := ReadKey(p); return err }},
		{"loose mode", loose, "chmod 600", func(p string) error { _, err := ParseKeyFile(p); return err }},
		{"symlink", link, "symlink", func(p string) error { _, err := ReadKey(p); return err }},
		{"bad line", bad, "line 2: 10 characters", func(p string) error { _, err := ParseKeyFile(p); return err }},
		{"missing", filepath.Join(dir, "none"), "no such file", func(p string) error { _, err := ReadKey(p); return err }},
	} {
		err := tc.read(tc.path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "key file "+tc.path) {
			t.Errorf("%s: %v, want an error naming key file %s and %q", tc.name, err, tc.path, tc.want)
		}
	}
}
