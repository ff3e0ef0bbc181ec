package statefile

import (
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sysfile"
	"github.com/varta-go/varta/poll/internal/track"
)

// SaveEvery is the least time between two writes of the file, ns.
const SaveEvery = int64(1e9)

// Saver writes the state file. Only the loop's goroutine may use it.
type Saver struct {
	path, tmp string
	bootID    string
	buf       []byte
	ids       []track.SlotID
	next      int64 // caller time before which Due says no
	err       error // the last write's failure, nil after a good one
}

// NewSaver writes to path (through path + ".tmp", renamed over it) for the
// boot bootID. capacity is the tracker's.
func NewSaver(path, bootID string, capacity int) *Saver {
	return &Saver{path: path, tmp: path + ".tmp", bootID: bootID, buf: make([]byte, 0, saveBufSize),
		ids: make([]track.SlotID, 0, capacity)}
}

// Due reports whether a write is allowed now: at most once per SaveEvery.
func (s *Saver) Due(now int64) bool { return now >= s.next }

// Err is the last write's failure; nil when it succeeded.
func (s *Saver) Err() error { return s.err }

// Save writes every kernel-attested agent of tr, whose last arrivals are
// on the caller's clock, of which now is the present time. UDP agents are
// not kept: their pids are another host's, and they are learnt again at
// their next beat.
func (s *Saver) Save(now int64, tr *track.Tracker, paths *track.Paths) error {
	s.next = now + SaveEvery
	nowBoot := boottime()
	s.err = s.write(nowBoot, nowBoot-now, tr, paths)
	return s.err
}

// boottime is CLOCK_BOOTTIME in ns; it cannot fail on a kernel that has
// it (2.6.39 and later).
func boottime() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
	return ts.Nano()
}

func (s *Saver) write(nowBoot, toBoot int64, tr *track.Tracker, paths *track.Paths) (err error) {
	fd, err := unix.Open(s.tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return s.fail("cannot create it", err)
	}
	defer func() {
		if cerr := unix.Close(fd); err == nil && cerr != nil {
			err = s.fail("cannot write it", cerr)
		}
		if err != nil {
			unix.Unlink(s.tmp)
		}
	}()
	b := append(s.buf[:0], magic+" "+strconv.Itoa(Version)+"\nboot_id "...)
	b = append(b, s.bootID...)
	b = strconv.AppendInt(append(b, "\nwritten_boottime_ns "...), nowBoot, 10)
	b = append(b, '\n')
	s.ids = tr.AppendSorted(s.ids[:0])
	n := 0
	for _, id := range s.ids {
		a := tr.Get(id)
		if a.Origin != track.OriginUDS || !a.HasStartTime {
			continue
		}
		if cap(b)-len(b) < maxLine {
			if err := writeAll(fd, b); err != nil {
				return s.fail("cannot write it", err)
			}
			b = b[:0]
		}
		b = appendAgent(b, a, toBoot, paths)
		n++
	}
	b = strconv.AppendInt(append(b, "end "...), int64(n), 10)
	b = append(b, '\n')
	if err := writeAll(fd, b); err != nil {
		return s.fail("cannot write it", err)
	}
	s.buf = b[:0]
	if err := unix.Rename(s.tmp, s.path); err != nil {
		return s.fail("cannot rename "+s.tmp+" over it", err)
	}
	return nil
}

func appendAgent(b []byte, a *track.Slot, toBoot int64, paths *track.Paths) []byte {
	b = strconv.AppendUint(append(b, "agent "...), uint64(a.Pid), 10)
	b = strconv.AppendUint(append(b, ' '), a.StartTime, 10)
	b = strconv.AppendUint(append(b, ' '), a.LastNonce, 10)
	b = append(append(b, ' '), a.Status.String()...)
	b = strconv.AppendUint(append(b, ' '), uint64(a.Payload), 10)
	b = strconv.AppendInt(append(b, ' '), max(a.LastArrival+toBoot, 0), 10)
	stalled := byte('0')
	if a.Stalled {
		stalled = '1'
	}
	b = append(b, ' ', stalled)
	b = strconv.AppendUint(append(b, ' '), a.Beats, 10)
	b = strconv.AppendUint(append(b, ' '), a.Stalls, 10)
	b = strconv.AppendQuote(append(b, ' '), string(a.NameBytes()))
	b = strconv.AppendQuote(append(b, ' '), string(paths.Get(a.Exe)))
	return append(b, '\n')
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (s *Saver) fail(problem string, err error) error {
	return &sysfile.Error{What: "state file", Path: s.path, Problem: problem, Err: err,
		Hint: "check --state-file's directory (a tmpfs such as /run is meant)"}
}
