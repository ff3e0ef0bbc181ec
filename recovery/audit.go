package recovery

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// errTailTooLong: the file ends in a line no record of ours could be.
var errTailTooLong = errors.New("last line is longer than " + strconv.Itoa(auditTailMax) + " bytes; not a record of ours, move the file aside")

// AuditHeader is the first line of every audit log.
const AuditHeader = "# varta-watch recovery audit v2"

// GenesisHash is the chain value that precedes the first record of a file.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// auditTimeLayout gives the wall-clock column a fixed width.
const auditTimeLayout = "2006-01-02T15:04:05.000000Z"

// auditTailMax bounds how much of an existing log is read at open to find
// the last record; a longer line is not one we wrote.
const auditTailMax = 64 << 10

// SyncMode says when the audit log is made durable with fdatasync(2).
type SyncMode uint8

const (
	// SyncRecord syncs after every record: a record is on disk before the
	// loop moves on. The default; costs one flash write per decision.
	SyncRecord SyncMode = iota
	// SyncTick syncs once per Tick when records were written since.
	SyncTick
	// SyncNone leaves it to the kernel (and to Close).
	SyncNone
)

// ErrAuditDisabled is returned for records dropped because an earlier
// write failed and the file could not be repaired; ReopenAudit retries.
var ErrAuditDisabled = errors.New("recovery: audit log disabled after a failed write; reopen to retry")

// auditLog appends hash-chained records to the audit file. It owns fd.
type auditLog struct {
	path     string
	fd       int // -1 when closed or never opened
	mode     SyncMode
	seq      uint64   // seq of the last record written
	prev     [64]byte // hex hash of the last record, or GenesisHash
	size     int64    // file size after the last complete record
	buf      []byte   // the record being built: prev, '\t', body
	dirty    bool     // written since the last sync
	disabled bool
	fresh    bool // the file held no record when opened
	written  uint64
	failed   uint64
	lost     uint64 // records dropped since the last one written
	lastErr  error
}

// openAudit opens (creating) the log at path, repairs a torn tail and
// positions the chain after the last record. For a new or empty file the
// sequence continues from seq0 (0 at first start, the previous file's at a
// reopen) and the chain starts at GenesisHash. It returns the number of
// bytes cut off a torn tail.
func openAudit(path string, mode SyncMode, seq0 uint64, bufCap int) (*auditLog, int64, error) {
	var lst unix.Stat_t
	if err := unix.Lstat(path, &lst); err == nil && lst.Mode&unix.S_IFMT != unix.S_IFREG {
		if lst.Mode&unix.S_IFMT == unix.S_IFLNK {
			return nil, 0, errors.New("audit file " + path + ": is a symlink; give the real path")
		}
		return nil, 0, errors.New("audit file " + path + ": not a regular file; give the path of a regular file")
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, 0, errors.New("audit file " + path + ": is a symlink; give the real path")
		}
		hint := ""
		switch err {
		case unix.ENOENT:
			hint = "create the directory " + filepath.Dir(path) + " first"
		case unix.EACCES, unix.EPERM, unix.EROFS:
			hint = "run as a user that may write there, or choose another path"
		}
		return nil, 0, wrapHint("audit file "+path, os.NewSyscallError("open", err), hint)
	}
	a := &auditLog{path: path, fd: fd, mode: mode, seq: seq0, buf: make([]byte, 0, bufCap)}
	copy(a.prev[:], GenesisHash)
	repaired, err := a.position()
	if err != nil {
		unix.Close(fd)
		return nil, 0, wrap("audit file "+path, err)
	}
	return a, repaired, nil
}

// position validates the header, cuts a torn tail and reads the last
// record's seq and hash.
func (a *auditLog) position() (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(a.fd, &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, errors.New("not a regular file")
	}
	size := st.Size
	hdr := AuditHeader + "\n"
	n := int64(auditTailMax)
	if size < n {
		n = size
	}
	tail := make([]byte, n)
	if err := preadFull(a.fd, tail, size-n); err != nil {
		return 0, err
	}
	head := tail
	if size > n {
		head = make([]byte, len(hdr))
		if err := preadFull(a.fd, head, 0); err != nil {
			return 0, err
		}
	}
	switch {
	case size < int64(len(hdr)) && strings.HasPrefix(hdr, string(tail)):
		// Empty, or a header torn by a crash: start the file over.
		if err := a.truncate(0); err != nil {
			return 0, err
		}
		if err := a.writeAll([]byte(hdr)); err != nil {
			return 0, err
		}
		a.size = int64(len(hdr))
		a.fresh = true
		return size, a.syncNow()
	case !bytes.HasPrefix(head, []byte(hdr)):
		return 0, errors.New("first line is not " + strconv.Quote(AuditHeader) + "; not a varta-watch audit log, move it aside")
	}
	// A torn last line (a crash mid-write) is cut back to the last
	// newline, but only once the record before it has been found good:
	// a file refused here is left exactly as it was.
	end := len(tail) // tail[:end] ends with '\n'
	if tail[end-1] != '\n' {
		end = bytes.LastIndexByte(tail, '\n') + 1
		if end == 0 {
			return 0, errTailTooLong
		}
	}
	repaired := int64(len(tail) - end)
	if size-repaired == int64(len(hdr)) {
		a.fresh = true // header only: seq0 and genesis stand
	} else {
		start := bytes.LastIndexByte(tail[:end-1], '\n') + 1
		if start == 0 && size > n {
			return 0, errTailTooLong
		}
		seq, hash, ok := parseRecordEnds(tail[start : end-1])
		if !ok {
			return 0, errors.New("last record is malformed; check it with 'varta-watch audit verify' and move the file aside")
		}
		a.seq = seq
		copy(a.prev[:], hash)
	}
	if repaired > 0 {
		if err := a.truncate(size - repaired); err != nil {
			return 0, err
		}
	}
	a.size = size - repaired
	return repaired, nil
}

