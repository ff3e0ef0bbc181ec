package recovery

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// AuditHeader is the first line of every audit log (schema v2).
const AuditHeader = "# varta-watch recovery audit v2"

// auditHeaderV1 starts a log of the Rust observer's first schema, which
// had no hash chain; such a file is moved aside, never appended to.
const auditHeaderV1 = "# varta-watch recovery audit v1"

// auditDomain separates the chain's hash input from any other use of
// SHA-256 (cmd/varta-watch/README.md §6).
const auditDomain = "VARTA-AUDIT-v2"

// Audit log limits.
const (
	// AuditGenerations is how many rotated audit files are kept: path.1
	// (newest) to path.5 (oldest), each with its checkpoint.
	AuditGenerations = 5
	// MinAuditMaxBytes is the smallest rotation size: a header and a
	// boot record must fit with room to spare.
	MinAuditMaxBytes = 4096
	// MaxAuditSyncEvery bounds --recovery-audit-sync-every (an int on
	// every board).
	MaxAuditSyncEvery = 1<<31 - 1
)

// auditTailMax bounds how much of an existing log is read at open to find
// its first and last records; a longer line is not one a varta-watch wrote.
const auditTailMax = 64 << 10

// The reasons of a boot record: why the observer wrote it.
const (
	BootFresh       = "fresh"        // a new, empty file
	BootResume      = "resume"       // continuing a log that ends as remembered
	BootLegacyV1    = "legacy_v1"    // a schema v1 log was moved aside
	BootCorruptTail = "corrupt_tail" // the log ended in a torn line, or before the last record remembered
	BootSchemaDrift = "schema_drift" // a log in the earlier key=value layout was moved aside
	BootRotation    = "rotation"     // the first record of a file after rotation (size or SIGHUP)
)

// errTailTooLong: the file ends in a line no record of ours could be.
var errTailTooLong = errors.New("last line is longer than " + strconv.Itoa(auditTailMax) + " bytes; not a record of ours, move the file aside")

// ErrAuditDisabled is returned for records dropped because an earlier
// write failed and the file could not be repaired; ReopenAudit retries.
var ErrAuditDisabled = errors.New("recovery: audit log disabled after a failed write; reopen to retry")

// AuditOpen is what opening the audit log found, for the observer's
// start-up log line.
type AuditOpen struct {
	Reason   string // the boot record's reason
	Repaired int64  // bytes of a torn last line cut off
	MovedTo  string // where a log in another layout was moved, or ""
	Missing  uint64 // records the checkpoint remembers beyond the file's end
	Note     string // why the boot says corrupt_tail, or a checkpoint problem; "" if none
}

// auditOpts configures an auditLog.
type auditOpts struct {
	syncEvery int   // fdatasync after this many records (>= 1)
	maxBytes  int64 // rotate once the file reaches this size; 0: never
	bufCap    int   // room for the longest record
	pid       uint32
	stats     *Stats // fdatasync and rotation timings, kept across reopens
}

// auditLog appends hash-chained records to the audit file and keeps its
// checkpoint. It owns fd.
type auditLog struct {
	opts     auditOpts
	path     string
	chkPath  string
	fd       int      // -1 when closed or never opened
	seq      uint64   // seq of the last record numbered (written, or lost: a lost record burns its seq)
	last     uint64   // seq of the last record written to the file
	first    uint64   // seq of the live file's first record; 0 while it has none
	chain    [32]byte // chain head: the raw hash of the last record written
	size     int64    // file size after the last complete record
	unsynced int      // records written since the last fdatasync
	buf      []byte   // the record being built
	hin      []byte   // the hash input being built
	chk      checkpoint
	disabled bool
	openDue  bool // rotation moved the live file but could not create a new one
	rotating bool
	written  uint64
	failed   uint64
	lastErr  error
	open     AuditOpen
}

// auditFileErr describes an audit file that cannot be used.
func auditFileErr(path, msg string) error { return errors.New("audit file " + path + ": " + msg) }

