package poll

import (
	"io"
	"strconv"
)

// logKind names a hot-path message class that is rate limited on its own,
// so a flood of one kind cannot hide the others.
type logKind uint8

const (
	logDecode logKind = iota
	logAuth
	logIO
	logRate
	logCapacity
	logEvents
	logUDP     // UDP frames refused: plaintext off, decrypt failures
	logReplay  // secure UDP replays and a full replay table
	logAudit   // audit-log writes that failed
	logMetrics // metrics connections that could not be accepted
	numLogKinds
)

// logger writes `varta-watch: level=... msg="..." k=v` lines. Only the
// loop goroutine uses it. Hot kinds get at most one line per second each;
// the next line reports how many were suppressed in between.
type logger struct {
	w          io.Writer
	buf        []byte
	next       [numLogKinds]int64 // earliest time the kind may log again
	suppressed [numLogKinds]uint64
}

func newLogger(w io.Writer) *logger {
	if w == nil {
		w = io.Discard
	}
	return &logger{w: w, buf: make([]byte, 0, 256)}
}

// field is one key=value pair; values are quoted when they need it.
type field struct {
	key string
	str string
	num int64
	isN bool
}

func str(k, v string) field { return field{key: k, str: v} }
func num(k string, v int64) field {
	return field{key: k, num: v, isN: true}
}

func (l *logger) line(level, msg string, fs ...field) {
	b := append(l.buf[:0], "varta-watch: level="...)
	b = append(b, level...)
	b = append(b, " msg="...)
	b = strconv.AppendQuote(b, msg)
	for _, f := range fs {
		b = append(b, ' ')
		b = append(b, f.key...)
		b = append(b, '=')
		if f.isN {
			b = strconv.AppendInt(b, f.num, 10)
		} else if needsQuote(f.str) {
			b = strconv.AppendQuote(b, f.str)
		} else {
			b = append(b, f.str...)
		}
	}
	b = append(b, '\n')
	l.w.Write(b)
	l.buf = b
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

func (l *logger) info(msg string, fs ...field)  { l.line("info", msg, fs...) }
func (l *logger) warn(msg string, fs ...field)  { l.line("warn", msg, fs...) }
func (l *logger) error(msg string, fs ...field) { l.line("error", msg, fs...) }

// limited logs a warning of kind k unless one was logged less than a second
// ago; it reports whether it wrote.
func (l *logger) limited(k logKind, now int64, msg string, fs ...field) bool {
	if now < l.next[k] {
		l.suppressed[k]++
		return false
	}
	l.next[k] = now + 1e9
	if n := l.suppressed[k]; n > 0 {
		fs = append(fs, num("suppressed", int64(n)))
		l.suppressed[k] = 0
	}
	l.warn(msg, fs...)
	return true
}

// errField is err as an "err" field, "-" when there is none.
func errField(err error) field {
	if err == nil {
		return str("err", "-")
	}
	return str("err", err.Error())
}
