package bench

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/vlp"
)

// SenderConfig is what one sender process does. A sender is an agent: one
// vlp.Emitter, its own pid.
type SenderConfig struct {
	Socket string
	// Rate is beats per second, started at a random phase within the
	// first period so that many senders do not beat in lockstep; 0 beats
	// as fast as the socket takes them.
	Rate float64
	// Block waits for room in the observer's queue (poll for POLLOUT) and
	// retries when a beat finds it full; otherwise such a beat is dropped
	// and counted, as a real agent's would be.
	Block bool
	// Count stops after this many beats delivered (Block) or attempted
	// (otherwise); 0 means until Duration or SIGTERM.
	Count    int
	Duration time.Duration
	// SilenceMin and SilenceMax, when set, replace Rate: after each
	// delivered beat the sender is silent for a uniformly random time in
	// [SilenceMin, SilenceMax], so each silence longer than the observer's
	// threshold produces one stall at a phase unrelated to its ticks.
	SilenceMin, SilenceMax time.Duration
	// Latency times every Beat call (time.Now deltas) and reports
	// percentiles of the delivered ones.
	Latency bool
}

func (c SenderConfig) args() []string {
	a := []string{"-socket", c.Socket, "-rate", strconv.FormatFloat(c.Rate, 'g', -1, 64),
		"-count", strconv.Itoa(c.Count), "-duration", c.Duration.String(),
		"-silence-min", c.SilenceMin.String(), "-silence-max", c.SilenceMax.String()}
	if c.Block {
		a = append(a, "-block")
	}
	if c.Latency {
		a = append(a, "-latency")
	}
	return a
}

// SenderResult is a sender's summary.
type SenderResult struct {
	Pid       int
	Delivered int64 // beats the socket accepted
	Dropped   int64 // beats refused by a full queue (not Block)
	Waits     int64 // full-queue waits (Block)
	Errors    int64 // other failures (no observer, ...)
	// With Latency: Beat call latency of delivered beats, ns.
	P50, P99, P999, Max int64
	ClockNs             int64 // cost of the timing itself (time.Now + time.Since), median ns
}

func senderMain(args []string, out io.Writer) error {
	var c SenderConfig
	fs := flag.NewFlagSet("sender", flag.ContinueOnError)
	fs.StringVar(&c.Socket, "socket", "", "")
	fs.Float64Var(&c.Rate, "rate", 0, "")
	fs.BoolVar(&c.Block, "block", false, "")
	fs.IntVar(&c.Count, "count", 0, "")
	fs.DurationVar(&c.Duration, "duration", 0, "")
	fs.DurationVar(&c.SilenceMin, "silence-min", 0, "")
	fs.DurationVar(&c.SilenceMax, "silence-max", 0, "")
	fs.BoolVar(&c.Latency, "latency", false, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getenv("GOMAXPROCS") == "" {
		// An agent is one goroutine too; one P keeps the runtime's own
		// threads from competing with the receiver for the CPUs.
		runtime.GOMAXPROCS(1)
	}
	var stop atomic.Bool
	stopc := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		stop.Store(true)
		close(stopc)
	}()
	r, err := runSender(c, &stop, stopc)
	fmt.Fprintf(out, "delivered=%d dropped=%d waits=%d errors=%d p50=%d p99=%d p999=%d max=%d clock=%d\n",
		r.Delivered, r.Dropped, r.Waits, r.Errors, r.P50, r.P99, r.P999, r.Max, r.ClockNs)
	return err
}

func parseSenderResult(pid int, line string) SenderResult {
	m := fields(line)
	return SenderResult{Pid: pid, Delivered: fieldInt(m, "delivered"), Dropped: fieldInt(m, "dropped"),
		Waits: fieldInt(m, "waits"), Errors: fieldInt(m, "errors"), P50: fieldInt(m, "p50"),
		P99: fieldInt(m, "p99"), P999: fieldInt(m, "p999"), Max: fieldInt(m, "max"), ClockNs: fieldInt(m, "clock")}
}

// maxErrors ends a sender that cannot reach any observer.
const maxErrors = 1000

