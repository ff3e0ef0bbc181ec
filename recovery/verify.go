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
	Line int // 1-based; 0 when the file could not be read at all
	Msg  string
	Err  error // the I/O error behind Msg, if one is (errors.Is(err, fs.ErrNotExist) ...)
}

func (e *VerifyError) Unwrap() error { return e.Err }

func (e *VerifyError) Error() string {
	if e.Line == 0 {
		return e.Path + ": " + e.Msg
	}
	return e.Path + ": line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// VerifyAudit checks an audit log: the header, then for every record its
// shape (seq, time, known kind, ..., hash), a seq one above the previous
// record's (the first record of a file may start anywhere: the sequence
// continues across files), and the hash chain, where each record's last
// column is hex(sha256(prev + "\t" + record-without-hash)) and prev is the
// previous record's hash, GenesisHash for the first. It returns the
// number of records, or a *VerifyError naming the first bad line.
//
// The chain shows edits, insertions, deletions and reordering anywhere
// but at the end; it is not a signature: whoever can write the file can
// recompute it, so keep a copy of a recent hash elsewhere to anchor it.
func VerifyAudit(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		err = os.NewSyscallError("open", err)
		return 0, &VerifyError{Path: path, Msg: err.Error(), Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return 0, &VerifyError{Path: path, Msg: "not a regular file"}
	}
	r := bufio.NewReaderSize(f, auditTailMax)
	bad := func(line int, msg string) (int, error) {
		return 0, &VerifyError{Path: path, Line: line, Msg: msg}
	}

	var prev [64]byte
	copy(prev[:], GenesisHash)
	var lastSeq uint64
	records := 0
	buf := make([]byte, 0, 1024)
	for n := 1; ; n++ {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			return bad(n, "longer than "+strconv.Itoa(auditTailMax)+" bytes")
		}
		if err != nil && err != io.EOF {
			return 0, &VerifyError{Path: path, Line: n, Msg: "read: " + err.Error(), Err: err}
		}
		if len(line) == 0 && err == io.EOF {
			if n == 1 {
				return bad(1, "empty file, want header "+strconv.Quote(AuditHeader))
			}
			return records, nil
		}
		if line[len(line)-1] != '\n' {
			return bad(n, "torn record (no trailing newline; a crash mid-write, repaired on the observer's next start)")
		}
		line = line[:len(line)-1]
		if n == 1 {
			if string(line) != AuditHeader {
				return bad(1, "header is not "+strconv.Quote(AuditHeader))
			}
			continue
		}
		cols := bytes.Count(line, []byte{'\t'}) + 1
		if cols < 4 {
			return bad(n, strconv.Itoa(cols)+" columns, want at least seq, time, kind and hash")
		}
		seq, hash, ok := parseRecordEnds(line)
		if !ok {
			return bad(n, "malformed seq or hash column")
		}
		kind := bytes.SplitN(line, []byte{'\t'}, 4)[2]
		switch string(kind) {
		case "boot", "spawn", "complete", "refused":
		default:
			return bad(n, "unknown record kind "+strconv.Quote(string(kind)))
		}
		if records > 0 && seq != lastSeq+1 {
			return bad(n, "seq "+strconv.FormatUint(seq, 10)+" after "+strconv.FormatUint(lastSeq, 10)+" (record missing or reordered)")
		}
		body := line[:len(line)-len(hash)-1]
		buf = append(append(append(buf[:0], prev[:]...), '\t'), body...)
		sum := sha256.Sum256(buf)
		var want [64]byte
		appendHex(want[:0], sum[:])
		if !bytes.Equal(want[:], hash) {
			return bad(n, "hash mismatch (edited or reordered)")
		}
		copy(prev[:], hash)
		lastSeq = seq
		records++
	}
}
