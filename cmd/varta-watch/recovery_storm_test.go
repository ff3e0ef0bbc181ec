package main

// The recovery storms: hundreds of agents stalling at once, their children
// spawned and reaped within the per-tick budgets while other stalls are
// still raised on time.

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/internal/testbin"
	"github.com/varta-go/varta/recovery"
	"github.com/varta-go/varta/vlp"
	"golang.org/x/sys/unix"
)

// helperAgentEnv names the socket a re-executed test binary beats to as a
// storm agent; helperDelayEnv delays its beat after the release.
const (
	helperAgentEnv = "VARTA_TEST_STORM_SOCKET"
	helperDelayEnv = "VARTA_TEST_STORM_DELAY_MS"
)

// TestRecoveryHelperAgent is not a test but the storm's agent process:
// this test binary re-executed with helperAgentEnv set. It connects to the
// observer, reports ready with one byte on stdout, waits for stdin to
// close (the release, shared by every agent), waits its delay, sends one
// beat and exits, leaving a dead agent behind. The socket blocks: a Unix
// datagram queue holds about ten frames (net.unix.max_dgram_qlen), and a
// blocked sender is woken as the observer reads, where hundreds of
// non-blocking senders retrying on EAGAIN would starve the observer of CPU.
func TestRecoveryHelperAgent(t *testing.T) {
	sock := os.Getenv(helperAgentEnv)
	if sock == "" {
		t.Skip("the agent process of the storm tests; runs only when they start it")
	}
	fail := func(what string, err error) {
		os.Stderr.WriteString("storm agent: " + what + ": " + err.Error() + "\n")
		os.Exit(1)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		fail("socket", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: sock}); err != nil {
		fail("connect", err)
	}
	tv := unix.NsecToTimeval(int64(30 * time.Second)) // bounds a send to a hung observer
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		fail("SO_SNDTIMEO", err)
	}
	os.Stdout.Write([]byte{'r'})
	var b [1]byte
	for {
		if _, err := os.Stdin.Read(b[:]); err != nil {
			break // EOF: released
		}
	}
	ms, _ := strconv.Atoi(os.Getenv(helperDelayEnv))
	time.Sleep(time.Duration(ms) * time.Millisecond)
	frame := vlp.Append(nil, vlp.Frame{Status: vlp.Ok, Pid: uint32(os.Getpid()), Nonce: 1})
	for {
		_, err := unix.Write(fd, frame)
		if err == nil {
			os.Exit(0)
		}
		if err != unix.EINTR {
			fail("send", err)
		}
	}
}

// agentGroup is a set of agent processes waiting for one release.
type agentGroup struct {
	t       *testing.T
	cmds    []*exec.Cmd
	release *os.File // closing it releases every agent
}

// startAgents starts n agents beating to socket after the release, each
// delayed by delay(i), and waits until all are ready.
func startAgents(t *testing.T, socket string, n int, delay func(i int) time.Duration) *agentGroup {
	t.Helper()
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &agentGroup{t: t, release: stdinW, cmds: make([]*exec.Cmd, n)}
	t.Cleanup(func() {
		stdinW.Close()
		for _, c := range s.cmds {
			if c != nil && c.Process != nil {
				c.Process.Kill()
				c.Wait()
			}
		}
	})
	// Started from a few goroutines at once: each start is mostly the
	// child's runtime start-up (seconds of translation under qemu), which
	// overlaps well.
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				c := testbin.Command(os.Args[0], "-test.run=^TestRecoveryHelperAgent$")
				c.Env = append(os.Environ(), helperAgentEnv+"="+socket,
					helperDelayEnv+"="+strconv.FormatInt(delay(i).Milliseconds(), 10))
				c.Stdin, c.Stdout, c.Stderr = stdinR, readyW, os.Stderr
				if err := c.Start(); err != nil {
					errs <- err
					continue
				}
				s.cmds[i] = c
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("starting an agent: %v", err)
	}
	stdinR.Close()
	readyW.Close()
	readyR.SetReadDeadline(time.Now().Add(patience(20 * time.Second)))
	buf := make([]byte, n)
	if got, err := io.ReadFull(readyR, buf); err != nil {
		t.Fatalf("%d of %d agents ready: %v", got, n, err)
	}
	readyR.Close()
	return s
}

