package listen

import (
	"encoding/binary"
	"math"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	// RecvDataBytes is the data buffer of each message: a VLP frame is 32
	// bytes and the largest secure-UDP frame 64, so anything longer is
	// wrong; Len still reports its real length.
	RecvDataBytes = 64

	// RecvMaxBatch bounds a batch: recvmmsg(2) refuses more than UIO_MAXIOV
	// messages per call.
	RecvMaxBatch = 1024

	// recvMaxFds is how many unsolicited SCM_RIGHTS descriptors one message
	// can carry into the control buffer before the kernel sets MSG_CTRUNC
	// and discards the rest itself.
	recvMaxFds = 16

	// recvFlags: never block; MSG_TRUNC makes msg_len the datagram's real
	// length, not the copied one; received fds are CLOEXEC from the start,
	// so no child spawned before they are closed inherits one.
	recvFlags = unix.MSG_DONTWAIT | unix.MSG_TRUNC | unix.MSG_CMSG_CLOEXEC

	recvWord = int(unsafe.Sizeof(uintptr(0))) // cmsg alignment

	// recvStampBytes is the largest timestamp payload: two 64-bit words
	// (struct __kernel_timespec of SO_TIMESTAMPNS_NEW); the old types carry
	// the native struct timespec or timeval: 16 bytes, or 8 on 32-bit.
	recvStampBytes = 16
)

// recvCmsgHdr is the aligned size of a cmsghdr: where a message's data
// starts (CMSG_DATA).
var recvCmsgHdr = unix.CmsgLen(0)

// Receiver reads batches of datagrams from one socket with recvmmsg(2)
// into arrays allocated once by NewReceiver, so Recv allocates nothing.
// The data and credentials of a batch stay valid until the next Recv.
// A Receiver is owned by one goroutine.
type Receiver struct {
	fd       int
	hdrs     []unix.Mmsghdr
	iovs     []unix.Iovec
	data     []byte // RecvDataBytes per message
	ctl      []byte // ctlSize per message, word-aligned as cmsghdrs need
	ctlSize  int
	size     int // data bytes per message
	keepFds  bool
	meta     []recvMeta
	n        int // messages of the current batch
	closed   uint64
	ctrunc   uint64
	received uint64
	calls    uint64 // Recv calls that did not fail, this one included
	emptied  uint64 // the latest such call that left the queue empty
	before   uint64 // emptied as it was before the current call
}

// recvMeta is what Recv extracted from one message's control data.
type recvMeta struct {
	pid, uid, gid uint32
	cred          bool  // SCM_CREDENTIALS was present
	ctrunc        bool  // the kernel truncated the control data
	fdOff, fdLen  int32 // passed fds not closed yet (SetKeepFds): where in ctl
	stamped       bool  // a receive timestamp was present
	queued        int64 // CLOCK_REALTIME ns at which the datagram was queued
}

// NewReceiver prepares batch messages (clamped to 1..RecvMaxBatch) for the
// datagram socket fd, which stays owned by the caller (a UDS, or a UDP
// socket: then Cred reports ok=false).
func NewReceiver(fd int, batch int) *Receiver { return NewReceiverSize(fd, batch, RecvDataBytes) }

// NewReceiverSize is NewReceiver with size data bytes per message (at
// least 1) instead of RecvDataBytes: Truncated tells a longer datagram.
func NewReceiverSize(fd int, batch, size int) *Receiver {
	batch, size = max(1, min(batch, RecvMaxBatch)), max(1, size)
	ctlSize := unix.CmsgSpace(recvStampBytes) + unix.CmsgSpace(unix.SizeofUcred) + unix.CmsgSpace(4*recvMaxFds)
	ctlSize = (ctlSize + recvWord - 1) / recvWord * recvWord
	// Allocated as words so that every message's control buffer starts
	// aligned; the kernel and the cmsghdr walk rely on it.
	words := make([]uintptr, batch*ctlSize/recvWord)
	r := &Receiver{
		fd:      fd,
		hdrs:    make([]unix.Mmsghdr, batch),
		iovs:    make([]unix.Iovec, batch),
		data:    make([]byte, batch*size),
		size:    size,
		ctl:     unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), len(words)*recvWord),
		ctlSize: ctlSize,
		meta:    make([]recvMeta, batch),
	}
	for i := range r.hdrs {
		r.iovs[i].Base = &r.data[i*size]
		r.iovs[i].SetLen(size)
		h := &r.hdrs[i].Hdr
		h.Iov = &r.iovs[i]
		h.SetIovlen(1)
		h.Control = &r.ctl[i*ctlSize]
		h.SetControllen(ctlSize)
	}
	return r
}

