// Command loadgen runs N agent processes that beat at an observer socket:
//
//	go run ./bench/cmd/loadgen -socket /tmp/varta.sock -n 50 -rate 1 -duration 60s
//	go run ./bench/cmd/loadgen -socket /tmp/varta.sock -n 4 -rate 0 -block -duration 10s
//
// Each sender is a separate process (this binary re-executed), so each has
// its own pid, as the observer's SCM_CREDENTIALS check requires. With
// -rate 0 a sender beats as fast as the socket takes frames; without
// -block a beat that finds the observer's queue full is dropped and
// counted, as a real agent's would be; with -block the sender waits for
// room and retries. It prints the totals when every sender has finished
// (at -duration or -count, or on SIGINT/SIGTERM).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/varta-go/varta/bench"
)

func main() {
	bench.Child()
	var c bench.SenderConfig
	n := flag.Int("n", 4, "sender processes")
	flag.StringVar(&c.Socket, "socket", "", "the observer's socket (required)")
	flag.Float64Var(&c.Rate, "rate", 1, "beats per second per sender; 0 = as fast as possible")
	flag.BoolVar(&c.Block, "block", false, "wait for room when the observer's queue is full instead of dropping")
	flag.IntVar(&c.Count, "count", 0, "beats per sender, then exit; 0 = until -duration or a signal")
	flag.DurationVar(&c.Duration, "duration", 10*time.Second, "run time; 0 = until -count or a signal")
	flag.DurationVar(&c.SilenceMin, "silence-min", 0, "with -silence-max: random silence after each beat, instead of -rate")
	flag.DurationVar(&c.SilenceMax, "silence-max", 0, "")
	flag.BoolVar(&c.Latency, "latency", false, "time every Beat call and print percentiles per sender")
	flag.Parse()
	if c.Socket == "" || *n < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: -socket PATH and -n ≥ 1 are required; see -h")
		os.Exit(2)
	}
	start := time.Now()
	l, err := bench.StartLoad(*n, c)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	var rs []bench.SenderResult
	go func() {
		rs, err = l.Wait(24 * time.Hour)
		close(done)
	}()
	select {
	case <-done:
	case <-sig:
		rs, err = l.Stop()
	}
	secs := time.Since(start).Seconds()
	for _, r := range rs {
		if c.Latency {
			fmt.Printf("pid %d: delivered %d, Beat p50 %d ns p99 %d ns p99.9 %d ns max %d ns (clock %d ns)\n",
				r.Pid, r.Delivered, r.P50, r.P99, r.P999, r.Max, r.ClockNs)
		}
	}
	t := bench.Total(rs)
	fmt.Printf("senders=%d seconds=%.1f delivered=%d (%.0f/s) dropped=%d waits=%d errors=%d\n",
		len(rs), secs, t.Delivered, float64(t.Delivered)/secs, t.Dropped, t.Waits, t.Errors)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}
