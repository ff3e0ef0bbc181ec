package cli

import (
	"errors"
	"strconv"
	"strings"
	"testing"
)

// TestErrorChain: every Parse failure is an *Error naming the flag, and
// what it wraps is reachable with errors.Is and errors.As.
func TestErrorChain(t *testing.T) {
	var ms int64
	newSet := func() *FlagSet {
		fs := NewFlagSet()
		fs.String("file", "", "")
		fs.String("addr", "", "")
		fs.BoolVar(new(bool), "on", false, "")
		fs.RangeVar(&ms, "ms", 100, 10, 1000, "milliseconds")
		return fs
	}
	tests := []struct {
		args   []string
		flag   string
		is     error
		rng    bool // a *RangeError
		substr string
	}{
		{[]string{"--bogus"}, "bogus", ErrUnknownFlag, false, "unknown flag --bogus"},
		{[]string{"--file"}, "file", ErrMissingValue, false, "--file: needs a value"},
		{[]string{"--file", "--addr", "127.0.0.1:9"}, "file", ErrMissingValue, false, "--file: needs a value (the next argument, --addr, is a flag)"},
		{[]string{"--file", "--addr=x"}, "file", ErrMissingValue, false, "--file: needs a value"},
		{[]string{"--file", "-on"}, "file", ErrMissingValue, false, "--file: needs a value"},
		{[]string{"--file", "--help"}, "file", ErrMissingValue, false, "--file: needs a value"},
		{[]string{"--ms", "--file", "x"}, "ms", ErrMissingValue, false, "--ms: needs a value"},
		{[]string{"--ms", "5"}, "ms", strconv.ErrRange, true, `--ms: out of range: want a whole number of milliseconds from 10 to 1000 (got "5")`},
		{[]string{"--ms", "1001"}, "ms", strconv.ErrRange, true, "out of range"},
		{[]string{"--ms", "99999999999999999999"}, "ms", strconv.ErrRange, true, "out of range: want a whole number of milliseconds from 10 to 1000"},
		{[]string{"--ms", "1s"}, "ms", strconv.ErrSyntax, true, `--ms: want a whole number of milliseconds from 10 to 1000 (got "1s")`},
		{[]string{"--ms", "-5"}, "ms", strconv.ErrRange, true, "out of range"},
	}
	for _, tc := range tests {
		err := newSet().Parse(tc.args)
		var fe *Error
		if !errors.As(err, &fe) || fe.Flag != tc.flag || !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.substr) {
			t.Errorf("Parse(%q) = %v; want an *Error for %q wrapping %v, saying %q", tc.args, err, tc.flag, tc.is, tc.substr)
			continue
		}
		var re *RangeError
		if errors.As(err, &re) != tc.rng || tc.rng && (re.Min != 10 || re.Max != 1000) {
			t.Errorf("Parse(%q): RangeError %+v, want one (10..1000): %v", tc.args, re, tc.rng)
		}
	}
}

// TestValuesThatLookLikeFlags: a lone "-" is a value (standard output),
// so are negative numbers, unknown dashed words, and anything given with
// "=".
func TestValuesThatLookLikeFlags(t *testing.T) {
	fs := NewFlagSet()
	file := fs.String("file", "", "")
	addr := fs.String("addr", "", "")
	n := fs.Int64("n", 0, "")
	if err := fs.Parse([]string{"--file", "-", "--n", "-3", "--addr=--file"}); err != nil || *file != "-" || *n != -3 || *addr != "--file" {
		t.Errorf("got %q %d %q, %v", *file, *n, *addr, err)
	}
	if err := fs.Parse([]string{"--file", "-not-a-flag"}); err != nil || *file != "-not-a-flag" {
		t.Errorf("got %q, %v", *file, err)
	}
}

// TestNames lists what was defined, and Lookup finds a flag's value.
func TestNames(t *testing.T) {
	fs := NewFlagSet()
	fs.String("b", "x", "")
	fs.BoolVar(new(bool), "a", false, "")
	var r int64
	fs.RangeVar(&r, "c", 7, 0, 9, "")
	if got := strings.Join(fs.Names(), ","); got != "a,b,c" {
		t.Errorf("Names = %s", got)
	}
	if fs.Lookup("b").String() != "x" || fs.Lookup("c").String() != "7" || !fs.IsBool("a") || fs.Lookup("z") != nil {
		t.Error("Lookup/IsBool disagree with the definitions")
	}
}
