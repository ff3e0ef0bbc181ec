package bench

import (
	"time"
)

// BeatConfig: one agent process calls Beat Calls times against a running
// varta-watch, flat out (Rate 0) or paced, timing each call.
type BeatConfig struct {
	Calls int
	Rate  float64
}

// MeasureBeat times Beat calls against the real observer draining the
// socket. Percentiles are over the delivered beats; a beat dropped on a
// full queue returns early and is counted apart.
func MeasureBeat(env *Env, c BeatConfig) (SenderResult, error) {
	o, err := StartObserver(env.Bin, env.Dir, false, floodArgs...)
	if err != nil {
		return SenderResult{}, err
	}
	defer o.Stop()
	l, err := StartLoad(1, SenderConfig{Socket: o.Socket, Count: c.Calls, Rate: c.Rate, Latency: true})
	if err != nil {
		return SenderResult{}, err
	}
	rs, err := l.Wait(time.Minute + time.Duration(float64(c.Calls)/max(c.Rate, 1000)*float64(time.Second)))
	if err != nil {
		return SenderResult{}, err
	}
	return rs[0], nil
}
