package ops

import (
	"time"

	"github.com/varta-go/varta/poll/internal/listen"
	"github.com/varta-go/varta/poll/internal/sink"
)

// CheckQueueLength warns when the kernel's datagram queue limit is too
// small for --batch-ms: between two ticks every agent's beats wait in the
// socket's queue, and a beat that finds it full is lost (the agent sees
// EAGAIN). The queue's length limit, net.unix.max_dgram_qlen, is taken when
// the socket is created; a larger SO_RCVBUF does not raise it.
func CheckQueueLength(log *sink.Logger, capacity int, batch time.Duration) {
	qlen, ok := listen.MaxDgramQlen()
	if !ok {
		return
	}
	need := QueueLengthFor(capacity, batch)
	if qlen < need {
		log.Warn("--batch-ms needs a longer socket queue: beats beyond the queue limit between two ticks are lost; "+
			"raise it before the observer starts (sysctl -w net.unix.max_dgram_qlen=N)",
			sink.Num("max_dgram_qlen", int64(qlen)), sink.Num("need", int64(need)), sink.Num("capacity", int64(capacity)),
			sink.Num("batch_ms", batch.Milliseconds()))
	}
}

// QueueLengthFor is the net.unix.max_dgram_qlen --batch-ms needs for
// agents beating once a second: twice the beats one tick collects on
// average (agents × period), so that bursts fit, and at least 10 (the
// kernel's default).
func QueueLengthFor(agents int, batch time.Duration) int {
	perTick := (int64(agents)*batch.Milliseconds() + 999) / 1000
	return int(max(2*perTick, 10))
}
