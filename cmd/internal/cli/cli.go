// Package cli parses command-line flags for the project's commands. It has
// the shape of the standard flag package (so flag definitions read the
// same) without its dependency on fmt and reflect, which would cost the
// static board binaries about a tenth of their size budget.
//
// Accepted forms: --name value, --name=value, -name value, -name=value;
// a bool flag takes no value (--name) or an explicit --name=true|false.
// "--" ends the flags. -h, -help and --help return ErrHelp.
package cli

import (
	"errors"
	"sort"
	"strconv"
	"strings"
)

// ErrHelp is returned by Parse when help was asked for.
var ErrHelp = errors.New("help requested")

// Value is a flag's destination, as in the flag package.
type Value interface {
	String() string
	Set(string) error
}

// FlagSet is a set of defined flags.
type FlagSet struct {
	flags map[string]Value
	bools map[string]bool
	args  []string
}

// NewFlagSet returns an empty set.
func NewFlagSet() *FlagSet {
	return &FlagSet{flags: map[string]Value{}, bools: map[string]bool{}}
}

// Var defines a flag with a custom Value. usage is accepted for the flag
// package's shape; the commands write their help text by hand.
func (fs *FlagSet) Var(v Value, name, usage string) { fs.flags[name] = v }

type stringValue struct{ p *string }

func (v stringValue) String() string     { return *v.p }
func (v stringValue) Set(s string) error { *v.p = s; return nil }
func (fs *FlagSet) StringVar(p *string, name, def, usage string) {
	*p = def
	fs.Var(stringValue{p}, name, usage)
}

// String defines a string flag and returns its destination.
func (fs *FlagSet) String(name, def, usage string) *string {
	p := new(string)
	fs.StringVar(p, name, def, usage)
	return p
}

type boolValue struct{ p *bool }

func (v boolValue) String() string { return strconv.FormatBool(*v.p) }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

// BoolVar defines a flag that takes no value.
func (fs *FlagSet) BoolVar(p *bool, name string, def bool, usage string) {
	*p = def
	fs.Var(boolValue{p}, name, usage)
	fs.bools[name] = true
}

// ErrUnknownFlag and ErrMissingValue are what an *Error wraps when a flag
// is not defined, or is given without its value.
var (
	ErrUnknownFlag  = errors.New("unknown flag")
	ErrMissingValue = errors.New("needs a value")
)

// Error is a usage error about one flag, as Parse returns it: the flag's
// name, what was given, and what was wrong, reachable with errors.Is and
// errors.As (ErrUnknownFlag, ErrMissingValue, a *RangeError, or whatever
// the flag's Value.Set returned).
type Error struct {
	Flag  string // the name, without dashes
	Arg   string // the argument as given, for ErrUnknownFlag
	Value string // the value given to Set
	Next  string // for ErrMissingValue: the flag that followed, if any
	Err   error
}

func (e *Error) Error() string {
	switch e.Err {
	case ErrUnknownFlag:
		return "unknown flag " + e.Arg
	case ErrMissingValue:
		if e.Next != "" {
			return "--" + e.Flag + ": needs a value (the next argument, " + e.Next + ", is a flag)"
		}
		return "--" + e.Flag + ": needs a value"
	}
	return "--" + e.Flag + ": " + e.Err.Error() + " (got " + strconv.Quote(e.Value) + ")"
}

func (e *Error) Unwrap() error { return e.Err }

// RangeError is a value that is not a whole number in a flag's range. It
// wraps strconv.ErrSyntax (not a whole number) or strconv.ErrRange (a
// whole number outside Min..Max).
type RangeError struct {
	Min, Max int64
	Unit     string // "milliseconds", "seconds", ...; "" for a plain count
	Err      error  // strconv.ErrSyntax or strconv.ErrRange
}

func (e *RangeError) Error() string {
	want := "want a whole number"
	if e.Unit != "" {
		want += " of " + e.Unit
	}
	want += " from " + strconv.FormatInt(e.Min, 10) + " to " + strconv.FormatInt(e.Max, 10)
	if e.Err == strconv.ErrRange {
		return "out of range: " + want
	}
	return want
}

func (e *RangeError) Unwrap() error { return e.Err }

// ParseInt reads a decimal whole number in min..max. Any failure is a
// *RangeError naming the range: a number too large even for int64 is out
// of range, not malformed.
func ParseInt(s string, min, max int64, unit string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, &RangeError{min, max, unit, strconv.ErrRange}
	case err != nil:
		return 0, &RangeError{min, max, unit, strconv.ErrSyntax}
	case n < min || n > max:
		return 0, &RangeError{min, max, unit, strconv.ErrRange}
	}
	return n, nil
}

type intValue struct {
	set func(int64)
	get func() int64
	min int64
	max int64
}

func (v intValue) String() string { return strconv.FormatInt(v.get(), 10) }
func (v intValue) Set(s string) error {
	n, err := ParseInt(s, v.min, v.max, "")
	if err != nil {
		return err
	}
	v.set(n)
	return nil
}

