package bench

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll"
	"github.com/varta-go/varta/vlp"
)

// baselineBatch matches the observer's recvmmsg batch, so the two differ
// only in what they do with a datagram.
const baselineBatch = 64

// The baseline receiver is the machine's ceiling for this workload: the
// observer's socket set-up (poll.ListenUDS: SO_PASSCRED, the same receive
// buffer) and receive path (poll.Receiver: recvmmsg with credentials into
// preallocated arrays), and then nothing but vlp.Parse. No identity check,
// no table, no events, no metrics.
//
// Protocol: it prints "ready" once bound; each line on its stdin asks for
// "valid=N bad=N" (frames so far); end of input or SIGTERM stops it.
func baselineMain(args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	path := fs.String("socket", "", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1) // started by hand: startChild gives it GOMAXPROCS=1 from the start
	}
	u, err := poll.ListenUDS(*path, 0o600)
	if err != nil {
		return err
	}
	defer u.Close()
	var valid, bad atomic.Uint64
	var stop atomic.Bool
	go func() {
		sc := bufio.NewScanner(in)
		for sc.Scan() {
			fmt.Fprintf(out, "valid=%d bad=%d\n", valid.Load(), bad.Load())
		}
		stop.Store(true)
	}()
	fmt.Fprintln(out, "ready")
	rx := poll.NewReceiver(u.Fd(), baselineBatch)
	pfd := []unix.PollFd{{Fd: int32(u.Fd()), Events: unix.POLLIN}}
	var ts unix.Timespec
	var v, b uint64
	for !stop.Load() {
		// Reset every time: ppoll(2) writes the time left back into ts.
		ts = unix.NsecToTimespec(int64(100 * time.Millisecond))
		if _, err := unix.Ppoll(pfd, &ts, nil); err != nil && err != unix.EINTR {
			return err
		}
		for {
			n, err := rx.Recv()
			if err != nil {
				return err
			}
			for i := range n {
				if _, e := vlp.Parse(rx.Data(i)); e == 0 && !rx.Truncated(i) {
					v++
				} else {
					b++
				}
			}
			if n < baselineBatch {
				break
			}
		}
		valid.Store(v)
		bad.Store(b)
	}
	return nil
}

// Baseline is a running baseline receiver process.
type Baseline struct {
	c      *child
	Socket string
}

// StartBaseline binds a baseline receiver at socket.
func StartBaseline(socket string) (*Baseline, error) {
	c, err := startChild(roleBaseline, "-socket", socket)
	if err != nil {
		return nil, err
	}
	if l, err := c.readLine(); err != nil || l != "ready" {
		c.stop(time.Second)
		return nil, fmt.Errorf("baseline receiver did not start: %q %v", l, err)
	}
	return &Baseline{c: c, Socket: socket}, nil
}

// Frames is the number of valid frames received so far.
func (b *Baseline) Frames() (uint64, error) {
	if _, err := io.WriteString(b.c.stdin, "\n"); err != nil {
		return 0, err
	}
	l, err := b.c.readLine()
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseUint(fields(l)["valid"], 10, 64)
	return v, err
}

// Stop ends the receiver.
func (b *Baseline) Stop() error {
	_, err := b.c.stop(5 * time.Second)
	return err
}

// Pid is the receiver's pid.
func (b *Baseline) Pid() int { return b.c.pid() }
