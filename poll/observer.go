package poll

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
)

// recvBatch is the number of datagrams one recvmmsg call can return;
// batchesPerTick bounds how many calls one iteration makes, so a flood
// cannot delay stall detection by more than one bounded batch run.
const (
	recvBatch      = 64
	batchesPerTick = 16
	stallsPerTick  = 1024
)

// observer is the loop's state: every fd, table and counter, owned by the
// goroutine running Run.
type observer struct {
	cfg          Config
	log          *logger
	clock        *clock
	start        int64
	uds          *UDS
	rx           *Receiver
	tr           *Tracker
	allow        []uint32
	events       *EventFile        // nil without --export-file
	rec          *recovery.Manager // nil without a recovery command
	auditFailed  uint64            // rec's failed audit writes already counted in c.IOErrors
	prom         *promServer       // nil without --prom-addr
	udp          *udpListener      // nil without --udp-addr
	notify       *Notifier
	sig          *signals
	pfds         []unix.PollFd
	ts           unix.Timespec // ppoll's timeout, kept here so it never escapes
	c            Counters
	ns           nsLookup // cross-namespace check, cached for one tick
	iterHist     *promtext.Histogram
	recHist      *promtext.Histogram // recovery child run times
	lastLoop     int64               // observer time of the last completed iteration
	lastLoopWall int64               // wall-clock ns of the same, for the metrics timestamp
	render       []byte              // metrics exposition buffer, reused
	enc          promtext.Encoder
	pids         []uint32      // scratch for sorted per-pid metrics
	ops          *ops          // embedded operations (ops.go)
	rt           *runtimeStats // Go runtime counters for /metrics
}

func newObserver(cfg Config) (_ *observer, err error) {
	if cfg.Threshold <= 0 || cfg.TrackerCapacity < 1 || cfg.ReadTimeout <= 0 {
		return nil, errors.New("poll: Config needs a positive Threshold, ReadTimeout and TrackerCapacity")
	}
	// o is not the named result: `return nil, err` below must not clear
	// what the deferred close releases.
	o := &observer{cfg: cfg, log: newLogger(cfg.Log), clock: newClock(cfg.Clock), allow: cfg.AllowUIDs}
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	o.start = o.clock.now()
	o.tr = NewTracker(TrackerConfig{Capacity: cfg.TrackerCapacity, Threshold: int64(cfg.Threshold),
		Policy: cfg.Policy, MaxBeatRate: uint32(cfg.MaxBeatRate), GlobalRate: uint32(cfg.GlobalBeatRate),
		GlobalBurst: uint32(cfg.GlobalBeatBurst)})
	o.pids = make([]uint32, 0, cfg.TrackerCapacity)
	o.rt = newRuntimeStats()
	if o.iterHist, err = promtext.NewHistogram(iterationBounds); err != nil {
		return nil, err
	}
	if o.recHist, err = promtext.NewHistogram(recovery.DurationBounds[:]); err != nil {
		return nil, err
	}
	if o.sig, err = newSignals(); err != nil {
		return nil, err
	}
	if cfg.ExportFile != "" {
		if o.events, err = OpenEventFile(cfg.ExportFile, cfg.ExportMaxBytes, o.start); err != nil {
			return nil, err
		}
	}
	if cfg.Recovery != nil {
		rc := *cfg.Recovery
		rc.Recheck, rc.Clock = o.recheck, o.clock.now
		rc.OnComplete = func(c *recovery.Completion) { o.recHist.Observe(c.Duration.Seconds()) }
		if o.rec, err = recovery.New(rc); err != nil {
			return nil, err
		}
	}
	if cfg.Metrics != nil {
		if o.prom, err = newPromServer(cfg.Metrics, o.renderMetrics, o.alive); err != nil {
			return nil, err
		}
	}
	if err = o.newOps(); err != nil {
		return nil, err
	}
	// The sockets come last: once they exist agents may beat, and a
	// failure above must not leave a bound socket behind. UDP first: its
	// port may be taken, and then no socket file is created at all.
	if cfg.UDP != nil {
		if o.udp, err = newUDPListener(cfg.UDP); err != nil {
			return nil, err
		}
		o.log.info("listening on UDP", str("addr", o.udp.addr), str("accepts", o.udp.accepts()))
	}
	if o.uds, err = ListenUDS(cfg.SocketPath, cfg.SocketMode); err != nil {
		return nil, err
	}
	o.rx = NewReceiver(o.uds.Fd(), recvBatch)
	if o.notify, err = NotifyFromEnv(); err != nil {
		return nil, err
	}
	o.pfds = make([]unix.PollFd, 0, 2+promtextSlots(o.prom)+udpPollSlots(o.udp))
	return o, nil
}

func promtextSlots(p *promServer) int {
	if p == nil {
		return 0
	}
	return 1 + p.srv.Slots()
}

// recheck tells recovery whether a deferred stall still stands: the pid is
// still tracked, still stalled, and still the same process.
func (o *observer) recheck(pid int32, startTime uint64) bool {
	if o.exitRecheck(uint32(pid), startTime) {
		return true
	}
	s := o.tr.Lookup(uint32(pid))
	if s == nil || !s.Stalled || s.StartTime != startTime {
		return false
	}
	if s.Origin != OriginUDS {
		return true // a UDP agent's pid may be another host's: /proc here says nothing
	}
	st, ok := ProcStartTime(uint32(pid))
	return !ok || st == startTime
}

// alive is /healthz: the loop completed an iteration recently.
func (o *observer) alive() bool {
	return o.clock.now()-o.lastLoop < int64(o.cfg.ReadTimeout)+int64(2*time.Second)
}

// close releases everything newObserver acquired; safe on a partial one.
func (o *observer) close() {
	o.closeOps()
	if o.prom != nil {
		o.prom.shutdown()
	}
	if o.rec != nil {
		o.rec.Close()
	}
	if o.events != nil {
		if err := o.events.Close(); err != nil {
			o.log.error("closing the event file failed", str("err", err.Error()))
		}
	}
	if o.uds != nil {
		o.uds.Close()
	}
	o.udp.close()
	if o.notify != nil {
		o.notify.Close()
	}
	if o.sig != nil {
		o.sig.close()
	}
}
