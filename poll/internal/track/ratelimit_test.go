package track

import (
	"math"
	"testing"
)

const rlMs = int64(1_000_000)

func TestTokenBucket(t *testing.T) {
	type try struct {
		at   int64
		want bool
	}
	tests := []struct {
		name        string
		rate, burst uint32
		tries       []try
	}{
		{"disabled", 0, 5, []try{{0, true}, {0, true}, {0, true}, {0, true}, {0, true}, {0, true}, {0, true}}},
		{"burst then refuse", 2, 3, []try{{0, true}, {0, true}, {0, true}, {0, false}, {1, false}}},
		{"burst 0 means rate", 2, 0, []try{{0, true}, {0, true}, {0, false}}},
		{"refill one token per 1/rate s", 10, 1, []try{
			{0, true}, {99 * rlMs, false}, {100 * rlMs, true}, {150 * rlMs, false}, {200 * rlMs, true},
		}},
		{"fractional tokens accumulate", 3, 1, []try{
			{0, true}, {333_333_333, false}, {333_333_334, true},
		}},
		{"refill capped at burst", 1000, 2, []try{
			{0, true}, {0, true}, {0, false}, {10_000 * rlMs, true}, {10_000 * rlMs, true}, {10_000 * rlMs, false},
		}},
		{"clock going backwards refills nothing", 1, 1, []try{
			{5_000 * rlMs, true}, {0, false}, {5_500 * rlMs, false}, {6_000 * rlMs, true},
		}},
		{"idle for ages does not overflow", math.MaxUint32, math.MaxUint32, []try{
			{0, true}, {math.MaxInt64, true}, {math.MaxInt64, true},
		}},
		{"largest bucket refills exactly", math.MaxUint32, 1, []try{
			{0, true}, {0, false}, {1, true}, {1, false},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewTokenBucket(tc.rate, tc.burst, 0)
			for i, tr := range tc.tries {
				if got := b.Allow(tr.at); got != tr.want {
					t.Fatalf("try %d: Allow(%d) = %v, want %v (bucket %+v)", i, tr.at, got, tr.want, b)
				}
			}
		})
	}
}

func TestTokenBucketSteadyRate(t *testing.T) {
	// Offered 1000/s for 10 s against 100/s with burst 100: exactly the
	// burst plus 100 per second gets through, no rounding drift.
	b := NewTokenBucket(100, 100, 0)
	allowed := 0
	for now := int64(0); now < 10_000*rlMs; now += rlMs {
		if b.Allow(now) {
			allowed++
		}
	}
	if want := 100 + 999; allowed != want { // the last refill is at 9.999 s
		t.Errorf("allowed %d of 10000 at 100/s burst 100, want %d", allowed, want)
	}
	if got := b.Tokens(9_999 * rlMs); got != 0 {
		t.Errorf("Tokens after saturation = %d, want 0", got)
	}
	var zero TokenBucket
	if zero.Enabled() || !zero.Allow(0) {
		t.Errorf("zero TokenBucket must be disabled and allow everything")
	}
}

var rlSinkBool bool

func BenchmarkTokenBucketAllow(b *testing.B) {
	tb := NewTokenBucket(100, 100, 0)
	now := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		now += 1000
		rlSinkBool = tb.Allow(now)
	}
}