// Fd is the socket the Receiver reads.
func (r *Receiver) Fd() int { return r.fd }

// Batch is the most messages one Recv returns.
func (r *Receiver) Batch() int { return len(r.hdrs) }

// Recv wraps recvmmsg(2) with MSG_DONTWAIT: it returns the number of
// datagrams read (up to Batch), 0 and nil when none is queued. Any file
// descriptors a sender passed are closed before Recv returns. It never
// blocks and never allocates except to report an error.
func (r *Receiver) Recv() (int, error) { return r.RecvAtMost(len(r.hdrs)) }

// RecvAtMost is Recv reading at most limit datagrams (1..Batch): fewer
// than limit returned means the queue was found empty.
func (r *Receiver) RecvAtMost(limit int) (int, error) {
	limit = min(max(limit, 1), len(r.hdrs))
	r.CloseKeptFds()
	// The kernel rewrote length, flags and control length of the messages
	// it filled last time; restore those.
	for i := range r.n {
		h := &r.hdrs[i]
		h.Len = 0
		h.Hdr.Flags = 0
		h.Hdr.SetControllen(r.ctlSize)
	}
	r.n = 0
	n, err := r.recvmmsg(limit)
	if err == nil {
		r.calls++
		r.before = r.emptied
		if n < limit {
			r.emptied = r.calls
		}
	}
	if n <= 0 {
		return 0, err
	}
	for i := range n {
		r.parseControl(i)
	}
	r.n = n
	r.received += uint64(n)
	return n, nil
}

// recvmmsg is the one place the syscall is made; EINTR is retried once.
// With MSG_DONTWAIT it cannot block, so it is a raw system call: no
// entersyscall/exitsyscall hand-over, which would wake the runtime's other
// threads on every call (several context switches per beat).
func (r *Receiver) recvmmsg(vlen int) (int, error) {
	for try := 0; ; try++ {
		n, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, uintptr(r.fd),
			uintptr(unsafe.Pointer(&r.hdrs[0])), uintptr(vlen), recvFlags, 0, 0)
		switch {
		case e == 0:
			return int(n), nil
		case e == unix.EAGAIN:
			return 0, nil
		case e == unix.EINTR && try == 0:
			continue
		}
		return 0, os.NewSyscallError("recvmmsg", e)
	}
}

// parseControl walks message i's cmsghdrs by hand (the unix package's
// parser allocates), keeps the credentials and closes passed fds.
func (r *Receiver) parseControl(i int) {
	h := &r.hdrs[i].Hdr
	m := recvMeta{ctrunc: h.Flags&unix.MSG_CTRUNC != 0}
	if m.ctrunc {
		r.ctrunc++
	}
	off := i * r.ctlSize // of b in ctl
	b := r.ctl[off : off+min(int(h.Controllen), r.ctlSize)]
	for len(b) >= recvCmsgHdr {
		c := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(c.Len)
		if l < recvCmsgHdr || l > len(b) {
			break // malformed or cut short: nothing more to trust
		}
		d := b[recvCmsgHdr:l]
		if c.Level == unix.SOL_SOCKET {
			switch c.Type {
			case unix.SCM_CREDENTIALS:
				if len(d) >= unix.SizeofUcred {
					m.pid = binary.NativeEndian.Uint32(d[0:])
					m.uid = binary.NativeEndian.Uint32(d[4:])
					m.gid = binary.NativeEndian.Uint32(d[8:])
					m.cred = true
				}
			case unix.SCM_RIGHTS:
				if r.keepFds {
					m.fdOff, m.fdLen = int32(off+recvCmsgHdr), int32(len(d))
				} else {
					r.closeFds(d)
				}
			case unix.SO_TIMESTAMPNS_NEW, unix.SCM_TIMESTAMPNS:
				m.queued, m.stamped = parseStamp(d, 1)
			case unix.SO_TIMESTAMP_NEW, unix.SCM_TIMESTAMP:
				m.queued, m.stamped = parseStamp(d, 1000)
			}
		}
		next := (l + recvWord - 1) / recvWord * recvWord
		if next >= len(b) {
			break
		}
		b, off = b[next:], off+next
	}
	r.meta[i] = m
}

// parseStamp reads a receive timestamp's payload, seconds and a fraction
// of unit ns (1 for a timespec, 1000 for a timeval): two 64-bit words
// (the _NEW types, or the old ones on a 64-bit kernel) or two 32-bit ones
// (the old types on a 32-bit kernel). Anything else is no timestamp.
func parseStamp(d []byte, unit int64) (int64, bool) {
	var sec, nsec int64
	switch len(d) {
	case 16:
		sec, nsec = int64(binary.NativeEndian.Uint64(d)), int64(binary.NativeEndian.Uint64(d[8:]))
	case 8:
		sec, nsec = int64(int32(binary.NativeEndian.Uint32(d))), int64(int32(binary.NativeEndian.Uint32(d[4:])))
	default:
		return 0, false
	}
	if sec < 0 || sec > math.MaxInt64/1_000_000_000-1 || nsec < 0 || nsec >= 1e9/unit {
		return 0, false
	}
	return sec*1e9 + nsec*unit, true
}

