package recovery

import (
	"errors"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/ring"
)

// Limits and defaults of Config.
const (
	MaxCapacity          = 65536
	MinTimeout           = 100 * time.Millisecond
	DefaultSpawnsPerTick = 4
	DefaultReapsPerTick  = 8
	// DefaultMaxConcurrent is the default cap on recovery children
	// running at once: a stall storm on a small board must not start
	// hundreds of processes together.
	DefaultMaxConcurrent = 16
	MaxCaptureBytes      = 1 << 20
	// NoDeadline is what NextDeadline returns when nothing is due.
	NoDeadline int64 = math.MaxInt64
)

// childPath is the whole environment of a child unless configured
// otherwise, and the search path when the observer has no $PATH.
const childPath = "/usr/bin:/bin"

// deferRetry is how soon the loop should tick again while stalls wait in
// the deferred queue, or exited children wait for a reap budget: soon, so
// both drain at their budget per iteration, but not a busy spin.
const deferRetry = int64(time.Millisecond)

// drainPerTick bounds the bytes read from one capture pipe per Tick, so a
// child that writes without end costs the loop a bounded amount of work.
const drainPerTick = 64 << 10

// Config configures a Manager. Durations of 0 disable the feature they
// name; poll fills it from the --recovery-* flags.
type Config struct {
	Command  Command       // from ParseCommand or LoadCommandFile
	Capacity int           // running children plus queued stalls; the pid table size (1..MaxCapacity)
	Debounce time.Duration // --recovery-debounce-ms; 0 disables
	Timeout  time.Duration // --recovery-timeout-ms; 0 = none, else >= MinTimeout

	// MaxConcurrent caps the children running at once (1..Capacity;
	// 0 means DefaultMaxConcurrent, or Capacity if smaller). Stalls
	// beyond it wait in the FIFO queue (Capacity places, shared with the
	// running children) and start as children finish; a stall the queue
	// cannot hold, or still queued at Shutdown, is refused_capacity.
	MaxConcurrent int

	// SpawnsPerTick bounds spawn attempts between two Ticks (OnStall and
	// the deferred queue together); 0 means DefaultSpawnsPerTick.
	SpawnsPerTick int

	// ReapsPerTick bounds the children one Tick reaps; 0 means
	// DefaultReapsPerTick. Each reap costs a completion record (written
	// and, by default, fdatasync'ed), so a hundred children exiting
	// together must not cost one loop iteration a hundred disk syncs.
	ReapsPerTick int

	// Contain chooses how a timed-out child's whole tree is killed,
	// escapees included (ContainAuto: a cgroup, else the subreaper).
	Contain Containment

	// Credential, when set, runs the child as that uid, gid and
	// supplementary groups (--recovery-user); the process needs the
	// privilege to switch to them (root, or CAP_SETUID and CAP_SETGID).
	Credential *syscall.Credential

	Env        []string // --recovery-env K=V extras, applied last
	InheritEnv bool     // --recovery-inherit-env

	// CaptureBytes > 0 connects the child's stdout and stderr to pipes
	// the manager drains each Tick, counting every byte and keeping the
	// first CaptureBytes (at most MaxCaptureBytes) of both together.
	CaptureBytes int

	AuditFile string // --recovery-audit-file; "" for none

	// AuditSyncEvery is --recovery-audit-sync-every: fdatasync the log
	// (and rewrite its checkpoint) after every N records, 1 when 0. Boot
	// records, rotation, Shutdown and Close always sync.
	AuditSyncEvery int

	// AuditMaxBytes is --recovery-audit-max-bytes: rotate the log once it
	// reaches this size, keeping AuditGenerations old files; 0 never.
	AuditMaxBytes int64

	// AuditFsyncBudget (--audit-fsync-budget-ms) and AuditRotationBudget
	// (--audit-rotation-budget-ms) are soft budgets: an fdatasync of the
	// audit log, or a rotation (by size, or SIGHUP's reopen), that takes
	// longer is counted (Stats), never cut short. 0 counts nothing.
	AuditFsyncBudget    time.Duration
	AuditRotationBudget time.Duration
	// AuditSyncInterval (--audit-sync-interval-ms) also fdatasyncs the
	// audit log once a record has waited this long unsynced, whatever
	// AuditSyncEvery says; 0: the record cadence only.
	AuditSyncInterval time.Duration

	// ClockOrigin is subtracted from the clock in the observer_ns column
	// of audit records, so they share the event file's timeline.
	ClockOrigin int64

	// Recheck is asked, just before a deferred stall fires, whether the
	// agent is still stalled and still the same process; anything but
	// Stands skips the stall, counted by why (see Stale). Nil means
	// always Stands.
	Recheck func(pid int32, startTime uint64) Stale

	// OnComplete, if set, is called from Tick or Shutdown for each child
	// reaped. The Completion and its Captured bytes are valid only during
	// the call.
	OnComplete func(*Completion)

	// AgentEnv, if set, gives the environment entries ("KEY=value") that
	// describe agent to its recovery command, added to the command's
	// environment at each start.
	AgentEnv func(agent int32) []string

	// OnSpawnFailed, if set, is called when the command could not be
	// started for agent (fork or exec failed, counted as spawn_failed),
	// with the reason, from OnStall or Tick.
	OnSpawnFailed func(agent int32, err error)

	// Clock returns the caller's clock in ns, the one OnStall and Tick
	// get; Shutdown uses it. Nil means CLOCK_MONOTONIC.
	Clock func() int64

	// Escalate, if set, is the command Escalate runs (--escalate-exec):
	// one child at a time, in a slot of its own beyond MaxConcurrent, so
	// a queue of recoveries cannot hold it back. Its spawn record's source
	// column is its Source ("escalate" from the command line).
	Escalate *Command

	// Held, if set, says whether agent's recovery is paused (varta-watch
	// pause): its stalls, and a queued stall when its turn comes, are
	// then counted skipped_paused and audited refused with reason paused.
	Held func(agent int32) bool

	// OnOutcome, if set, is called with every outcome counted for an
	// agent (not OutcomeDeferred), for per-agent status.
	OnOutcome func(agent int32, o Outcome)

	// DryRun (--recovery-dry-run) runs nothing: where a child would be
	// started, OnDryRun gets the agent and the command line instead, and
	// the stall is counted dry_run and audited refused with reason dry_run.
	DryRun   bool
	OnDryRun func(agent int32, argv []string)

	// CommandFor, if set, gives an agent's own command (a declared
	// agent's recovery-exec=, --agents-file), consulted when its child
	// starts; nil means Command. With CommandFor set Command may be empty
	// (no --recovery-exec): an agent without its own command then gets no
	// recovery at all, and OnStall returns OutcomeNoCommand, neither
	// counted nor audited, as when no command is configured.
	CommandFor func(agent int32) *Command
}