func runSender(c SenderConfig, stop *atomic.Bool, stopc <-chan struct{}) (SenderResult, error) {
	var r SenderResult
	e, err := vlp.Dial(c.Socket)
	if err != nil {
		return r, err
	}
	defer e.Close()
	// The sender counts a full queue itself (Dropped, or Block's own
	// wait), so Beat must report it at once rather than wait for room.
	e.SetSendWait(0)
	var room []unix.PollFd // Block: waits for room in the observer's queue
	if c.Block {
		w, err := writableWaiter(c.Socket)
		if err != nil {
			return r, err
		}
		defer unix.Close(w)
		room = []unix.PollFd{{Fd: int32(w), Events: unix.POLLOUT}}
	}
	var lat []int64
	if c.Latency {
		lat = make([]int64, 0, max(c.Count, 1<<16))
		r.ClockNs = clockCost()
	}
	var end time.Time
	if c.Duration > 0 {
		end = time.Now().Add(c.Duration)
	}
	pace := newPacer(c)
	defer pace.timer.Stop()
	for attempts := 0; !stop.Load(); {
		if c.Count > 0 && ((c.Block && r.Delivered >= int64(c.Count)) || (!c.Block && attempts >= c.Count)) {
			break
		}
		if !end.IsZero() && time.Now().After(end) {
			break
		}
		if !pace.wait(stopc) {
			break
		}
		attempts++
		var t0 time.Time
		if c.Latency {
			t0 = time.Now()
		}
		err := e.Beat(vlp.Ok, uint32(attempts))
		if c.Latency && err == nil && len(lat) < cap(lat) {
			lat = append(lat, int64(time.Since(t0)))
		}
		switch {
		case err == nil:
			r.Delivered++
			pace.advance()
		case err == vlp.ErrQueueFull && c.Block:
			r.Waits++
			// Wait for room, then try again at once.
			room[0].Revents = 0
			unix.Poll(room, 100)
			pace.retry()
		case err == vlp.ErrQueueFull:
			r.Dropped++
			pace.advance()
		default:
			r.Errors++
			if r.Errors >= maxErrors {
				return r, fmt.Errorf("%d failed beats, the last: %v", r.Errors, err)
			}
			time.Sleep(time.Millisecond)
			pace.retry()
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		r.P50, r.P99, r.P999, r.Max = pct(lat, 50), pct(lat, 99), pct(lat, 99.9), lat[len(lat)-1]
	}
	return r, nil
}

// writableWaiter returns a socket connected to the observer's path, polled
// for POLLOUT instead of the emitter's own (which vlp does not expose): a
// connected Unix datagram socket is writable exactly when its peer's
// receive queue has room, whichever socket asks.
func writableWaiter(path string) (int, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("connect %s: %w", path, err)
	}
	return fd, nil
}

// clockCost is the median cost of one timed empty interval, the floor
// under every latency the sender reports.
func clockCost() int64 {
	d := make([]int64, 10001)
	for i := range d {
		t0 := time.Now()
		d[i] = int64(time.Since(t0))
	}
	slices.Sort(d)
	return d[len(d)/2]
}

// pacer spaces beats: by rate, by random silences, or not at all.
type pacer struct {
	period   time.Duration
	min, max time.Duration
	next     time.Time
	timer    *time.Timer
	ready    bool // a retry is due now
}

func newPacer(c SenderConfig) *pacer {
	p := &pacer{min: c.SilenceMin, max: c.SilenceMax, next: time.Now(), timer: time.NewTimer(time.Hour)}
	switch {
	case c.SilenceMax > 0:
	case c.Rate > 0:
		p.period = time.Duration(float64(time.Second) / c.Rate)
		p.next = p.next.Add(time.Duration(rand.Int64N(int64(p.period))))
	}
	return p
}

// wait sleeps until the next beat is due; false when stopped meanwhile.
func (p *pacer) wait(stopc <-chan struct{}) bool {
	if p.ready || (p.period == 0 && p.max == 0) {
		p.ready = false
		return true
	}
	d := time.Until(p.next)
	if d <= 0 {
		return true
	}
	p.timer.Reset(d)
	select {
	case <-p.timer.C:
		return true
	case <-stopc:
		return false
	}
}

// advance schedules the beat after one that was sent (or dropped).
func (p *pacer) advance() {
	switch {
	case p.max > 0:
		p.next = time.Now().Add(p.min + time.Duration(rand.Int64N(int64(p.max-p.min)+1)))
	case p.period > 0:
		p.next = p.next.Add(p.period)
	}
}

func (p *pacer) retry() { p.ready = true }
