package recovery

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// runOne spawns cmd for pid and ticks until it is reaped, returning its
// Completion.
func runOne(t *testing.T, cfg Config, pid int32) Completion {
	t.Helper()
	var done []Completion
	cfg.OnComplete = collect(&done)
	m := newTestManager(t, cfg)
	if o := m.OnStall(pid, 1, true, now()); o != OutcomeSpawned {
		t.Fatalf("OnStall = %v, want spawned", o)
	}
	tickUntil(t, m, "the child to be reaped", func() bool { return len(done) == 1 })
	return done[0]
}

func TestPidReachesCommand(t *testing.T) {
	tests := []struct {
		name string
		line string
		want string
	}{
		{"appended", "printf '[%s]\\n' first", "[first]\n[4242]\n"},
		{"placeholder", "printf '[%s]\\n' a{pid}b {pid}", "[a4242b]\n[4242]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, err := ParseCommand(tt.line)
			if err != nil {
				t.Fatal(err)
			}
			c := runOne(t, Config{Command: cmd, CaptureBytes: 256}, 4242)
			if got := string(c.Captured); got != tt.want || c.Outcome != OutcomeReapedZero {
				t.Fatalf("%s printed %q (%v), want %q (reaped_zero)", tt.line, got, c.Outcome, tt.want)
			}
		})
	}
}

func TestPidReachesCommandFile(t *testing.T) {
	// The brief's form: the child writes its argv to a file.
	out := tempPath(t, "argv")
	cmd := shCmd(`for a in "$0" "$@"; do echo "$a"; done > ` + out)
	cmd.Args = append(cmd.Args, "x{pid}y")
	runOne(t, Config{Command: cmd}, 77)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), "77\nx77y\n"; got != want {
		t.Fatalf("argv file = %q, want %q", got, want)
	}
}

func TestCleanEnvironment(t *testing.T) {
	t.Setenv("VARTA_SECRET", "leak")
	env := Command{Path: "/usr/bin/env", Args: []string{"env"}}
	c := runOne(t, Config{Command: env, CaptureBytes: 4096, Env: []string{"A=1", "B=x=y", "A=2"}}, 5)
	if got, want := string(c.Captured), "PATH=/usr/bin:/bin\nA=2\nB=x=y\n"; got != want {
		t.Fatalf("child environment = %q, want %q", got, want)
	}
	c = runOne(t, Config{Command: env, CaptureBytes: 1 << 16, InheritEnv: true, Env: []string{"PATH=/bin"}}, 5)
	lines := strings.Split(string(c.Captured), "\n")
	if !slices.Contains(lines, "VARTA_SECRET=leak") || !slices.Contains(lines, "PATH=/bin") {
		t.Fatalf("inherited environment lacks VARTA_SECRET or the PATH override: %q", c.Captured)
	}
	for _, bad := range []string{"=x", "NOEQUALS", "A=\x00"} {
		if _, err := New(Config{Command: env, Capacity: 1, Env: []string{bad}}); err == nil {
			t.Errorf("New with Env %q succeeded, want an error", bad)
		}
	}
}

