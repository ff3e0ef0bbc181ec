package promtext

import (
	"errors"
	"strconv"
)

// Misuses of an Encoder, reported by Err. They are programming errors, not
// data errors: a test that renders the observer's exposition once and checks
// Err catches them all.
var (
	ErrBadName         = errors.New("promtext: invalid metric or label name")
	ErrDuplicateFamily = errors.New("promtext: metric family begun twice")
	ErrSequence        = errors.New("promtext: sample outside a family of its type, or family begun inside a row")
)

// Encoder writes an exposition family by family into a caller-owned buffer.
//
// Family writes a family's "# HELP" and "# TYPE" lines; the rows that follow
// belong to it until the next Family, so families stay contiguous and their
// headers appear once. A row is zero or more Label calls ended by one value
// call (Float, Uint or Int), which writes the family name, the labels and
// the value:
//
//	e.Family("varta_beats_total", "Beats accepted, per pid.", promtext.TypeCounter)
//	for _, s := range slots {
//		e.LabelUint("pid", uint64(s.pid))
//		e.Uint(s.beats)
//	}
//
// A histogram family takes Histogram calls instead, optionally after Labels.
//
// Misuse does not stop the encoder (the scrape path has no one to report
// to); the first one is kept for Err. The zero Encoder is ready to use and
// appends to a nil buffer.
type Encoder struct {
	buf     []byte
	name    string   // family being written; "" before the first Family
	typ     Type     // its type
	open    bool     // a row's "name{" is written and the row awaits its value
	row     int      // where the open row starts in buf
	begun   []string // families begun since Reset, to refuse a repeat
	scratch []byte   // an open histogram row's labels while buf is rewound
	err     error
}

// Reset starts a new exposition that appends to dst[:0], forgetting the
// families and the error of the last one. Passing the buffer that Bytes
// returned last time makes rendering allocation-free once it is big enough.
func (e *Encoder) Reset(dst []byte) {
	*e = Encoder{buf: dst[:0], begun: e.begun[:0], scratch: e.scratch[:0]}
}

// Continue starts the next piece of the same exposition in dst[:0], for a
// body sent in pieces (Config.Stream): the families begun so far and the
// first misuse are kept, so Err and the duplicate check cover the whole
// body; the family being written is not, so a piece that goes on with its
// rows starts with Resume.
func (e *Encoder) Continue(dst []byte) {
	e.buf, e.name, e.open = dst[:0], "", false
}

// Resume goes on with the rows of family name, begun in an earlier piece,
// without writing its HELP and TYPE lines again. A family not begun since
// Reset is ErrSequence.
func (e *Encoder) Resume(name string, t Type) {
	if e.open {
		e.buf, e.open = e.buf[:e.row], false
		e.fail(ErrSequence)
	}
	found := false
	for _, b := range e.begun {
		found = found || b == name
	}
	if !found {
		e.fail(ErrSequence)
	}
	e.name, e.typ = name, t
}

// Room is how many bytes fit in the buffer before an append would have to
// grow it: a renderer writing into a fixed piece stops adding rows when
// the next one may not fit.
func (e *Encoder) Room() int { return cap(e.buf) - len(e.buf) }

// Bytes returns the exposition written since Reset (or, for a piece, since
// Continue). It aliases the buffer the Encoder appends to.
func (e *Encoder) Bytes() []byte { return e.buf }

// Err returns the first misuse since Reset, or nil: ErrBadName,
// ErrDuplicateFamily or ErrSequence.
func (e *Encoder) Err() error { return e.err }

func (e *Encoder) fail(err error) {
	if e.err == nil {
		e.err = err
	}
}

// Family begins the family name of type t, writing its HELP and TYPE lines.
func (e *Encoder) Family(name, help string, t Type) {
	if e.open {
		// Drop the unfinished row: the exposition stays parseable and Err
		// tells the caller.
		e.buf, e.open = e.buf[:e.row], false
		e.fail(ErrSequence)
	}
	if !validMetricName(name) {
		e.fail(ErrBadName)
	}
	for _, b := range e.begun {
		if b == name {
			e.fail(ErrDuplicateFamily)
		}
	}
	e.begun = append(e.begun, name)
	e.name, e.typ = name, t
	e.buf = AppendHelp(e.buf, name, help)
	e.buf = AppendType(e.buf, name, t)
}

// Label adds the label name="value" to the current row, escaping value.
func (e *Encoder) Label(name, value string) {
	e.startLabel(name)
	e.buf = AppendLabelValue(e.buf, value)
	e.buf = append(e.buf, '"')
}

// LabelBytes adds the label name="value" for bytes from outside, made
// valid UTF-8 (AppendLabelValueBytes).
func (e *Encoder) LabelBytes(name string, value []byte) {
	e.startLabel(name)
	e.buf = AppendLabelValueBytes(e.buf, value)
	e.buf = append(e.buf, '"')
}

// LabelUint adds the label name="v" to the current row. It is the fast
// path for numeric labels such as pid: no string is made and nothing needs
// escaping.
func (e *Encoder) LabelUint(name string, v uint64) {
	e.startLabel(name)
	e.buf = strconv.AppendUint(e.buf, v, 10)
	e.buf = append(e.buf, '"')
}

func (e *Encoder) startLabel(name string) {
	// le is the bucket label of a histogram; a user label of that name
	// would make its rows ambiguous.
	if !validLabelName(name) || e.typ == TypeHistogram && name == "le" {
		e.fail(ErrBadName)
	}
	if e.name == "" {
		e.fail(ErrSequence)
	}
	if e.open {
		e.buf = append(e.buf, ',')
	} else {
		e.open, e.row = true, len(e.buf)
		e.buf = append(e.buf, e.name...)
		e.buf = append(e.buf, '{')
	}
	e.buf = append(e.buf, name...)
	e.buf = append(e.buf, `="`...)
}

// Float ends the current row with the value v.
func (e *Encoder) Float(v float64) {
	e.startValue()
	e.buf = AppendFloat(e.buf, v)
	e.buf = append(e.buf, '\n')
}

// Uint ends the current row with the value v, spelled as an integer.
func (e *Encoder) Uint(v uint64) {
	e.startValue()
	e.buf = strconv.AppendUint(e.buf, v, 10)
	e.buf = append(e.buf, '\n')
}

// Int ends the current row with the value v, spelled as an integer.
func (e *Encoder) Int(v int64) {
	e.startValue()
	e.buf = strconv.AppendInt(e.buf, v, 10)
	e.buf = append(e.buf, '\n')
}

func (e *Encoder) startValue() {
	if e.name == "" || e.typ == TypeHistogram {
		e.fail(ErrSequence)
	}
	if e.open {
		e.buf = append(e.buf, "} "...)
		e.open = false
		return
	}
	e.buf = append(e.buf, e.name...)
	e.buf = append(e.buf, ' ')
}

// Histogram writes h's bucket, sum and count lines for the current family,
// which must be of TypeHistogram, each carrying the labels of the current
// row, if any.
func (e *Encoder) Histogram(h *Histogram) {
	if e.name == "" || e.typ != TypeHistogram {
		e.fail(ErrSequence)
	}
	var labels []byte
	if e.open {
		// The labels were written after "name{"; set them aside and
		// rewind, since every line of the histogram repeats them.
		start := e.row + len(e.name) + 1
		e.scratch = append(e.scratch[:0], e.buf[start:]...)
		labels = e.scratch
		e.buf, e.open = e.buf[:e.row], false
	}
	e.buf = appendHistogram(e.buf, e.name, labels, h)
}
