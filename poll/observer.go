package poll

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/control"
	"github.com/varta-go/varta/poll/internal/declared"
	"github.com/varta-go/varta/poll/internal/escalate"
	"github.com/varta-go/varta/poll/internal/exitwatch"
	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/ops"
	"github.com/varta-go/varta/poll/internal/recoverylog"
	"github.com/varta-go/varta/poll/internal/reuse"
	"github.com/varta-go/varta/poll/internal/scrape"
	"github.com/varta-go/varta/poll/internal/sdnotify"
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/statefile"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/poll/internal/upstats"
	"github.com/varta-go/varta/poll/internal/wait"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/recovery"
)

// The program paths kept for varta_agent_info: agents share few programs,
// so a small table serves thousands of agents (pages untouched until
// used); beyond it an agent shows its name instead.
const (
	maxPrograms     = 1024
	maxProgramBytes = 64 << 10
)

// recvBatch is the number of datagrams one recvmmsg call can return;
// batchesPerTick bounds how many calls one iteration makes on a socket
// whose queue is not bounded in datagrams (UDP), so a flood cannot delay
// stall detection by more than one bounded batch run. The Unix socket's
// bound is its queue's (udsReadBound).
const (
	recvBatch      = 64
	batchesPerTick = 16
	stallsPerTick  = 1024
)

// observer is the loop's state: every fd, table and counter, owned by the
// goroutine running Run.
type observer struct {
	cfg          Config
	log          *sink.Logger
	clock        *clock
	start        int64
	uds          *listen.UDS
	rx           *listen.Receiver
	tr           *track.Tracker
	guard        *reuse.Guard // frames whose sender died and whose pid was reused
	allow        []uint32
	events       *sink.EventFile   // nil without --export-file
	rec          *recovery.Manager // nil without a recovery command
	auditFailed  uint64            // rec's failed audit writes already counted in c.IOErrors
	prom         *scrape.Server    // nil without --prom-addr
	udp          *udpListener      // nil without --udp-addr
	sdn          *sdnotify.Handler // nil without --notify-socket
	exits        *exitwatch.Watch  // nil with --on-exit ignore or without /proc
	state        *statefile.Saver  // nil without --state-file
	ops          *ops.Ops
	esc          *escalate.Escalator // nil without --escalate-after or --reset-reason-file
	notify       *ops.Notifier
	sig          *signals
	fds          wait.Waiter
	stopAt       int64     // --shutdown-after-secs on the observer clock; 0 never
	fatal        error     // stops the loop; Run returns it (--strict-namespace-check)
	nextBatch    int64     // the next --batch-ms tick
	exitsReady   bool      // the exit watch's epoll fd was ready (and its exits not yet reported)
	exitsHeld    int64     // when reportExits first waited for the socket to empty (0: not waiting)
	udsPerPass   int       // datagrams one drain reads from the Unix socket at most (udsReadBound)
	udsBound     bool      // udsPerPass is at least as many as its queue can hold
	startWall    time.Time // the wall time at which the observer clock read start: event lines' observer_ns 0
	c            Counters
	ns           listen.NSCache      // cross-namespace check, cached for one tick
	st           *upstats.Loop       // loop timing and upstream's families beyond metrics.go's
	recHist      *promtext.Histogram // recovery child run times
	lastLoop     int64               // observer time of the last completed iteration
	lastLoopWall int64               // wall-clock ns of the same, for the metrics timestamp
	render       []byte              // metrics exposition buffer, reused
	enc          promtext.Encoder
	cursor       promtext.Cursor // renderMetrics's place in the exposition
	dead         []track.SlotID  // scratch for the exit watch's reports
	exe          [256]byte       // scratch for an agent's program path
	paths        *track.Paths    // the agents' program paths, interned
	exited       track.Slot      // the slot --on-exit recover removed last, for agentEnv
	ctl          control.Server  // the control socket: status, pause, resume
	decl         *declared.Set   // --agents-file; nil without
}

