package recovery

import "strings"

// wrapped prefixes an error with what it was about, and may add what to
// do about it, while keeping it reachable for errors.Is/As; the package
// avoids fmt to keep it out of the static board binaries.
type wrapped struct {
	msg  string
	err  error
	hint string
	trim string // a prefix of err's text that msg already says
}

func (w *wrapped) Error() string {
	s := w.msg + ": " + strings.TrimPrefix(w.err.Error(), w.trim)
	if w.hint != "" {
		s += " (" + w.hint + ")"
	}
	return s
}
func (w *wrapped) Unwrap() error { return w.err }

func wrap(msg string, err error) error { return &wrapped{msg: msg, err: err} }

// wrapHint is wrap with a hint for the operator.
func wrapHint(msg string, err error, hint string) error {
	return &wrapped{msg: msg, err: err, hint: hint}
}

// appendHex appends the lowercase hex of b (the audit chain's hashes);
// encoding/hex would link fmt into the binary for its error type.
func appendHex(dst, b []byte) []byte {
	const digits = "0123456789abcdef"
	for _, c := range b {
		dst = append(dst, digits[c>>4], digits[c&15])
	}
	return dst
}
