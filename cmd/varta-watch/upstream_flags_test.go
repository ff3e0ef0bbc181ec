package main

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/cli"
)

// Every flag of the Rust observer is taken here (cmd/varta-watch/README.md
// §1), and the six it removed are refused with the flag to use instead.
// testdata/upstream-flags.tsv lists upstream's flags; this file says how to
// give each a valid value, so a row without one fails the test.

// upstreamFlag is one row of testdata/upstream-flags.tsv.
type upstreamFlag struct{ name, typ, def string }

func readUpstreamFlags(t *testing.T) []upstreamFlag {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "upstream-flags.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []upstreamFlag
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 || !strings.HasPrefix(cols[0], "--") {
			t.Fatalf("upstream-flags.tsv: bad row %q", line)
		}
		out = append(out, upstreamFlag{strings.TrimPrefix(cols[0], "--"), cols[1], cols[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// pendingFlags are upstream flags not accepted yet, which must be refused
// as unknown until they are; once one is accepted, the test fails so that
// it is taken off this list. None is pending now.
var pendingFlags = map[string]bool{}

// removedHints is, for each flag upstream removed, the flag its refusal
// must point to.
var removedHints = map[string]string{
	"recovery-cmd": "--recovery-exec", "recovery-cmd-file": "--recovery-exec-file",
	"i-accept-shell-risk": "--recovery-exec", "key-env": "--key-file",
	"master-key-env": "--master-key-file", "accepted-key-env": "--accepted-key-file",
}

// upstreamFiles are the files the flags' values name.
type upstreamFiles struct {
	dir, key, keys, master, token, cmdFile, pty string
}

func newUpstreamFiles(t *testing.T) upstreamFiles {
	dir := t.TempDir()
	f := upstreamFiles{dir: dir, key: writeKeys(t, dir, "shared.key", keyCur),
		keys: writeKeys(t, dir, "accepted.keys", keyOld, keyCur), master: writeKeys(t, dir, "master.key", keyOld),
		token: filepath.Join(dir, "token"), cmdFile: filepath.Join(dir, "recovery.cmd")}
	for path, text := range map[string]string{f.token: "s3cret\n", f.cmdFile: "/bin/true {pid}\n"} {
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// upstreamArgs is, for each upstream flag, a valid use of it: the flag
// with a value, after any flags it needs. Values are in --flag=VALUE form,
// so that the union of all of them is one command line (upstreamLine).
func upstreamArgs(f upstreamFiles) map[string][]string {
	rec := "--recovery-exec=/bin/true"
	udp := "--udp-port=0"
	key := "--key-file=" + f.key
	audit := "--recovery-audit-file=" + filepath.Join(f.dir, "audit.log")
	export := "--export-file=" + filepath.Join(f.dir, "events.tsv")
	prom := "--prom-addr=127.0.0.1:0"
	return map[string][]string{
		"socket": nil, "threshold-ms": nil, // in every command line
		"recovery-exec":                    {rec},
		"recovery-exec-file":               {"--recovery-exec-file=" + f.cmdFile},
		"recovery-debounce-ms":             {rec, "--recovery-debounce-ms=1000"},
		"recovery-env":                     {rec, "--recovery-env=VARTA_T=1"},
		"recovery-inherit-env":             {rec, "--recovery-inherit-env"},
		"socket-mode":                      {"--socket-mode=0600"},
		"export-file":                      {export},
		"export-file-max-bytes":            {export, "--export-file-max-bytes=65536"},
		"export-file-sync-every":           {export, "--export-file-sync-every=10"},
		"prom-addr":                        {prom},
		"prom-token-file":                  {prom, "--prom-token-file=" + f.token},
		"recovery-timeout-ms":              {rec, "--recovery-timeout-ms=1000"},
		"shutdown-grace-ms":                {"--shutdown-grace-ms=5000"},
		"read-timeout-ms":                  {"--read-timeout-ms=100"},
		"tracker-capacity":                 {"--tracker-capacity=256"},
		"eviction-scan-window":             {"--eviction-scan-window=256"},
		"tracker-eviction-policy":          {"--tracker-eviction-policy=strict"},
		"clock-source":                     {"--clock-source=monotonic"},
		"signal-handler-mode":              {"--signal-handler-mode=libc"},
		"shutdown-after-secs":              {"--shutdown-after-secs=1"},
		"udp-port":                         {udp, key},
		"udp-bind-addr":                    {udp, "--udp-bind-addr=127.0.0.1", key},
		"key-file":                         {udp, key},
		"accepted-key-file":                {udp, "--accepted-key-file=" + f.keys},
		"master-key-file":                  {udp, "--master-key-file=" + f.master},
		"max-beat-rate":                    {"--max-beat-rate=100"},
		"global-beat-rate":                 {"--global-beat-rate=5000"},
		"global-beat-burst":                {"--global-beat-burst=10000"},
		"uds-rcvbuf-bytes":                 {"--uds-rcvbuf-bytes=1048576"},
		"heartbeat-file":                   {"--heartbeat-file=" + filepath.Join(f.dir, "heartbeat")},
		"self-watchdog-secs":               {"--self-watchdog-secs=10"},
		"hw-watchdog":                      {"--hw-watchdog=" + f.pty},
		"prom-rate-limit-per-sec":          {prom, "--prom-rate-limit-per-sec=5"},
		"prom-rate-limit-burst":            {prom, "--prom-rate-limit-burst=10"},
		"i-accept-plaintext-udp":           {udp, "--i-accept-plaintext-udp"},
		flagRecoverSecure:                  {rec, udp, key, "--" + flagRecoverSecure},
		flagRecoverPlain:                   {rec, udp, "--i-accept-plaintext-udp", "--" + flagRecoverPlain},
		"i-accept-secure-udp-non-loopback": {udp, key, "--i-accept-secure-udp-non-loopback"},
		"allow-cross-namespace-agents":     {"--allow-cross-namespace-agents"},
		"strict-namespace-check":           {"--strict-namespace-check"},
		"recovery-audit-file":              {rec, audit},
		"recovery-audit-max-bytes":         {rec, audit, "--recovery-audit-max-bytes=65536"},
		"recovery-audit-sync-every":        {rec, audit, "--recovery-audit-sync-every=1"},
		"recovery-capture-stdio":           {rec, "--recovery-capture-stdio"},
		"recovery-capture-bytes":           {rec, "--recovery-capture-bytes=4096"},
		"iteration-budget-ms":              {"--iteration-budget-ms=250"},
		"scrape-budget-ms":                 {prom, "--scrape-budget-ms=250"},
		"audit-fsync-budget-ms":            {rec, audit, "--audit-fsync-budget-ms=50"},
		"audit-sync-interval-ms":           {rec, audit, "--audit-sync-interval-ms=1000"},
		"audit-rotation-budget-ms":         {rec, audit, "--audit-rotation-budget-ms=50"},
		"inject-wedge-ms":                  {"--inject-wedge-ms=50"},
	}
}

// TestUpstreamFlags: every upstream flag outside the removed ones and the
// test-hooks one is accepted (parsed in process with a valid value), the
// test-hooks one only in a test build, and all of them together make one
// command line the real binary starts with and exits 0 from.
func TestUpstreamFlags(t *testing.T) {
	f := newUpstreamFiles(t)
	_, f.pty = watchdogPty(t)
	args := upstreamArgs(f)
	testBuild := testHookFlags(new(settings)) != nil
	base := []string{"--socket=" + filepath.Join(f.dir, "obs.sock"), "--threshold-ms=1000"}
	release, accepted := 0, 0
	var line []string // the union of every accepted flag's args, for the real binary
	seen := map[string]bool{}
	for _, u := range readUpstreamFlags(t) {
		if u.typ == "removed" {
			continue
		}
		hooks := strings.HasSuffix(u.typ, ";test-hooks")
		if !hooks {
			release++
		}
		if u.name == "help" {
			if _, err := parse([]string{"--help"}); !errors.Is(err, cli.ErrHelp) {
				t.Errorf("--help: %v, want the help", err)
			}
			accepted++
			continue
		}
		a, ok := args[u.name]
		if !ok {
			t.Errorf("--%s: no valid use of it in upstreamArgs", u.name)
			continue
		}
		_, err := parse(append(append([]string{}, base...), a...))
		switch {
		case pendingFlags[u.name] && err == nil:
			t.Errorf("--%s is accepted now: take it off pendingFlags", u.name)
		case pendingFlags[u.name] || hooks && !testBuild:
			if !errors.Is(err, cli.ErrUnknownFlag) {
				t.Errorf("--%s: %v, want an unknown flag (pending, or a test-hooks flag in a release build)", u.name, err)
			}
			continue
		case err != nil:
			t.Errorf("--%s (%s, upstream default %s) not accepted: %v", u.name, u.typ, u.def, err)
			continue
		}
		if !hooks {
			accepted++
		}
		if u.name == "recovery-exec-file" || u.name == "strict-namespace-check" {
			continue // exclusive with --recovery-exec, and with --allow-cross-namespace-agents
		}
		for _, x := range a {
			if !seen[x] {
				seen[x] = true
				line = append(line, x)
			}
		}
	}
	t.Logf("upstream flags accepted: %d/%d (release build; %d pending on another branch; --inject-wedge-ms in test builds only)",
		accepted, release, len(pendingFlags))
	if accepted+len(pendingFlags) != release {
		t.Errorf("accepted %d + pending %d != %d upstream flags", accepted, len(pendingFlags), release)
	}

	// The real binary (a test build: --inject-wedge-ms too) with all of
	// them at once starts, and exits 0 at --shutdown-after-secs.
	if !seen["--inject-wedge-ms=50"] {
		line = append(line, args["inject-wedge-ms"]...)
	}
	start := time.Now()
	code, _, stderr := runWatch(t, append(base, line...)...)
	if code != 0 {
		t.Fatalf("varta-watch with every upstream flag: exit %d\n%q\n%s", code, line, stderr)
	}
	for _, want := range []string{"--signal-handler-mode libc has no effect", "--inject-wedge-ms", "does not answer WDIOC_GETSUPPORT"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
	t.Logf("%d arguments, ran %v", len(line), time.Since(start).Round(time.Millisecond))
}

// TestUpstreamRemovedFlags: each flag upstream removed is refused, exit 2,
// with one line naming it and the flag to use instead.
func TestUpstreamRemovedFlags(t *testing.T) {
	dir := t.TempDir()
	n := 0
	for _, u := range readUpstreamFlags(t) {
		if u.typ != "removed" {
			continue
		}
		n++
		hint, ok := removedHints[u.name]
		if !ok {
			t.Errorf("--%s: removed upstream, but removedHints has no replacement for it", u.name)
			continue
		}
		expectUsageError(t, []string{"--socket", filepath.Join(dir, "obs.sock"), "--threshold-ms", "100", "--" + u.name},
			[]string{"--" + u.name + ": removed", hint})
	}
	if n != len(removedHints) {
		t.Errorf("%d removed flags in upstream-flags.tsv, %d in removedHints", n, len(removedHints))
	}
}

// TestRecoveryCaptureFlags: capture is on with upstream's
// --recovery-capture-stdio (cap --recovery-capture-bytes, default 4096)
// and, as before it existed here, with --recovery-capture-bytes N alone;
// 0 turns it off, and is refused beside --recovery-capture-stdio.
func TestRecoveryCaptureFlags(t *testing.T) {
	rec := []string{"--recovery-exec", "/bin/true"}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"--recovery-capture-stdio"}, defCaptureBytes},
		{[]string{"--recovery-capture-stdio", "--recovery-capture-bytes", "100"}, 100},
		{[]string{"--recovery-capture-bytes", "100"}, 100},
		{[]string{"--recovery-capture-bytes", "0"}, 0},
	} {
		s, err := parse(required(append(rec, tc.args...)...))
		if err != nil {
			t.Errorf("%q: %v", tc.args, err)
			continue
		}
		if s.captureBytes != tc.want {
			t.Errorf("%q: capture %d bytes, want %d", tc.args, s.captureBytes, tc.want)
		}
	}
	usage(t, required(append(rec, "--recovery-capture-stdio", "--recovery-capture-bytes", "0")...), "recovery-capture-bytes",
		"0 captures nothing", "--recovery-capture-stdio")
	usage(t, required("--recovery-capture-stdio"), "recovery-capture-stdio", "--recovery-exec")
}

// TestSignalHandlerMode: upstream's values are taken (and do nothing
// here, said in one log line: see TestUpstreamFlags), others refused.
func TestSignalHandlerMode(t *testing.T) {
	for _, v := range []string{"direct", "libc"} {
		if s, err := parse(required("--signal-handler-mode", v)); err != nil || !s.signalModeSet {
			t.Errorf("--signal-handler-mode %s: %v", v, err)
		}
	}
	if s, err := parse(required()); err != nil || s.signalModeSet {
		t.Errorf("no --signal-handler-mode: %v, given %v; want no log line", err, s != nil && s.signalModeSet)
	}
	usage(t, required("--signal-handler-mode", "signalfd"), "signal-handler-mode", "want direct or libc", `"signalfd"`)
}

// TestInjectWedge: upstream's test-hooks flag, in the tests' build of the
// binary: the loop stalls for MS at its first iteration; longer than
// --self-watchdog-secs, the self-watchdog aborts it (exit 134), as it
// would a loop wedged in earnest.
func TestInjectWedge(t *testing.T) {
	w := startWatch(t, "--threshold-ms", "1000", "--self-watchdog-secs", "1", "--inject-wedge-ms", "60000")
	if w.waitLog(`test hook: stalling the observer loop for 1m0s \(--inject-wedge-ms\)`, 10*time.Second) == "" {
		t.Fatalf("the loop did not stall:\n%s", w.logText())
	}
	if code := w.wait(20 * time.Second); code != 134 {
		t.Errorf("exit %d, want 134 from the self-watchdog:\n%s", code, w.logText())
	}
}

// TestExportMaxBytesFloor: as upstream, a rotation cap below 4096 bytes is
// refused (it would rotate on nearly every line); 0 is no rotation.
func TestExportMaxBytesFloor(t *testing.T) {
	usage(t, required("--export-file", "/tmp/events.tsv", "--export-file-max-bytes", "4095"), "export-file-max-bytes",
		"want 0 (no rotation) or at least 4096 bytes, got 4095")
	for _, v := range []string{"0", "4096"} {
		if _, err := parse(required("--export-file", "/tmp/events.tsv", "--export-file-max-bytes", v)); err != nil {
			t.Errorf("--export-file-max-bytes %s: %v", v, err)
		}
	}
}
