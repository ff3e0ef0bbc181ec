package recovery

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// VerifyError is the first defect VerifyAudit found.
type VerifyError struct {
	Path string
	Line int // 1-based; 0 when the defect is not on a line (the file, its checkpoint)
	Msg  string
	Err  error // the I/O error or *CheckpointError behind Msg, if one is
}

func (e *VerifyError) Unwrap() error { return e.Err }

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Msg
	}
	return e.Path + ": line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// The layouts an audit log can be in (AuditSummary.Layout).
const (
	LayoutV2 = "v2" // schema v2, this observer's and the Rust observer's
	LayoutKV = "kv" // the earlier key=value layout of this observer
)

// Checkpoint states of AuditSummary.Checkpoint.
const (
	CheckpointMatches = "matches" // the record it names is in the log, as named
	CheckpointAbsent  = "absent"  // no checkpoint beside the log: a cut tail would not show
)

// AuditSummary is what VerifyAudit found in an intact log.
type AuditSummary struct {
	Layout    string // LayoutV2 or LayoutKV
	Records   int
	FirstSeq  uint64 // 0 without records
	LastSeq   uint64
	Gaps      uint64 // seqs missing between records: records the writer lost (a failed write, a full buffer)
	Unchained int    // records with "-" for a chain (written by a build without the chain)
	V1Lines   int    // lines of a schema v1 section skipped before the v2 header

	// Checkpoint is CheckpointMatches or CheckpointAbsent (a checkpoint
	// that disagrees with the log is an error). CheckpointSeq is the seq
	// it names; records after it were not yet checkpointed.
	Checkpoint    string
	CheckpointSeq uint64
}

// VerifyAudit checks the audit log at path, written by this observer or
// the Rust one (cmd/varta-watch/README.md §6): the header, the shape of
// every record, a strictly rising seq, the hash chain, and the checkpoint
// file beside it (CheckpointPath), which shows a log cut at its end. A
// log in the earlier key=value layout is checked by that layout's rules
// (Layout says which). It returns a summary, or a *VerifyError naming the
// first defect.
//
// The chain shows edits, insertions, deletions and reordering anywhere but
// at the end, and the checkpoint shows records missing at the end. Neither
// is a signature: whoever can write both files can rewrite them, so keep a
// recent seq and chain value elsewhere (the observer serves them as
// metrics) to anchor them.
func VerifyAudit(path string) (AuditSummary, error) {
	var s AuditSummary
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		err = os.NewSyscallError("open", err)
		return s, &VerifyError{Path: path, Msg: err.Error(), Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return s, &VerifyError{Path: path, Msg: "not a regular file"}
	}
	r := bufio.NewReaderSize(f, auditTailMax)
	if kv, err := isKVLog(r); err != nil {
		return s, &VerifyError{Path: path, Line: 1, Msg: "read: " + err.Error(), Err: err}
	} else if kv {
		return verifyKV(path, r)
	}
	v := v2Verifier{path: path, sum: AuditSummary{Layout: LayoutV2}}
	if err := v.run(r); err != nil {
		return s, err
	}
	if err := v.checkpoint(); err != nil {
		return s, err
	}
	return v.sum, nil
}

// isKVLog reports whether the log r reads is in the earlier key=value
// layout: the v2 header, then a record whose second column is an ISO
// 8601 time rather than a number.
func isKVLog(r *bufio.Reader) (bool, error) {
	b, err := r.Peek(auditTailMax)
	if err != nil && err != io.EOF && !errors.Is(err, bufio.ErrBufferFull) {
		return false, err
	}
	rest, ok := bytes.CutPrefix(b, []byte(AuditHeader+"\n"))
	if !ok {
		return false, nil
	}
	line, _, _ := bytes.Cut(rest, []byte{'\n'})
	_, ok = parseKVEnds(line)
	return ok, nil
}

// v2Verifier walks a schema v2 log line by line.
type v2Verifier struct {
	path     string
	sum      AuditSummary
	chain    [32]byte
	segStart bool // the next record starts a file section (after a header)
	seen     bool // a record was seen
	lastSeq  uint64
	atSeq    [32]byte // chain of the record whose seq is wantSeq (the checkpoint's)
	wantSeq  uint64
	found    bool
	buf      []byte
}

func (v *v2Verifier) bad(line int, msg string) error {
	return &VerifyError{Path: v.path, Line: line, Msg: msg}
}