// openAudit opens (creating) the log at path and writes its boot record.
// prev is the log being reopened after SIGHUP, or nil at start; what the
// observer remembers writing is prev's state, else the checkpoint file.
//
// A torn last line is cut off; a log in the earlier key=value layout, or
// in schema v1, is moved aside to path.kv-<unix seconds> or
// path.v1-<unix seconds> and a new file started; anything else that is
// not an audit log of ours is refused and left exactly as it was.
func openAudit(path string, o auditOpts, prev *auditLog) (*auditLog, error) {
	if o.syncEvery < 1 {
		o.syncEvery = 1
	}
	a := &auditLog{opts: o, path: path, chkPath: CheckpointPath(path), fd: -1,
		buf: make([]byte, 0, o.bufCap), hin: make([]byte, 0, o.bufCap+len(auditDomain)+48)}
	var mem checkpoint
	haveMem := false
	if prev != nil {
		a.seq = prev.seq
		if prev.last > 0 {
			mem, haveMem = checkpoint{first: prev.first, last: prev.last, chain: prev.chain}, true
		}
	} else {
		c, ok, err := readCheckpoint(a.chkPath)
		switch {
		case err != nil:
			a.open.Note = err.Error() + "; ignored, rewritten after the boot record"
		case ok:
			mem, haveMem = c, true
			a.chk = c
		}
	}
	fd, err := openAuditFile(path)
	if err != nil {
		return nil, err
	}
	a.fd = fd
	sc, err := examineAudit(fd)
	if err != nil {
		unix.Close(fd)
		a.fd = -1
		return nil, wrap("audit file "+path, err)
	}
	reason := BootFresh
	withPrev := false
	switch sc.layout {
	case layoutKV, layoutV1:
		tag, r := ".kv-", BootSchemaDrift
		if sc.layout == layoutV1 {
			tag, r = ".v1-", BootLegacyV1
		}
		unix.Close(fd)
		a.fd = -1
		if a.open.MovedTo, err = moveAside(path, tag); err != nil {
			return nil, err
		}
		if a.fd, err = openAuditFile(path); err != nil {
			return nil, err
		}
		if err := a.startFile(0); err != nil {
			a.close()
			return nil, wrap("audit file "+path, err)
		}
		reason = r
		a.seq = max(a.seq, sc.last) // the sequence goes on from the moved log
		a.chk = checkpoint{}        // it described the moved file
		a.open.Note = ""
	case layoutEmpty:
		if err := a.startFile(sc.size); err != nil {
			a.close()
			return nil, wrap("audit file "+path, err)
		}
		a.open.Repaired = sc.repaired
		switch {
		case prev != nil && prev.last > 0:
			// SIGHUP after logrotate moved (or emptied) the file: the
			// chain goes on from the previous file's last record.
			reason, withPrev = BootRotation, true
			a.chain, a.last = prev.chain, prev.last
		case haveMem && mem.last > 0:
			reason = BootCorruptTail
			a.open.Missing = mem.last
			a.open.Note = "the log holds no record, but its checkpoint remembers seq " + strconv.FormatUint(mem.last, 10)
			a.seq = max(a.seq, mem.last)
		case sc.repaired > 0:
			reason = BootCorruptTail
			a.open.Note = "a torn header was cut off"
		}
	case layoutV2:
		if sc.repaired > 0 {
			if err := a.truncate(sc.size - sc.repaired); err != nil {
				a.close()
				return nil, wrap("audit file "+path, err)
			}
		}
		a.size = sc.size - sc.repaired
		a.open.Repaired = sc.repaired
		a.first, a.last, a.chain = sc.first, sc.last, sc.chain
		a.seq = max(a.seq, sc.last)
		reason, withPrev = BootResume, true
		if sc.repaired > 0 {
			reason, withPrev = BootCorruptTail, false
			a.open.Note = "a torn last line of " + strconv.FormatInt(sc.repaired, 10) + " bytes was cut off"
		}
		if haveMem {
			switch {
			case sc.first != mem.first:
				a.open.Note = "the log starts at seq " + strconv.FormatUint(sc.first, 10) +
					" but the observer's log started at seq " + strconv.FormatUint(mem.first, 10) + ": another file"
			case sc.last < mem.last:
				a.open.Missing = mem.last - sc.last
				a.open.Note = "the log ends at seq " + strconv.FormatUint(sc.last, 10) +
					" but the observer wrote up to seq " + strconv.FormatUint(mem.last, 10) + ": its tail was cut"
			case sc.last == mem.last && sc.chain != mem.chain:
				a.open.Note = "the last record, seq " + strconv.FormatUint(sc.last, 10) + ", is not the one the observer wrote"
			default:
				haveMem = false // agrees
			}
			if haveMem {
				reason, withPrev = BootCorruptTail, false
				a.seq = max(a.seq, mem.last)
			}
		}
	}
	a.open.Reason = reason
	if err := a.boot(reason, withPrev); err != nil {
		// The boot record is counted as failed; the log stays usable.
		a.lastErr = err
	}
	return a, nil
}