// Completion describes a reaped recovery child.
type Completion struct {
	Agent       int32
	StartTime   uint64
	Child       int            // child pid, also its process group id
	Outcome     Outcome        // OutcomeReapedZero, OutcomeReapedNonzero or OutcomeKilled
	ExitCode    int            // -1 if it died of a signal or the status was lost
	Signal      syscall.Signal // 0 unless it died of a signal
	Duration    time.Duration  // spawn to reap
	StdoutBytes uint64         // bytes the child wrote to stdout (when capturing)
	StderrBytes uint64
	Captured    []byte // the first CaptureBytes of stdout and stderr, in arrival order

	// Escalation says the child ran Config.Escalate, not the recovery
	// command; it is not counted in Counts or Durations.
	Escalation bool
	// Missing says the child ran for a declared agent found missing
	// (RunMissing); like Escalation it is not counted in Counts or
	// Durations.
	Missing bool

	// SignalErr is the last signal to the child's process group that
	// could not be delivered (a *SignalError wrapping the errno, EPERM
	// say), or nil when every signal sent was delivered.
	SignalErr error
}

// child is one slot of the outstanding-child table.
type child struct {
	pid       int // also the process group id: the child leads its group
	agent     int32
	entry     int32
	pos       int32 // index in Manager.active
	startTime uint64
	spawned   int64
	deadline  int64        // NoDeadline without a timeout
	killed    bool         // we delivered SIGKILL (timeout) or SIGTERM (shutdown)
	sigErr    *SignalError // the last signal that could not be delivered
	fds       [2]int32
	nbytes    [2]uint64
	keptN     [2]uint32 // of kept, the bytes from stdout and from stderr
	kept      []byte    // capacity CaptureBytes, allocated at the slot's first use
	esc       bool      // runs Config.Escalate (escalate.go)
	missing   bool      // runs for a missing declared agent (missing.go)
	cmd       *Command  // the command it runs, for its audit record
}

