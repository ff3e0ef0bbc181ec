package bench

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Load is a set of running sender processes.
type Load struct {
	senders []*child
}

// StartLoad starts n sender processes with the same configuration.
func StartLoad(n int, c SenderConfig) (*Load, error) {
	if n < 1 {
		return nil, errors.New("bench: a load needs at least one sender")
	}
	l := &Load{}
	for range n {
		s, err := startChild(roleSender, c.args()...)
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.senders = append(l.senders, s)
	}
	return l, nil
}

// Pids are the senders' pids, which are the agents' pids the observer sees.
func (l *Load) Pids() []int {
	p := make([]int, len(l.senders))
	for i, s := range l.senders {
		p[i] = s.pid()
	}
	return p
}

// Wait waits for senders that stop by themselves (Count or Duration).
func (l *Load) Wait(timeout time.Duration) ([]SenderResult, error) {
	return l.collect(func(c *child) (string, error) { return c.wait(timeout) })
}

// Stop ends every sender and collects their summaries.
func (l *Load) Stop() ([]SenderResult, error) {
	return l.collect(func(c *child) (string, error) { return c.stop(5 * time.Second) })
}

func (l *Load) collect(end func(*child) (string, error)) ([]SenderResult, error) {
	res := make([]SenderResult, len(l.senders))
	errs := make([]error, len(l.senders))
	var wg sync.WaitGroup
	for i, s := range l.senders {
		wg.Go(func() {
			line, err := end(s)
			res[i] = parseSenderResult(s.pid(), line)
			if err != nil {
				errs[i] = fmt.Errorf("sender %d: %w", s.pid(), err)
			}
		})
	}
	wg.Wait()
	l.senders = nil
	return res, errors.Join(errs...)
}

// Total sums the senders' counts.
func Total(rs []SenderResult) SenderResult {
	var t SenderResult
	for _, r := range rs {
		t.Delivered += r.Delivered
		t.Dropped += r.Dropped
		t.Waits += r.Waits
		t.Errors += r.Errors
	}
	return t
}

// pct is the p-th percentile (nearest rank) of sorted values.
func pct(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[max(0, min(k, len(sorted)-1))]
}

// percentiles sorts vs in place and returns the p50 and p99.
func percentiles(vs []int64) (p50, p99 int64) {
	slices.Sort(vs)
	return pct(vs, 50), pct(vs, 99)
}