// openAuditFile opens path for appending, refusing a symlink and anything
// but a regular file.
func openAuditFile(path string) (int, error) {
	var lst unix.Stat_t
	if err := unix.Lstat(path, &lst); err == nil && lst.Mode&unix.S_IFMT != unix.S_IFREG {
		if lst.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, auditFileErr(path, "is a symlink; give the real path")
		}
		return -1, auditFileErr(path, "not a regular file; give the path of a regular file")
	}
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_CLOEXEC|unix.O_NOFOLLOW|unix.O_NONBLOCK, 0o600)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return -1, auditFileErr(path, "is a symlink; give the real path")
		}
		hint := ""
		switch err {
		case unix.ENOENT:
			hint = "create the directory " + filepath.Dir(path) + " first"
		case unix.EACCES, unix.EPERM, unix.EROFS:
			hint = "run as a user that may write there, or choose another path"
		}
		return -1, wrapHint("audit file "+path, os.NewSyscallError("open", err), hint)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, wrap("audit file "+path, os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		return -1, auditFileErr(path, "not a regular file; give the path of a regular file")
	}
	return fd, nil
}

// moveAside renames path to path+tag+<unix seconds> (with .N added if
// that name is taken) and returns the new name.
func moveAside(path, tag string) (string, error) {
	base := path + tag + strconv.FormatInt(time.Now().Unix(), 10)
	for i := 0; i < 100; i++ {
		dst := base
		if i > 0 {
			dst += "." + strconv.Itoa(i)
		}
		var st unix.Stat_t
		if err := unix.Lstat(dst, &st); err == nil {
			continue
		}
		if err := unix.Rename(path, dst); err != nil {
			return "", wrapHint("audit file "+path, os.NewSyscallError("rename to "+dst, err),
				"let the observer's user rename files in "+filepath.Dir(path)+", or move the file aside by hand")
		}
		return dst, nil
	}
	return "", auditFileErr(path, "cannot find a free name to move it aside to ("+base+"...)")
}

// The layouts examineAudit tells apart.
const (
	layoutEmpty = iota // empty, a torn header, or the header alone
	layoutV2           // schema v2 records
	layoutKV           // the earlier key=value layout of this observer
	layoutV1           // the Rust observer's schema v1
)

// auditScan is what examineAudit found in an existing log.
type auditScan struct {
	layout   int
	size     int64
	repaired int64 // bytes of a torn last line (or header) to cut
	first    uint64
	last     uint64 // seq of the last record (any layout)
	chain    [32]byte
}

