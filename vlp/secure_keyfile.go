package vlp

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
)

// What a key file can hold wrong, beyond a malformed line; a
// *KeyFileError wraps them, so errors.Is(err, vlp.ErrZeroKey) works.
var (
	ErrNoKey       = errors.New("no key: want 64 hex characters on a line")
	ErrZeroKey     = errors.New("the all-zero key is a placeholder, not a key")
	ErrRepeatedKey = errors.New("repeats an earlier key")
	ErrKeyCount    = errors.New("want exactly one key")
)

// KeyFileError is a key file, or the text of one, that cannot be used:
// unreadable or unsafe (ReadSecretFile's checks), a malformed line, or
// not the keys wanted. Its text starts with "key file PATH: " when the
// path is known and names the line when one is at fault; it never quotes
// key material.
type KeyFileError struct {
	Path string // "" from ParseKeys
	Line int    // 1-based; 0 when no one line is at fault
	Err  error  // ErrNoKey, ErrZeroKey, ErrRepeatedKey, ErrKeyCount, or the cause
}

func (e *KeyFileError) Error() string {
	s := e.Err.Error()
	if e.Line > 0 {
		s = "line " + strconv.Itoa(e.Line) + ": " + s
	}
	if e.Path != "" {
		prefix := "key file " + e.Path + ": "
		if !strings.HasPrefix(s, prefix) { // ReadSecretFile's text names it already
			s = prefix + s
		}
	}
	return s
}

func (e *KeyFileError) Unwrap() error { return e.Err }

// keyCount is ErrKeyCount with the count found.
type keyCount int

func (n keyCount) Error() string {
	return "holds " + strconv.Itoa(int(n)) + " keys, want exactly one (several are only for an accepted-keys file)"
}
func (n keyCount) Unwrap() error { return ErrKeyCount }

// MaxKeyFile is the largest key file read: room for hundreds of keys with
// comments, small enough that a wrong path (a log, a device) fails fast.
const MaxKeyFile = 64 << 10

// ParseKeys parses the text of a key file (PROTOCOL.md §6): one key per line
// as 64 hex characters; blank lines are skipped and '#' starts a comment
// that runs to the end of the line. Errors name the line and never quote
// key material. At least one key is required; an all-zero key (a
// placeholder left in place) and a repeated key are refused.
func ParseKeys(text []byte) ([]Key, error) {
	var keys []Key
	for n := 1; len(text) > 0; n++ {
		line := text
		if i := bytes.IndexByte(text, '\n'); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		k, err := parseKeyLine(line)
		if err == nil && k == (Key{}) {
			err = ErrZeroKey
		}
		for _, prev := range keys {
			if err == nil && prev == k {
				err = ErrRepeatedKey
			}
		}
		if err != nil {
			return nil, &KeyFileError{Line: n, Err: err}
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, &KeyFileError{Err: ErrNoKey}
	}
	return keys, nil
}

func parseKeyLine(line []byte) (Key, error) {
	var k Key
	if len(line) != 2*KeySize {
		return k, errors.New(strconv.Itoa(len(line)) + " characters, want 64 hex characters (32 bytes)")
	}
	for i := range k {
		hi, ok1 := unhex(line[2*i])
		lo, ok2 := unhex(line[2*i+1])
		if !ok1 || !ok2 {
			col := 2*i + 1
			if ok1 {
				col++
			}
			return Key{}, errors.New("column " + strconv.Itoa(col) + " is not a hex digit")
		}
		k[i] = hi<<4 | lo
	}
	return k, nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// ParseKeyFile reads an accepted-keys file: ReadSecretFile's checks
// (regular file, not a symlink, owned by our uid, mode 0600 or stricter),
// then ParseKeys. Errors are *KeyFileError and start with "key file PATH: ".
func ParseKeyFile(path string) ([]Key, error) {
	b, err := ReadSecretFile("key file", path, MaxKeyFile)
	if err != nil {
		return nil, &KeyFileError{Path: path, Err: err}
	}
	keys, err := ParseKeys(b)
	clear(b)
	if err != nil {
		var ke *KeyFileError
		if errors.As(err, &ke) {
			ke.Path = path
			return nil, ke
		}
		return nil, &KeyFileError{Path: path, Err: err}
	}
	return keys, nil
}

// ReadKey reads a file that must hold exactly one key: an agent's key, a
// master key, or an observer's single --key-file.
func ReadKey(path string) (Key, error) {
	keys, err := ParseKeyFile(path)
	if err != nil {
		return Key{}, err
	}
	if len(keys) != 1 {
		return Key{}, &KeyFileError{Path: path, Err: keyCount(len(keys))}
	}
	return keys[0], nil
}
