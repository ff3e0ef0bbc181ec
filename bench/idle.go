package bench

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"
)

// IdleConfig: Agents processes beating at 1 Hz each (random phases), the
// receiver's CPU time taken over Window after Warmup. BatchMs > 0 runs the
// receiver in its tick mode (varta-watch --batch-ms, the C floor's -tick).
type IdleConfig struct {
	Agents         int
	Warmup, Window time.Duration
	BatchMs        int
}

// IdleReceiver is what MeasureIdle measures.
type IdleReceiver int

const (
	IdleWatch    IdleReceiver = iota // varta-watch
	IdleBaseline                     // the Go baseline receiver (ppoll + recvmmsg)
	IdleCFloor                       // the C floor (bench/cfloor/floor.c)
)

// IdleResult is a receiver's CPU use over the window.
type IdleResult struct {
	CPU     time.Duration // user + system, all threads
	Ticks   int64         // the same from /proc/PID/stat, in 10 ms ticks
	Wall    time.Duration
	Frames  uint64 // accepted (or, for the baseline, valid) during the window
	Percent float64
	// Switches counts the receiver's context switches (all threads) in
	// the window: one per wake-up is the least a receiver can do.
	Switches int64
	// Wakes is varta-watch's own count of its loop's wakes in the window
	// (varta_loop_wakes_total); -1 for the other receivers.
	Wakes int64
	// Lost is the beats the agents could not send (a full queue) over
	// the whole run, warm-up included.
	Lost int64
}

// idleArgs is an ordinary deployment: the default limits, an event file
// (one line per beat) and the metrics endpoint, which is not scraped
// during the window.
var idleArgs = []string{"--threshold-ms", "5000"}

// receiver is what MeasureIdle needs of varta-watch or a baseline.
type receiver struct {
	pid    int
	socket string
	frames func() (uint64, error)
	wakes  func() int64 // -1 when the receiver does not count them
	stop   func() error
}

func (o *Observer) receiver(agents int) receiver {
	var wakes float64
	return receiver{pid: o.Pid(), socket: o.Socket, stop: o.Stop, wakes: func() int64 { return int64(wakes) },
		frames: func() (uint64, error) {
			m, _, err := o.Scrape()
			if err != nil {
				return 0, err
			}
			if n := int(m["varta_watch_pids_tracked"]); n != agents {
				return 0, fmt.Errorf("%d agents tracked, want %d", n, agents)
			}
			wakes = m["varta_loop_wakes_total"]
			return uint64(m["varta_beats_total"]), nil
		}}
}

func (b *Baseline) receiver() receiver {
	return receiver{pid: b.Pid(), socket: b.Socket, stop: b.Stop, frames: b.Frames, wakes: func() int64 { return -1 }}
}

// startIdleReceiver starts the receiver kind for c.
func startIdleReceiver(env *Env, c IdleConfig, kind IdleReceiver) (receiver, error) {
	socket := filepath.Join(env.Dir, "idle.sock")
	switch kind {
	case IdleBaseline:
		b, err := StartBaseline(socket)
		if err != nil {
			return receiver{}, err
		}
		return b.receiver(), nil
	case IdleCFloor:
		if env.CFloor == "" {
			return receiver{}, ErrNoCC
		}
		b, err := StartCFloor(env.CFloor, socket, c.BatchMs)
		if err != nil {
			return receiver{}, err
		}
		return b.receiver(), nil
	}
	args := idleArgs
	if c.BatchMs > 0 {
		args = append(args[:len(args):len(args)], "--batch-ms", strconv.Itoa(c.BatchMs))
	}
	o, err := StartObserver(env.Bin, env.Dir, true, args...)
	if err != nil {
		return receiver{}, err
	}
	return o.receiver(c.Agents), nil
}

// MeasureIdle measures the CPU use of a receiver under a light, steady
// load.
func MeasureIdle(env *Env, c IdleConfig, kind IdleReceiver) (IdleResult, error) {
	var r IdleResult
	rx, err := startIdleReceiver(env, c, kind)
	if err != nil {
		return r, err
	}
	defer rx.stop()
	l, err := StartLoad(c.Agents, SenderConfig{Socket: rx.socket, Rate: 1})
	if err != nil {
		return r, err
	}
	defer func() {
		if l != nil {
			l.Stop()
		}
	}()
	time.Sleep(c.Warmup)
	// Fifty processes can take a while to start on a busy machine; the
	// observer's check that all of them are tracked gets a few seconds.
	f0, err := rx.frames()
	for deadline := time.Now().Add(10 * time.Second); err != nil && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		f0, err = rx.frames()
	}
	if err != nil {
		return r, err
	}
	cpu0, err := cpuTime(rx.pid)
	if err != nil {
		return r, err
	}
	tick0, _ := statTicks(rx.pid)
	sw0, _ := ctxSwitches(rx.pid)
	wake0 := rx.wakes()
	t0 := time.Now()
	time.Sleep(c.Window)
	cpu1, err := cpuTime(rx.pid)
	if err != nil {
		return r, err
	}
	tick1, _ := statTicks(rx.pid)
	sw1, _ := ctxSwitches(rx.pid)
	r.Wall = time.Since(t0)
	f1, err := rx.frames()
	if err != nil {
		return r, err
	}
	r.CPU, r.Ticks, r.Frames, r.Switches = cpu1-cpu0, tick1-tick0, f1-f0, sw1-sw0
	r.Wakes = -1
	if w := rx.wakes(); w >= 0 {
		r.Wakes = w - wake0
	}
	r.Percent = 100 * r.CPU.Seconds() / r.Wall.Seconds()
	res, err := l.Stop()
	l = nil
	if err != nil {
		return r, err
	}
	r.Lost = Total(res).Dropped
	if min := uint64(float64(c.Agents)*c.Window.Seconds()) * 9 / 10; r.Frames < min {
		return r, fmt.Errorf("only %d beats in the window, want about %.0f", r.Frames, float64(c.Agents)*c.Window.Seconds())
	}
	return r, nil
}
