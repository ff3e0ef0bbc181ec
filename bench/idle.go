package bench

import (
	"fmt"
	"path/filepath"
	"time"
)

// IdleConfig: Agents processes beating at 1 Hz each (random phases), the
// receiver's CPU time taken over Window after Warmup.
type IdleConfig struct {
	Agents         int
	Warmup, Window time.Duration
}

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
}

// idleArgs is an ordinary deployment: the default limits, an event file
// (one line per beat) and the metrics endpoint, which is not scraped
// during the window.
var idleArgs = []string{"--threshold-ms", "5000"}

// receiver is what MeasureIdle needs of varta-watch or the baseline.
type receiver struct {
	pid    int
	socket string
	frames func() (uint64, error)
	stop   func() error
}

func (o *Observer) receiver(agents int) receiver {
	return receiver{pid: o.Pid(), socket: o.Socket, stop: o.Stop, frames: func() (uint64, error) {
		m, _, err := o.Scrape()
		if err != nil {
			return 0, err
		}
		if n := int(m["varta_watch_pids_tracked"]); n != agents {
			return 0, fmt.Errorf("%d agents tracked, want %d", n, agents)
		}
		return uint64(m["varta_beats_total"]), nil
	}}
}

func (b *Baseline) receiver() receiver {
	return receiver{pid: b.Pid(), socket: b.Socket, stop: b.Stop, frames: b.Frames}
}

// MeasureIdle measures the CPU use of varta-watch, or with baseline of the
// baseline receiver, under a light, steady load.
func MeasureIdle(env *Env, c IdleConfig, baseline bool) (IdleResult, error) {
	var r IdleResult
	var rx receiver
	if baseline {
		b, err := StartBaseline(filepath.Join(env.Dir, "idle.sock"))
		if err != nil {
			return r, err
		}
		rx = b.receiver()
	} else {
		o, err := StartObserver(env.Bin, env.Dir, true, idleArgs...)
		if err != nil {
			return r, err
		}
		rx = o.receiver(c.Agents)
	}
	defer rx.stop()
	l, err := StartLoad(c.Agents, SenderConfig{Socket: rx.socket, Rate: 1})
	if err != nil {
		return r, err
	}
	defer l.Stop()
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
	r.Percent = 100 * r.CPU.Seconds() / r.Wall.Seconds()
	if min := uint64(float64(c.Agents)*c.Window.Seconds()) * 9 / 10; r.Frames < min {
		return r, fmt.Errorf("only %d beats in the window, want about %.0f", r.Frames, float64(c.Agents)*c.Window.Seconds())
	}
	return r, nil
}
