package scrape

import (
	"bytes"
	"net/netip"
	"slices"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/poll/internal/track"
	"github.com/varta-go/varta/promtext"
	"github.com/varta-go/varta/vlp"
)

func testTracker(t testing.TB, n int, pids ...uint32) *track.Tracker {
	t.Helper()
	tr := track.NewTracker(track.TrackerConfig{Capacity: n, Threshold: 1e12})
	for _, pid := range pids {
		if v := tr.Observe(vlp.Frame{Pid: pid, Nonce: 1}, track.OriginUDP, 1).Verdict; !v.Accepted() {
			t.Fatalf("Observe(%d) = %v", pid, v)
		}
	}
	return tr
}

// rowsOf returns the pids of family's rows in body, in order.
func rowsOf(body []byte, family string) []uint64 {
	var pids []uint64
	prefix := []byte(family + `{pid="`)
	for _, line := range bytes.Split(body, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(line, prefix); ok {
			pid, _ := strconv.ParseUint(string(rest[:bytes.IndexByte(rest, '"')]), 10, 32)
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPidsFollowSnapshot: a body's pieces follow the pid order taken at
// its start. A pid that leaves the table mid-body has no rows from then
// on, and the pid that takes its slot none at all, so no pid appears twice
// in a family nor out of order; the next body shows the table as it is.
func TestPidsFollowSnapshot(t *testing.T) {
	tr := testTracker(t, 64, 50, 7, 300, 12, 9000, 41)
	paths := track.NewPaths(4, 256)
	var e promtext.Encoder
	c := promtext.Cursor{Keys: make([]uint64, 0, 64)}
	buf := make([]byte, 0, 1<<10)
	var body []byte
	pieces := 0
	for done := false; !done; pieces++ {
		if pieces == 0 {
			e.Reset(buf[:0:400])
		} else {
			e.Continue(buf[:0:400])
		}
		done = Pids(&e, &c, tr, paths, 2e9)
		if pieces == 1 {
			// 300 leaves mid-body and 301 takes its slot.
			tr.Remove(300)
			if v := tr.Observe(vlp.Frame{Pid: 301, Nonce: 1}, track.OriginUDP, 1).Verdict; !v.Accepted() {
				t.Fatal(v)
			}
		}
		body = append(body, e.Bytes()...)
		if pieces > 100 {
			t.Fatal("Pids never finished")
		}
	}
	if e.Err() != nil {
		t.Fatalf("encoder misuse: %v", e.Err())
	}
	if pieces < 4 {
		t.Fatalf("%d pieces of 400 bytes for %d bytes: the body was not split", pieces, len(body))
	}
	first := rowsOf(body, "varta_beats_total")
	if !slices.Equal(first, []uint64{7, 12, 41, 50, 300, 9000}) {
		t.Errorf("beats rows (before the change) %v, want the snapshot's sorted pids", first)
	}
	last := rowsOf(body, "varta_agent_info")
	if !slices.Equal(last, []uint64{7, 12, 41, 50, 9000}) {
		t.Errorf("info rows (after the change) %v, want the snapshot without 300 and without 301", last)
	}
	for _, f := range pidFamilies {
		if n := bytes.Count(body, []byte("# TYPE "+f.name+" ")); n != 1 {
			t.Errorf("%s: %d TYPE lines, want 1", f.name, n)
		}
	}
	var whole promtext.Encoder
	next := promtext.RenderStream(nil, &whole, &c, 1<<10, func(e *promtext.Encoder, c *promtext.Cursor) bool {
		return Pids(e, c, tr, paths, 2e9)
	})
	if got := rowsOf(next, "varta_status"); !slices.Equal(got, []uint64{7, 12, 41, 50, 301, 9000}) {
		t.Errorf("next body's rows %v, want the table now", got)
	}
}

// TestStreamedRequestNoAllocs: a whole streamed /metrics request of a
// full 4096-pid table, over real loopback TCP, costs no allocation once
// the slot's piece buffer and cursor exist, and its body arrives whole.
func TestStreamedRequestNoAllocs(t *testing.T) {
	const n = 4096
	pids := make([]uint32, n)
	for i := range pids {
		pids[i] = uint32(1000 + (i*7919)%n)
	}
	tr := testTracker(t, n, pids...)
	paths := track.NewPaths(4, 256)
	p, err := New(Config{Addr: "127.0.0.1:0", StreamKeys: n, Alive: func() bool { return true },
		Stream: func(e *promtext.Encoder, c *promtext.Cursor) bool {
			if !Pids(e, c, tr, paths, 2e9) {
				return false
			}
			e.Family("varta_tail", "The fixed families.", promtext.TypeGauge)
			e.Uint(1)
			return true
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ap := netip.MustParseAddrPort(p.addr)
	sa := &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	req := []byte("GET /metrics HTTP/1.1\r\nHost: varta\r\n\r\n")
	resp := make([]byte, 64<<10)
	var total int
	var tail []byte
	var failure string
	scrape := func() {
		total, tail = 0, resp[:0]
		cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			failure = "socket: " + err.Error()
			return
		}
		defer unix.Close(cfd)
		if err := unix.Connect(cfd, sa); err != nil {
			failure = "connect: " + err.Error()
			return
		}
		if _, err := unix.Write(cfd, req); err != nil {
			failure = "write: " + err.Error()
			return
		}
		unix.SetNonblock(cfd, true)
		p.accept(0)
		c := p.srv.Conn(0)
		for spins := 0; ; spins++ {
			if spins == 100000 {
				failure = "the server never finished the request"
				return
			}
			if c.Want(0) != promtext.WantNone {
				p.service(c, 0)
			}
			r, err := unix.Read(cfd, resp)
			if err == unix.EAGAIN {
				continue
			}
			if err != nil || r == 0 {
				return
			}
			total += r
			tail = resp[:r]
		}
	}
	scrape() // warm-up: the piece buffer and the cursor's keys
	allocs := testing.AllocsPerRun(10, scrape)
	if failure != "" {
		t.Fatal(failure)
	}
	if !bytes.HasSuffix(tail, []byte("varta_tail 1\n\r\n0\r\n\r\n")) || total < n*5*20 {
		t.Fatalf("%d bytes ending %q: want a whole chunked body of %d pids", total, tail[max(0, len(tail)-60):], n)
	}
	if allocs != 0 {
		t.Errorf("one streamed /metrics request of %d pids: %v allocations, want 0", n, allocs)
	}
}