func (v *v2Verifier) run(r *bufio.Reader) error {
	// The checkpoint names a seq whose chain value is wanted on the way.
	if c, ok, err := readCheckpoint(CheckpointPath(v.path)); err == nil && ok {
		v.wantSeq = c.last
	}
	inV1 := false
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return v.bad(n, "longer than "+strconv.Itoa(auditTailMax)+" bytes")
		}
		if err != nil && err != io.EOF {
			return &VerifyError{Path: v.path, Line: n, Msg: "read: " + err.Error(), Err: err}
		}
		if len(line) == 0 && err == io.EOF {
			switch {
			case n == 1:
				return v.bad(1, "empty file, want header "+strconv.Quote(AuditHeader))
			case inV1:
				return v.bad(n, "a schema v1 log without a v2 section: v1 records have no chain to verify")
			}
			return nil
		}
		if line[len(line)-1] != '\n' {
			return v.bad(n, "torn record (no trailing newline; a crash mid-write, repaired on the observer's next start)")
		}
		line = line[:len(line)-1]
		if n == 1 {
			switch {
			case string(line) == AuditHeader:
				v.segStart = true
			case bytes.HasPrefix(line, []byte(auditHeaderV1)):
				inV1 = true
			default:
				return v.bad(1, "header is not "+strconv.Quote(AuditHeader))
			}
			continue
		}
		if inV1 {
			if string(line) == AuditHeader {
				inV1, v.segStart = false, true
			} else {
				v.sum.V1Lines++
			}
			continue
		}
		if len(line) > 0 && line[0] == '#' {
			if string(line) == AuditHeader {
				v.segStart = true // a schema v2 section begins again (a migrated file)
			}
			continue
		}
		if msg := v.record(line); msg != "" {
			return v.bad(n, msg)
		}
	}
}

// record checks one record line; it returns what is wrong, or "".
func (v *v2Verifier) record(line []byte) string {
	cols := bytes.Split(line, []byte{'\t'})
	if len(cols) < 5 {
		return strconv.Itoa(len(cols)) + " columns, want seq, wallclock_ms, observer_ns, kind, ..., chain"
	}
	seq, ok := parseDec(cols[0], 64)
	if !ok || seq == 0 {
		return "seq " + strconv.Quote(string(cols[0])) + " is not a positive decimal"
	}
	if _, ok := parseDec(cols[1], 64); !ok {
		return "wallclock_ms " + strconv.Quote(string(cols[1])) + " is not a decimal"
	}
	if _, ok := parseDec(cols[2], 64); !ok {
		return "observer_ns " + strconv.Quote(string(cols[2])) + " is not a decimal"
	}
	kind := string(cols[3])
	if msg := checkColumns(kind, cols); msg != "" {
		return msg
	}
	switch {
	case !v.seen || v.segStart && seq <= v.lastSeq:
		// The first record of a file (or of a migrated section) may start
		// anywhere: the sequence continues across files.
	case seq <= v.lastSeq:
		return "seq " + strconv.FormatUint(seq, 10) + " after " + strconv.FormatUint(v.lastSeq, 10) + " (records reordered or duplicated)"
	default:
		v.sum.Gaps += seq - v.lastSeq - 1
	}
	var prevChain []byte
	if kind == "boot" {
		prevChain = cols[5]
	}
	if v.segStart {
		// A section's first record chains from zeros, or from the chain
		// value its boot record names (the first record after rotation).
		v.chain = [32]byte{}
		if prevChain != nil && string(prevChain) != "-" {
			decodeHex32(prevChain, &v.chain)
		}
	} else if prevChain != nil && string(prevChain) != "-" {
		var p [32]byte
		decodeHex32(prevChain, &p)
		if p != v.chain {
			return "boot record's prev_chain is not the chain value of the record before it (a record missing, or the log spliced)"
		}
	}
	chainCol := cols[len(cols)-1]
	body := line[:len(line)-len(chainCol)-1]
	if string(chainCol) == "-" {
		v.sum.Unchained++
		v.chain = [32]byte{}
	} else {
		var got [32]byte
		if !decodeHex32(chainCol, &got) {
			return "chain column is neither \"-\" nor 64 lowercase hex digits"
		}
		h := append(v.buf[:0], auditDomain...)
		h = append(append(h, 0), kind...)
		h = append(append(h, 0), v.chain[:]...)
		h = append(append(h, 0), body...)
		v.buf = h
		if sha256.Sum256(h) != got {
			return "chain mismatch (a record edited, inserted, removed or reordered)"
		}
		v.chain = got
	}
	if v.wantSeq != 0 && seq == v.wantSeq {
		v.atSeq, v.found = v.chain, true
	}
	if !v.seen {
		v.sum.FirstSeq = seq
	}
	v.seen, v.segStart, v.lastSeq = true, false, seq
	v.sum.LastSeq = seq
	v.sum.Records++
	return ""
}

