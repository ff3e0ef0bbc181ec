package bench

import (
	"path/filepath"
	"time"
)

// BeatConfig: one agent process calls Beat Calls times against a running
// varta-watch (or with Baseline the baseline receiver), flat out (Rate 0)
// or paced, timing each call.
type BeatConfig struct {
	Calls    int
	Rate     float64
	Baseline bool
}

// MeasureBeat times Beat calls against a receiver draining the socket.
// Percentiles are over the delivered beats; a beat dropped on a full queue
// returns early and is counted apart. Against the baseline receiver the
// same calls show what the machine itself charges a sender (the receiver's
// wake-up happens inside write(2)).
func MeasureBeat(env *Env, c BeatConfig) (SenderResult, error) {
	var socket string
	if c.Baseline {
		b, err := StartBaseline(filepath.Join(env.Dir, "beat.sock"))
		if err != nil {
			return SenderResult{}, err
		}
		defer b.Stop()
		socket = b.Socket
	} else {
		o, err := StartObserver(env.Bin, env.Dir, false, floodArgs...)
		if err != nil {
			return SenderResult{}, err
		}
		defer o.Stop()
		socket = o.Socket
	}
	l, err := StartLoad(1, SenderConfig{Socket: socket, Count: c.Calls, Rate: c.Rate, Latency: true})
	if err != nil {
		return SenderResult{}, err
	}
	rs, err := l.Wait(time.Minute + time.Duration(float64(c.Calls)/max(c.Rate, 1000)*float64(time.Second)))
	if err != nil {
		return SenderResult{}, err
	}
	return rs[0], nil
}