// Manager runs recovery children for stalled agents. All methods must be
// called from one goroutine (the observer loop); see the package doc.
type Manager struct {
	cmd        Command
	capacity   int
	debounce   int64
	timeout    int64
	budget     int
	maxRun     int // MaxConcurrent
	reapBudget int
	capture    int
	recheck    func(int32, uint64) Stale
	onComplete func(*Completion)
	onFailed   func(agent int32, err error)
	clock      func() int64
	held       func(int32) bool
	onOutcome  func(int32, Outcome)
	dryRun     bool
	onDryRun   func(int32, []string)
	cmdFor     func(int32) *Command // Config.CommandFor
	missEnv    []string             // the environment of the missing child being started (missing.go)

	children  []child
	freeKids  ring.Stack // unused child slots
	active    []int32    // used child slots, dense
	pids      pidTable
	queue     ring.FIFO[pending]
	spawnLeft int
	budgetHit bool  // a stall was deferred for want of spawn budget since the last Tick
	reapMore  bool  // the last Tick's reap budget ran out before every child was polled
	nextDue   int64 // earliest timeout of a child not yet killed
	lastTick  int64

	counts    [NumOutcomes]uint64
	durations Durations
	stats     Stats // the upstream catalogue's recovery counters (upstream.go)
	comp      Completion
	sigFailed uint64       // signals to children's groups not delivered
	sigLast   *SignalError // the last of them

	// kill is unix.Kill(-pgid, sig) with ESRCH as success (signalGroup);
	// a test may put a real kill(2) made elsewhere in its place.
	kill func(pgid int, sig syscall.Signal) error

	devnull int
	attr    syscall.ProcAttr
	sys     syscall.SysProcAttr
	files   [3]uintptr
	scratch []byte // drain target once a child's kept bytes are full

	audit         *auditLog // nil without AuditFile
	auditPath     string
	auditOpts     auditOpts
	syncInterval  int64  // AuditSyncInterval in ns; 0 off
	unsyncedSince int64  // clock of the first Tick that saw unsynced records; 0 none
	origin        int64  // Config.ClockOrigin
	head          string // AuditHead's prefix, for record headSeq
	headSeq       uint64
	shutdown      bool

	closeRange bool // close_range(CLOSE_RANGE_CLOEXEC) works: repeat it before each spawn

	esc     *Command // Config.Escalate; nil without
	escSlot int32    // the escalate command's own child slot, maxRun; none without
	escBusy bool     // escSlot holds a child, or its cgroup is draining

	// Containment (contain.go).
	contain        Containment
	cg             *cgroups // ContainCgroup
	cgErr          error    // why ContainAuto did not get cgroups
	draining       []int32  // slots whose child was reaped but whose cgroup still holds processes
	drainKill      []bool   // per slot: kill what is left (the child was killed) or move it out
	desc           [][maxDesc]proc
	ndesc          []int
	walkBuf        []int
	orphanBuf      []int
	lastWalk       int64
	lastOrphanScan int64
	scanSoon       bool // a killed tree left adopted zombies: look for them on this Tick
	reapOrphans    bool // the process is a subreaper: reap adopted children
	marks          []string
	baseEnv        []string             // the command's environment before per-start entries
	agentEnv       func(int32) []string // Config.AgentEnv
	spawnSeq       uint64
	dying          []proc // killed, not yet gone (fixed capacity)
	oomAdj         int    // the observer's own oom_score_adj at New
	adopted        int    // adopted processes alive at the last scan
	orphansReaped  uint64
	descFull       uint64
}

