package sink

import (
	"testing"

	"github.com/varta-go/varta/vlp"
)

func TestEventFileDue(t *testing.T) {
	const t0 = eventTestOrigin + 5_000_000
	for _, tc := range []struct {
		name string
		add  func(e *EventFile)
		at   int64 // ns after t0
		due  bool
	}{
		{"empty", func(e *EventFile) {}, EventFlushDelay, false},
		{"beat waits", func(e *EventFile) { e.Beat(t0, 42, 1, vlp.Ok, 0) }, EventFlushDelay - 1, false},
		{"beat due after the delay", func(e *EventFile) { e.Beat(t0, 42, 1, vlp.Ok, 0) }, EventFlushDelay, true},
		{"decode waits", func(e *EventFile) { e.Decode(t0, vlp.ErrBadMagic, nil) }, 0, false},
		{"stall at once", func(e *EventFile) { e.Beat(t0, 42, 1, vlp.Ok, 0); e.Stall(t0+1, 42, 1) }, 1, true},
		{"mismatch at once", func(e *EventFile) { e.Mismatch(t0, 42, MismatchAuthFailure) }, 0, true},
		{"eviction at once", func(e *EventFile) { e.Eviction(t0, 42) }, 0, true},
		{"exit at once", func(e *EventFile) { e.Exit(t0, 42, 1, vlp.Critical, 0) }, 0, true},
		{"io at once", func(e *EventFile) { e.IO(t0, "recv") }, 0, true},
		{"batch mode: a beat waits longer", func(e *EventFile) {
			e.SetFlushDelay(BatchEventFlushDelay)
			e.Beat(t0, 42, 1, vlp.Ok, 0)
		}, BatchEventFlushDelay - 1, false},
		{"batch mode: a beat due after its delay", func(e *EventFile) {
			e.SetFlushDelay(BatchEventFlushDelay)
			e.Beat(t0, 42, 1, vlp.Ok, 0)
		}, BatchEventFlushDelay, true},
		{"batch mode: a stall at once", func(e *EventFile) {
			e.SetFlushDelay(BatchEventFlushDelay)
			e.Beat(t0, 42, 1, vlp.Ok, 0)
			e.Stall(t0+1, 42, 1)
		}, 1, true},
		{"half-full buffer at once", func(e *EventFile) {
			for i := 0; i < eventFlushBytes/20; i++ {
				e.Beat(t0, 42, uint64(i), vlp.Ok, 0)
			}
		}, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _ := eventTestOpen(t, 0)
			tc.add(e)
			if got := e.Due(t0 + tc.at); got != tc.due {
				t.Errorf("Due(t0+%d) = %v, want %v", tc.at, got, tc.due)
			}
		})
	}
}

func TestEventFileDueAfterFlush(t *testing.T) {
	e, path := eventTestOpen(t, 0)
	e.Stall(eventTestOrigin, 42, 1)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	if e.Due(eventTestOrigin) {
		t.Error("Due after Flush emptied the buffer")
	}
	e.Beat(eventTestOrigin+10, 42, 2, vlp.Ok, 0)
	if e.Due(eventTestOrigin + 10) {
		t.Error("a beat after a flushed stall is due at once; the urgency outlived its line")
	}
	if !e.Due(eventTestOrigin + 10 + EventFlushDelay) {
		t.Error("the new beat is not due EventFlushDelay after it was buffered")
	}
	if got := eventTestRead(t, path); got != "0\tstall\t42\t1\tstall\t-\n" {
		t.Errorf("file holds %q", got)
	}
}

// Lines a failed write kept stay due, so every tick retries them.
func TestEventFileDueAfterFailedFlush(t *testing.T) {
	e, _ := eventTestOpen(t, 0)
	eventTestSwap(t, e, "/dev/full")
	e.Beat(eventTestOrigin, 42, 1, vlp.Ok, 0)
	if !e.Due(eventTestOrigin + EventFlushDelay) {
		t.Fatal("a beat is not due after EventFlushDelay")
	}
	if err := e.Flush(); err == nil {
		t.Fatal("Flush into /dev/full succeeded")
	}
	if !e.Due(eventTestOrigin + EventFlushDelay) {
		t.Error("lines a failed Flush kept are not due")
	}
}
