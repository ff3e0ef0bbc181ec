package track

import (
	"testing"

	"github.com/varta-go/varta/vlp"
)

// hdr is a secure header under the IV prefix named by p.
func hdr(p byte, counter uint32) vlp.SecureHeader {
	h := vlp.SecureHeader{Counter: counter}
	h.IVRandom = [vlp.IVRandomSize]byte{p, p, p, p, p, p, p, p}
	return h
}

type replayStep struct {
	f    vlp.Frame
	h    vlp.SecureHeader
	want ReplayVerdict
}

// TestReplayRules walks one sender (or two) through vlp/PROTOCOL.md §6's rules;
// each step's verdict depends on the steps before it.
func TestReplayRules(t *testing.T) {
	const A, B, C = 'a', 'b', 'c'
	tests := []struct {
		name  string
		steps []replayStep
	}{
		{"counter rises within its prefix", []replayStep{
			{beat(10, 5), hdr(A, 0), ReplayFresh},
			{beat(10, 6), hdr(A, 1), ReplayFresh},
			{beat(10, 6), hdr(A, 1), ReplayRepeated}, // the same datagram again
			{beat(10, 7), hdr(A, 1), ReplayRepeated}, // counter not rising
			{beat(10, 4), hdr(A, 0), ReplayRepeated}, // an older one
			{beat(10, 9), hdr(A, 9), ReplayFresh},    // gaps are lost frames, not replays
		}},
		{"first frame with any counter", []replayStep{
			{beat(10, 77), hdr(A, 4000), ReplayFresh},
			{beat(10, 78), hdr(A, 3999), ReplayRepeated},
		}},
		{"a new prefix needs a higher nonce", []replayStep{
			{beat(10, 5), hdr(A, 0), ReplayFresh},
			{beat(10, 5), hdr(B, 0), ReplayRepeated}, // not newer
			{beat(10, 1), hdr(B, 0), ReplayRepeated}, // a restarted session looks like this too
			{beat(10, 6), hdr(B, 0), ReplayFresh},    // B current, A previous
			{beat(10, 7), hdr(B, 1), ReplayFresh},
		}},
		{"the previous prefix keeps its counter", []replayStep{
			{beat(10, 5), hdr(A, 3), ReplayFresh},
			{beat(10, 6), hdr(B, 0), ReplayFresh},
			{beat(10, 4), hdr(A, 4), ReplayFresh},    // late frame sealed before the switch
			{beat(10, 4), hdr(A, 4), ReplayRepeated}, // and its replay
			{beat(10, 3), hdr(A, 2), ReplayRepeated},
			{beat(10, 7), hdr(B, 1), ReplayFresh}, // B is still current
		}},
		{"a prefix two back is forgotten", []replayStep{
			{beat(10, 5), hdr(A, 0), ReplayFresh},
			{beat(10, 6), hdr(B, 0), ReplayFresh},
			{beat(10, 7), hdr(C, 0), ReplayFresh},    // A drops out
			{beat(10, 5), hdr(A, 1), ReplayRepeated}, // judged as new: nonce 5 is old
			{beat(10, 8), hdr(C, 1), ReplayFresh},
		}},
		{"the previous prefix does not lower the nonce mark", []replayStep{
			{beat(10, 5), hdr(A, 0), ReplayFresh},
			{beat(10, 9), hdr(B, 0), ReplayFresh},
			{beat(10, 6), hdr(A, 1), ReplayFresh}, // late, the mark stays 9
			{beat(10, 8), hdr(C, 0), ReplayRepeated},
			{beat(10, 10), hdr(C, 0), ReplayFresh},
		}},
		{"nonce wrap opens a new prefix", []replayStep{
			{beat(10, top-5), hdr(A, 0), ReplayFresh},
			{beat(10, 3), hdr(B, 0), ReplayFresh}, // wrapped: within 2^20 of zero
			{beat(10, 2), hdr(C, 0), ReplayRepeated},
			{beat(10, 4), hdr(C, 0), ReplayFresh},
		}},
		{"no wrap far from the top", []replayStep{
			{beat(10, top-wrapWindow-1), hdr(A, 0), ReplayFresh},
			{beat(10, 3), hdr(B, 0), ReplayRepeated},
		}},
		{"no wrap to beyond the window", []replayStep{
			{beat(10, top), hdr(A, 0), ReplayFresh},
			{beat(10, wrapWindow+1), hdr(B, 0), ReplayRepeated},
			{beat(10, wrapWindow), hdr(B, 0), ReplayFresh},
		}},
		{"terminal frames", []replayStep{
			{terminal(10, 50), hdr(A, 0), ReplayFresh},
			{terminal(10, 50), hdr(A, 1), ReplayFresh},    // fresh datagram; the tracker judges its timestamp
			{terminal(10, 50), hdr(B, 0), ReplayRepeated}, // new prefix, timestamp not above
			{terminal(10, 51), hdr(B, 0), ReplayFresh},
			{beat(10, 1), hdr(C, 0), ReplayFresh}, // no regular nonce seen yet
			{beat(10, 1), hdr(A, 7), ReplayRepeated},
		}},
		{"a terminal frame does not move the nonce mark", []replayStep{
			{beat(10, 10), hdr(A, 0), ReplayFresh},
			{terminal(10, 99), hdr(A, 1), ReplayFresh},
			{beat(10, 10), hdr(B, 0), ReplayRepeated},
			{beat(10, 11), hdr(B, 0), ReplayFresh},
		}},
		{"senders are independent", []replayStep{
			{beat(10, 5), hdr(A, 0), ReplayFresh},
			{beat(11, 5), hdr(A, 0), ReplayFresh},
			{beat(11, 5), hdr(A, 0), ReplayRepeated},
			{beat(10, 6), hdr(A, 1), ReplayFresh},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rt := NewReplayTable(8, ReplayIdle)
			for i, s := range tc.steps {
				if got := rt.Check(s.f, s.h, int64(i)); got != s.want {
					t.Fatalf("step %d: Check(pid %d nonce %d, prefix %c counter %d) = %v, want %v",
						i, s.f.Pid, s.f.Nonce, s.h.IVRandom[0], s.h.Counter, got, s.want)
				}
			}
		})
	}
}