// New validates cfg, allocates every table at its final size, opens
// /dev/null and the audit log (writing a boot record), and returns the
// Manager. Close releases what it opened.
func New(cfg Config) (*Manager, error) {
	if cfg.Command.Path != "" || cfg.CommandFor == nil {
		if err := cfg.Command.validate(); err != nil {
			return nil, err
		}
	}
	switch {
	case cfg.Capacity < 1 || cfg.Capacity > MaxCapacity:
		return nil, errors.New("recovery: capacity " + strconv.Itoa(cfg.Capacity) + " out of range 1.." + strconv.Itoa(MaxCapacity))
	case cfg.Debounce < 0:
		return nil, errors.New("recovery: negative debounce")
	case cfg.Timeout < 0 || cfg.Timeout > 0 && cfg.Timeout < MinTimeout:
		return nil, errors.New("recovery: timeout " + cfg.Timeout.String() + " below the minimum " + MinTimeout.String())
	case cfg.MaxConcurrent < 0 || cfg.MaxConcurrent > cfg.Capacity:
		return nil, errors.New("recovery: max concurrent " + strconv.Itoa(cfg.MaxConcurrent) + " out of range 1.." + strconv.Itoa(cfg.Capacity) + " (the capacity)")
	case cfg.SpawnsPerTick < 0:
		return nil, errors.New("recovery: negative spawns per tick")
	case cfg.ReapsPerTick < 0:
		return nil, errors.New("recovery: negative reaps per tick")
	case cfg.CaptureBytes < 0 || cfg.CaptureBytes > MaxCaptureBytes:
		return nil, errors.New("recovery: capture bytes " + strconv.Itoa(cfg.CaptureBytes) + " out of range 0.." + strconv.Itoa(MaxCaptureBytes))
	case cfg.AuditSyncEvery < 0 || cfg.AuditSyncEvery > MaxAuditSyncEvery:
		return nil, errors.New("recovery: audit sync-every " + strconv.Itoa(cfg.AuditSyncEvery) + " out of range 1.." + strconv.Itoa(MaxAuditSyncEvery))
	case cfg.AuditMaxBytes < 0 || cfg.AuditMaxBytes > 0 && cfg.AuditMaxBytes < MinAuditMaxBytes:
		return nil, errors.New("recovery: audit max bytes " + strconv.FormatInt(cfg.AuditMaxBytes, 10) + " below the minimum " + strconv.Itoa(MinAuditMaxBytes))
	}
	env, err := childEnv(cfg.Env, cfg.InheritEnv)
	if err != nil {
		return nil, err
	}
	maxRun := cfg.MaxConcurrent
	if maxRun == 0 {
		maxRun = min(DefaultMaxConcurrent, cfg.Capacity)
	}
	slots, escSlot := maxRun, int32(none)
	if cfg.Escalate != nil {
		if err := cfg.Escalate.validate(); err != nil {
			return nil, errors.New("recovery: escalate " + err.Error())
		}
		slots, escSlot = maxRun+1, int32(maxRun)
	}
	m := &Manager{
		maxRun:     maxRun,
		cmd:        cfg.Command,
		capacity:   cfg.Capacity,
		debounce:   int64(cfg.Debounce),
		timeout:    int64(cfg.Timeout),
		budget:     cfg.SpawnsPerTick,
		reapBudget: cfg.ReapsPerTick,
		capture:    cfg.CaptureBytes,
		recheck:    cfg.Recheck,
		onComplete: cfg.OnComplete,
		onFailed:   cfg.OnSpawnFailed,
		clock:      cfg.Clock,
		held:       cfg.Held,
		onOutcome:  cfg.OnOutcome,
		dryRun:     cfg.DryRun,
		onDryRun:   cfg.OnDryRun,
		cmdFor:     cfg.CommandFor,
		children:   make([]child, slots),
		freeKids:   ring.NewStack(maxRun),
		active:     make([]int32, 0, slots),
		esc:        cfg.Escalate,
		escSlot:    escSlot,
		// Twice the capacity: every busy entry (at most Capacity) still
		// leaves as many idle ones to remember debounce state in.
		pids:      newPidTable(2 * cfg.Capacity),
		queue:     ring.NewFIFO[pending](cfg.Capacity),
		nextDue:   NoDeadline,
		scratch:   make([]byte, 4096),
		devnull:   -1,
		auditPath: cfg.AuditFile,
		origin:    cfg.ClockOrigin,
		kill:      signalGroup,
	}
	if m.budget == 0 {
		m.budget = DefaultSpawnsPerTick
	}
	m.spawnLeft = m.budget
	if m.reapBudget == 0 {
		m.reapBudget = DefaultReapsPerTick
	}
	if m.clock == nil {
		m.clock = monotonicNow
	}
	for i := range m.children {
		m.children[i].fds = [2]int32{none, none}
	}
	if m.closeRange = cloexecFrom3(); !m.closeRange {
		cloexecScan()
	}
	fd, err := unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, wrap("recovery", os.NewSyscallError("open /dev/null", err))
	}
	m.devnull = fd
	m.sys = syscall.SysProcAttr{Setpgid: true, Credential: cfg.Credential}
	m.drainKill = make([]bool, slots)
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
		m.oomAdj, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	m.draining = make([]int32, 0, slots)
	m.dying = make([]proc, 0, slots*maxDesc)
	if err := m.setupContain(cfg.Contain, slots); err != nil {
		unix.Close(m.devnull)
		return nil, err
	}
	m.attr = syscall.ProcAttr{Env: env, Files: m.files[:], Sys: &m.sys}
	m.baseEnv, m.agentEnv = env, cfg.AgentEnv
	if m.auditPath != "" {
		// Room for the longest record: the fixed columns, the program path
		// and the source.
		m.stats.fsyncBudget, m.stats.rotationBudget = cfg.AuditFsyncBudget, cfg.AuditRotationBudget
		m.syncInterval = int64(cfg.AuditSyncInterval)
		m.auditOpts = auditOpts{syncEvery: max(cfg.AuditSyncEvery, 1), maxBytes: cfg.AuditMaxBytes, stats: &m.stats,
			bufCap: 512 + m.cmdLen(), pid: uint32(os.Getpid())}
		a, err := openAudit(m.auditPath, m.auditOpts, nil)
		if err != nil {
			unix.Close(m.devnull)
			if m.cg != nil {
				m.cg.close()
			}
			return nil, wrap("recovery", err)
		}
		m.audit = a
	}
	return m, nil
}

