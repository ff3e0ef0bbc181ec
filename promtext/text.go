package promtext

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// ContentType is the media type of the text exposition format 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// Type is a metric family's type, as spelled on its "# TYPE" line.
type Type uint8

// The family types of format 0.0.4 that this package writes. Summaries are
// left out: the observer has no use for client-side quantiles.
const (
	TypeUntyped Type = iota
	TypeCounter
	TypeGauge
	TypeHistogram
)

var typeNames = [...]string{"untyped", "counter", "gauge", "histogram"}

// String is the "# TYPE" spelling; an unknown Type reads as "untyped",
// which every parser accepts.
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return typeNames[TypeUntyped]
}

// AppendFloat appends v as the format spells it: Go's shortest 'g' form, and
// NaN, +Inf and -Inf for the special values. The special cases are spelled
// out rather than left to strconv so the format does not hinge on its
// choice of spelling.
func AppendFloat(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "NaN"...)
	case math.IsInf(v, 1):
		return append(dst, "+Inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-Inf"...)
	}
	return strconv.AppendFloat(dst, v, 'g', -1, 64)
}

// AppendLabelValue appends v escaped for use between the double quotes of
// a label value: backslash, double quote and newline become \\, \" and \n.
func AppendLabelValue(dst []byte, v string) []byte {
	return appendEscaped(dst, v, true)
}

// AppendLabelValueBytes is AppendLabelValue for bytes from outside, such
// as a process name a process chose: besides the escapes, every byte that
// is not part of valid UTF-8 becomes U+FFFD, since the format's label
// values are UTF-8 and a scraper refuses anything else. It allocates
// nothing.
func AppendLabelValueBytes(dst, v []byte) []byte {
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && n == 1:
			dst = utf8.AppendRune(dst, utf8.RuneError)
		case r == '\\':
			dst = append(dst, `\\`...)
		case r == '\n':
			dst = append(dst, `\n`...)
		case r == '"':
			dst = append(dst, `\"`...)
		default:
			dst = append(dst, v[:n]...)
		}
		v = v[n:]
	}
	return dst
}

// AppendHelp appends the line "# HELP name help\n" with help escaped as
// the format requires there: backslash and newline become \\ and \n.
func AppendHelp(dst []byte, name, help string) []byte {
	dst = append(dst, "# HELP "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = appendEscaped(dst, help, false)
	return append(dst, '\n')
}

// AppendType appends the line "# TYPE name type\n".
func AppendType(dst []byte, name string, t Type) []byte {
	dst = append(dst, "# TYPE "...)
	dst = append(dst, name...)
	dst = append(dst, ' ')
	dst = append(dst, t.String()...)
	return append(dst, '\n')
}

// appendEscaped copies s, escaping backslash and newline, and the double
// quote too when quote is set. Runs without special bytes are appended whole,
// so the common case is a single copy.
func appendEscaped(dst []byte, s string, quote bool) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '"':
			if !quote {
				continue
			}
			esc = `\"`
		default:
			continue
		}
		dst = append(dst, s[start:i]...)
		dst = append(dst, esc...)
		start = i + 1
	}
	return append(dst, s[start:]...)
}

// validMetricName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*.
func validMetricName(s string) bool {
	return validName(s, true)
}

// validLabelName reports whether s matches [a-zA-Z_][a-zA-Z0-9_]* and does
// not start with "__", which Prometheus reserves for its own labels.
func validLabelName(s string) bool {
	return validName(s, false) && !(len(s) >= 2 && s[0] == '_' && s[1] == '_')
}

func validName(s string, colon bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' ||
			i > 0 && '0' <= c && c <= '9' || colon && c == ':'
		if !ok {
			return false
		}
	}
	return true
}