// examineAudit reads the head and tail of the log open at fd.
func examineAudit(fd int) (auditScan, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return auditScan{}, os.NewSyscallError("fstat", err)
	}
	sc := auditScan{size: st.Size}
	hdr := AuditHeader + "\n"
	hn := min(sc.size, auditTailMax)
	head := make([]byte, hn)
	if err := preadFull(fd, head, 0); err != nil {
		return sc, err
	}
	switch {
	case sc.size < int64(len(hdr)) && bytes.HasPrefix([]byte(hdr), head):
		sc.repaired = sc.size // empty, or a header torn by a crash
		return sc, nil
	case bytes.HasPrefix(head, []byte(auditHeaderV1)):
		sc.layout = layoutV1
		return sc, nil
	case !bytes.HasPrefix(head, []byte(hdr)):
		return sc, errors.New("first line is not " + strconv.Quote(AuditHeader) + "; not a varta-watch audit log, move it aside")
	}
	tail := head
	if sc.size > hn {
		tail = make([]byte, auditTailMax)
		if err := preadFull(fd, tail, sc.size-auditTailMax); err != nil {
			return sc, err
		}
	}
	end := len(tail) // tail[:end] ends with '\n'
	if tail[end-1] != '\n' {
		end = bytes.LastIndexByte(tail, '\n') + 1
		if end == 0 {
			return sc, errTailTooLong
		}
	}
	sc.repaired = int64(len(tail) - end)
	if sc.size-sc.repaired == int64(len(hdr)) {
		return sc, nil // the header alone
	}
	start := bytes.LastIndexByte(tail[:end-1], '\n') + 1
	if start == 0 && sc.size > hn {
		return sc, errTailTooLong
	}
	lastLine := tail[start : end-1]
	firstLine := head[len(hdr):]
	if i := bytes.IndexByte(firstLine, '\n'); i >= 0 {
		firstLine = firstLine[:i]
	} else if sc.size > hn {
		return sc, errors.New("first record is longer than " + strconv.Itoa(auditTailMax) + " bytes; not a record of ours, move the file aside")
	}
	if r, ok := parseV2Ends(lastLine); ok {
		f, fok := parseV2Ends(firstLine)
		if !fok {
			return sc, errors.New("first record is malformed; check it with 'varta-watch audit verify' and move the file aside")
		}
		sc.layout, sc.first, sc.last, sc.chain = layoutV2, f.seq, r.seq, r.chain
		return sc, nil
	}
	if seq, ok := parseKVEnds(lastLine); ok {
		// Moved aside whole, a torn tail included: nothing is cut.
		sc.layout, sc.last, sc.repaired = layoutKV, seq, 0
		return sc, nil
	}
	return sc, errors.New("last record is malformed; check it with 'varta-watch audit verify' and move the file aside")
}

// v2Ends is the first and last column of a schema v2 record.
type v2Ends struct {
	seq   uint64
	chain [32]byte // zeros for an unchained record ("-")
}

// parseV2Ends reads a schema v2 record line (no newline) just enough to
// resume after it: seq, wallclock_ms, observer_ns, a known kind, and the
// chain column. VerifyAudit checks the rest.
func parseV2Ends(line []byte) (v2Ends, bool) {
	var r v2Ends
	var cols [5][]byte
	rest := line
	for i := range 4 {
		j := bytes.IndexByte(rest, '\t')
		if j < 0 {
			return r, false
		}
		cols[i], rest = rest[:j], rest[j+1:]
	}
	seq, ok := parseDec(cols[0], 64)
	if !ok || seq == 0 {
		return r, false
	}
	if _, ok := parseDec(cols[1], 64); !ok {
		return r, false
	}
	if _, ok := parseDec(cols[2], 64); !ok {
		return r, false
	}
	if !knownKind(cols[3]) {
		return r, false
	}
	k := bytes.LastIndexByte(line, '\t')
	chain := line[k+1:]
	r.seq = seq
	if string(chain) == "-" {
		return r, true
	}
	return r, decodeHex32(chain, &r.chain)
}

func knownKind(k []byte) bool {
	switch string(k) {
	case "boot", "spawn", "complete", "refused":
		return true
	}
	return false
}

