package vlp

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestKeyFileErrorChain: key-file failures are *KeyFileError naming the
// path and line, and wrap their cause for errors.Is.
func TestKeyFileErrorChain(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	k1 := strings.Repeat("ab", 32)
	k2 := strings.Repeat("cd", 32)
	zero := write("zero", "# placeholder\n"+strings.Repeat("0", 64)+"\n")
	repeat := write("repeat", k1+"\n"+k1+"\n")
	two := write("two", k1+"\n"+k2+"\n")
	empty := write("empty", "# nothing\n")
	missing := filepath.Join(dir, "missing")
	tests := []struct {
		name string
		err  error
		path string
		line int
		is   error
	}{
		{"zero key", second(ParseKeyFile(zero)), zero, 2, ErrZeroKey},
		{"repeated key", second(ParseKeyFile(repeat)), repeat, 2, ErrRepeatedKey},
		{"no key", second(ParseKeyFile(empty)), empty, 0, ErrNoKey},
		{"two keys for one", second(ReadKey(two)), two, 0, ErrKeyCount},
		{"text only", second(ParseKeys([]byte(strings.Repeat("0", 64)))), "", 1, ErrZeroKey},
		{"missing file", second(ParseKeyFile(missing)), missing, 0, nil},
	}
	for _, tc := range tests {
		var ke *KeyFileError
		if !errors.As(tc.err, &ke) || ke.Path != tc.path || ke.Line != tc.line || tc.is != nil && !errors.Is(tc.err, tc.is) {
			t.Errorf("%s: %v (%#v), want a KeyFileError for %q line %d wrapping %v", tc.name, tc.err, ke, tc.path, tc.line, tc.is)
			continue
		}
		if tc.path != "" && strings.Count(tc.err.Error(), "key file "+tc.path) != 1 {
			t.Errorf("%s: %q should name the file once", tc.name, tc.err)
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestUDPZoneErrorChain: an IPv6 zone naming no interface is an
// *AddrError wrapping a *ZoneError wrapping the errno.
func TestUDPZoneErrorChain(t *testing.T) {
	_, err := DialUDP("[fe80::1%nosuchif9]:9700", UDPOptions{})
	var ae *AddrError
	var ze *ZoneError
	var errno syscall.Errno
	if !errors.As(err, &ae) || !errors.As(err, &ze) || ze.Zone != "nosuchif9" || !errors.As(err, &errno) {
		t.Fatalf("DialUDP with an unknown zone: %v, want AddrError > ZoneError > errno", err)
	}
	if !strings.Contains(err.Error(), `"nosuchif9"`) {
		t.Errorf("%q does not name the zone", err)
	}
}