// childEnv builds the child environment: PATH=/usr/bin:/bin (or the
// observer's environment) with the K=V extras applied over it.
func childEnv(extra []string, inherit bool) ([]string, error) {
	var env []string
	if inherit {
		env = os.Environ()
	} else {
		env = []string{"PATH=" + childPath}
	}
	for _, kv := range extra {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			return nil, errors.New("recovery: environment entry " + strconv.Quote(kv) + " must be K=V with a non-empty K and no NUL")
		}
		replaced := false
		for i, e := range env {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				env[i], replaced = kv, true
			}
		}
		if !replaced {
			env = append(env, kv)
		}
	}
	return env, nil
}

func monotonicNow() int64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// OnStall decides what to do about a stall of pid (process start time
// startTime) raised at now, by the caller's clock in ns. In order: after
// Shutdown began → refused_shutdown (no new child; not a capacity
// problem, which an operator would chase); not
// attested, or pid <= 0 → skipped_unattested; paused (Config.Held) →
// skipped_paused; the same (pid, startTime)
// ran less than Debounce ago → debounced; a child for pid running or
// queued → skipped_in_flight; running children plus queued stalls at
// Capacity → refused_capacity; MaxConcurrent children running, this
// tick's spawn budget spent, or older stalls waiting → OutcomeDeferred
// (queued, FIFO); else the child is spawned (or, with DryRun, only
// logged: dry_run).
// Every outcome but OutcomeDeferred is counted and audited at once. It
// never blocks beyond one fork/exec and allocates only to spawn.
func (m *Manager) OnStall(pid int32, startTime uint64, attested bool, now int64) Outcome {
	if m.shutdown {
		return m.refuse(pid, OutcomeRefusedShutdown, RefusedShutdown)
	}
	if !attested {
		return m.refuse(pid, OutcomeSkippedUnattested, RefusedUnattested)
	}
	if pid <= 0 {
		// Not a process anyone can vouch for, and "kill $1" with 0 or -1
		// would signal far more than one agent.
		return m.refuse(pid, OutcomeSkippedUnattested, RefusedInvalidPid)
	}
	if m.commandFor(pid) == nil {
		return OutcomeNoCommand
	}
	if m.held != nil && m.held(pid) {
		return m.refuse(pid, OutcomeSkippedPaused, RefusedPaused)
	}
	e := m.pids.lookup(pid)
	if e != none {
		en := &m.pids.entries[e]
		if en.hasRun && en.startTime != startTime {
			m.stats.DebounceRecycleResets++ // the window below belongs to the pid's previous process
		}
		if m.debounce > 0 && en.hasRun && en.startTime == startTime && now-en.lastRun < m.debounce {
			return m.refuse(pid, OutcomeDebounced, RefusedDebounced)
		}
		if en.child != none || en.queued {
			return m.refuse(pid, OutcomeSkippedInFlight, RefusedInFlight)
		}
	}
	if len(m.active)+m.queue.Len() >= m.capacity {
		return m.refuse(pid, OutcomeRefusedCapacity, RefusedCapacity)
	}
	if e == none {
		if e = m.pids.insert(pid); e == none {
			m.stats.InvariantViolations++ // cannot be: busy entries never fill the table (see insert)
			return m.refuse(pid, OutcomeRefusedCapacity, RefusedCapacity)
		}
	}
	en := &m.pids.entries[e]
	if en.startTime != startTime {
		en.startTime, en.hasRun = startTime, false
	}
	if m.spawnLeft <= 0 || m.queue.Len() > 0 || m.full() {
		if m.spawnLeft <= 0 && !m.budgetHit {
			m.budgetHit = true
			m.stats.SpawnBudgetExceeded++
		}
		m.pids.unlink(e)
		en.queued = true
		m.queue.Push(pending{pid: pid, entry: e, startTime: startTime}) // room: reserved by the capacity check
		return OutcomeDeferred
	}
	return m.spawn(e, now)
}