// parseDec reads an unsigned decimal of at most bits bits, without sign,
// padding or leading zeros.
func parseDec(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || len(b) > 1 && b[0] == '0' {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	if bits < 64 && v >= 1<<bits {
		return 0, false
	}
	return v, true
}

func decodeHex32(b []byte, out *[32]byte) bool {
	if len(b) != 64 {
		return false
	}
	for i := range 32 {
		hi, ok1 := unhex(b[2*i])
		lo, ok2 := unhex(b[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		out[i] = hi<<4 | lo
	}
	return true
}

// unhex reads a lowercase hex digit.
func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
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

// startFile makes the open file a new log: cut to nothing (it held size
// bytes, at most a torn header) and given its header.
func (a *auditLog) startFile(size int64) error {
	if size > 0 {
		if err := a.truncate(0); err != nil {
			return err
		}
	}
	hdr := AuditHeader + "\n"
	if err := a.writeAll([]byte(hdr)); err != nil {
		return err
	}
	a.size, a.first = int64(len(hdr)), 0
	return nil
}

func (a *auditLog) truncate(size int64) error {
	if err := unix.Ftruncate(a.fd, size); err != nil {
		return os.NewSyscallError("ftruncate", err)
	}
	return nil
}

// writeAll writes p with write(2), retrying EINTR and short writes.
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

func fdatasync(fd int) error {
	for {
		err := unix.Fdatasync(fd)
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("fdatasync", err)
			}
			return nil
		}
	}
}

// begin starts record seq+1 of kind: seq, wall-clock ms, observer ns, kind.
func (a *auditLog) begin(kind string, observerNs int64) {
	if a.openDue {
		a.reopenLive() // on failure this record goes to the rotated file
	}
	b := strconv.AppendUint(a.buf[:0], a.seq+1, 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, time.Now().UnixMilli(), 10)
	b = append(b, '\t')
	b = strconv.AppendInt(b, max(observerNs, 0), 10)
	b = append(b, '\t')
	a.buf = append(b, kind...)
}

func (a *auditLog) uint(v uint64) { a.buf = strconv.AppendUint(append(a.buf, '\t'), v, 10) }
func (a *auditLog) int(v int64)   { a.buf = strconv.AppendInt(append(a.buf, '\t'), v, 10) }
func (a *auditLog) dash()         { a.buf = append(a.buf, '\t', '-') }

// text appends a free-text column with every TAB, LF and CR replaced by a
// space, so a value can never add a column or a line.
func (a *auditLog) text(v string) {
	b := append(a.buf, '\t')
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\t' || c == '\n' || c == '\r' {
			c = ' '
		}
		b = append(b, c)
	}
	a.buf = b
}

// chainHash is SHA-256 of the domain, kind, the previous chain (raw) and
// the record body, each separated by a zero byte.
func (a *auditLog) chainHash(kind string, body []byte) [32]byte {
	h := append(a.hin[:0], auditDomain...)
	h = append(append(h, 0), kind...)
	h = append(append(h, 0), a.chain[:]...)
	h = append(append(h, 0), body...)
	a.hin = h
	return sha256.Sum256(h)
}

// commit numbers, chains and appends the record in buf. A failed write is
// cut back off the file so the chain stays intact, and its seq is burnt
// (the gap shows the loss); if even the cut fails the log is disabled
// until reopened. Errors are counted and returned, never fatal.
func (a *auditLog) commit(kind string) error {
	a.seq++
	if a.disabled || a.fd < 0 {
		a.failed++
		return ErrAuditDisabled
	}
	sum := a.chainHash(kind, a.buf)
	a.buf = append(a.buf, '\t')
	a.buf = appendHex(a.buf, sum[:])
	a.buf = append(a.buf, '\n')
	if err := a.writeAll(a.buf); err != nil {
		a.failed++
		a.lastErr = err
		if a.truncate(a.size) != nil {
			a.disabled = true
		}
		return err
	}
	a.size += int64(len(a.buf))
	a.chain, a.last = sum, a.seq
	if a.first == 0 {
		a.first = a.seq
	}
	a.written++
	a.unsynced++
	var err error
	if a.unsynced >= a.opts.syncEvery {
		err = a.sync()
	}
	if a.opts.maxBytes > 0 && a.size >= a.opts.maxBytes && !a.rotating {
		if rerr := a.rotate(); rerr != nil && err == nil {
			err = rerr
		}
	}
	return err
}

