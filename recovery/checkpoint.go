package recovery

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// The checkpoint is a small file beside the audit log naming the log's
// first record and its last durable one with its chain value, so that a
// log cut at its end (records deleted from the tail, which the chain alone
// cannot show) is noticed by VerifyAudit and by the next start. Format
// (cmd/varta-watch/README.md §6), exactly four lines:
//
//	# varta-watch audit checkpoint v1
//	first_seq <seq of the file's first record>
//	last_seq <seq of its last durable record>
//	chain <64 lowercase hex: that record's chain value>
//
// It is rewritten after each fdatasync of the log, through a temporary
// file that is synced and renamed over it, so a reader sees a whole old
// or a whole new checkpoint and never one naming a record not on disk.
const checkpointHeader = "# varta-watch audit checkpoint v1"

// checkpointMax bounds what is read of a checkpoint file.
const checkpointMax = 512

// CheckpointPath is the checkpoint file of the audit log at log.
func CheckpointPath(log string) string { return log + ".chk" }

type checkpoint struct {
	first, last uint64
	chain       [32]byte
}

// CheckpointError is a checkpoint file that cannot be read or makes no
// sense. Err is the cause when a system call failed.
type CheckpointError struct {
	Path string
	Msg  string
	Err  error
}

func (e *CheckpointError) Error() string {
	if e.Err != nil {
		return "audit checkpoint " + e.Path + ": " + e.Msg + ": " + e.Err.Error()
	}
	return "audit checkpoint " + e.Path + ": " + e.Msg
}

func (e *CheckpointError) Unwrap() error { return e.Err }

func (c checkpoint) format() []byte {
	b := make([]byte, 0, 160)
	b = append(b, checkpointHeader...)
	b = strconv.AppendUint(append(b, "\nfirst_seq "...), c.first, 10)
	b = strconv.AppendUint(append(b, "\nlast_seq "...), c.last, 10)
	b = appendHex(append(b, "\nchain "...), c.chain[:])
	return append(b, '\n')
}

// parseCheckpoint reads the four lines of a checkpoint, strictly.
func parseCheckpoint(b []byte) (checkpoint, string) {
	var c checkpoint
	if !bytes.HasSuffix(b, []byte{'\n'}) {
		return c, "does not end in a newline (torn or edited)"
	}
	lines := bytes.Split(b[:len(b)-1], []byte{'\n'})
	if len(lines) != 4 || string(lines[0]) != checkpointHeader {
		if len(lines) > 0 && bytes.HasPrefix(lines[0], []byte("# varta-watch audit checkpoint ")) {
			return c, "unknown version " + strconv.Quote(string(lines[0])) + "; written by a newer varta-watch?"
		}
		return c, "not a checkpoint: want the 4 lines of " + strconv.Quote(checkpointHeader)
	}
	var ok bool
	if c.first, ok = checkpointField(lines[1], "first_seq "); !ok || c.first == 0 {
		return c, "line 2 is not \"first_seq N\""
	}
	if c.last, ok = checkpointField(lines[2], "last_seq "); !ok || c.last < c.first {
		return c, "line 3 is not \"last_seq N\" with N at least first_seq"
	}
	h, found := bytes.CutPrefix(lines[3], []byte("chain "))
	if !found || !decodeHex32(h, &c.chain) {
		return c, "line 4 is not \"chain\" and 64 lowercase hex digits"
	}
	return c, ""
}

func checkpointField(line []byte, key string) (uint64, bool) {
	v, found := bytes.CutPrefix(line, []byte(key))
	if !found {
		return 0, false
	}
	return parseDec(v, 64)
}

// readCheckpoint reads the checkpoint at path; ok is false when there is
// none.
func readCheckpoint(path string) (c checkpoint, ok bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == unix.ENOENT {
		return c, false, nil
	}
	if err != nil {
		return c, false, &CheckpointError{Path: path, Msg: "cannot open it", Err: os.NewSyscallError("open", err)}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return c, false, &CheckpointError{Path: path, Msg: "cannot inspect it", Err: os.NewSyscallError("fstat", err)}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return c, false, &CheckpointError{Path: path, Msg: "not a regular file"}
	}
	if st.Size > checkpointMax {
		return c, false, &CheckpointError{Path: path, Msg: "longer than " + strconv.Itoa(checkpointMax) + " bytes; not a checkpoint"}
	}
	b := make([]byte, st.Size)
	if err := preadFull(fd, b, 0); err != nil {
		return c, false, &CheckpointError{Path: path, Msg: "cannot read it", Err: err}
	}
	c, bad := parseCheckpoint(b)
	if bad != "" {
		return c, false, &CheckpointError{Path: path, Msg: bad}
	}
	return c, true, nil
}

// writeCheckpoint replaces the checkpoint at path atomically: path.tmp is
// written, synced and renamed over it.
func writeCheckpoint(path string, c checkpoint) error {
	tmp := path + ".tmp"
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return &CheckpointError{Path: path, Msg: "cannot create " + tmp, Err: os.NewSyscallError("open", err)}
	}
	b := c.format()
	for len(b) > 0 && err == nil {
		var n int
		n, err = unix.Write(fd, b)
		if err == unix.EINTR {
			err = nil
			continue
		}
		if err == nil && n == 0 {
			err = unix.EIO
		}
		b = b[max(n, 0):]
	}
	if err == nil {
		err = fdatasync(fd)
	} else {
		err = os.NewSyscallError("write", err)
	}
	if cerr := unix.Close(fd); cerr != nil && err == nil {
		err = os.NewSyscallError("close", cerr)
	}
	if err == nil {
		if rerr := unix.Rename(tmp, path); rerr != nil {
			err = os.NewSyscallError("rename", rerr)
		}
	}
	if err != nil {
		unix.Unlink(tmp)
		return &CheckpointError{Path: path, Msg: "cannot write it", Err: err}
	}
	return nil
}
