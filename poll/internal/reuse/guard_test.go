package reuse

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

func TestJudge(t *testing.T) {
	const now = int64(1000 * TickNs) // boottime of the sample
	start := uint64(900)             // the holder started in [9.00 s, 9.01 s)
	s := int64(start) * TickNs
	for _, tc := range []struct {
		name   string
		queued int64
		err    int64
		want   Verdict
	}{
		{"long after the start", s + 50*TickNs, 1000, After},
		{"one tick and the margin after", s + TickNs + slackNs + 1000, 1000, After},
		{"just inside the margin after the tick", s + TickNs + slackNs + 999, 1000, Unverifiable},
		{"within the start's tick", s + TickNs/2, 1000, Unverifiable},
		{"at the tick's first ns", s, 0, Unverifiable},
		{"just inside the margin before", s - slackNs, 0, Unverifiable},
		{"before the start, past the margin", s - slackNs - 1, 0, Recycled},
		{"long before the start", s - 50*TickNs, 1000, Recycled},
		{"a wider error widens the blind spot", s - 2*slackNs, 2 * slackNs, Unverifiable},
		{"queued after the sample: an unseen step", now + slackNs + 1, 0, Unverifiable},
		{"negative error", s + 50*TickNs, -1, Unverifiable},
	} {
		if got := Judge(tc.queued, tc.err, now, start); got != tc.want {
			t.Errorf("%s: Judge(%d, %d, %d, %d) = %v, want %v", tc.name, tc.queued, tc.err, now, start, got, tc.want)
		}
	}
	if got := Judge(now, 0, now, 1<<62); got != Unverifiable {
		t.Errorf("Judge with a start past int64 ns = %v, want Unverifiable", got)
	}
}

// fakeProcs stands in for /proc: one pid's start time, counting reads.
type fakeProcs struct {
	ticks uint64
	proc  track.Proc
	reads int
}

func (p *fakeProcs) start(uint32) (uint64, track.Proc) {
	p.reads++
	return p.ticks, p.proc
}

// clocks is clock_gettime with the wall clock shifted by step ns: a
// test's wall-clock step, as the observer would see it.
type clocks struct{ step int64 }

func (c *clocks) gettime(id int32, ts *unix.Timespec) error {
	if err := clockGettime(id, ts); err != nil {
		return err
	}
	if id == unix.CLOCK_REALTIME {
		*ts = unix.NsecToTimespec(ts.Nano() + c.step)
	}
	return nil
}

// rig is a real stamped socket with a receiver, a tracker reading start
// times through the guard, and the guard.
type rig struct {
	t      testing.TB
	rx     *listen.Receiver
	client int
	tr     *track.Tracker
	g      *Guard
	procs  *fakeProcs
	clk    *clocks
}

const testPid = 4242

func newRig(t testing.TB) *rig {
	u, err := listen.ListenUDS(filepath.Join(t.TempDir(), "s"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { u.Close() })
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: u.Path()}); err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, rx: listen.NewReceiver(u.Fd(), 4), client: fd, procs: &fakeProcs{proc: track.ProcAlive}, clk: &clocks{}}
	r.g = newGuard(r.procs.start, r.clk.gettime)
	r.tr = track.NewTracker(track.TrackerConfig{Capacity: 4, Threshold: 100, StartTime: r.g.StartTime})
	return r
}

// recv sends n datagrams, reads them in one batch and returns the first
// one's queue time as boottime ticks (floor).
func (r *rig) recv(n int) uint64 {
	r.t.Helper()
	for range n {
		if _, err := unix.Write(r.client, []byte("x")); err != nil {
			r.t.Fatal(err)
		}
	}
	if got, err := r.rx.Recv(); got != n || err != nil {
		r.t.Fatalf("Recv() = %d, %v, want %d", got, err, n)
	}
	q, ok := r.rx.Queued(0)
	if !ok {
		r.t.Fatal("no receive timestamp")
	}
	var real, boot unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &real)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &boot)
	return uint64((q - (real.Nano() - boot.Nano())) / TickNs)
}

// observe runs message i through Check and, when it passes, the tracker.
func (r *rig) observe(i int, nonce uint64, now int64) string {
	why := r.g.Check(r.rx, i, r.tr, testPid)
	if why == "" {
		r.tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: testPid, Nonce: nonce}, track.OriginUDS, now)
	}
	return why
}

// Pid reuse before the frame is read, in the small: the frame was queued, its
// sender exited, and another process started on the pid before the frame
// was read. It is dropped, counted, and the pid is not tracked.
func TestCheckRecycled(t *testing.T) {
	r := newRig(t)
	q := r.recv(1)
	r.procs.ticks = q + 100 // the holder started a second after the frame
	if why := r.observe(0, 1, 1); why != msgRecycled {
		t.Fatalf("Check = %q, want the recycled message", why)
	}
	if r.g.Recycled() != 1 || r.g.Unverifiable() != 0 || r.tr.Len() != 0 {
		t.Fatalf("recycled %d, unverifiable %d, tracked %d; want 1, 0, 0", r.g.Recycled(), r.g.Unverifiable(), r.tr.Len())
	}
}