// checkColumns checks the kind-specific columns of a record.
func checkColumns(kind string, cols [][]byte) string {
	want := 0
	switch kind {
	case "boot":
		want = 8
	case "spawn":
		want = 11
	case "complete":
		want = 14
	case "refused":
		want = 7
	default:
		return "unknown record kind " + strconv.Quote(kind)
	}
	if len(cols) != want {
		return kind + " record has " + strconv.Itoa(len(cols)) + " columns, want " + strconv.Itoa(want)
	}
	u32 := func(i int, name string) string {
		if _, ok := parseDec(cols[i], 32); !ok {
			return kind + " " + name + " " + strconv.Quote(string(cols[i])) + " is not a 32-bit unsigned decimal"
		}
		return ""
	}
	nonEmpty := func(i int, name string) string {
		if len(cols[i]) == 0 {
			return kind + " " + name + " is empty"
		}
		return ""
	}
	first := func(msgs ...string) string {
		for _, m := range msgs {
			if m != "" {
				return m
			}
		}
		return ""
	}
	switch kind {
	case "boot":
		var p [32]byte
		msg := first(u32(4, "daemon_pid"))
		switch {
		case msg != "":
		case string(cols[2]) != "0":
			msg = "boot observer_ns is not 0"
		case string(cols[5]) != "-" && !decodeHex32(cols[5], &p):
			msg = "boot prev_chain is neither \"-\" nor 64 lowercase hex digits"
		}
		if msg != "" {
			return msg
		}
		switch string(cols[6]) {
		case BootFresh, BootResume, BootLegacyV1, BootCorruptTail, BootSchemaDrift, BootRotation:
			return ""
		}
		return "unknown boot reason " + strconv.Quote(string(cols[6]))
	case "spawn":
		return first(u32(4, "agent_pid"), u32(5, "child_pid"), nonEmpty(6, "mode"), nonEmpty(7, "program"),
			nonEmpty(8, "source"), u32(9, "template_len"))
	case "complete":
		if msg := first(u32(4, "agent_pid"), u32(5, "child_pid"), u32(10, "stdout_len"), u32(11, "stderr_len")); msg != "" {
			return msg
		}
		switch string(cols[6]) {
		case "reaped", "killed", "reap_failed":
		default:
			return "unknown complete outcome " + strconv.Quote(string(cols[6]))
		}
		code, sig := string(cols[7]), string(cols[8])
		if code != "-" && !isI32(cols[7]) || sig != "-" && !isI32(cols[8]) {
			return "complete exit_code and signal must each be \"-\" or a 32-bit decimal"
		}
		if code != "-" && sig != "-" {
			return "complete record has both an exit code and a signal"
		}
		if _, ok := parseDec(cols[9], 64); !ok {
			return "complete duration_ns " + strconv.Quote(string(cols[9])) + " is not a decimal"
		}
		if t := string(cols[12]); t != "true" && t != "false" {
			return "complete truncated " + strconv.Quote(t) + " is neither true nor false"
		}
		return ""
	default: // refused
		return first(u32(4, "agent_pid"), nonEmpty(5, "reason"))
	}
}

func isI32(b []byte) bool {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	v, ok := parseDec(b, 64)
	return ok && (v <= 1<<31-1 || neg && v == 1<<31)
}

// checkpoint compares the log with its checkpoint file.
func (v *v2Verifier) checkpoint() error {
	cp := CheckpointPath(v.path)
	c, ok, err := readCheckpoint(cp)
	if err != nil {
		return &VerifyError{Path: v.path, Msg: err.Error(), Err: err}
	}
	if !ok {
		v.sum.Checkpoint = CheckpointAbsent
		return nil
	}
	seq := strconv.FormatUint
	switch {
	case v.sum.Records == 0 || c.first != v.sum.FirstSeq:
		return &VerifyError{Path: v.path, Msg: "the log starts at seq " + seq(v.sum.FirstSeq, 10) + " but its checkpoint " + cp +
			" is for a log starting at seq " + seq(c.first, 10) + " (records missing at the start, or another file)"}
	case c.last > v.sum.LastSeq:
		return &VerifyError{Path: v.path, Msg: "the log ends at seq " + seq(v.sum.LastSeq, 10) + " but its checkpoint " + cp +
			" records seq " + seq(c.last, 10) + " as written: records are missing at the end (the tail was cut)"}
	case !v.found:
		return &VerifyError{Path: v.path, Msg: "seq " + seq(c.last, 10) + ", which the checkpoint " + cp + " names, is not in the log"}
	case v.atSeq != c.chain:
		return &VerifyError{Path: v.path, Msg: "the record with seq " + seq(c.last, 10) + " does not have the chain value the checkpoint " +
			cp + " records: the log was rewritten from there"}
	}
	v.sum.Checkpoint, v.sum.CheckpointSeq = CheckpointMatches, c.last
	return nil
}