// releaseAll releases every agent at once and waits for all to exit.
func (s *agentGroup) releaseAll() {
	s.t.Helper()
	s.release.Close()
	for i, c := range s.cmds {
		if err := c.Wait(); err != nil {
			s.t.Fatalf("agent %d: %v", i, err)
		}
	}
}

// TestRecoveryStorm: 500 agents stall at once; their recovery children
// wait for one release and then exit together. Both storms stay within the
// per-tick budgets: children are spawned a few per loop iteration and
// reaped a few per iteration, so probe agents whose deadlines fall during
// each storm are raised within an iteration of them (with no budget, one
// iteration would spawn, or reap and audit, all 500, and every probe due
// meanwhile would wait for it). Outstanding children never exceed the
// table, every agent is recovered exactly once, and every child is reaped
// (no zombie). The agents are dead by their stalls: recovery runs for
// them, as it should for a crashed service.
//
// Beats reach the observer about ten at a time (a Unix datagram queue's
// length), so stalls due at once are made the way they happen in the
// field, by the observer losing the CPU: it is stopped (SIGSTOP) once
// every storm beat is in and continued after every deadline has passed.
func TestRecoveryStorm(t *testing.T) {
	if testing.Short() {
		// The TestRecovery* tests cover spawn, reap, debounce and refusals quickly.
		t.Skip("slow: 500 agent processes and their recovery children; run without -short")
	}
	// Probes beat once each, spawnGap or reapGap apart, and stall T
	// later. T outlasts, on a quiet machine, the storm's beats and the
	// spawn probes' after them, so that every storm stall is due at once
	// when the observer is continued, with the spawn probes just after.
	n, probes, T, late := 500, 16, 400*time.Millisecond, 50*time.Millisecond
	spawnGap, reapGap := 5*time.Millisecond, 15*time.Millisecond
	if emulated() {
		// qemu-user translates every agent from scratch: 500 would take
		// minutes to start. 60, spawned by emulated forks, keep the
		// spawner busy for longer than the probes span.
		n, probes, T, late = 60, 8, 600*time.Millisecond, 500*time.Millisecond
		spawnGap, reapGap = 20*time.Millisecond, 30*time.Millisecond
	}
	dir := t.TempDir()
	fifo, marks, ready := filepath.Join(dir, "release"), filepath.Join(dir, "storm"), filepath.Join(dir, "ready")
	for _, d := range []string{marks, ready} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Our read-write end keeps the FIFO open for writing, so children's
	// opens do not block and their reads end, all at once, when we close it.
	release, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer release.Close()
	// Storm agents' children (marked) report ready and wait for the
	// release; any other agent's child exits at once. $1 is the agent pid.
	prog := writeScript(t, t.TempDir(), "storm", `[ -e `+marks+`/$1 ] || exit 0
exec 3<`+fifo+`
: > `+ready+`/$1
read x <&3
exit 0
`)
	audit := filepath.Join(t.TempDir(), "audit")
	w := startWatch(t, "--threshold-ms", strconv.FormatInt(T.Milliseconds(), 10), "--tracker-capacity", "1024",
		"--recovery-max-concurrent", "1024", // this test is about the spawn and reap budgets
		"--recovery-exec", prog, "--recovery-audit-file", audit, "--prom-addr", "127.0.0.1:0")
	stopped := false
	t.Cleanup(func() {
		if stopped {
			w.signal(syscall.SIGCONT)
		}
		if t.Failed() {
			t.Logf("observer log:\n%s", w.logText())
		}
	})

	// The boot record pairs the observer's start (observer_ns 0, the
	// event file's origin) with the wall clock, to the millisecond.
	boot := ofKind(readAudit(t, audit), "boot", "", "")[0]
	wallOf := func(ns int64) time.Time { return boot.wall.Add(time.Duration(ns)) }

	t0 := time.Now()
	// Released together, the agents beat over 50 ms, ten per millisecond:
	// every read wakes every blocked sender, so 500 senders blocked at once
	// would be a herd that starves the observer of CPU.
	s := startAgents(t, w.socket, n, func(i int) time.Duration { return time.Duration(i%50) * time.Millisecond })
	spawnProbes := startAgents(t, w.socket, probes, func(i int) time.Duration { return time.Duration(i) * spawnGap })
	reapProbes := startAgents(t, w.socket, probes, func(i int) time.Duration { return time.Duration(i) * reapGap })
	stormPids := map[string]bool{}
	for _, c := range s.cmds {
		p := strconv.Itoa(c.Process.Pid)
		stormPids[p] = true
		if err := os.WriteFile(filepath.Join(marks, p), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	noise := startNoise(t, dir)
	start := time.Now()
	s.releaseAll()
	waitBeats := func(g *agentGroup) {
		t.Helper()
		for deadline := time.Now().Add(patience(10 * time.Second)); ; time.Sleep(5 * time.Millisecond) {
			ev, k := eventTimes(w), 0
			for _, c := range g.cmds {
				if len(ev["beat "+strconv.Itoa(c.Process.Pid)]) == 1 {
					k++
				}
			}
			if k == len(g.cmds) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d beats arrived", k, len(g.cmds))
			}
		}
	}
	waitBeats(s)
	allIn := time.Now()
	spawnProbes.releaseAll()
	waitBeats(spawnProbes)
	w.signal(syscall.SIGSTOP)
	stopped = true
	stop := time.Now()
	time.Sleep(time.Until(allIn.Add(T + 20*time.Millisecond))) // every storm deadline passes meanwhile
	resumed := time.Now()
	w.signal(syscall.SIGCONT)
	stopped = false
	t.Logf("%d agents started in %v, beat within %v; the observer was stopped for %v", n, start.Sub(t0),
		allIn.Sub(start), resumed.Sub(stop))

	maxOut := 0.0
	waitStorm := func(what string, done func() bool) {
		t.Helper()
		deadline := time.Now().Add(patience(30 * time.Second))
		for !done() {
			if time.Now().After(deadline) {
				m := w.scrape()
				t.Fatalf("after %v waiting for %s: spawned %v, reaped_zero %v, outstanding %v", time.Since(start),
					what, m[outcomeKey("spawned")], m[outcomeKey("reaped_zero")], m["varta_recovery_outstanding"])
			}
			time.Sleep(20 * time.Millisecond)
			maxOut = max(maxOut, w.scrape()["varta_recovery_outstanding"])
		}
	}
	waitStorm("every storm child to start", func() bool {
		m, _ := filepath.Glob(ready + "/*")
		return len(m) == n
	})
	spawned := time.Now()
	if out := w.scrape()["varta_recovery_outstanding"]; out < float64(n) || out > 1024 {
		t.Errorf("%v children outstanding with every storm child running, want %d to 1024", out, n)
	}
	// The reaping storm, made the same way: the reap probes beat, the
	// observer is stopped, every storm child is released and exits, and
	// the observer is continued just before the first probe is due.
	reapProbes.releaseAll()
	waitBeats(reapProbes)
	w.signal(syscall.SIGSTOP)
	stopped = true
	release.Close()
	waitGone(t, "storm children running", patience(10*time.Second), func() []procEntry {
		var running []procEntry
		for _, p := range procTable() {
			if p.ppid == w.observerPid() && p.state != 'Z' {
				running = append(running, p)
			}
		}
		return running
	})
	firstDue := time.Time{}
	ev := eventTimes(w)
	for _, c := range reapProbes.cmds {
		if d := wallOf(ev["beat "+strconv.Itoa(c.Process.Pid)][0] + int64(T)); firstDue.IsZero() || d.Before(firstDue) {
			firstDue = d
		}
	}
	time.Sleep(time.Until(firstDue.Add(-10 * time.Millisecond)))
	reapResumed := time.Now()
	w.signal(syscall.SIGCONT)
	stopped = false
	stormDone := func() []auditRec {
		var out []auditRec
		for _, r := range ofKind(readAudit(t, audit), "complete", "", "") {
			if stormPids[r.kv["agent_pid"]] {
				out = append(out, r)
			}
		}
		return out
	}
	waitStorm("every storm child to be reaped", func() bool { return len(stormDone()) == n })
	sched, sync := noise.stop()
	t.Logf("storm children all started %v after the release, all reaped %v after theirs; at most %v outstanding",
		spawned.Sub(start), time.Since(spawned), maxOut)
	waitStorm("every probe's child to be reaped", func() bool {
		m := w.scrape()
		return m[outcomeKey("reaped_zero")] == float64(n+2*probes)
	})

	// Every agent was recovered exactly once, and its child exited 0.
	recs := readAudit(t, audit)
	spawns := map[string]auditRec{}
	for _, r := range ofKind(recs, "spawn", "", "") {
		if _, dup := spawns[r.kv["agent_pid"]]; dup {
			t.Errorf("agent %s spawned twice", r.kv["agent_pid"])
		}
		spawns[r.kv["agent_pid"]] = r
	}
	for _, c := range slices.Concat(s.cmds, spawnProbes.cmds, reapProbes.cmds) {
		if _, ok := spawns[strconv.Itoa(c.Process.Pid)]; !ok {
			t.Errorf("agent %d was never recovered", c.Process.Pid)
		}
	}
	if r := ofKind(recs, "refused", "", ""); len(r) > 0 {
		t.Errorf("%d refusals, the first %v", len(r), r[0].kv)
	}
	m := w.scrape()
	for _, label := range recovery.OutcomeLabels {
		want := 0.0
		if label == "spawned" || label == "reaped_zero" {
			want = float64(n + 2*probes)
		}
		if m[outcomeKey(label)] != want {
			t.Errorf("%s = %v, want %v", outcomeKey(label), m[outcomeKey(label)], want)
		}
	}
	if maxOut > 1024 {
		t.Errorf("%v children outstanding, more than the table's 1024", maxOut)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The storms' spans, and how many stalls came at once.
	ev = eventTimes(w)
	atOnce := map[int64]int{}
	for p := range stormPids {
		atOnce[ev["stall "+p][0]]++
	}
	most := 0
	for _, k := range atOnce {
		most = max(most, k)
	}
	// A record's time: its observer_ns on the boot record's wall clock
	// (wallclock_ms is only to the millisecond).
	at := func(r auditRec) time.Time {
		ns, _ := strconv.ParseInt(r.kv["observer_ns"], 10, 64)
		return wallOf(ns)
	}
	var spawnSpan, reapSpan span
	for p := range stormPids {
		if r := spawns[p]; at(r).After(resumed) {
			spawnSpan.add(at(r))
		}
	}
	for _, r := range stormDone() {
		reapSpan.add(at(r))
	}

	// Every probe was raised within a loop iteration of its deadline (its
	// beat + threshold, both on the observer's clock). An iteration costs
	// at most 4 spawns and 8 reaps, each a synced audit record: on a quiet
	// machine well under late; on one shared with other work, as long as
	// the waits for a CPU and for the disk that this test saw meanwhile
	// make it.
	bound := max(late, 4*sched+12*sync)
	var worst time.Duration
	// probed returns how many of g's stalls fell inside sp, and the span of
	// their deadlines; probes due before the observer was continued at
	// resumed do not count.
	probed := func(g *agentGroup, sp span, resumed time.Time) (inside int, due span) {
		for _, c := range g.cmds {
			p := strconv.Itoa(c.Process.Pid)
			b, s := ev["beat "+p], ev["stall "+p]
			if len(b) != 1 || len(s) != 1 {
				t.Fatalf("probe %s: beats at %v, stalls at %v; want one each", p, b, s)
			}
			if !wallOf(b[0] + int64(T)).After(resumed) {
				continue
			}
			worst = max(worst, time.Duration(s[0]-b[0])-T)
			due.add(wallOf(b[0] + int64(T)))
			if sp.holds(wallOf(s[0])) {
				inside++
			}
		}
		return inside, due
	}
	inSpawn, spawnDue := probed(spawnProbes, spawnSpan, resumed)
	inReap, reapDue := probed(reapProbes, reapSpan, reapResumed)
	t.Logf("%d of %d storm stalls were raised at once; spawning took %v after the stop, reaping %v; "+
		"%d probes stalled while spawning, %d while reaping, at worst %v late (bound %v: CPU waits up to %v, "+
		"syncs up to %v)", most, n, spawnSpan.length(), reapSpan.length(), inSpawn, inReap, worst, bound, sched, sync)
	if worst > bound {
		t.Errorf("a probe's stall was raised %v after its deadline, want under %v", worst, bound)
	}
	// Where a storm overlapped the probes' deadlines by two gaps, some
	// probe must have been raised during it; elsewhere the bound alone
	// speaks (a fast machine may finish spawning before the first probe
	// is due).
	if o := spawnSpan.overlap(spawnDue); o > 2*spawnGap && inSpawn == 0 {
		t.Errorf("no probe stalled during the %v of spawning, %v of which the probes' deadlines covered", spawnSpan.length(), o)
	}
	if o := reapSpan.overlap(reapDue); o > 2*reapGap && inReap == 0 {
		t.Errorf("no probe stalled during the %v of reaping, %v of which the probes' deadlines covered", reapSpan.length(), o)
	}
	if z := zombiesOf(w.observerPid()); len(z) > 0 {
		t.Errorf("zombie children of the observer: %v", z)
	}
	stopCleanly(t, w)
}

// noise measures, while a test runs, how late a sleeping goroutine of
// this process wakes and how long an fdatasync takes: what other work on
// the machine costs the observer's loop.
type noise struct {
	stopCh      chan struct{}
	done        chan struct{}
	sched, sync time.Duration
}

func startNoise(t *testing.T, dir string) *noise {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "noise"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	n := &noise{done: make(chan struct{})}
	stop := make(chan struct{})
	go func() {
		defer close(n.done)
		defer f.Close()
		const nap = 10 * time.Millisecond
		for {
			select {
			case <-stop:
				return
			default:
			}
			t0 := time.Now()
			time.Sleep(nap)
			t1 := time.Now()
			f.Write([]byte("a line of an audit record's size, more or less, to sync\n"))
			unix.Fdatasync(int(f.Fd()))
			n.sched = max(n.sched, t1.Sub(t0)-nap)
			n.sync = max(n.sync, time.Since(t1))
		}
	}()
	t.Cleanup(func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-n.done
	})
	n.stopCh = stop
	return n
}

// stop ends the measurement and returns the worst wake-up delay and sync.
func (n *noise) stop() (sched, sync time.Duration) {
	close(n.stopCh)
	<-n.done
	return n.sched, n.sync
}

// span is the interval covered by a set of times.
type span struct{ first, last time.Time }

func (s *span) add(t time.Time) {
	if s.first.IsZero() || t.Before(s.first) {
		s.first = t
	}
	if t.After(s.last) {
		s.last = t
	}
}

func (s span) length() time.Duration { return s.last.Sub(s.first) }

func (s span) holds(t time.Time) bool { return !t.Before(s.first) && !t.After(s.last) }

// overlap is how long s and o overlap.
func (s span) overlap(o span) time.Duration {
	first, last := s.first, s.last
	if o.first.After(first) {
		first = o.first
	}
	if o.last.Before(last) {
		last = o.last
	}
	return max(0, last.Sub(first))
}
