package resetreason

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A file survives Write and Read whole, an agent name with a newline and
// a quote included (escaped, one line).
func TestRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "rr")
	f := Controlled(File{SeenBoot: "b1", Resets: 4}, "b1", "we\"ird\nname\xff", 42, "exit:1", 1700000000000)
	if err := Write(path, &f); err != nil {
		t.Fatal(err)
	}
	got, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != f {
		t.Fatalf("read back %+v, wrote %+v", got, f)
	}
	if got.Resets != 5 || !got.Pending || got.Kind != KindControlled {
		t.Fatalf("Controlled gave %+v", got)
	}
	if _, err := os.Stat(path + ".tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the temporary file stayed: %v", err)
	}
	if b, _ := os.ReadFile(path); strings.Count(string(b), "\n") != 11 {
		t.Errorf("the name broke the line format:\n%s", b)
	}
}

// Every kind of damage is an error wrapping ErrDamaged, never a panic.
func TestDamaged(t *testing.T) {
	good := string((&File{SeenBoot: "b", Resets: 1, Kind: KindUnexpected, Reason: ReasonUnknown, Boot: "a"}).Marshal())
	for name, b := range map[string]string{
		"empty":         "",
		"no newline":    strings.TrimSuffix(good, "\n"),
		"other header":  strings.Replace(good, "varta-reset-reason", "something", 1),
		"version 2":     strings.Replace(good, " 1\n", " 2\n", 1),
		"not key=value": good + "garbage\n",
		"unknown key":   good + "colour=red\n",
		"twice":         good + "resets=3\n",
		"bad number":    strings.Replace(good, "resets=1", "resets=x", 1),
		"bad kind":      strings.Replace(good, "kind=unexpected", "kind=other", 1),
		"bad escape":    strings.Replace(good, "boot=a", `boot=\q`, 1),
		"no seen_boot":  strings.Replace(good, "seen_boot=b\n", "", 1),
		"no reason":     strings.Replace(good, "reason=unknown\n", "", 1),
		"pending alone": "varta-reset-reason 1\nseen_boot=b\nresets=0\npending=true\n",
		"huge":          good + strings.Repeat("x", MaxBytes),
		"binary":        "\x00\x01\x02\n",
	} {
		if _, err := Parse([]byte(b)); !errors.Is(err, ErrDamaged) {
			t.Errorf("%s: Parse = %v, want ErrDamaged", name, err)
		}
	}
	if _, err := Parse([]byte(good)); err != nil {
		t.Fatalf("the undamaged file: %v", err)
	}
	dir := t.TempDir()
	if _, err := Read(dir); !errors.Is(err, ErrDamaged) {
		t.Errorf("a directory: %v, want ErrDamaged", err)
	}
	if _, err := Read(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v, want ErrNotExist", err)
	}
}

// Start tells a first start, a restart within one boot, the controlled
// reset that happened and an unexpected one apart.
func TestStart(t *testing.T) {
	f, found := Start(File{}, false, "b1", ReasonUnknown, 1)
	if found != FoundFirst || f.SeenBoot != "b1" || f.Resets != 0 {
		t.Fatalf("first start: %+v %v", f, found)
	}
	if g, found := Start(f, true, "b1", ReasonUnknown, 2); found != FoundSameBoot || g != f {
		t.Fatalf("same boot: %+v %v", g, found)
	}
	c := Controlled(f, "b1", "agent", 7, "killed", 3)
	if g, found := Start(c, true, "b1", ReasonUnknown, 4); found != FoundSameBoot || !g.Pending {
		t.Fatalf("a pending reset in the same boot must stay pending: %+v %v", g, found)
	}
	g, found := Start(c, true, "b2", ReasonUnknown, 5)
	if found != FoundControlled || g.Pending || g.Resets != 1 || g.Agent != "agent" || g.SeenBoot != "b2" {
		t.Fatalf("the controlled reset happened: %+v %v", g, found)
	}
	u, found := Start(g, true, "b3", ReasonFromBootStatus(0x20, true), 6)
	if found != FoundUnexpected || u.Resets != 2 || u.Reason != ReasonWatchdog || u.Agent != "" || u.Boot != "b2" {
		t.Fatalf("an unexpected reset: %+v %v", u, found)
	}
	for st, want := range map[int]string{0: ReasonNotWD, 0x10: ReasonPower, 0x40: ReasonPower, 1: ReasonOverheat} {
		if got := ReasonFromBootStatus(st, true); got != want {
			t.Errorf("boot status %#x: %s, want %s", st, got, want)
		}
	}
	if ReasonFromBootStatus(0x20, false) != ReasonUnknown {
		t.Error("an unknown boot status must say unknown")
	}
}
