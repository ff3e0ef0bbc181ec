package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/vlp"
)

// TestErrorChain: usage, key-file and send failures keep their cause.
func TestErrorChain(t *testing.T) {
	_, err := parse([]string{"--socket", "/tmp/x.sock", "--count"})
	var u errUsage
	var ce *cli.Error
	if !errors.As(err, &u) || !errors.As(err, &ce) || ce.Flag != "count" || !errors.Is(err, cli.ErrMissingValue) {
		t.Errorf("missing value: %v, want errUsage > cli.Error for --count wrapping ErrMissingValue", err)
	}

	dir := t.TempDir()
	key := filepath.Join(dir, "zero.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, flag := range []string{"key-file", "master-key-file"} {
		o, err := parse([]string{"--udp", "127.0.0.1:9700", "--" + flag, key})
		if err != nil {
			t.Fatal(err)
		}
		_, err = dial(o)
		var fe *flagError
		var ke *vlp.KeyFileError
		if !errors.As(err, &fe) || fe.flag != flag || !errors.As(err, &ke) || !errors.Is(err, vlp.ErrZeroKey) ||
			!strings.HasPrefix(err.Error(), "--"+flag+": key file ") {
			t.Errorf("--%s with a zero key: %v, want flagError > vlp.KeyFileError wrapping ErrZeroKey", flag, err)
		}
	}

	// A socket path nobody listens on: the send fails with
	// ErrNoObserver, which the summary keeps.
	o, err := parse([]string{"--socket", filepath.Join(dir, "gone.sock")})
	if err != nil {
		t.Fatal(err)
	}
	err = run(o)
	var se *sendError
	if !errors.As(err, &se) || se.dropped != 1 || se.total != 1 || !errors.Is(err, vlp.ErrNoObserver) {
		t.Errorf("beat to no observer: %v, want a sendError wrapping vlp.ErrNoObserver", err)
	}
}
