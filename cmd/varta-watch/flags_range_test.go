package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/internal/cli"
	"github.com/varta-go/varta/vlp"
)

// These tests call parse and run in process: a usage error returns before
// anything is bound, so no observer needs to start.

func required(extra ...string) []string {
	return append([]string{"--socket", "/tmp/varta-flags-test.sock", "--threshold-ms", "1000"}, extra...)
}

// usage runs the command line and wants exit 2 with one line naming flag
// and each of want; it returns parse's error.
func usage(t *testing.T, args []string, flag string, want ...string) error {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(args, &out, &errb); code != 2 || out.Len() != 0 {
		t.Errorf("%q: exit %d, stdout %q; want 2 and nothing", args, code, out.String())
	}
	line := errb.String()
	for _, w := range append(want, "--"+flag) {
		if !strings.Contains(line, w) {
			t.Errorf("%q: stderr %q lacks %q", args, line, w)
		}
	}
	_, err := parse(args)
	var ue *usageError
	if !errors.As(err, &ue) || ue.flag != flag {
		t.Errorf("%q: parse error %#v, want a usageError for %q", args, err, flag)
	}
	return err
}

// TestNumericFlagRanges: every numeric flag refuses values out of its
// range, with a usage error naming the flag and the range, wherever the
// value falls: just outside, beyond uint32 (where a cast would wrap), or
// beyond int64 (which must not read as "not a number").
func TestNumericFlagRanges(t *testing.T) {
	n := 0
	for _, d := range flagTable(new(settings)) {
		r, ok := d.v.(*num)
		if !ok {
			continue
		}
		n++
		rng := "from " + strconv.FormatInt(r.min, 10) + " to " + strconv.FormatInt(r.max, 10)
		for _, v := range []string{strconv.FormatInt(r.min-1, 10), strconv.FormatInt(r.max+1, 10),
			"4294967296", "4294967297", "99999999999999999999", "-99999999999999999999"} {
			if x, err := strconv.ParseInt(v, 10, 64); err == nil && x >= r.min && x <= r.max {
				continue
			}
			err := usage(t, required("--"+d.name, v), d.name, "out of range", rng, strconv.Quote(v))
			var re *cli.RangeError
			if !errors.As(err, &re) || re.Min != r.min || re.Max != r.max || !errors.Is(err, strconv.ErrRange) {
				t.Errorf("--%s %s: %v, want a cli.RangeError %s wrapping strconv.ErrRange", d.name, v, err, rng)
			}
		}
		err := usage(t, required("--"+d.name, "12x"), d.name, "want a whole number", rng)
		if !errors.Is(err, strconv.ErrSyntax) {
			t.Errorf("--%s 12x: %v, want strconv.ErrSyntax in the chain", d.name, err)
		}
	}
	if n < 12 {
		t.Errorf("only %d numeric flags in the table", n)
	}
}

// TestRateFlagsNotWrapped: the values that a uint32 cast turned into 1
// and into "off" are refused, and in-range values reach the Config.
func TestRateFlagsNotWrapped(t *testing.T) {
	for _, flag := range []string{"max-beat-rate", "global-beat-rate", "global-beat-burst"} {
		for _, v := range []string{"4294967297", "4294967296"} {
			usage(t, required("--"+flag, v), flag, "out of range")
		}
	}
	s, err := parse(required("--max-beat-rate", "7", "--global-beat-rate", "1000000", "--global-beat-burst", "0"))
	if err != nil || s.cfg.MaxBeatRate != 7 || s.cfg.GlobalBeatRate != 1000000 || s.cfg.GlobalBeatBurst != 0 {
		t.Errorf("parse = %+v, %v", s, err)
	}
}

// TestThresholdBound: a threshold beyond a week is out of range, however
// large, and says so with the range.
func TestThresholdBound(t *testing.T) {
	for _, v := range []string{"1000000000000", "604800001", "99999999999999999999"} {
		usage(t, []string{"--socket", "/tmp/x.sock", "--threshold-ms", v}, "threshold-ms",
			"out of range", "from 10 to 604800000")
	}
	if s, err := parse([]string{"--socket", "/tmp/x.sock", "--threshold-ms", "604800000"}); err != nil || s.cfg.Threshold.Hours() != 168 {
		t.Errorf("a week: %v", err)
	}
}

