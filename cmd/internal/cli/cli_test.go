package cli

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
)

type parsed struct {
	s    string
	b    bool
	i    int
	i64  int64
	u    uint64 // read through the pointer Uint64 returns
	rest []string
}

func parseArgs(args ...string) (parsed, error) {
	var p parsed
	fs := NewFlagSet()
	fs.StringVar(&p.s, "name", "def", "")
	fs.BoolVar(&p.b, "on", false, "")
	fs.IntVar(&p.i, "count", 7, "")
	fs.Int64Var(&p.i64, "big", -1, "")
	u := fs.Uint64("payload", 0, "")
	err := fs.Parse(args)
	p.u = *u
	for i := 0; i < fs.NArg(); i++ {
		p.rest = append(p.rest, fs.Arg(i))
	}
	return p, err
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want parsed
	}{
		{"defaults", nil, parsed{s: "def", i: 7, i64: -1}},
		{"space forms", []string{"--name", "x", "--count", "3", "-big", "9"}, parsed{s: "x", i: 3, i64: 9}},
		{"equals forms", []string{"--name=a=b", "--on", "--count=-2", "--payload=5"}, parsed{s: "a=b", b: true, i: -2, i64: -1, u: 5}},
		{"explicit bool", []string{"--on=false", "x", "--name", "y"}, parsed{s: "def", i: 7, i64: -1, rest: []string{"x", "--name", "y"}}},
		{"double dash", []string{"--on", "--", "--count"}, parsed{s: "def", b: true, i: 7, i64: -1, rest: []string{"--count"}}},
		{"empty value", []string{"--name="}, parsed{s: "", i: 7, i64: -1}},
		{"uint64 beyond int64", []string{"--payload", "18446744073709551615"}, parsed{s: "def", i: 7, i64: -1, u: 1<<64 - 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseArgs(tc.args...)
			if err != nil || got.s != tc.want.s || got.b != tc.want.b || got.i != tc.want.i ||
				got.i64 != tc.want.i64 || got.u != tc.want.u || strings.Join(got.rest, " ") != strings.Join(tc.want.rest, " ") {
				t.Errorf("Parse(%q) = %+v, %v, want %+v", tc.args, got, err, tc.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown", []string{"--bogus"}, "unknown flag --bogus"},
		{"missing value", []string{"--name"}, "--name: needs a value"},
		// --count is an int: its range is the platform's (32 bits on armv7).
		{"bad int", []string{"--count", "x"}, "--count: want a whole number from " + strconv.Itoa(math.MinInt) +
			" to " + strconv.Itoa(math.MaxInt) + ` (got "x")`},
		{"int out of range", []string{"--big", "99999999999999999999"}, `--big: out of range: want a whole number from -9223372036854775808 to 9223372036854775807`},
		{"bad bool", []string{"--on=maybe"}, "--on: want true or false"},
		{"negative uint", []string{"--payload", "-1"}, "--payload: want a whole number from 0 to 18446744073709551615"},
		{"bare dash name", []string{"--=x"}, "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseArgs(tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Parse(%q) = %v, want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
	for _, h := range []string{"-h", "--help", "-help"} {
		if _, err := parseArgs("--on", h); !errors.Is(err, ErrHelp) {
			t.Errorf("Parse(%s) = %v, want ErrHelp", h, err)
		}
	}
}