// IntVar defines an int flag (any value an int holds on this platform).
func (fs *FlagSet) IntVar(p *int, name string, def int, usage string) {
	*p = def
	const maxInt = int64(^uint(0) >> 1)
	fs.Var(intValue{set: func(n int64) { *p = int(n) }, get: func() int64 { return int64(*p) },
		min: -maxInt - 1, max: maxInt}, name, usage)
}

// Int64Var defines an int64 flag.
func (fs *FlagSet) Int64Var(p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var(intValue{set: func(n int64) { *p = n }, get: func() int64 { return *p }, min: -1 << 63, max: 1<<63 - 1}, name, usage)
}

// Int64 defines an int64 flag and returns its destination.
func (fs *FlagSet) Int64(name string, def int64, usage string) *int64 {
	p := new(int64)
	fs.Int64Var(p, name, def, usage)
	return p
}

// RangeVar defines an int64 flag taking only min..max (in unit, for
// messages); a value outside is a *RangeError.
func (fs *FlagSet) RangeVar(p *int64, name string, def, min, max int64, unit string) {
	*p = def
	fs.Var(rangeValue{p, min, max, unit}, name, "")
}

type rangeValue struct {
	p        *int64
	min, max int64
	unit     string
}

func (v rangeValue) String() string { return strconv.FormatInt(*v.p, 10) }
func (v rangeValue) Set(s string) error {
	n, err := ParseInt(s, v.min, v.max, v.unit)
	if err == nil {
		*v.p = n
	}
	return err
}

type uintValue struct{ p *uint64 }

func (v uintValue) String() string { return strconv.FormatUint(*v.p, 10) }
func (v uintValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		if errors.Is(err, strconv.ErrRange) {
			return uintError{strconv.ErrRange}
		}
		return uintError{strconv.ErrSyntax}
	}
	*v.p = n
	return nil
}

// uintError is a value of a Uint64 flag that is not a whole number from 0
// to 2^64-1; it wraps strconv.ErrSyntax or strconv.ErrRange.
type uintError struct{ err error }

func (e uintError) Error() string {
	const want = "want a whole number from 0 to 18446744073709551615"
	if e.err == strconv.ErrRange {
		return "out of range: " + want
	}
	return want
}
func (e uintError) Unwrap() error { return e.err }

// Uint64 defines a uint64 flag and returns its destination.
func (fs *FlagSet) Uint64(name string, def uint64, usage string) *uint64 {
	p := &def
	fs.Var(uintValue{p}, name, usage)
	return p
}

// Lookup returns the Value of the flag name, or nil.
func (fs *FlagSet) Lookup(name string) Value { return fs.flags[name] }

// IsBool reports whether name is a flag that takes no value.
func (fs *FlagSet) IsBool(name string) bool { return fs.bools[name] }

// Names lists the defined flags, sorted.
func (fs *FlagSet) Names() []string {
	names := make([]string, 0, len(fs.flags))
	for n := range fs.flags {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// flagName is the name of a to the parser, if a is a defined flag (or
// help) in any of the accepted forms; "" otherwise. A lone "-" is not a
// flag: it is the usual name of standard input or output.
func (fs *FlagSet) flagName(a string) string {
	if len(a) < 2 || a[0] != '-' {
		return ""
	}
	name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
	if j := strings.IndexByte(name, '='); j >= 0 {
		name = name[:j]
	}
	if _, ok := fs.flags[name]; ok && name != "" || name == "h" || name == "help" {
		return name
	}
	return ""
}

// Parse reads args. Errors are *Error: they name the flag as --name and
// say what was wrong. A flag that needs a value and is followed by
// another defined flag (--export-file --prom-addr ...) is missing its
// value: the next flag is not taken as one. Use --name=value for a value
// that looks like a flag.
func (fs *FlagSet) Parse(args []string) error {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			fs.args = args[i+1:]
			return nil
		}
		if len(a) < 2 || a[0] != '-' {
			fs.args = args[i:]
			return nil
		}
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		value, hasValue := "", false
		if j := strings.IndexByte(name, '='); j >= 0 {
			name, value, hasValue = name[:j], name[j+1:], true
		}
		if name == "h" || name == "help" {
			return ErrHelp
		}
		v, ok := fs.flags[name]
		if !ok || name == "" {
			return &Error{Flag: name, Arg: a, Err: ErrUnknownFlag}
		}
		if !hasValue && fs.bools[name] {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return &Error{Flag: name, Err: ErrMissingValue}
			}
			if fs.flagName(args[i+1]) != "" {
				return &Error{Flag: name, Next: args[i+1], Err: ErrMissingValue}
			}
			i++
			value = args[i]
		}
		if err := v.Set(value); err != nil {
			return &Error{Flag: name, Value: value, Err: err}
		}
	}
	fs.args = nil
	return nil
}

// NArg and Arg give the arguments left after the flags.
func (fs *FlagSet) NArg() int { return len(fs.args) }
func (fs *FlagSet) Arg(i int) string {
	if i < len(fs.args) {
		return fs.args[i]
	}
	return ""
}