// parseRecordEnds returns the seq (first column) and hash (last column) of
// a record line without its newline.
func parseRecordEnds(line []byte) (uint64, []byte, bool) {
	i := bytes.IndexByte(line, '\t')
	j := bytes.LastIndexByte(line, '\t')
	if i <= 0 || j <= i {
		return 0, nil, false
	}
	seq, err := strconv.ParseUint(string(line[:i]), 10, 64)
	if err != nil || seq == 0 {
		return 0, nil, false
	}
	hash := line[j+1:]
	if !isLowerHex64(hash) {
		return 0, nil, false
	}
	return seq, hash, true
}

func isLowerHex64(b []byte) bool {
	if len(b) != 64 {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func preadFull(fd int, p []byte, off int64) error {
	for len(p) > 0 {
		n, err := unix.Pread(fd, p, off)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("pread", err)
		}
		if n == 0 {
			return errors.New("file shrank while being read")
		}
		p = p[n:]
		off += int64(n)
	}
	return nil
}

func (a *auditLog) truncate(size int64) error {
	if err := unix.Ftruncate(a.fd, size); err != nil {
		return os.NewSyscallError("ftruncate", err)
	}
	return nil
}

// writeAll writes p with write(2), retrying EINTR and short writes. It
// returns how far it got through the error.
func (a *auditLog) writeAll(p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(a.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		if n == 0 {
			return os.NewSyscallError("write", unix.EIO)
		}
		p = p[n:]
	}
	return nil
}

func (a *auditLog) syncNow() error {
	for {
		err := unix.Fdatasync(a.fd)
		if err == unix.EINTR {
			continue
		}
		a.dirty = false
		if err != nil {
			return os.NewSyscallError("fdatasync", err)
		}
		return nil
	}
}

// begin starts record seq+1 of kind in buf, after the chain prefix.
func (a *auditLog) begin(kind string) {
	b := append(a.buf[:0], a.prev[:]...)
	b = append(b, '\t')
	b = strconv.AppendUint(b, a.seq+1, 10)
	b = append(b, '\t')
	b = time.Now().UTC().AppendFormat(b, auditTimeLayout)
	b = append(b, '\t')
	a.buf = append(b, kind...)
}

func (a *auditLog) int(key string, v int64) {
	a.buf = append(append(append(a.buf, '\t'), key...), '=')
	a.buf = strconv.AppendInt(a.buf, v, 10)
}

func (a *auditLog) uint(key string, v uint64) {
	a.buf = append(append(append(a.buf, '\t'), key...), '=')
	a.buf = strconv.AppendUint(a.buf, v, 10)
}

// str appends key=v with control bytes, DEL and '\\' written as \xNN, so a
// value can never break the tab and newline framing.
func (a *auditLog) str(key, v string) {
	const digits = "0123456789abcdef"
	b := append(append(append(a.buf, '\t'), key...), '=')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c == 0x7f || c == '\\' {
			b = append(b, '\\', 'x', digits[c>>4], digits[c&15])
			continue
		}
		b = append(b, c)
	}
	a.buf = b
}

// commit hashes and appends the record in buf. A failed write is cut back
// off the file so the chain stays intact; if even that fails the log is
// disabled until reopened. Errors are counted and returned, never fatal.
func (a *auditLog) commit() error {
	if a.disabled || a.fd < 0 {
		a.failed++
		a.lost++
		return ErrAuditDisabled
	}
	if a.lost > 0 {
		a.uint("lost", a.lost)
	}
	sum := sha256.Sum256(a.buf)
	a.buf = append(a.buf, '\t')
	a.buf = appendHex(a.buf, sum[:])
	a.buf = append(a.buf, '\n')
	line := a.buf[len(a.prev)+1:]
	if err := a.writeAll(line); err != nil {
		a.failed++
		a.lost++
		a.lastErr = err
		if a.truncate(a.size) != nil {
			a.disabled = true
		}
		return err
	}
	a.size += int64(len(line))
	a.seq++
	copy(a.prev[:], line[len(line)-65:len(line)-1])
	a.written++
	a.lost = 0
	if a.mode == SyncRecord {
		if err := a.syncNow(); err != nil {
			a.failed++
			a.lastErr = err
			return err
		}
	} else {
		a.dirty = true
	}
	return nil
}

func (a *auditLog) close() error {
	if a.fd < 0 {
		return nil
	}
	var err error
	if a.dirty || a.mode == SyncNone {
		err = a.syncNow()
	}
	if cerr := unix.Close(a.fd); cerr != nil && err == nil {
		err = os.NewSyscallError("close", cerr)
	}
	a.fd = -1
	return err
}