// Tick does the per-iteration work, all of it bounded: it SIGKILLs the
// process group of every child past its timeout, drains the capture
// pipes, polls outstanding children with wait4(pid, WNOHANG) and reaps
// those that exited, up to ReapsPerTick, then fires deferred stalls within
// a fresh spawn budget. A child that exits is reaped by the next Tick; when
// more than ReapsPerTick exit together the rest wait for the following
// Ticks, which NextDeadline then asks for within a millisecond. With
// nothing outstanding it makes no system call and never allocates.
func (m *Manager) Tick(now int64) {
	m.lastTick = now
	next := NoDeadline
	reapLeft := m.reapBudget
	m.reapMore, m.budgetHit = false, false
	for i := 0; i < len(m.active); {
		slot := m.active[i]
		c := &m.children[slot]
		if !c.killed && c.deadline <= now {
			m.killContained(slot)
			if m.signal(c, unix.SIGKILL) {
				c.killed = true
			} else {
				c.deadline = now + signalRetry // counted and kept; try again
			}
		}
		m.drain(c)
		if reapLeft == 0 {
			m.reapMore = true // not polled: it may have exited
		} else if m.reap(slot, now) {
			reapLeft--
			continue // active[i] now holds another slot
		}
		if !c.killed && c.deadline < next {
			next = c.deadline
		}
		i++
	}
	if m.reapMore {
		m.stats.ReapTruncated++
	}
	m.nextDue = next
	m.auditTimedSync(now)
	m.containTick(now)
	m.spawnLeft = m.budget
	for m.queue.Len() > 0 && m.spawnLeft > 0 && !m.full() && !m.shutdown {
		p, _ := m.queue.Pop()
		m.pids.entries[p.entry].queued = false
		if st := m.rechecked(p.pid, p.startTime); st != Stands {
			m.pids.idle(p.entry)
			m.refuse(p.pid, st.outcome(), RefusedStale)
			continue
		}
		if m.held != nil && m.held(p.pid) { // paused while it waited
			m.pids.idle(p.entry)
			m.refuse(p.pid, OutcomeSkippedPaused, RefusedPaused)
			continue
		}
		m.spawn(p.entry, now)
	}
}