// sync makes the written records durable, then records the last of them
// in the checkpoint: the checkpoint never names a record that is not on
// disk.
func (a *auditLog) sync() error {
	t0 := time.Now()
	err := fdatasync(a.fd)
	a.opts.stats.fsynced(time.Since(t0))
	if err != nil {
		a.failed++
		a.lastErr = err
		return err
	}
	a.unsynced = 0
	return a.checkpoint()
}

// checkpoint rewrites the checkpoint file when it is behind.
func (a *auditLog) checkpoint() error {
	c := checkpoint{first: a.first, last: a.last, chain: a.chain}
	if a.last == 0 || a.first == 0 || c == a.chk {
		return nil // nothing written to this file yet, or nothing new
	}
	if err := writeCheckpoint(a.chkPath, c); err != nil {
		a.failed++
		a.lastErr = err
		return err
	}
	a.chk = c
	return nil
}

// boot writes a boot record and makes it durable whatever the sync
// cadence: it marks where a session or a file begins.
func (a *auditLog) boot(reason string, withPrev bool) error {
	a.begin("boot", 0)
	a.uint(uint64(a.opts.pid))
	if withPrev {
		a.buf = appendHex(append(a.buf, '\t'), a.chain[:])
	} else {
		a.dash()
	}
	a.text(reason)
	err := a.commit("boot")
	if err == nil && a.unsynced > 0 {
		err = a.sync()
	}
	return err
}

// generation returns the name of rotated file g (0: the live path).
func (a *auditLog) generation(g int) string {
	if g == 0 {
		return a.path
	}
	return a.path + "." + strconv.Itoa(g)
}

// rotate moves path.4 to path.5 ... path to path.1, each with its
// checkpoint, and starts a new file whose boot record (reason rotation)
// carries the chain on. On failure the records keep going to the current
// file, and the next record tries again.
func (a *auditLog) rotate() error {
	a.rotating = true
	t0 := time.Now()
	defer func() { a.rotating = false; a.opts.stats.rotated(time.Since(t0)) }()
	if a.unsynced > 0 {
		if err := a.sync(); err != nil {
			return err
		}
	} else if err := a.checkpoint(); err != nil {
		return err
	}
	for g := AuditGenerations; g >= 1; g-- {
		src, dst := a.generation(g-1), a.generation(g)
		if err := unix.Rename(src, dst); err != nil && err != unix.ENOENT {
			a.failed++
			a.lastErr = wrapHint("audit file "+src, os.NewSyscallError("rename to "+dst, err),
				"let the observer's user rename files in "+filepath.Dir(a.path))
			return a.lastErr
		}
		if err := unix.Rename(CheckpointPath(src), CheckpointPath(dst)); err != nil && err != unix.ENOENT {
			a.failed++
			a.lastErr = wrap("audit checkpoint "+CheckpointPath(src), os.NewSyscallError("rename", err))
			return a.lastErr
		}
	}
	a.openDue = true
	if !a.reopenLive() {
		return a.lastErr
	}
	return nil
}

// reopenLive creates the live file after rotation moved the old one and
// writes its header and rotation boot record. It reports success; on
// failure records go on into the rotated file and the next record retries
// (begin calls it).
func (a *auditLog) reopenLive() bool {
	fd, err := openAuditFile(a.path)
	if err != nil {
		a.failed++
		a.lastErr = err
		return false
	}
	old := a.fd
	a.fd = fd
	if err := a.startFile(0); err != nil {
		unix.Close(fd)
		a.fd = old
		a.failed++
		a.lastErr = err
		return false
	}
	unix.Close(old)
	a.openDue = false
	a.chk = checkpoint{}
	was := a.rotating
	a.rotating = true
	if err := a.boot(BootRotation, true); err != nil {
		a.lastErr = err
	}
	a.rotating = was
	return true
}

func (a *auditLog) close() error {
	if a.fd < 0 {
		return nil
	}
	var err error
	if a.unsynced > 0 {
		err = a.sync()
	}
	if cerr := unix.Close(a.fd); cerr != nil && err == nil {
		err = os.NewSyscallError("close", cerr)
	}
	a.fd = -1
	return err
}