// closeFds closes descriptors nobody asked for: a sender must not be able
// to fill the observer's fd table.
func (r *Receiver) closeFds(d []byte) {
	for ; len(d) >= 4; d = d[4:] {
		if fd := int32(binary.NativeEndian.Uint32(d)); fd >= 0 {
			unix.Close(int(fd))
			r.closed++
		}
	}
}

// SetKeepFds makes Recv leave the descriptors a sender passed open until
// CloseKeptFds (or the next Recv): an sd_notify client's BARRIER=1 passes
// a pipe whose closing tells it that every message it sent before was
// handled, so they must be closed after the batch is handled, not before.
func (r *Receiver) SetKeepFds(keep bool) { r.keepFds = keep }

// CloseKeptFds closes the descriptors of the current batch that
// SetKeepFds kept open.
func (r *Receiver) CloseKeptFds() {
	for i := range r.n {
		if m := &r.meta[i]; m.fdLen > 0 {
			r.closeFds(r.ctl[m.fdOff : m.fdOff+m.fdLen])
			m.fdLen = 0
		}
	}
}

// Data is message i's bytes: the first min(Len(i), size) bytes of the
// datagram. The slice aliases the Receiver's buffer until the next Recv.
func (r *Receiver) Data(i int) []byte {
	off := i * r.size
	l := off + min(int(r.hdrs[i].Len), r.size)
	return r.data[off:l:l]
}

// Len is message i's real datagram length; it may exceed the data size.
// (A kernel that ignores MSG_TRUNC for AF_UNIX reports at most the data
// size; Truncated is right either way.)
func (r *Receiver) Len(i int) int { return int(r.hdrs[i].Len) }

// Truncated reports whether message i was longer than the data size: the
// kernel's MSG_TRUNC in the message's flags.
func (r *Receiver) Truncated(i int) bool {
	return r.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0 || int(r.hdrs[i].Len) > r.size
}

// Cred is the sender of message i as the kernel attests it
// (SCM_CREDENTIALS). ok is false when the message carried none (UDP, or
// control data truncated). pid is 0 when the sender's pid is not visible
// in the observer's pid namespace.
func (r *Receiver) Cred(i int) (pid, uid, gid uint32, ok bool) {
	m := &r.meta[i]
	return m.pid, m.uid, m.gid, m.cred
}

// Queued is when message i was queued on the socket, CLOCK_REALTIME ns,
// as the kernel stamped it at send time (SO_TIMESTAMPNS, or SO_TIMESTAMP's
// microseconds: see ListenUDS); ok is false when it carried no timestamp.
func (r *Receiver) Queued(i int) (ns int64, ok bool) {
	m := &r.meta[i]
	return m.queued, m.stamped
}

// Calls numbers the Recv calls that did not fail; the current batch came
// from call number Calls().
func (r *Receiver) Calls() uint64 { return r.calls }

// EmptiedBefore is the number of the latest call before the current one
// that returned fewer datagrams than it asked for, and so left the
// socket's queue empty when it was made, or that ReadAllQueuedBefore named
// (0: none). A datagram queued before that call began cannot be in the
// current batch or any later one.
func (r *Receiver) EmptiedBefore() uint64 { return r.before }

// ReadAllQueuedBefore tells r that every datagram queued before call
// number call began has been read since (the caller read as many as the
// queue can hold from that call on): from the next call on, EmptiedBefore
// counts it as if it had found the queue empty.
func (r *Receiver) ReadAllQueuedBefore(call uint64) {
	if call <= r.calls {
		r.emptied = max(r.emptied, call)
	}
}

// CtrlTruncated reports whether the kernel cut message i's control data
// short (MSG_CTRUNC): the sender passed more fds than fit.
func (r *Receiver) CtrlTruncated(i int) bool { return r.meta[i].ctrunc }

// ClosedFds counts unsolicited descriptors received and closed.
func (r *Receiver) ClosedFds() uint64 { return r.closed }

// CtrlTruncations counts messages whose control data was truncated.
func (r *Receiver) CtrlTruncations() uint64 { return r.ctrunc }

// Received counts datagrams returned by Recv.
func (r *Receiver) Received() uint64 { return r.received }