func newObserver(cfg Config) (_ *observer, err error) {
	if cfg.Threshold <= 0 || cfg.TrackerCapacity < 1 || cfg.ReadTimeout <= 0 {
		return nil, errors.New("poll: Config needs a positive Threshold, ReadTimeout and TrackerCapacity")
	}
	// o is not the named result: `return nil, err` below must not clear
	// what the deferred close releases.
	o := &observer{cfg: cfg, log: sink.NewLogger(cfg.Log), clock: newClock(cfg.Clock), allow: cfg.AllowUIDs}
	o.log.SetTimestamps(cfg.LogTimestamps)
	defer func() {
		if err != nil {
			o.close()
		}
	}()
	o.start, o.startWall = o.clock.now(), time.Now()
	tc := track.TrackerConfig{Capacity: cfg.TrackerCapacity, Threshold: int64(cfg.Threshold),
		Policy: cfg.Policy, MaxBeatRate: uint32(cfg.MaxBeatRate), GlobalRate: uint32(cfg.GlobalBeatRate),
		GlobalBurst: uint32(cfg.GlobalBeatBurst)}
	// Without a /proc that shows us, every pid would look gone.
	o.guard = reuse.New(procStart) // before the socket: see reuse.New
	if _, ok := listen.ProcStartTime(uint32(unix.Getpid())); ok {
		tc.StartTime = o.guard.StartTime
	}
	o.tr = track.NewTracker(tc)
	o.paths = track.NewPaths(maxPrograms, maxProgramBytes)
	o.dead = make([]track.SlotID, 0, exitwatch.EventsPerWait)
	if o.recHist, err = promtext.NewHistogram(recovery.DurationBounds[:]); err != nil {
		return nil, err
	}
	if o.sig, err = newSignals(); err != nil {
		return nil, err
	}
	if cfg.ExportFile != "" {
		if o.events, err = sink.OpenEventFile(cfg.ExportFile, cfg.ExportMaxBytes, o.start); err != nil {
			return nil, err
		}
		o.events.SetSyncEvery(cfg.ExportSyncEvery)
		if cfg.Batch > 0 {
			o.events.SetFlushDelay(sink.BatchEventFlushDelay)
		}
		o.events.SetUpstreamKinds(cfg.ExportUpstreamKinds)
		if cfg.ExportWallTime {
			o.events.SetWallTime(o.startWall.UnixNano())
		}
	}
	o.decl = declared.New(cfg.Agents, declared.Deps{Log: o.log, Events: o.events, Tracker: o.tr, Paths: o.paths, Threshold: int64(cfg.Threshold), Ladder: cfg.Escalate.After > 0}, o.start)
	if cfg.Recovery != nil {
		rc := *cfg.Recovery
		rc.CommandFor = func(pid int32) *recovery.Command { return o.decl.CommandFor(o.slotOf(pid)) }
		rc.Recheck, rc.Clock, rc.ClockOrigin = o.recheck, o.clock.now, o.start
		rc.OnComplete, rc.OnSpawnFailed, rc.AgentEnv = o.recoveryDone, o.recoveryFailed, o.agentEnv
		o.ctl.Hook(&rc)
		if o.rec, err = recovery.New(rc); err != nil {
			return nil, err
		}
		o.decl.SetRecovery(o.rec)
		recoverylog.AuditOpened(o.log, cfg.Recovery.AuditFile, o.rec.AuditOpened())
		mode, why := o.rec.Containment()
		fs := []sink.Field{str("containment", mode.String()), num("max_concurrent", int64(o.rec.MaxConcurrent()))}
		if why != nil {
			fs = append(fs, str("no_cgroup", why.Error()))
		}
		o.log.Info("recovery children contained", fs...)
	}
	if cfg.Metrics != nil {
		// The fixed families go out whole in the last piece: room for
		// the declared agents' too when there are some.
		chunk := promtext.DefaultStreamChunk
		if o.decl != nil {
			chunk += declared.MaxExposition
		}
		if o.prom, err = scrape.New(scrape.Config{Addr: cfg.Metrics.Addr, Token: cfg.Metrics.Token, Limit: cfg.Metrics.Limit,
			Stream: o.streamMetrics, StreamKeys: cfg.TrackerCapacity, StreamChunk: chunk, Alive: o.alive}); err != nil {
			return nil, err
		}
	}
	if cfg.Ops.OnExit != ExitIgnore {
		o.exits, err = exitwatch.New(cfg.TrackerCapacity)
		if err != nil {
			o.log.Warn(err.Error()) // off, or at stall time only: never fatal
			err = nil
		}
	}
	if o.notify, err = ops.NotifyFromEnv(); err != nil {
		return nil, err
	}
	oc := cfg.Ops
	if o.ops, err = ops.New(ops.Config{SelfWatchdog: oc.SelfWatchdog, NotifyWatchdog: oc.NotifyWatchdog,
		HWWatchdog: oc.HWWatchdog, HeartbeatFile: oc.HeartbeatFile, ShutdownGrace: cfg.ShutdownGrace,
		Log: cfg.Log, LogTimestamps: cfg.LogTimestamps}, o.log, o.notify, o.start); err != nil {
		return nil, err
	}
	if o.esc, err = escalate.New(cfg.Escalate, escalate.Deps{Log: o.log, Rec: o.rec, Ops: o.ops, Tracker: o.tr, AgentEnv: o.agentEnv, Now: o.clock.now, Threshold: int64(cfg.Threshold),
		Declared: func(pid int32) (string, int, bool) { return o.decl.Escalation(o.slotOf(pid)) }}); err != nil {
		return nil, err
	}
	// The sockets come last: once they exist agents may beat, and a
	// failure above must not leave a bound socket behind. UDP first: its
	// port may be taken, and then no socket file is created at all.
	if cfg.UDP != nil {
		if o.udp, err = newUDPListener(cfg.UDP); err != nil {
			return nil, err
		}
		o.log.Info("listening on UDP", str("addr", o.udp.addr), str("accepts", o.udp.accepts()))
	}
	// The socket takes the queue limit when it is created: read before and
	// after, and the larger stands, should it change in between.
	qlenBefore, knownBefore := listen.MaxDgramQlen()
	if o.uds, err = listen.ListenUDS(cfg.SocketPath, cfg.SocketMode); err != nil {
		return nil, err
	}
	o.uds.SetRcvBuf(cfg.UDSRcvBuf)
	o.rx = listen.NewReceiver(o.uds.Fd(), recvBatch)
	qlen, known := listen.MaxDgramQlen()
	o.udsPerPass, o.udsBound = udsReadBound(max(qlen, qlenBefore), known && knownBefore, cfg.Batch > 0)
	if o.sdn, err = sdnotify.Listen(sdnotify.Config{Path: cfg.NotifySocket, Mode: cfg.SocketMode, Tracker: o.tr, Log: o.log,
		LogKind: logNotify, Track: o.track, Other: o.otherPid, Allowed: o.uidAllowed}); err != nil {
		return nil, err
	}
	if err = o.ctl.Listen(control.Config{Path: cfg.ControlSocket, Tracker: o.tr, Exits: o.exits, Exited: &o.exited, Rec: o.rec, Eligible: o.recoveryEligible, Clock: o.clock.now, Start: o.start, Version: cfg.Version, Log: o.log, Reset: o.esc.LastReset, Declared: o.decl}); err != nil {
		return nil, err // after the socket: a second observer was refused there, before touching ours
	}
	o.st = upstats.New(cfg.Loop, cfg.ReadTimeout, upstats.Sources{Tracker: o.tr, Rec: o.rec, Prom: o.prom, Rx: o.rx, UDS: o.uds, Ops: o.ops,
		Log: o.log, LogKinds: [3]sink.LogKind{logEvents, logAudit, logMetrics}})
	if cfg.Batch > 0 {
		o.nextBatch = o.start + int64(cfg.Batch)
		ops.CheckQueueLength(o.log, cfg.TrackerCapacity, cfg.Batch)
	}
	// Every fd the wait can hold at once: the socket, the signal pipe,
	// the notify socket, the UDP socket, the exit watch's epoll fd, the
	// metrics listener and its connections.
	n := 3
	if o.udp != nil {
		n++
	}
	if o.exits != nil {
		n++
	}
	if o.prom != nil {
		n += o.prom.MaxFds()
	}
	n += o.ctl.MaxFds()
	if o.fds, err = wait.NewEpoll(n, o.clock, o.log); err != nil {
		return nil, err
	}
	return o, nil
}