// TestNoInheritedFds runs ls on /proc/self/fd with the observer holding
// extra fds (audit log, /dev/null, another child's capture pipes, a file of
// our own): the child must see 0, 1 and 2, plus the directory ls reads.
func TestNoInheritedFds(t *testing.T) {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// An fd without O_CLOEXEC, as a daemon inherits from a careless parent:
	// New (and each spawn, where close_range exists) must seal it.
	leaky, err := unix.Open("/etc/hostname", unix.O_RDONLY, 0)
	if err != nil {
		leaky, err = unix.Open("/", unix.O_RDONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	defer unix.Close(leaky)
	var done []Completion
	m := newTestManager(t, Config{
		Command:        Command{Path: "/bin/ls", Args: []string{"ls", "-l", "/proc/self/fd/"}},
		CaptureBytes:   4096,
		AuditFile:      tempPath(t, "audit"),
		AuditSyncEvery: MaxAuditSyncEvery,
		OnComplete:     collect(&done),
	})
	m.OnStall(1, 1, true, now())
	m.OnStall(2, 1, true, now())
	tickUntil(t, m, "both children reaped", func() bool { return len(done) == 2 })
	for _, c := range done {
		var fds []string
		for _, ln := range strings.Split(string(c.Captured), "\n") {
			fs := strings.Fields(ln)
			if len(fs) < 3 || fs[len(fs)-2] != "->" {
				continue
			}
			fd, target := fs[len(fs)-3], fs[len(fs)-1]
			fds = append(fds, fd)
			if n, _ := strconv.Atoi(fd); n > 2 && !(strings.HasPrefix(target, "/proc/") && strings.HasSuffix(target, "/fd")) {
				t.Errorf("child inherited fd %s -> %s", fd, target)
			}
		}
		if len(fds) < 3 || !slices.Equal(fds[:3], []string{"0", "1", "2"}) || len(fds) > 4 {
			t.Errorf("child fds = %v, want 0 1 2 and at most ls's own directory fd; ls said:\n%s", fds, c.Captured)
		}
	}
}

func TestDebounce(t *testing.T) {
	m := newTestManager(t, Config{Command: Command{Path: "/bin/true", Args: []string{"true"}}, Debounce: time.Hour})
	t0 := now()
	steps := []struct {
		pid   int32
		start uint64
		at    int64
		want  Outcome
	}{
		{10, 1, t0, OutcomeSpawned},
		{10, 1, t0 + 1, OutcomeDebounced},
		{10, 2, t0 + 2, OutcomeSpawned}, // pid recycled: a new process, not debounced
		{10, 2, t0 + 3, OutcomeDebounced},
		{10, 2, t0 + int64(time.Hour) + 2, OutcomeSpawned},
		{11, 1, t0 + 4, OutcomeSpawned},
	}
	for i, s := range steps {
		// Reap between steps so in-flight never masks the debounce.
		tickUntil(t, m, "idle", func() bool { return m.Outstanding() == 0 })
		if got := m.OnStall(s.pid, s.start, true, s.at); got != s.want {
			t.Fatalf("step %d: OnStall(%d, %d) = %v, want %v", i, s.pid, s.start, got, s.want)
		}
	}
	if got := m.Counts(); got[OutcomeSpawned] != 4 || got[OutcomeDebounced] != 2 {
		t.Fatalf("counts = %v, want 4 spawned, 2 debounced", got)
	}
}

func TestOneInFlightAndUnattested(t *testing.T) {
	m := newTestManager(t, Config{Command: shCmd("sleep 10")})
	t0 := now()
	for i, s := range []struct {
		pid      int32
		attested bool
		want     Outcome
	}{
		{20, true, OutcomeSpawned},
		{20, true, OutcomeSkippedInFlight},
		{21, false, OutcomeSkippedUnattested},
		{0, true, OutcomeSkippedUnattested},
		{-1, true, OutcomeSkippedUnattested},
		{21, true, OutcomeSpawned},
	} {
		if got := m.OnStall(s.pid, 1, s.attested, t0); got != s.want {
			t.Fatalf("step %d: OnStall(%d, attested=%v) = %v, want %v", i, s.pid, s.attested, got, s.want)
		}
	}
	m.Tick(now())
	if m.Outstanding() != 2 {
		t.Fatalf("Outstanding = %d, want 2", m.Outstanding())
	}
}

func TestCapacityRefused(t *testing.T) {
	audit := tempPath(t, "audit")
	m := newTestManager(t, Config{Command: shCmd("sleep 10"), Capacity: 2, AuditFile: audit})
	t0 := now()
	want := []Outcome{OutcomeSpawned, OutcomeSpawned, OutcomeRefusedCapacity, OutcomeRefusedCapacity}
	for i, w := range want {
		if got := m.OnStall(int32(30+i), 1, true, t0); got != w {
			t.Fatalf("OnStall(pid %d) = %v, want %v", 30+i, got, w)
		}
	}
	if c := m.Counts(); c[OutcomeRefusedCapacity] != 2 {
		t.Fatalf("refused_capacity = %d, want 2", c[OutcomeRefusedCapacity])
	}
	n := 0
	for _, rec := range readLines(t, audit) {
		if r, _ := field(rec, "reason"); kindOf(rec) == "refused" && r == "outstanding_capacity" {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("audit has %d refused outstanding_capacity records, want 2", n)
	}
}

func TestSpawnFailed(t *testing.T) {
	audit := tempPath(t, "audit")
	m := newTestManager(t, Config{Command: Command{Path: "/nonexistent/varta-recover", Args: []string{"x"}},
		CaptureBytes: 16, AuditFile: audit})
	if o := m.OnStall(1, 1, true, now()); o != OutcomeSpawnFailed {
		t.Fatalf("OnStall = %v, want spawn_failed", o)
	}
	if m.Outstanding() != 0 {
		t.Fatalf("Outstanding = %d after a failed spawn", m.Outstanding())
	}
	lines := readLines(t, audit)
	last := lines[len(lines)-1]
	if r, _ := field(last, "reason"); kindOf(last) != "refused" || r != "spawn_failed:ENOENT" {
		t.Fatalf("last audit record %q, want refused with reason spawn_failed:ENOENT", last)
	}
}

// TestTimeoutKillsGroup: a command that ignores SIGTERM and leaves a
// grandchild in its group is SIGKILLed, group and all, at the timeout;
// nothing of the group survives and no zombie is left with us. The
// grandchild is reparented to init (or a subreaper above us) when its
// parent dies, so it may linger as someone else's zombie; it must not be
// alive.
func TestTimeoutKillsGroup(t *testing.T) {
	gcFile := tempPath(t, "gc")
	var done []Completion
	m := newTestManager(t, Config{
		Command:    shCmd(`trap "" TERM; sleep 100 & echo $! > ` + gcFile + `.tmp; mv ` + gcFile + `.tmp ` + gcFile + `; sleep 100`),
		Timeout:    MinTimeout,
		OnComplete: collect(&done),
		Contain:    ContainGroup, // the group alone; contain_test.go has the escapees
	})
	t0 := now()
	m.OnStall(40, 1, true, t0)
	if d := m.NextDeadline(); d != t0+int64(MinTimeout) {
		t.Fatalf("NextDeadline = %d, want spawn time + timeout %d", d, t0+int64(MinTimeout))
	}
	var gc int
	waitFor(t, "the grandchild's pid", func() bool {
		b, err := os.ReadFile(gcFile)
		gc, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && gc > 0
	})
	tickUntil(t, m, "the timed-out child to be reaped", func() bool { return len(done) == 1 })
	c := done[0]
	if c.Outcome != OutcomeKilled || c.Signal != syscall.SIGKILL || c.Duration < MinTimeout {
		t.Fatalf("completion %+v, want killed by SIGKILL after >= %v", c, MinTimeout)
	}
	// Once the child is reaped nothing is left to wait for, but a test
	// process that another test made a child subreaper also adopts the
	// killed grandchild, and the manager scans for it until it is reaped.
	tickUntil(t, m, "no deadline left with nothing outstanding", func() bool { return m.NextDeadline() == NoDeadline })
	waitFor(t, "the process group to die", func() bool { return len(liveInGroup(c.Child)) == 0 })
	waitFor(t, "the grandchild to die", func() bool {
		pi, ok := readStat(gc)
		return !ok || pi.pgrp != c.Child || pi.state == 'Z' && pi.ppid != os.Getpid()
	})
	assertNoZombies(t)
}

// TestShutdownTermThenKill: SIGTERM first, SIGKILL after the grace for a
// group that ignores TERM; a child that honours TERM ends at once.
func TestShutdownTermThenKill(t *testing.T) {
	var done []Completion
	dir := t.TempDir()
	m, err := New(Config{
		Command:    shCmd(`[ "$0" = 1 ] && trap "" TERM; touch ` + dir + `/$0; sleep 100 & sleep 100`),
		Capacity:   4,
		OnComplete: collect(&done),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.OnStall(1, 1, true, now()) // ignores TERM
	m.OnStall(2, 1, true, now()) // does not
	waitFor(t, "both scripts past their trap", func() bool {
		_, err1 := os.Stat(dir + "/1")
		_, err2 := os.Stat(dir + "/2")
		return err1 == nil && err2 == nil
	})
	start := time.Now()
	const grace = 300 * time.Millisecond
	if err := m.Shutdown(grace); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	took := time.Since(start)
	if m.Outstanding() != 0 || len(done) != 2 {
		t.Fatalf("after Shutdown: outstanding %d, completions %d", m.Outstanding(), len(done))
	}
	if took < grace || took > grace+3*time.Second {
		t.Fatalf("Shutdown took %v, want the grace %v then a prompt SIGKILL", took, grace)
	}
	for _, c := range done {
		want := syscall.SIGTERM
		if c.Agent == 1 {
			want = syscall.SIGKILL
		}
		if c.Outcome != OutcomeKilled || c.Signal != want {
			t.Errorf("agent %d: %v by %v, want killed by %v", c.Agent, c.Outcome, c.Signal, want)
		}
		waitFor(t, "the group to die", func() bool { return len(liveInGroup(c.Child)) == 0 })
	}
	if o := m.OnStall(3, 1, true, now()); o == OutcomeSpawned {
		t.Fatalf("OnStall after Shutdown spawned")
	}
	assertNoZombies(t)
}

// TestStallStorm: 500 stalls at once against slow children. Spawns between
// two Ticks never exceed the budget, outstanding never exceeds capacity,
// and every child is eventually reaped.
func TestStallStorm(t *testing.T) {
	tests := []struct {
		name              string
		capacity, budget  int
		wantSpawned       uint64
		wantRefusedAtOnce uint64
	}{
		{"all fit", 512, 16, 500, 0},
		{"capacity bound", 64, 8, 64, 500 - 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && tt.wantSpawned > 100 {
				t.Skip("slow: 500 children of a second each; run without -short (\"capacity bound\" covers the budgets)")
			}
			m := newTestManager(t, Config{
				Command:       Command{Path: "/bin/sleep", Args: []string{"sleep", "1"}},
				Capacity:      tt.capacity,
				MaxConcurrent: tt.capacity, // this test is about the budgets; TestConcurrencyCap about the cap
				SpawnsPerTick: tt.budget,
			})
			t0 := now()
			for pid := int32(1000); pid < 1500; pid++ {
				m.OnStall(pid, 1, true, t0)
			}
			c := m.Counts()
			if c[OutcomeSpawned] != uint64(tt.budget) || c[OutcomeRefusedCapacity] != tt.wantRefusedAtOnce {
				t.Fatalf("after the storm: %v, want %d spawned and %d refused", c, tt.budget, tt.wantRefusedAtOnce)
			}
			maxOut := 0
			end := time.Now().Add(testWait)
			for m.Counts()[OutcomeReapedZero] < tt.wantSpawned {
				before := m.Counts()[OutcomeSpawned]
				m.Tick(now())
				if d := m.Counts()[OutcomeSpawned] - before; d > uint64(tt.budget) {
					t.Fatalf("one Tick spawned %d, budget %d", d, tt.budget)
				}
				maxOut = max(maxOut, m.Outstanding())
				if m.Outstanding()+m.Deferred() > tt.capacity {
					t.Fatalf("outstanding %d + deferred %d > capacity %d", m.Outstanding(), m.Deferred(), tt.capacity)
				}
				if time.Now().After(end) {
					t.Fatalf("timed out: %v, outstanding %d, deferred %d", m.Counts(), m.Outstanding(), m.Deferred())
				}
				if d := m.NextDeadline() - now(); d > 0 {
					time.Sleep(min(time.Duration(d), 5*time.Millisecond))
				}
			}
			c = m.Counts()
			if c[OutcomeSpawned] != tt.wantSpawned || m.Outstanding() != 0 || m.Deferred() != 0 {
				t.Fatalf("end: %v, outstanding %d, deferred %d", c, m.Outstanding(), m.Deferred())
			}
			h := m.Durations()
			inRange := h.Counts[4] + h.Counts[5] // (0.5s, 5s]
			if os.Getenv("VARTA_TEST_EMULATOR") != "" {
				// Under qemu-user, 500 emulated shells starting at once on
				// two cores take longer than a second's sleep to run: only
				// the lower bound means something there.
				for _, n := range h.Counts[6:] {
					inRange += n
				}
			}
			if h.Count != tt.wantSpawned || inRange != tt.wantSpawned {
				t.Fatalf("durations %+v, want %d runs in (0.5s, 5s]", h, tt.wantSpawned)
			}
			t.Logf("max outstanding %d", maxOut)
			assertNoZombies(t)
		})
	}
}

// TestReapBudget: children that exit together are reaped at most
// ReapsPerTick per Tick (each reap writes a synced completion record), and
// NextDeadline asks for the next Tick at once while exited children wait.
func TestReapBudget(t *testing.T) {
	const n, budget = 20, 3
	m := newTestManager(t, Config{
		Command:       Command{Path: "/bin/true", Args: []string{"true"}},
		Capacity:      32,
		MaxConcurrent: 32,
		SpawnsPerTick: n,
		ReapsPerTick:  budget,
		AuditFile:     tempPath(t, "audit"),
	})
	t0 := now()
	for pid := int32(100); pid < 100+n; pid++ {
		if o := m.OnStall(pid, 1, true, t0); o != OutcomeSpawned {
			t.Fatalf("OnStall(%d) = %v, want spawned", pid, o)
		}
	}
	waitFor(t, "every child to exit", func() bool { return len(zombieChildren()) == n })
	for reaped := 0; reaped < n; {
		tick := now()
		m.Tick(tick)
		got := int(m.Counts()[OutcomeReapedZero]) - reaped
		reaped += got
		if want := min(budget, n-(reaped-got)); got != want {
			t.Fatalf("Tick reaped %d with %d exited, want %d", got, n-(reaped-got), want)
		}
		if d := m.NextDeadline(); reaped < n && d > tick+int64(time.Millisecond) {
			t.Fatalf("NextDeadline %d ns after the Tick with %d exited children unreaped, want within 1ms", d-tick, n-reaped)
		}
	}
	if m.Outstanding() != 0 || len(zombieChildren()) != 0 {
		t.Fatalf("outstanding %d, zombies %v after reaping all", m.Outstanding(), zombieChildren())
	}
	m.Tick(now())
	if d := m.NextDeadline(); d != NoDeadline {
		t.Fatalf("NextDeadline with nothing outstanding = %d, want NoDeadline", d)
	}
}

func TestDeferredRecheck(t *testing.T) {
	stale := map[int32]bool{51: true}
	var asked []int32
	m := newTestManager(t, Config{
		Command:       shCmd("sleep 10"),
		SpawnsPerTick: 1,
		Recheck: func(pid int32, start uint64) Stale {
			asked = append(asked, pid)
			if stale[pid] {
				return Untracked
			}
			return Stands
		},
	})
	t0 := now()
	for i, w := range []Outcome{OutcomeSpawned, OutcomeDeferred, OutcomeDeferred, OutcomeSkippedInFlight} {
		if got := m.OnStall(int32(50+min(i, 2)), 1, true, t0); got != w {
			t.Fatalf("OnStall #%d = %v, want %v", i, got, w)
		}
	}
	if d := m.NextDeadline(); d == NoDeadline || d > now()+int64(time.Second) {
		t.Fatalf("NextDeadline with deferred stalls = %d, want soon", d)
	}
	m.Tick(t0 + 1) // 51 is stale, then 52 spawns within the budget of 1
	if !slices.Equal(asked, []int32{51, 52}) {
		t.Fatalf("Recheck asked %v, want [51 52]", asked)
	}
	c := m.Counts()
	if c[OutcomeSkippedStale] != 1 || c[OutcomeSpawned] != 2 || m.Deferred() != 0 || m.Outstanding() != 2 {
		t.Fatalf("after Tick: %v, deferred %d, outstanding %d", c, m.Deferred(), m.Outstanding())
	}
	// 51's entry went back to idle: a later stall for it runs.
	m.Tick(t0 + 2)
	if o := m.OnStall(51, 2, true, t0+3); o != OutcomeSpawned {
		t.Fatalf("OnStall(51) after skipped_stale = %v, want spawned", o)
	}
}

// TestCapture: stdout beyond the pipe buffer is drained without blocking
// the child; at most CaptureBytes are kept, every byte is counted.
func TestCapture(t *testing.T) {
	audit := tempPath(t, "audit")
	c := runOne(t, Config{
		Command:      shCmd(`head -c 200000 /dev/zero; echo oops >&2`),
		CaptureBytes: 10,
		AuditFile:    audit,
	}, 9)
	if len(c.Captured) != 10 || c.StdoutBytes != 200000 || c.StderrBytes != 5 || c.Outcome != OutcomeReapedZero {
		t.Fatalf("captured %d bytes, stdout %d, stderr %d, %v; want 10, 200000, 5, reaped_zero",
			len(c.Captured), c.StdoutBytes, c.StderrBytes, c.Outcome)
	}
	var rec string
	for _, r := range readLines(t, audit) {
		if kindOf(r) == "complete" {
			rec = r
		}
	}
	// The record counts the bytes kept, per stream, and says the rest
	// was cut.
	o, _ := field(rec, "stdout_len")
	e, _ := field(rec, "stderr_len")
	tr, _ := field(rec, "truncated")
	if o != "10" || e != "0" || tr != "true" {
		t.Fatalf("complete record %q, want stdout_len 10, stderr_len 0, truncated true", rec)
	}
}

func TestConfigValidation(t *testing.T) {
	ok := Command{Path: "/bin/true", Args: []string{"true"}}
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"zero capacity", Config{Command: ok}},
		{"capacity too big", Config{Command: ok, Capacity: MaxCapacity + 1}},
		{"timeout below minimum", Config{Command: ok, Capacity: 1, Timeout: 99 * time.Millisecond}},
		{"relative program", Config{Command: Command{Path: "true", Args: []string{"true"}}, Capacity: 1}},
		{"no argv", Config{Command: Command{Path: "/bin/true"}, Capacity: 1}},
		{"capture too big", Config{Command: ok, Capacity: 1, CaptureBytes: MaxCaptureBytes + 1}},
	} {
		if _, err := New(tt.cfg); err == nil {
			t.Errorf("%s: New succeeded, want an error", tt.name)
		}
	}
}

// TestPidTable checks the pid table (ring.Index + LRU) against a map through
// random inserts, evictions and removals.
func TestPidTable(t *testing.T) {
	tb := newPidTable(8)
	ref := map[int32]int32{}
	seed := uint32(1)
	rnd := func() uint32 { seed = seed*1664525 + 1013904223; return seed >> 8 }
	for i := 0; i < 20000; i++ {
		pid := int32(rnd()%40 + 1)
		if e := tb.lookup(pid); e != none {
			if ref[pid] != e || tb.entries[e].pid != pid {
				t.Fatalf("lookup(%d) = %d, ref %d", pid, e, ref[pid])
			}
			if rnd()%3 == 0 { // retire it to the LRU list
				tb.idle(e)
			}
			continue
		}
		if _, ok := ref[pid]; ok {
			t.Fatalf("lookup(%d) missed an entry", pid)
		}
		if tb.free.Len() == 0 && tb.lru.Front() == none {
			tb.idle(ref[firstKey(ref)])
		}
		if tb.free.Len() == 0 {
			delete(ref, tb.entries[tb.lru.Front()].pid)
		}
		e := tb.insert(pid)
		ref[pid] = e
		if rnd()%2 == 0 {
			tb.idle(e)
		}
	}
	for pid, e := range ref {
		if tb.lookup(pid) != e {
			t.Fatalf("final lookup(%d) = %d, want %d", pid, tb.lookup(pid), e)
		}
	}
}

func firstKey(m map[int32]int32) int32 {
	for k := range m {
		return k
	}
	return 0
}

var sinkOutcome Outcome

func TestNoAllocs(t *testing.T) {
	for _, audit := range []bool{false, true} {
		cfg := Config{Command: shCmd("sleep 10"), Capacity: 4, Debounce: time.Hour}
		if audit {
			cfg.AuditFile, cfg.AuditSyncEvery = tempPath(t, "audit"), MaxAuditSyncEvery
		}
		m := newTestManager(t, cfg)
		t0 := now()
		m.OnStall(1, 1, true, t0)
		m.Tick(t0)
		checks := []struct {
			name string
			fn   func()
		}{
			{"OnStall unattested", func() { sinkOutcome = m.OnStall(2, 1, false, t0) }},
			{"OnStall debounced", func() { sinkOutcome = m.OnStall(1, 1, true, t0) }},
			{"OnStall in flight", func() { sinkOutcome = m.OnStall(1, 2, true, t0) }},
			{"Tick with a running child", func() { m.Tick(t0) }},
			{"NextDeadline", func() { sinkOutcome = Outcome(m.NextDeadline() & 1) }},
		}
		for _, c := range checks {
			if n := testing.AllocsPerRun(100, c.fn); n != 0 {
				t.Errorf("audit=%v: %s allocates %v times per run", audit, c.name, n)
			}
		}
		if err := m.Shutdown(time.Second); err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(100, func() { m.Tick(t0) }); n != 0 {
			t.Errorf("audit=%v: idle Tick allocates %v times per run", audit, n)
		}
	}
}

// TestOutcomeLabels spells the labels out: they are the values of
// varta_recovery_outcomes_total that operators' queries name, so comparing
// String with OutcomeLabels alone would let a rename through.
func TestOutcomeLabels(t *testing.T) {
	want := map[Outcome]string{
		OutcomeSpawned: "spawned", OutcomeDebounced: "debounced", OutcomeReapedZero: "reaped_zero",
		OutcomeReapedNonzero: "reaped_nonzero", OutcomeKilled: "killed", OutcomeSpawnFailed: "spawn_failed",
		OutcomeRefusedCapacity: "refused_capacity", OutcomeSkippedUnattested: "skipped_unattested",
		OutcomeSkippedInFlight: "skipped_in_flight", OutcomeSkippedStale: "skipped_stale",
		OutcomeRefusedShutdown: "refused_shutdown", OutcomeSkippedUnverifiable: "skipped_stall_unverifiable",
		OutcomeSkippedPaused: "skipped_paused", OutcomeDryRun: "dry_run",
		OutcomeSkippedResumed: "skipped_agent_resumed", OutcomeSkippedRecycled: "skipped_pid_recycled",
	}
	if len(want) != int(NumOutcomes) {
		t.Fatalf("NumOutcomes = %d, the test knows %d labels", NumOutcomes, len(want))
	}
	for o := Outcome(0); o < NumOutcomes; o++ {
		if o.String() != want[o] || OutcomeLabels[o] != want[o] {
			t.Errorf("Outcome %d: String() = %q, OutcomeLabels = %q, want %q", o, o.String(), OutcomeLabels[o], want[o])
		}
	}
	if OutcomeDeferred.String() != "deferred" {
		t.Fatalf("OutcomeDeferred.String() = %q", OutcomeDeferred.String())
	}
}

func TestDurationsBuckets(t *testing.T) {
	var h Durations
	for _, d := range []time.Duration{0, 10 * time.Millisecond, 11 * time.Millisecond, time.Second, time.Hour} {
		h.observe(int64(d))
	}
	want := [len(DurationBounds) + 1]uint64{2, 1, 0, 0, 1, 0, 0, 0, 0, 1}
	if h.Counts != want || h.Count != 5 {
		t.Fatalf("Counts = %v (count %d), want %v (5)", h.Counts, h.Count, want)
	}
}

func BenchmarkOnStallDebounced(b *testing.B) {
	m, err := New(Config{Command: shCmd("sleep 10"), Capacity: 4, Debounce: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	defer m.Shutdown(time.Second)
	t0 := now()
	m.OnStall(1, 1, true, t0)
	b.ReportAllocs()
	for b.Loop() {
		sinkOutcome = m.OnStall(1, 1, true, t0)
	}
}

func BenchmarkTick(b *testing.B) {
	for _, running := range []int{0, 16} {
		b.Run("running="+strconv.Itoa(running), func(b *testing.B) {
			m, err := New(Config{Command: shCmd("sleep 10"), Capacity: 16, SpawnsPerTick: 16})
			if err != nil {
				b.Fatal(err)
			}
			defer m.Close()
			defer m.Shutdown(time.Second)
			t0 := now()
			for i := 0; i < running; i++ {
				m.OnStall(int32(i+1), 1, true, t0)
			}
			b.ReportAllocs()
			for b.Loop() {
				m.Tick(t0)
			}
		})
	}
}

// TestStallAfterShutdownIsNotCapacity: a stall raised once shutdown has
// begun is refused as such, never counted as the outstanding table being
// full (which would send an operator after the wrong problem).
func TestStallAfterShutdownIsNotCapacity(t *testing.T) {
	m := newTestManager(t, Config{Command: shCmd("exit 0")})
	if err := m.Shutdown(time.Second); err != nil {
		t.Fatal(err)
	}
	if got := m.OnStall(int32(os.Getpid()), 1, true, monotonicNow()); got != OutcomeRefusedShutdown {
		t.Fatalf("OnStall after Shutdown = %v, want refused_shutdown", got)
	}
	if c := m.Counts(); c[OutcomeRefusedCapacity] != 0 || c[OutcomeRefusedShutdown] != 1 {
		t.Fatalf("counts refused_capacity %d, refused_shutdown %d; want 0 and 1",
			c[OutcomeRefusedCapacity], c[OutcomeRefusedShutdown])
	}
}

// TestUnverifiableStall: a stall that cannot be tied to a process runs no
// command and is counted as such.
func TestUnverifiableStall(t *testing.T) {
	m := newTestManager(t, Config{Command: shCmd("exit 0")})
	if got := m.OnUnverifiableStall(int32(os.Getpid())); got != OutcomeSkippedUnverifiable {
		t.Fatalf("OnUnverifiableStall = %v, want skipped_stall_unverifiable", got)
	}
	if c := m.Counts(); c[OutcomeSkippedUnverifiable] != 1 || c[OutcomeSpawned] != 0 || m.Outstanding() != 0 {
		t.Fatalf("counts %v, outstanding %d; want one skipped_stall_unverifiable and nothing spawned", c, m.Outstanding())
	}
}

// TestConcurrencyCap: 1000 agents stall at once. At
// most MaxConcurrent children run at any moment (counted in /proc, not
// just by the manager), the rest wait in the FIFO and start as children
// finish, and every stall is run or counted: with room for all of them
// every one is spawned; with a small queue the overflow is refused at
// once (refused_capacity, with a refused record) and what is still queued
// at Shutdown too. Nothing is lost: spawned + refused_capacity = 1000,
// and the audit log holds a record for each.
func TestConcurrencyCap(t *testing.T) {
	const stalls, maxRun = 1000, 16
	tests := []struct {
		name     string
		capacity int
		sleep    string
		drain    bool // tick until the queue is empty, else shut down with stalls queued
	}{
		{"all run", 1024, "0.02", true},
		{"queue overflow and shutdown", 64, "5", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			audit := tempPath(t, "audit")
			m, err := New(Config{
				Command:       Command{Path: "/bin/sleep", Args: []string{"sleep", tt.sleep}},
				Capacity:      tt.capacity,
				MaxConcurrent: maxRun,
				SpawnsPerTick: 64,
				AuditFile:     audit,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			t0 := now()
			for pid := int32(100000); pid < 100000+stalls; pid++ {
				m.OnStall(pid, uint64(pid)*7, true, t0) // fake start times
			}
			maxSeen, maxOut := 0, 0
			check := func() {
				maxOut = max(maxOut, m.Outstanding())
				maxSeen = max(maxSeen, liveChildren())
				if m.Outstanding() > maxRun {
					t.Fatalf("%d children outstanding, cap %d", m.Outstanding(), maxRun)
				}
			}
			check()
			end := time.Now().Add(3 * testWait)
			for tt.drain && (m.Deferred() > 0 || m.Outstanding() > 0) {
				m.Tick(now())
				check()
				if time.Now().After(end) {
					t.Fatalf("timed out: %v, outstanding %d, queued %d", m.Counts(), m.Outstanding(), m.Deferred())
				}
				time.Sleep(time.Millisecond)
			}
			if !tt.drain {
				for i := 0; i < 3; i++ { // the cap runs, the rest stay queued
					m.Tick(now())
					check()
					time.Sleep(time.Millisecond)
				}
				if m.Deferred() == 0 {
					t.Fatal("nothing queued at shutdown: the test shuts down too late")
				}
			}
			if err := m.Shutdown(time.Second); err != nil {
				t.Fatal(err)
			}
			c := m.Counts()
			spawned, refused := c[OutcomeSpawned], c[OutcomeRefusedCapacity]
			if spawned+refused != stalls || c[OutcomeSpawnFailed] != 0 || c[OutcomeSkippedStale] != 0 {
				t.Fatalf("counts %v: spawned %d + refused_capacity %d != %d stalls", c, spawned, refused, stalls)
			}
			if tt.drain && spawned != stalls {
				t.Fatalf("with room for all, %d of %d spawned", spawned, stalls)
			}
			if maxOut != maxRun || maxSeen > maxRun {
				t.Fatalf("most children at once: %d by the manager, %d in /proc; want the cap %d and never more", maxOut, maxSeen, maxRun)
			}
			var spawnRecs, refusedRecs int
			for _, l := range readLines(t, audit)[1:] {
				switch kindOf(l) {
				case "spawn":
					spawnRecs++
				case "refused":
					if r, _ := field(l, "reason"); r != RefusedCapacity {
						t.Errorf("refused record with reason %q, want %s: %s", r, RefusedCapacity, l)
					}
					refusedRecs++
				}
			}
			if uint64(spawnRecs) != spawned || uint64(refusedRecs) != refused {
				t.Fatalf("audit: %d spawn and %d refused records, counted %d and %d", spawnRecs, refusedRecs, spawned, refused)
			}
			t.Logf("%d spawned, %d refused_capacity; most running at once: %d (manager), %d (/proc)", spawned, refused, maxOut, maxSeen)
			assertNoZombies(t)
		})
	}
}

// liveChildren counts this process's children that are not zombies.
func liveChildren() int {
	n, me := 0, os.Getpid()
	for _, pid := range allPids() {
		if pi, ok := readStat(pid); ok && pi.ppid == me && pi.state != 'Z' && pi.state != 'X' {
			n++
		}
	}
	return n
}