// A frame queued after its holder started opens a verified session; the
// tracker takes the start time Check read instead of reading /proc again,
// and later frames cost no /proc read at all.
func TestCheckAfterOpensVerified(t *testing.T) {
	r := newRig(t)
	q := r.recv(1)
	r.procs.ticks = q - 100
	if why := r.observe(0, 1, 1); why != "" {
		t.Fatalf("Check = %q, want the frame passed", why)
	}
	s := r.tr.Lookup(testPid)
	if s == nil || !s.HasStartTime || s.StartTime != q-100 || s.StartUnknown {
		t.Fatalf("slot = %+v, want a verified session with start %d", s, q-100)
	}
	if r.procs.reads != 1 {
		t.Errorf("/proc read %d times for a new session, want once (the tracker reuses Check's read)", r.procs.reads)
	}
	r.recv(3)
	for i := range 3 {
		if why := r.observe(i, uint64(2+i), 2); why != "" {
			t.Fatalf("Check of a verified session's frame = %q", why)
		}
	}
	if r.procs.reads != 1 {
		t.Errorf("/proc read %d times, want no read for a verified session's frames", r.procs.reads)
	}
	// A start time nobody asked for is not handed out: the next read
	// goes to /proc.
	if _, _ = r.g.StartTime(testPid); r.procs.reads != 2 {
		t.Errorf("StartTime after the session opened read /proc %d times in all, want 2", r.procs.reads)
	}
}

// A frame queued within the holder's first clock tick cannot be told from
// a predecessor's: it opens a session whose stall recovery will not act
// on, until a frame queued clearly after the start verifies it.
func TestCheckUnverifiableThenVerified(t *testing.T) {
	r := newRig(t)
	q := r.recv(1)
	r.procs.ticks = q // started in the frame's own tick
	if why := r.observe(0, 1, 1); why != "" {
		t.Fatalf("Check = %q, want the frame passed to an unverified session", why)
	}
	s := r.tr.Lookup(testPid)
	if s == nil || s.HasStartTime || !s.StartUnknown {
		t.Fatalf("slot = %+v, want an unverified session", s)
	}
	if r.g.Unverifiable() != 1 {
		t.Fatalf("Unverifiable() = %d, want 1", r.g.Unverifiable())
	}
	if ev, ok := r.tr.PopStall(200); !ok || !ev.Unverifiable {
		t.Fatalf("PopStall = %+v, %v, want an unverifiable stall", ev, ok)
	}
	// More frames of that tick join the unverified session uncounted.
	r.recv(1)
	if why := r.observe(0, 2, 300); why != "" || r.g.Unverifiable() != 1 {
		t.Fatalf("Check = %q, Unverifiable() = %d, want passed and still 1", why, r.g.Unverifiable())
	}
	// The process was at it a tick earlier than its frame: verified.
	r.recv(1)
	r.procs.ticks = q - 2
	if why := r.observe(0, 3, 400); why != "" {
		t.Fatalf("Check = %q", why)
	}
	reads := r.procs.reads
	if s := r.tr.Lookup(testPid); !s.HasStartTime || s.StartTime != q-2 || s.StartUnknown || s.Beats != 1 {
		t.Fatalf("slot = %+v, want a new, verified session with start %d", s, q-2)
	}
	if r.procs.reads != reads {
		t.Error("the verified session read /proc again")
	}
	if ev, ok := r.tr.PopStall(600); !ok || ev.Unverifiable || ev.Retired {
		t.Fatalf("PopStall = %+v, %v, want a plain stall of the verified session", ev, ok)
	}
}

// A frame for a verified session that was queued before the session's
// process started (the clocks say so; a wall-clock step can make it seem
// so) is judged in full, and dropped.
func TestCheckVerifiedSessionOlderFrame(t *testing.T) {
	r := newRig(t)
	// A session whose process, as /proc says, started a second from now.
	r.procs.ticks = r.recv(1) + 100
	r.tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: testPid, Nonce: 1}, track.OriginUDS, 1)
	if s := r.tr.Lookup(testPid); s == nil || !s.HasStartTime {
		t.Fatalf("slot = %+v, want a verified session", s)
	}
	r.recv(1)
	if why := r.observe(0, 2, 2); why != msgRecycled {
		t.Fatalf("Check = %q, want the recycled message", why)
	}
	if r.tr.Lookup(testPid).Beats != 1 {
		t.Fatal("the dropped frame reached the session")
	}
}

// No process on the pid, or /proc cannot tell: the guard leaves the frame
// to the tracker's own handling (a one-shot sender; out of descriptors).
func TestCheckHolderGoneOrUnknown(t *testing.T) {
	for _, proc := range []track.Proc{track.ProcGone, track.ProcUnknown} {
		r := newRig(t)
		r.procs.proc = proc
		r.recv(1)
		if why := r.observe(0, 1, 1); why != "" || r.g.Recycled()+r.g.Unverifiable() != 0 {
			t.Fatalf("proc %v: Check = %q, counts %d, %d; want passed, uncounted", proc, why, r.g.Recycled(), r.g.Unverifiable())
		}
	}
}

