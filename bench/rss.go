package bench

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/varta-go/varta/vlp"
)

// RSSConfig: Agents distinct real processes, each sending one beat and
// exiting, at most Wave at a time; the observer's table has exactly
// Agents slots. Then Scrapes full /metrics scrapes, timed.
type RSSConfig struct {
	Agents  int
	Wave    int
	Scrapes int
	// UDP fills the table over plain UDP from this process instead: a UDP
	// frame's pid is only a claim, so one socket can stand for any number
	// of agents, where processes for 65536 would take the better part of
	// an hour. Such pids have no pidfd or /proc reads behind them.
	UDP bool
}

// RSSResult is the observer's memory once every agent is tracked and the
// full exposition has been rendered, and the scrape times.
type RSSResult struct {
	Tracked    int
	HWM, RSS   int64 // kB, /proc/PID/status VmHWM and VmRSS
	Anon, File int64 // kB, RssAnon and RssFile: heap and stacks vs the binary's mapped pages
	Threads    int64 // the observer's OS threads at the end (each has stacks of its own)
	ScrapeP50  time.Duration
	ScrapeMax  time.Duration
	Spawn      time.Duration // time to start and finish every agent
	GCCycles   uint64
	AllocBytes uint64 // heap bytes allocated since start
	StackBytes uint64 // goroutine and thread stacks (varta_go_stack_bytes)
}

// MeasureRSS fills the observer's table with real agents. A sender cannot
// fake pids (the observer checks SCM_CREDENTIALS), so each agent is a
// process; a tracked pid stays in the table until it stalls and is
// evicted, and the threshold is far beyond the run.
func MeasureRSS(env *Env, c RSSConfig) (RSSResult, error) {
	var r RSSResult
	args := []string{"--threshold-ms", "3600000", "--tracker-capacity", strconv.Itoa(c.Agents)}
	if c.UDP {
		args = append(args, "--udp-addr", "127.0.0.1:0", "--i-accept-plaintext-udp",
			"--max-beat-rate", "0", "--global-beat-rate", "0")
	}
	o, err := StartObserver(env.Bin, env.Dir, true, args...)
	if err != nil {
		return r, err
	}
	defer o.Stop()
	t0 := time.Now()
	if c.UDP {
		if r.Tracked, err = fillUDP(o, c.Agents); err != nil {
			return r, err
		}
	}
	for started := 0; r.Tracked < c.Agents; {
		m, _, err := o.Scrape()
		if err != nil {
			return r, err
		}
		r.Tracked = int(m["varta_watch_pids_tracked"])
		if r.Tracked >= c.Agents {
			break
		}
		// A recycled pid (the pid space wrapped) refreshes its old slot
		// instead of taking a new one, so keep going until the table is
		// full, within a bound.
		if started > 2*c.Agents {
			return r, fmt.Errorf("%d pids tracked after %d agent processes", r.Tracked, started)
		}
		n := c.Agents - r.Tracked
		if err := oneShots(o.Socket, n, c.Wave); err != nil {
			return r, err
		}
		started += n
	}
	r.Spawn = time.Since(t0)
	var ds []int64
	for range c.Scrapes {
		m, d, err := o.Scrape()
		if err != nil {
			return r, err
		}
		ds = append(ds, int64(d))
		r.GCCycles, r.AllocBytes = uint64(m["varta_go_gc_cycles_total"]), uint64(m["varta_go_heap_allocs_bytes_total"])
		r.StackBytes = uint64(m["varta_go_stack_bytes"])
	}
	p50, _ := percentiles(ds)
	r.ScrapeP50, r.ScrapeMax = time.Duration(p50), time.Duration(ds[len(ds)-1])
	if r.HWM, err = procStatusKB(o.Pid(), "VmHWM"); err != nil {
		return r, err
	}
	if dir := os.Getenv("VARTA_BENCH_SMAPS"); dir != "" {
		// Where the memory is, mapping by mapping, for a closer look.
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", o.Pid())); err == nil {
			os.WriteFile(filepath.Join(dir, fmt.Sprintf("smaps-%d", c.Agents)), b, 0o644)
		}
		os.WriteFile(filepath.Join(dir, fmt.Sprintf("log-%d", c.Agents)), []byte(o.logText()), 0o644)
	}
	for _, f := range []struct {
		key string
		v   *int64
	}{{"VmRSS", &r.RSS}, {"RssAnon", &r.Anon}, {"RssFile", &r.File}, {"Threads", &r.Threads}} {
		if *f.v, err = procStatusKB(o.Pid(), f.key); err != nil {
			return r, err
		}
	}
	return r, nil
}

var udpAddrRe = regexp.MustCompile(`msg="listening on UDP" addr=(\S+)`)

// fillUDP sends a plain frame for each of n distinct pids to the
// observer's UDP listener until all are tracked; a datagram the kernel
// dropped under the burst is simply sent again.
func fillUDP(o *Observer, n int) (int, error) {
	m := udpAddrRe.FindStringSubmatch(o.logText())
	if m == nil {
		return 0, errors.New("varta-watch did not report its UDP address")
	}
	conn, err := net.Dial("udp", m[1])
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	var buf [vlp.Size]byte
	for round := 0; round < 20; round++ {
		for i := range n {
			vlp.Encode(&buf, vlp.Frame{Status: vlp.Ok, Pid: uint32(100000 + i), Nonce: uint64(round + 1)})
			if _, err := conn.Write(buf[:]); err != nil {
				return 0, err
			}
			if i%256 == 255 {
				time.Sleep(time.Millisecond) // let the observer drain its socket
			}
		}
		m, _, err := o.Scrape()
		if err != nil {
			return 0, err
		}
		if tracked := int(m["varta_watch_pids_tracked"]); tracked >= n {
			return tracked, nil
		}
	}
	return 0, fmt.Errorf("not all %d UDP agents tracked after 20 rounds", n)
}

// oneShots runs n sender processes that each deliver one beat and exit,
// wave at a time.
func oneShots(socket string, n, wave int) error {
	sem := make(chan struct{}, wave)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			l, err := StartLoad(1, SenderConfig{Socket: socket, Block: true, Count: 1})
			if err == nil {
				var rs []SenderResult
				rs, err = l.Wait(30 * time.Second)
				if err == nil && Total(rs).Delivered != 1 {
					err = errors.New("a one-shot agent did not deliver its beat")
				}
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