// NextDeadline returns the clock value by which Tick should run next: the
// earliest timeout of a running child, or shortly after the last Tick
// while queued stalls can start or unpolled children wait; NoDeadline when
// none. Stalls queued behind MaxConcurrent running children wait for one
// of them to be reaped: the children are polled every millisecond then.
func (m *Manager) NextDeadline() int64 {
	d := m.nextDue
	if (m.queue.Len() > 0 || m.reapMore) && m.lastTick+deferRetry < d {
		d = m.lastTick + deferRetry
	}
	if t, ok := m.auditSyncDue(); ok && t < d {
		d = t
	}
	return min(d, m.containDeadline())
}

// MaxConcurrent returns the cap on children running at once.
func (m *Manager) MaxConcurrent() int { return m.maxRun }

// Outstanding returns the number of children not yet reaped.
func (m *Manager) Outstanding() int { return len(m.active) }

// Deferred returns the number of stalls queued: waiting for a running
// child to finish (MaxConcurrent) or for a spawn budget.
func (m *Manager) Deferred() int { return m.queue.Len() }

// Counts returns the outcome counters, indexed by Outcome (labels in
// OutcomeLabels).
func (m *Manager) Counts() [NumOutcomes]uint64 { return m.counts }

// Durations returns the histogram of completed children's run times.
func (m *Manager) Durations() Durations { return m.durations }

// AuditStats returns the records written, the records, syncs, checkpoint
// writes and rotations that failed (each also returned by the call that
// hit it: ENOSPC, EIO, ...), and the last such error. Failures never stop
// the manager.
func (m *Manager) AuditStats() (written, failed uint64, last error) {
	if m.audit == nil {
		return 0, 0, nil
	}
	return m.audit.written, m.audit.failed, m.audit.lastErr
}

// AuditHeadPrefix is how many hex digits of the chain value AuditHead
// returns: 64 bits, plenty to tell one head from another.
const AuditHeadPrefix = 16

// AuditHead returns the seq of the last record written to the audit log
// and the first AuditHeadPrefix hex digits of its chain value, for the
// metrics an off-box store anchors the log with; ok is false without an
// audit log or before its first record. The string is made once per new
// record, so a scrape between records allocates nothing. It is safe on a
// nil Manager.
func (m *Manager) AuditHead() (seq uint64, head string, ok bool) {
	if m == nil {
		return 0, "", false
	}
	a := m.audit
	if a == nil || a.last == 0 {
		return 0, "", false
	}
	if m.headSeq != a.last || m.head == "" {
		var b [AuditHeadPrefix]byte
		appendHex(b[:0], a.chain[:AuditHeadPrefix/2])
		m.head, m.headSeq = string(b[:]), a.last
	}
	return a.last, m.head, true
}

// AuditOpened says what the last opening of the audit log (New or
// ReopenAudit) found; the zero value without an audit log.
func (m *Manager) AuditOpened() AuditOpen {
	if m.audit == nil {
		return AuditOpen{}
	}
	return m.audit.open
}

// ReopenAudit closes and reopens the audit file, for SIGHUP after log
// rotation. A new (or emptied) file gets a boot record with reason
// rotation that carries the sequence and the chain on; the same file
// resumes, or says corrupt_tail when it no longer ends with the last
// record written. On failure the audit is disabled (records counted as
// failed) until the next reopen.
func (m *Manager) ReopenAudit() error {
	old := m.audit
	if old == nil {
		return nil
	}
	cerr := old.close()
	t0 := time.Now()
	defer func() { m.stats.rotated(time.Since(t0)) }() // a SIGHUP reopen is this design's rotation step
	a, err := openAudit(m.auditPath, m.auditOpts, old)
	if err != nil {
		old.disabled = true
		old.lastErr = err
		return wrap("recovery", err)
	}
	a.written, a.failed = old.written+a.written, old.failed+a.failed
	if a.lastErr == nil {
		a.lastErr = old.lastErr
	}
	m.audit = a
	return cerr
}