// A wall-clock step between two samples: until a receive call made after
// it drains the queue, a frame is judged with the offsets from both sides
// of the step, and one they disagree on is unverifiable, not recycled.
func TestCheckAcrossClockStep(t *testing.T) {
	r := newRig(t)
	q := r.recv(1)
	r.procs.ticks = q - 10 // a tenth of a second before the frame
	r.observe(0, 1, 1)
	r.tr.Remove(testPid) // each frame below opens a session again

	// The wall clock is now seen an hour ahead: converted with the new
	// offset the frame seems an hour older than its holder.
	r.clk.step = 3600e9
	r.recv(4) // a full batch: the queue may hold more
	if why := r.g.Check(r.rx, 0, r.tr, testPid); why != "" || r.g.Steps() != 1 || r.g.Unverifiable() != 1 {
		t.Fatalf("Check = %q, steps %d, unverifiable %d; want passed as unverifiable, 1 step, 1",
			why, r.g.Steps(), r.g.Unverifiable())
	}
	if r.g.Recycled() != 0 {
		t.Fatal("a frame across a clock step was taken for a recycled pid's")
	}
	// A later, partial batch drains the queue; the one after it holds
	// only frames queued after the step, judged on the new offset alone
	// (here: an hour "before" the holder, so recycled).
	r.recv(1)
	r.g.Check(r.rx, 0, r.tr, testPid)
	r.recv(1)
	if why := r.g.Check(r.rx, 0, r.tr, testPid); why != msgRecycled {
		t.Fatalf("Check after the queue drained = %q, want the recycled message", why)
	}
}

// A verified session's frames, the per-beat path, allocate nothing and
// read neither /proc nor the clocks.
func TestCheckVerifiedNoAllocs(t *testing.T) {
	r := newRig(t)
	q := r.recv(1)
	r.procs.ticks = q - 100
	r.observe(0, 1, 1)
	r.recv(1)
	reads := r.procs.reads
	allocs := testing.AllocsPerRun(100, func() {
		if r.g.Check(r.rx, 0, r.tr, testPid) != "" {
			t.Fatal("dropped")
		}
	})
	if allocs != 0 || r.procs.reads != reads {
		t.Fatalf("%v allocations, %d /proc reads per verified frame, want 0, 0", allocs, r.procs.reads-reads)
	}
}

// BenchmarkCheckVerified is the per-beat cost: a verified session's frame.
func BenchmarkCheckVerified(b *testing.B) {
	r := newRig(b)
	q := r.recv(1)
	r.procs.ticks = q - 100
	r.observe(0, 1, 1)
	r.recv(1)
	b.ReportAllocs()
	for b.Loop() {
		if r.g.Check(r.rx, 0, r.tr, testPid) != "" {
			b.Fatal("dropped")
		}
	}
}

// BenchmarkCheckNewSession is the cost once per session: /proc (here a
// stand-in) and a sample of the clocks per frame, each one in a batch of
// its own, as when a new agent's first beat arrives alone.
func BenchmarkCheckNewSession(b *testing.B) {
	r := newRig(b)
	q := r.recv(1)
	r.procs.ticks = q - 100
	b.ReportAllocs()
	for b.Loop() {
		r.g.sampleCall = 0 // a fresh batch each time
		if r.g.Check(r.rx, 0, r.tr, testPid) != "" {
			b.Fatal("dropped")
		}
	}
}

func BenchmarkClockSample(b *testing.B) {
	g := New(nil)
	for b.Loop() {
		g.read()
	}
}

// A frame for a verified session whose process still holds the pid is kept
// when the clocks cannot place it (queued within the tick of the start, or
// a sample whose reads were far apart under load): it was queued after
// what was read before it.
func TestCheckVerifiedSessionUnplaceable(t *testing.T) {
	r := newRig(t)
	// A session verified by /proc alone (as --state-file restores one),
	// its process started in the tick its frames are queued in.
	r.procs.ticks = r.recv(1)
	r.tr.Observe(vlp.Frame{Status: vlp.Ok, Pid: testPid, Nonce: 1}, track.OriginUDS, 1)
	if s := r.tr.Lookup(testPid); s == nil || !s.HasStartTime {
		t.Fatalf("slot = %+v, want a verified session", s)
	}
	r.recv(1)
	if why := r.observe(0, 2, 2); why != "" || r.tr.Lookup(testPid).Beats != 2 || r.g.Unverifiable() != 0 {
		t.Fatalf("Check = %q, beats %d, unverifiable %d; want the frame kept in the session, nothing counted",
			why, r.tr.Lookup(testPid).Beats, r.g.Unverifiable())
	}
}
