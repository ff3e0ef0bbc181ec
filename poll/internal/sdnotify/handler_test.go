package sdnotify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/vlp"
)

// testHandler binds a notify socket in a fresh directory over a tracker
// whose beats go straight to Observe, and connects a client to it: the
// test process itself, whose credentials the kernel attaches.
func testHandler(t *testing.T) (*Handler, *track.Tracker, int) {
	t.Helper()
	tr := track.NewTracker(track.TrackerConfig{Capacity: 8, Threshold: int64(5e9), MaxBeatRate: 1000})
	h, err := Listen(Config{Path: filepath.Join(t.TempDir(), "notify.sock"), Mode: 0o600, Tracker: tr,
		Log:     sink.NewLogger(nil),
		Track:   func(f vlp.Frame, o track.Origin, now int64) bool { return tr.Observe(f, o, now).Verdict.Accepted() },
		Other:   func(int64, *vlp.Frame, uint32) bool { return false },
		Allowed: func(uid uint32) bool { return uid == uint32(os.Getuid()) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: h.uds.Path()}); err != nil {
		t.Fatal(err)
	}
	unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 1<<18)
	return h, tr, fd
}

func send(t *testing.T, fd int, msg string) {
	t.Helper()
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		t.Fatal(err)
	}
}

// TestHandlerApplies: a first message tracks the sender; STATUS, the own
// threshold and a trigger reach its slot; STOPPING forgets it and refuses
// what it sends later; bad input is counted.
func TestHandlerApplies(t *testing.T) {
	h, tr, fd := testHandler(t)
	me := uint32(os.Getpid())
	send(t, fd, "READY=1\nSTATUS=starting")
	h.Ready(0, 0, 1000)
	s := tr.Lookup(me)
	if s == nil || s.Beats != 1 || string(tr.Text(tr.ID(me))) != "starting" {
		t.Fatalf("after READY=1: slot %+v, want tracked with its status", s)
	}
	send(t, fd, "WATCHDOG=1\nWATCHDOG_USEC=20000") // 20 ms
	h.Ready(0, 0, 2000)
	if s := tr.Lookup(me); s.Beats != 2 || tr.SlotThreshold(tr.ID(me)) != int64(20e6) {
		t.Fatalf("after WATCHDOG_USEC: beats %d, threshold %d, want 2 and 20 ms", s.Beats, tr.SlotThreshold(tr.ID(me)))
	}
	send(t, fd, "WATCHDOG_USEC=1") // clamped to 10 ms
	h.Ready(0, 0, 3000)
	if got := tr.SlotThreshold(tr.ID(me)); got != MinThreshold {
		t.Fatalf("1 µs: threshold %d, want it clamped to %d", got, MinThreshold)
	}
	send(t, fd, "STATUS="+strings.Repeat("x", 100)+"\nFOO=1\nnonsense\nWATCHDOG_USEC=0")
	h.Ready(0, 0, 4000)
	if s := tr.Lookup(me); s.Beats != 3 || len(tr.Text(tr.ID(me))) != track.TextMax {
		t.Fatalf("a STATUS-only message: beats %d (want 3: no beat), text %d bytes", s.Beats, len(tr.Text(tr.ID(me))))
	}
	send(t, fd, strings.Repeat("W", MaxMessage+1))
	send(t, fd, "WATCHDOG=trigger")
	readAll(h, 2, 5000)
	if ev, ok := tr.PopStall(5000); !ok || ev.Pid != me {
		t.Fatalf("after WATCHDOG=trigger: PopStall = %+v, %v, want our stall", ev, ok)
	}
	send(t, fd, "STOPPING=1")
	send(t, fd, "WATCHDOG=1")
	readAll(h, 2, 6000)
	if tr.Lookup(me) != nil {
		t.Fatal("still tracked after STOPPING=1 and a later WATCHDOG=1")
	}
	c := h.Counts()
	want := map[string][2]uint64{
		"truncated":      {c.Truncated, 1},
		"unknown":        {c.Unknown, 1},
		"malformed":      {c.Bad[BadMalformed], 1},
		"watchdog_usec":  {c.Bad[BadUsec], 1},
		"after_stopping": {c.Bad[BadAfterStopping], 1},
		"ready":          {c.Kinds[KindReady], 1},
		"watchdog":       {c.Kinds[KindWatchdog], 1},
		"trigger":        {c.Kinds[KindTrigger], 1},
		"stopping":       {c.Kinds[KindStopping], 1},
		"status":         {c.Kinds[KindStatus], 2},
		"usec":           {c.Kinds[KindWatchdogUsec], 2},
		"triggered":      {c.Triggered, 1},
	}
	for k, v := range want {
		if v[0] != v[1] {
			t.Errorf("%s = %d, want %d", k, v[0], v[1])
		}
	}
}

// TestHandlerRefusals: a uid not allowed and a claim the beat path
// refuses (MAINPID of a process that is not the sender's parent) are
// dropped and counted; nothing is tracked.
func TestHandlerRefusals(t *testing.T) {
	h, tr, fd := testHandler(t)
	h.cfg.Allowed = func(uint32) bool { return false }
	send(t, fd, "WATCHDOG=1")
	h.Ready(0, 0, 1)
	h.cfg.Allowed = func(uint32) bool { return true }
	send(t, fd, "MAINPID=1234567\nWATCHDOG=1")
	h.Ready(0, 0, 2)
	if tr.Len() != 0 || h.c.Bad[BadUID] != 1 || h.c.Bad[BadRefused] != 1 {
		t.Fatalf("tracked %d, uid %d, refused %d; want 0, 1, 1", tr.Len(), h.c.Bad[BadUID], h.c.Bad[BadRefused])
	}
}

// TestHandlerRateLimited: messages that are not beats spend the pid's
// rate like beats, and are dropped over it.
func TestHandlerRateLimited(t *testing.T) {
	h, _, fd := testHandler(t)
	tr2 := track.NewTracker(track.TrackerConfig{Capacity: 8, Threshold: int64(5e9), MaxBeatRate: 2})
	h.cfg.Tracker = tr2
	h.cfg.Track = func(f vlp.Frame, o track.Origin, now int64) bool { return tr2.Observe(f, o, now).Verdict.Accepted() }
	for range 4 {
		send(t, fd, "STATUS=x")
	}
	readAll(h, 4, 1)
	if h.c.Bad[BadRateLimited] != 2 {
		t.Fatalf("rate_limited = %d, want 2 of 4 (a burst of 2)", h.c.Bad[BadRateLimited])
	}
}

// TestHandlerNoAllocs: a handled message allocates nothing.
func TestHandlerNoAllocs(t *testing.T) {
	h, tr, fd := testHandler(t)
	msg := []byte("WATCHDOG=1\nSTATUS=running fine\nWATCHDOG_USEC=3000000\nFDSTORE=1\nX_UNKNOWN=1")
	now := int64(0)
	allocs := testing.AllocsPerRun(200, func() {
		now += 1e7
		unix.Write(fd, msg)
		h.Ready(0, 0, now)
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per message, want 0", allocs)
	}
	if s := tr.Lookup(uint32(os.Getpid())); s == nil || s.Beats < 200 {
		t.Fatalf("the messages were not all beats: %+v", s)
	}
}

// readAll hands h the sent messages queued on its socket. Under qemu-user
// one receive call may return fewer messages than are queued, and Ready
// stops at a short batch, so Ready is called once per message sent (an
// empty socket costs nothing).
func readAll(h *Handler, sent int, now int64) {
	for range sent {
		h.Ready(0, 0, now)
	}
}