// TestReplayFullAndExpiry: a full table refuses new senders while every
// entry is live, and makes room from the least recently heard one once it
// has been idle long enough.
func TestReplayFullAndExpiry(t *testing.T) {
	const idle = 100
	rt := NewReplayTable(2, idle)
	check := func(now int64, pid uint32, nonce uint64, want ReplayVerdict) {
		t.Helper()
		if got := rt.Check(beat(pid, nonce), hdr(byte(pid), uint32(nonce)), now); got != want {
			t.Fatalf("t=%d: Check(pid %d, nonce %d) = %v, want %v", now, pid, nonce, got, want)
		}
	}
	check(0, 10, 1, ReplayFresh)
	check(10, 11, 1, ReplayFresh)
	check(50, 12, 1, ReplayTableFull)
	check(60, 10, 2, ReplayFresh)      // 10 is now the most recent
	check(109, 12, 1, ReplayTableFull) // 11 silent for 99: still live
	check(110, 12, 1, ReplayFresh)     // 11 silent for 100: its entry goes
	if rt.Len() != 2 {
		t.Fatalf("Len = %d, want 2", rt.Len())
	}
	check(111, 11, 1, ReplayTableFull) // 11 is a stranger again; 10 and 12 are live
	// An expired sender is remembered no more: its next frame, whatever
	// its counter, starts afresh (the tracker still holds its nonce).
	if n := rt.Expire(60+idle, 10); n != 1 {
		t.Fatalf("Expire dropped %d, want 1 (pid 10, last heard at 60)", n)
	}
	check(61+idle, 10, 1, ReplayFresh)
	check(62+idle, 10, 1, ReplayRepeated)
}

// TestReplayExpireBounded: Expire drops no more than asked, oldest first,
// and nothing still live.
func TestReplayExpireBounded(t *testing.T) {
	const n, idle = 200, 1000
	rt := NewReplayTable(n, idle)
	for i := range n {
		rt.Check(beat(uint32(100+i), 1), hdr(1, 0), int64(i))
	}
	if rt.Len() != n {
		t.Fatalf("Len = %d, want %d", rt.Len(), n)
	}
	// At idle+99, entries 0..99 are idle.
	for _, want := range []int{64, 36, 0} {
		if got := rt.Expire(idle+99, 64); got != want {
			t.Fatalf("Expire = %d, want %d", got, want)
		}
	}
	if rt.Len() != n-100 {
		t.Fatalf("Len = %d, want %d", rt.Len(), n-100)
	}
	// The oldest went: pid 100 is new again, pid 200 still remembered.
	if got := rt.Check(beat(100, 1), hdr(1, 0), idle+100); got != ReplayFresh {
		t.Errorf("expired pid 100: %v, want fresh", got)
	}
	if got := rt.Check(beat(200, 1), hdr(1, 0), idle+100); got != ReplayRepeated {
		t.Errorf("live pid 200: %v, want repeated", got)
	}
}

// TestReplayClockBackwards: an earlier now is treated as the latest seen,
// so a clock glitch cannot make an entry look idle or unsort the list.
func TestReplayClockBackwards(t *testing.T) {
	rt := NewReplayTable(1, 100)
	rt.Check(beat(10, 1), hdr(1, 0), 1000)
	if got := rt.Check(beat(11, 1), hdr(1, 0), 5); got != ReplayTableFull {
		t.Fatalf("Check at an earlier time = %v, want table_full", got)
	}
	if n := rt.Expire(0, 1); n != 0 {
		t.Fatalf("Expire at an earlier time dropped %d", n)
	}
}

func TestReplayNames(t *testing.T) {
	for v, want := range map[ReplayVerdict]string{ReplayFresh: "fresh", ReplayRepeated: "repeated",
		ReplayTableFull: "table_full", 9: "invalid"} {
		if v.String() != want {
			t.Errorf("ReplayVerdict(%d).String() = %q, want %q", v, v.String(), want)
		}
	}
}

func TestNewReplayTablePanics(t *testing.T) {
	for _, n := range []int{0, -1, MaxTrackerCapacity + 1} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewReplayTable(%d) did not panic", n)
				}
			}()
			NewReplayTable(n, ReplayIdle)
		}()
	}
}

var replaySink ReplayVerdict

func TestReplayNoAllocs(t *testing.T) {
	rt := NewReplayTable(ReplaySenders, 100)
	nonce, now := uint64(1), int64(0)
	rt.Check(beat(10, nonce), hdr(1, 0), now)
	cases := []struct {
		name string
		fn   func()
	}{
		{"Check known sender", func() {
			nonce++
			now++
			replaySink = rt.Check(beat(10, nonce), hdr(1, uint32(nonce)), now)
		}},
		{"Check new prefix", func() {
			nonce++
			now++
			replaySink = rt.Check(beat(10, nonce), hdr(byte(nonce), 0), now)
		}},
		{"Check new sender, Expire", func() {
			now += 200
			replaySink = rt.Check(beat(11, 1), hdr(1, 0), now)
			rt.Expire(now+200, ReplayExpiryPerTick)
		}},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(1000, c.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", c.name, n)
		}
	}
}
