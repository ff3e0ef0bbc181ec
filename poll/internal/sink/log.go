package sink

import (
	"io"
	"strconv"
	"time"
	"unicode/utf8"
)

// LogKind names a hot-path message class that is rate limited on its
// own, so a flood of one kind cannot hide the others. The caller numbers
// its kinds from 0 to at most MaxLogKinds-1.
type LogKind uint8

// MaxLogKinds bounds the kinds one Logger rate-limits apart.
const MaxLogKinds = 24

// Logger writes `varta-watch: level=... msg="..." k=v` lines. Only one
// goroutine may use a Logger. Limited kinds get at most one line per
// second each; the next line reports how many were suppressed in between.
type Logger struct {
	w          io.Writer
	stamp      bool // start each line with the wall time (SetTimestamps)
	buf        []byte
	next       [MaxLogKinds]int64 // earliest time the kind may log again
	suppressed [MaxLogKinds]uint64
	total      [MaxLogKinds]uint64 // suppressed ever, for varta_log_suppressed_total
	gap        [MaxLogKinds]int64  // Backoff: the kind's current interval
	last       [MaxLogKinds]int64  // Backoff: the kind's last call
}

// Backoff bounds, in ns: the first interval, and the longest.
const (
	backoffFirst = int64(1e9)
	backoffMax   = int64(3600e9)
)

// NewLogger writes to w; nil discards.
func NewLogger(w io.Writer) *Logger {
	if w == nil {
		w = io.Discard
	}
	return &Logger{w: w, buf: make([]byte, 0, 256)}
}

// Field is one key=value pair; values are quoted when they need it.
type Field struct {
	key   string
	str   string
	bytes []byte
	num   int64
	isN   bool
	isB   bool
	agent string // NameAgent: a declared agent's name, written as a field of its own
}

// Str is a text field.
func Str(k, v string) Field { return Field{key: k, str: v} }

// Bytes is a text field from bytes the caller owns (a process name): it is
// quoted and escaped like any text, and not kept after the line is written.
func Bytes(k string, v []byte) Field { return Field{key: k, bytes: v, isB: true} }

// NameAgent is the name field of an agent, Bytes("name", comm), followed
// by agent=AGENT when the agent is a declared one (agent not ""), so that
// every line about an agent can show both without a second argument.
func NameAgent(comm []byte, agent string) Field {
	return Field{key: "name", bytes: comm, isB: true, agent: agent}
}

// Num is a number field.
func Num(k string, v int64) Field { return Field{key: k, num: v, isN: true} }

// SetTimestamps starts every line with the UTC wall time, RFC 3339 with
// milliseconds ("2026-12-07T11:40:00.123Z "), for logs nothing else
// stamps: a BusyBox syslog or a file. A journal adds its own.
func (l *Logger) SetTimestamps(on bool) { l.stamp = on }

// stampLayout is RFC 3339 with milliseconds; in UTC, Z07:00 prints "Z".
const stampLayout = "2006-01-02T15:04:05.000Z07:00"

func (l *Logger) line(level, msg string, fs ...Field) {
	b := l.buf[:0]
	if l.stamp {
		b = time.Now().UTC().AppendFormat(b, stampLayout)
		b = append(b, ' ')
	}
	b = append(b, "varta-watch: level="...)
	b = append(b, level...)
	b = append(b, " msg="...)
	b = strconv.AppendQuote(b, msg)
	for _, f := range fs {
		b = append(b, ' ')
		b = append(b, f.key...)
		b = append(b, '=')
		switch {
		case f.isN:
			b = strconv.AppendInt(b, f.num, 10)
		case f.isB:
			b = appendBytesValue(b, f.bytes)
		case needsQuote(f.str):
			b = strconv.AppendQuote(b, f.str)
		default:
			b = append(b, f.str...)
		}
		if f.agent != "" {
			b = append(b, " agent="...)
			b = strconv.AppendQuote(b, f.agent)
		}
	}
	b = append(b, '\n')
	l.w.Write(b)
	l.buf = b
}

// appendBytesValue appends v as a value: bare when it needs no quotes,
// else quoted with Go's escapes (\x.. for bytes that are not UTF-8),
// rune by rune, so nothing is allocated.
func appendBytesValue(b, v []byte) []byte {
	bare := len(v) > 0
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			bare = false
			break
		}
	}
	if bare {
		return append(b, v...)
	}
	b = append(b, '"')
	for len(v) > 0 {
		r, n := utf8.DecodeRune(v)
		switch {
		case r == utf8.RuneError && n == 1:
			b = append(b, `\x`...)
			b = append(b, "0123456789abcdef"[v[0]>>4], "0123456789abcdef"[v[0]&15])
		case r == '"':
			b = append(b, `\"`...)
		case r == '\'':
			b = append(b, '\'')
		default:
			// AppendQuoteRune writes 'r' with r escaped as Go would;
			// keep what is between the single quotes.
			start := len(b)
			b = strconv.AppendQuoteRune(b, r)
			copy(b[start:], b[start+1:len(b)-1])
			b = b[:len(b)-2]
		}
		v = v[n:]
	}
	return append(b, '"')
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '"' || c == '=' || c >= 0x7f {
			return true
		}
	}
	return false
}

// Info, Warn and Error write one line at their level.
func (l *Logger) Info(msg string, fs ...Field)  { l.line("info", msg, fs...) }
func (l *Logger) Warn(msg string, fs ...Field)  { l.line("warn", msg, fs...) }
func (l *Logger) Error(msg string, fs ...Field) { l.line("error", msg, fs...) }

// Limited logs a warning of kind k unless one was logged less than a second
// ago; it reports whether it wrote.
func (l *Logger) Limited(k LogKind, now int64, msg string, fs ...Field) bool {
	if now < l.next[k] {
		l.suppressed[k]++
		l.total[k]++
		return false
	}
	l.next[k] = now + 1e9
	if n := l.suppressed[k]; n > 0 {
		fs = append(fs, Num("suppressed", int64(n)))
		l.suppressed[k] = 0
	}
	l.Warn(msg, fs...)
	return true
}

// Suppressed counts the lines of kind k that Limited or Backoff left out
// since the start.
func (l *Logger) Suppressed(k LogKind) uint64 { return l.total[k] }

// Backoff logs a line of kind k at level info or warn for a condition
// that may persist (a reader of standard output that is gone, a storm of
// SIGHUPs): the first line at once, then, while the calls keep coming,
// one line per interval with the count suppressed meanwhile, the
// interval doubling from 1 s up to an hour. Once a whole interval passes
// without a call the condition is over and the next line is written at
// once again. It reports whether it wrote.
func (l *Logger) Backoff(k LogKind, now int64, warn bool, msg string, fs ...Field) bool {
	quiet := l.gap[k] == 0 || now-l.last[k] > l.gap[k]
	l.last[k] = now
	if quiet {
		l.gap[k] = backoffFirst
	} else if now < l.next[k] {
		l.suppressed[k]++
		l.total[k]++
		return false
	} else {
		l.gap[k] = min(2*l.gap[k], backoffMax)
	}
	l.next[k] = now + l.gap[k]
	if n := l.suppressed[k]; n > 0 {
		fs = append(fs, Num("suppressed", int64(n)))
		l.suppressed[k] = 0
	}
	if warn {
		l.Warn(msg, fs...)
	} else {
		l.Info(msg, fs...)
	}
	return true
}

// Err is err as an "err" field, "-" when there is none.
func Err(err error) Field {
	if err == nil {
		return Str("err", "-")
	}
	return Str("err", err.Error())
}