// str and num are log fields.
func str(k, v string) sink.Field       { return sink.Str(k, v) }
func num(k string, v int64) sink.Field { return sink.Num(k, v) }

// recoveryDone is called by recovery, on the loop goroutine, for every
// child that ended; recoverylog.Ended says which endings get a log line.
func (o *observer) recoveryDone(c *recovery.Completion) {
	o.esc.Done(c) // the escalation ladder counts failures (package escalate)
	o.recHist.Observe(c.Duration.Seconds())
	if c.SignalErr != nil {
		o.log.Limited(logRecovery, o.clock.now(), "could not signal a recovery command's process group; it may outlive its timeout",
			num("agent", int64(c.Agent)), num("child", int64(c.Child)), sink.Err(c.SignalErr))
	}
	recoverylog.Ended(o.log, c, o.name(o.tr.Lookup(uint32(c.Agent))))
}

// agentEnv tells a recovery command about the agent it recovers, as read
// when the agent was first tracked (recoverylog.Env). It runs once per
// start of the command, which allocates anyway.
func (o *observer) agentEnv(pid int32) []string {
	a := recoverylog.Agent{Pid: pid}
	if s := o.slotOf(pid); s != nil {
		a.Known, a.Name, a.Exe, a.SilentNs, a.Declared = true, s.NameBytes(), o.paths.Get(s.Exe), o.clock.now()-s.LastArrival, o.decl.Name(s)
	}
	_, proc := procStart(uint32(pid))
	a.Gone = proc == track.ProcGone
	return recoverylog.Env(a)
}

