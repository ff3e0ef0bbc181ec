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

type intValue struct {
	set func(int64)
	min int64
	max int64
}

func (v intValue) String() string { return "" }
func (v intValue) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		// Not a number at all: the type's range (±9223372036854775807)
		// would only distract; the command checks its own bounds.
		return errors.New("want a whole number")
	}
	if err != nil || n < v.min || n > v.max {
		return errors.New("want a whole number from " + strconv.FormatInt(v.min, 10) + " to " + strconv.FormatInt(v.max, 10))
	}
	v.set(n)
	return nil
}

// IntVar defines an int flag (any value an int holds on this platform).
func (fs *FlagSet) IntVar(p *int, name string, def int, usage string) {
	*p = def
	const maxInt = int64(^uint(0) >> 1)
	fs.Var(intValue{set: func(n int64) { *p = int(n) }, min: -maxInt - 1, max: maxInt}, name, usage)
}

// Int64Var defines an int64 flag.
func (fs *FlagSet) Int64Var(p *int64, name string, def int64, usage string) {
	*p = def
	fs.Var(intValue{set: func(n int64) { *p = n }, min: -1 << 63, max: 1<<63 - 1}, name, usage)
}

// Int64 defines an int64 flag and returns its destination.
func (fs *FlagSet) Int64(name string, def int64, usage string) *int64 {
	p := new(int64)
	fs.Int64Var(p, name, def, usage)
	return p
}

type uintValue struct{ p *uint64 }

func (v uintValue) String() string { return strconv.FormatUint(*v.p, 10) }
func (v uintValue) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number of at least 0")
	}
	*v.p = n
	return nil
}

// Uint64 defines a uint64 flag and returns its destination.
func (fs *FlagSet) Uint64(name string, def uint64, usage string) *uint64 {
	p := &def
	fs.Var(uintValue{p}, name, usage)
	return p
}

// Parse reads args. Errors name the flag as --name and say what was wrong.
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
			return errors.New("unknown flag " + a)
		}
		if !hasValue && fs.bools[name] {
			value, hasValue = "true", true
		}
		if !hasValue {
			if i+1 >= len(args) {
				return errors.New("--" + name + ": needs a value")
			}
			i++
			value = args[i]
		}
		if err := v.Set(value); err != nil {
			return errors.New("--" + name + ": " + err.Error() + " (got " + strconv.Quote(value) + ")")
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
