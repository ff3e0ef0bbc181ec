package main

import (
	"strconv"
	"strings"
	"testing"
)

// helpEntries splits --help into its flag entries: the flag's name (no
// dashes) and the text of its lines.
func helpEntries(t *testing.T) map[string]string {
	t.Helper()
	entries := map[string]string{}
	cur := ""
	for _, line := range strings.Split(helpText(), "\n") {
		switch {
		case strings.HasPrefix(line, "  -"):
			f := strings.Fields(line)
			cur = strings.TrimLeft(f[0], "-")
			if f[0] == "-h," {
				cur = "help"
			}
			if _, dup := entries[cur]; dup {
				t.Errorf("--%s is in --help twice", cur)
			}
			entries[cur] = line
		case cur != "" && strings.HasPrefix(line, strings.Repeat(" ", helpColumn)):
			entries[cur] += "\n" + line
		default:
			cur = ""
		}
	}
	return entries
}

// TestHelpMatchesParser: every flag the parser registers is in --help and
// every flag in --help is registered (help itself aside); every default
// --help prints is the parser's default, and every numeric flag's range
// in --help is the one the parser enforces.
func TestHelpMatchesParser(t *testing.T) {
	entries := helpEntries(t)
	s := &settings{}
	fs := newFlagSet(s)
	if err := fs.Parse(required()); err != nil {
		t.Fatal(err)
	}
	names := fs.Names()
	if len(names) < 40 {
		t.Fatalf("only %d flags registered", len(names))
	}
	registered := map[string]bool{}
	for _, name := range names {
		registered[name] = true
		if _, ok := entries[name]; !ok {
			t.Errorf("--%s is registered but not in --help", name)
		}
	}
	for name := range entries {
		if !registered[name] && name != "help" {
			t.Errorf("--%s is in --help but not registered", name)
		}
	}
	defaults := 0
	for name, text := range entries {
		i := strings.Index(text, "(default ")
		if i < 0 {
			continue
		}
		rest := text[i+len("(default "):]
		end := strings.IndexAny(rest, "):")
		if end < 0 {
			t.Errorf("--%s: unterminated default in %q", name, text)
			continue
		}
		defaults++
		if v := fs.Lookup(name); v == nil || v.String() != rest[:end] {
			t.Errorf("--%s: --help says default %q, the parser has %v", name, rest[:end], v)
		}
	}
	if defaults < 12 {
		t.Errorf("only %d defaults in --help", defaults)
	}
	for _, d := range flagTable(new(settings)) {
		if r, ok := d.v.(*num); ok {
			rng := strconv.FormatInt(r.min, 10) + ".." + strconv.FormatInt(r.max, 10)
			if !strings.Contains(entries[d.name], rng) {
				t.Errorf("--%s: --help does not give its range %s:\n%s", d.name, rng, entries[d.name])
			}
		}
	}
}

// TestDefaultsReachConfig: the defaults land in the settings parse
// returns (spot checks against the named constants).
func TestDefaultsReachConfig(t *testing.T) {
	s, err := parse(required())
	if err != nil {
		t.Fatal(err)
	}
	c := s.cfg
	if c.ReadTimeout.Milliseconds() != defReadTimeoutMs || c.TrackerCapacity != defTrackerCapacity ||
		c.MaxBeatRate != defMaxBeatRate || c.GlobalBeatRate != defGlobalBeatRate || c.GlobalBeatBurst != defGlobalBeatBurst ||
		c.ShutdownGrace.Milliseconds() != defShutdownGraceMs || s.debounce.Milliseconds() != defDebounceMs ||
		c.SocketMode != 0o600 || c.ShutdownAfter != 0 || c.ExportMaxBytes != 0 || s.recTimeout != 0 {
		t.Errorf("defaults: %+v, debounce %v, recovery timeout %v", c, s.debounce, s.recTimeout)
	}
}
