package recovery

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"strconv"
)

// The earlier key=value layout of this observer's audit log, before it
// took the Rust observer's schema v2 (cmd/varta-watch/README.md §6): the
// same header, then
//
//	seq \t time (UTC, 2006-01-02T15:04:05.000000Z) \t kind \t key=value ... \t hash
//
// where hash is hex(sha256(prev + "\t" + the record up to its last tab)),
// prev being the previous record's hash or 64 zeros for a file's first.
// The observer no longer writes it: at start such a log is moved aside
// (openAudit) and VerifyAudit checks it by these rules.

const kvTimeLayout = "2006-01-02T15:04:05.000000Z"

const kvGenesis = "0000000000000000000000000000000000000000000000000000000000000000"

// parseKVEnds reads the seq of a record in the key=value layout, after
// checking its time and kind columns and the shape of its hash.
func parseKVEnds(line []byte) (uint64, bool) {
	cols := bytes.SplitN(line, []byte{'\t'}, 4)
	if len(cols) < 4 {
		return 0, false
	}
	seq, ok := parseDec(cols[0], 64)
	if !ok || seq == 0 || len(cols[1]) != len(kvTimeLayout) || !knownKind(cols[2]) {
		return 0, false
	}
	if !validKVTime(cols[1]) {
		return 0, false
	}
	var h [32]byte
	j := bytes.LastIndexByte(line, '\t')
	return seq, decodeHex32(line[j+1:], &h)
}

// validKVTime reports whether b is a real UTC time in kvTimeLayout, as
// time.Parse would judge it: digits where the layout has them, its
// separators, and a month, day, hour, minute and second in range; like
// time.Parse, it takes a comma for the decimal point. Not time.Parse
// itself: its parser is 28 KB of the static binary, and every byte of the
// binary is resident memory (README "Memory").
func validKVTime(b []byte) bool {
	if len(b) != len(kvTimeLayout) {
		return false
	}
	for i, c := range []byte(kvTimeLayout) {
		if c == '.' && b[i] == ',' {
			continue
		}
		if isDigit(c) != isDigit(b[i]) || !isDigit(c) && c != b[i] {
			return false
		}
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			v = v*10 + int(c-'0')
		}
		return v
	}
	year, month, day := num(0, 4), num(5, 2), num(8, 2)
	if month < 1 || month > 12 || day < 1 || num(11, 2) > 23 || num(14, 2) > 59 || num(17, 2) > 59 {
		return false
	}
	days := [12]int{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[month-1]
	if month == 2 && year%4 == 0 && (year%100 != 0 || year%400 == 0) {
		days = 29
	}
	return day <= days
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// verifyKV checks a log in the key=value layout from r, positioned at its
// start: the header, the shape of every record, a seq one above the
// previous record's (the first may start anywhere) and the hash chain.
func verifyKV(path string, r *bufio.Reader) (AuditSummary, error) {
	s := AuditSummary{Layout: LayoutKV, Checkpoint: CheckpointAbsent}
	bad := func(line int, msg string) (AuditSummary, error) {
		return AuditSummary{}, &VerifyError{Path: path, Line: line, Msg: msg + " (key=value layout)"}
	}
	var prev [64]byte
	copy(prev[:], kvGenesis)
	var lastSeq uint64
	records := 0
	buf := make([]byte, 0, 1024)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return bad(n, "longer than "+strconv.Itoa(auditTailMax)+" bytes")
		}
		if err != nil && err != io.EOF {
			return AuditSummary{}, &VerifyError{Path: path, Line: n, Msg: "read: " + err.Error(), Err: err}
		}
		if len(line) == 0 && err == io.EOF {
			s.Records, s.LastSeq = records, lastSeq
			return s, nil
		}
		if line[len(line)-1] != '\n' {
			return bad(n, "torn record (no trailing newline; a crash mid-write)")
		}
		line = line[:len(line)-1]
		if n == 1 {
			if string(line) != AuditHeader {
				return bad(1, "header is not "+strconv.Quote(AuditHeader))
			}
			continue
		}
		seq, ok := parseKVEnds(line)
		if !ok {
			return bad(n, "malformed record: want seq, time, kind, key=value columns and a hash")
		}
		if records > 0 && seq != lastSeq+1 {
			return bad(n, "seq "+strconv.FormatUint(seq, 10)+" after "+strconv.FormatUint(lastSeq, 10)+" (record missing or reordered)")
		}
		j := bytes.LastIndexByte(line, '\t')
		buf = append(append(append(buf[:0], prev[:]...), '\t'), line[:j]...)
		sum := sha256.Sum256(buf)
		var want [64]byte
		appendHex(want[:0], sum[:])
		if !bytes.Equal(want[:], line[j+1:]) {
			return bad(n, "hash mismatch (edited or reordered)")
		}
		copy(prev[:], line[j+1:])
		if records == 0 {
			s.FirstSeq = seq
		}
		lastSeq = seq
		records++
	}
}
