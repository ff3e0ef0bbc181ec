package poll

import (
	"testing"

	"github.com/varta-go/varta/poll/internal/testutil"
	"github.com/varta-go/varta/vlp"
)

// TestLoopStepsNoAllocs: the work of every iteration allocates nothing:
// tracking a beat, and looking for due stalls when none is due (a stall
// event kept by address would move to the heap on every tick; seen once as
// 0.39 allocations per beat under a flood).
func TestLoopStepsNoAllocs(t *testing.T) {
	if testutil.RaceEnabled {
		t.Skip("the race detector allocates")
	}
	o := metricsTestObserver(t, 64, map[uint32]uint64{})
	now := o.clock.now()
	nonce := uint64(0)
	if n := testing.AllocsPerRun(200, func() {
		nonce++
		o.testBeat(4242, nonce, vlp.Ok, now)
		o.raiseStalls(now)
	}); n != 0 {
		t.Errorf("a beat and a look for due stalls: %v allocs, want 0", n)
	}
}