// Shutdown stops recovery: queued stalls are refused (refused_capacity,
// audited as reason capacity: the cap kept them waiting until the end),
// every outstanding process group gets SIGTERM, children are
// reaped for up to grace, then the remaining groups get SIGKILL and are
// reaped. It returns once all are reaped, or with an error naming how many
// were not within 2 s of SIGKILL (a process stuck in uninterruptible
// sleep); init inherits those when the observer exits.
func (m *Manager) Shutdown(grace time.Duration) error {
	m.shutdown = true
	for m.queue.Len() > 0 {
		p, _ := m.queue.Pop()
		m.pids.entries[p.entry].queued = false
		m.pids.idle(p.entry)
		m.refuse(p.pid, OutcomeRefusedCapacity, RefusedCapacity) // still queued: counted, never silently lost
	}
	for _, slot := range m.active {
		c := &m.children[slot]
		if m.signal(c, unix.SIGTERM) {
			c.killed = true
		}
	}
	m.reapFor(int64(grace), 5*time.Millisecond)
	if len(m.active) > 0 || len(m.draining) > 0 {
		for _, slot := range m.active {
			m.killContained(slot)
			if c := &m.children[slot]; m.signal(c, unix.SIGKILL) {
				c.killed = true
			}
		}
		m.reapFor(int64(2*time.Second), time.Millisecond)
	}
	m.awaitDying(int64(time.Second))
	if a := m.audit; a != nil && a.unsynced > 0 {
		a.sync() // counted in AuditStats
	}
	if n := len(m.active); n > 0 {
		msg := "recovery: " + strconv.Itoa(n) + " children not reaped after SIGKILL"
		for _, slot := range m.active {
			if err := m.children[slot].sigErr; err != nil {
				return wrap(msg, err) // one of them could not be signalled: say why
			}
		}
		return errors.New(msg)
	}
	return nil
}

// reapFor drains and reaps every outstanding child until none is left or
// d ns have passed, sleeping step between rounds.
func (m *Manager) reapFor(d int64, step time.Duration) {
	end := m.clock() + d
	for {
		now := m.clock()
		for i := 0; i < len(m.active); {
			slot := m.active[i]
			m.drain(&m.children[slot])
			if !m.reap(slot, now) {
				i++
			}
		}
		m.settleDraining()
		if m.reapOrphans {
			m.scanOrphans(now)
		}
		if len(m.active) == 0 && len(m.draining) == 0 || now >= end {
			return
		}
		time.Sleep(min(step, time.Duration(end-now)))
	}
}

// Close releases /dev/null, the audit log (synced first) and the capture
// pipes of any child still outstanding. Call it after Shutdown.
func (m *Manager) Close() error {
	for _, slot := range m.active {
		c := &m.children[slot]
		for k, fd := range c.fds {
			if fd != none {
				unix.Close(int(fd))
				c.fds[k] = none
			}
		}
	}
	if m.devnull >= 0 {
		unix.Close(m.devnull)
		m.devnull = -1
	}
	if m.cg != nil {
		m.cg.close() // a cgroup still holding a process stays (EBUSY)
		m.cg = nil
	}
	m.shutdown = true
	if m.audit != nil {
		return m.audit.close()
	}
	return nil
}

// count bumps the counter of o and returns o.
func (m *Manager) count(o Outcome) Outcome {
	m.counts[o]++
	return o
}

// countFor is count for an outcome of agent's, also told to OnOutcome.
func (m *Manager) countFor(agent int32, o Outcome) Outcome {
	if m.onOutcome != nil {
		m.onOutcome(agent, o)
	}
	return m.count(o)
}

// refuse counts and audits a stall that gets no child.
func (m *Manager) refuse(pid int32, o Outcome, reason string) Outcome {
	m.auditRefused(pid, reason)
	return m.countFor(pid, o)
}