// slotOf is pid's slot, or the one --on-exit recover forgot just before;
// nil when neither.
func (o *observer) slotOf(pid int32) *track.Slot {
	if s := o.tr.Lookup(uint32(pid)); s != nil || o.exited.Pid != uint32(pid) {
		return s
	}
	return &o.exited
}

// recoveryFailed is called when the recovery command could not be started.
func (o *observer) recoveryFailed(agent int32, err error) {
	o.esc.Failed(agent)
	o.log.Warn("recovery command could not be started", num("pid", int64(agent)), o.name(o.tr.Lookup(uint32(agent))), sink.Err(err))
}

// recheck tells recovery whether a deferred stall still stands: the pid is
// still tracked, still stalled, and still the same process.
func (o *observer) recheck(pid int32, startTime uint64) recovery.Stale {
	if o.exits != nil && o.exits.Recheck(uint32(pid), startTime) {
		return recovery.Stands
	}
	s := o.tr.Lookup(uint32(pid))
	switch {
	case s == nil:
		return recovery.Untracked
	case s.StartTime != startTime:
		return recovery.Recycled
	case !s.Stalled:
		return recovery.Resumed
	case s.Origin != track.OriginUDS:
		return recovery.Stands // a UDP agent's pid may be another host's: /proc here says nothing
	}
	switch st, proc := procStart(uint32(pid)); {
	case proc == track.ProcAlive && st != startTime:
		return recovery.Recycled
	case proc == track.ProcUnknown:
		return recovery.Untracked // /proc cannot tell: not recovered, as a lost pid
	}
	return recovery.Stands
}

// procStart is the tracker's view of /proc: only "no such file" or "no
// such process" means gone; any other failure (EMFILE, ENFILE, EACCES) is
// unknown, never a death.
func procStart(pid uint32) (uint64, track.Proc) {
	st, e := listen.ProcStartTimeErr(pid)
	switch e {
	case 0:
		return st, track.ProcAlive
	case unix.ENOENT, unix.ESRCH:
		return 0, track.ProcGone
	}
	return 0, track.ProcUnknown
}

// alive is /healthz: the loop completed an iteration recently.
func (o *observer) alive() bool {
	return o.clock.now()-o.lastLoop < int64(o.cfg.ReadTimeout)+int64(2*time.Second)
}

// close releases everything newObserver acquired; safe on a partial one.
func (o *observer) close() {
	if o.fds != nil {
		o.fds.Close()
	}
	if err := o.ops.Close(); err != nil {
		o.log.Error("closing the hardware watchdog failed", sink.Err(err))
	}
	o.exits.Close()
	o.ctl.Close()
	if o.prom != nil {
		o.prom.Close()
	}
	if o.rec != nil {
		o.rec.Close()
	}
	if o.events != nil {
		if err := o.events.Close(); err != nil {
			o.log.Error("closing the event file failed", sink.Err(err))
		}
	}
	if o.uds != nil {
		o.uds.Close()
	}
	o.sdn.Close()
	o.udp.close()
	if o.notify != nil {
		o.notify.Close()
	}
	if o.sig != nil {
		o.sig.close()
	}
}

// udsReadBound is how many datagrams one drain reads from the Unix socket,
// and whether that is at least as many as its queue can hold. The kernel
// bounds the queue in count by net.unix.max_dgram_qlen (taken when the
// socket is created): a sender is refused while more than that many are
// queued, so at most qlen+1 are. Reading that many after a clock reading
// has read everything queued at it, even while senders refill the queue
// as fast as it is read, so that is what a drain reads; reading more
// would only delay the stalls judged at that reading (under a flood, 16
// batches of 64 took 1.3–5.9 ms here). In batch mode a drain reads up to
// 16 batches all the same: a tick is the only read in a period, and the
// agents that waited for room while the queue was full refill it at once.
// bounded is false when qlen is unknown or above what one drain may read.
func udsReadBound(qlen int, known, batch bool) (perPass int, bounded bool) {
	most := batchesPerTick * recvBatch
	bounded = known && qlen+1 <= most
	if !bounded || batch {
		return most, bounded
	}
	return qlen + 1, true
}