// TestMissingValue: a flag whose value is missing is named, not the
// argument after it.
func TestMissingValue(t *testing.T) {
	err := usage(t, []string{"--socket", "/tmp/x.sock", "--threshold-ms", "1000", "--export-file", "--prom-addr", "127.0.0.1:9467"},
		"export-file", "--export-file: needs a value")
	if !errors.Is(err, cli.ErrMissingValue) {
		t.Errorf("%v: want cli.ErrMissingValue in the chain", err)
	}
	usage(t, []string{"--socket", "/tmp/x.sock", "--threshold-ms", "--prom-addr", "127.0.0.1:9467"}, "threshold-ms", "needs a value")
	usage(t, []string{"--socket", "/tmp/x.sock", "--threshold-ms", "1000", "--export-file"}, "export-file", "needs a value")
	// A lone - is a value: standard output.
	s, err := parse(required("--export-file", "-", "--prom-addr", "127.0.0.1:9467"))
	if err != nil || s.cfg.ExportFile != "-" || s.promAddr != "127.0.0.1:9467" {
		t.Errorf("--export-file -: %+v, %v", s, err)
	}
}

// TestListenAddrForms: :PORT is every IPv4 interface (and so needs the
// token like any address beyond loopback), localhost:PORT is 127.0.0.1;
// the observer gets IP:PORT.
func TestListenAddrForms(t *testing.T) {
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	usage(t, required("--prom-addr", ":9100"), "prom-addr", "--prom-token-file", `":9100"`)
	for _, tc := range []struct {
		args      []string
		prom, udp string
	}{
		{required("--prom-addr", ":9100", "--prom-token-file", token), "0.0.0.0:9100", ""},
		{required("--prom-addr", "localhost:9100"), "127.0.0.1:9100", ""},
		{required("--prom-addr=[::1]:9100"), "[::1]:9100", ""},
		{required("--udp-addr", ":9700", "--i-accept-plaintext-udp"), "", "0.0.0.0:9700"},
		{required("--udp-addr", "localhost:9700", "--i-accept-plaintext-udp"), "", "127.0.0.1:9700"},
		{required("--udp-port", "9700", "--i-accept-plaintext-udp"), "", "127.0.0.1:9700"},
		{required("--udp-port", "9700", "--udp-bind-addr", "0.0.0.0", "--i-accept-plaintext-udp"), "", "0.0.0.0:9700"},
		{required("--udp-port", "9700", "--udp-bind-addr", "::", "--i-accept-plaintext-udp"), "", "[::]:9700"},
	} {
		s, err := parse(tc.args)
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		udp := ""
		if s.cfg.UDP != nil {
			udp = s.cfg.UDP.Addr
		}
		if s.promAddr != tc.prom || udp != tc.udp {
			t.Errorf("%q: prom %q udp %q, want %q %q", tc.args, s.promAddr, udp, tc.prom, tc.udp)
		}
	}
	for _, a := range []string{"example.com:9100", "localhost", ":99999", "localhost:x", ":"} {
		usage(t, required("--prom-addr", a), "prom-addr", "IP:PORT", strconv.Quote(a))
	}
	usage(t, required("--udp-addr", "example.com:9700", "--i-accept-plaintext-udp"), "udp-addr", "IP:PORT")
}

// TestLoadErrorChain: a file a flag names that cannot be used is a
// start-up failure naming the flag, with the cause in the chain.
func TestLoadErrorChain(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	dir := t.TempDir()
	zero := filepath.Join(dir, "zero.key")
	if err := os.WriteFile(zero, []byte(strings.Repeat("0", 64)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "token")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag string
		args []string
	}{
		{"key-file", required("--udp-addr", "127.0.0.1:0", "--key-file", zero)},
		{"accepted-key-file", required("--udp-addr", "127.0.0.1:0", "--accepted-key-file", zero)},
		{"master-key-file", required("--udp-addr", "127.0.0.1:0", "--master-key-file", zero)},
	} {
		s, err := parse(tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		err = s.load()
		var le *loadError
		var ke *vlp.KeyFileError
		if !errors.As(err, &le) || le.flag != tc.flag || !errors.As(err, &ke) || ke.Path != zero || !errors.Is(err, vlp.ErrZeroKey) ||
			!strings.HasPrefix(err.Error(), "--"+tc.flag+": key file "+zero) {
			t.Errorf("--%s: %v, want a loadError > vlp.KeyFileError wrapping vlp.ErrZeroKey", tc.flag, err)
		}
	}
	s, err := parse(required("--prom-addr", "127.0.0.1:0", "--prom-token-file", empty))
	if err != nil {
		t.Fatal(err)
	}
	var le *loadError
	if err := s.load(); !errors.As(err, &le) || le.flag != "prom-token-file" {
		t.Errorf("empty token file: %v, want a loadError for --prom-token-file", err)
	}
	s, _ = parse(required("--prom-addr", "127.0.0.1:0", "--prom-token-file", filepath.Join(dir, "missing")))
	if err := s.load(); !errors.As(err, &le) || le.flag != "prom-token-file" {
		t.Errorf("missing token file: %v, want a loadError for --prom-token-file", err)
	}
}
