package track

import "math/bits"

// tokenUnit is one token in the bucket's internal unit. Keeping the level in
// token-nanoseconds-per-second means refilling is one integer multiply
// (elapsed ns × tokens per second) with no division and no rounding drift.
const tokenUnit = 1_000_000_000

// TokenBucket is an integer token-bucket rate limiter on the caller's
// monotonic nanosecond clock. It refills at Rate tokens per second up to
// Burst tokens and starts full. The zero value, like a bucket built with
// rate 0, is disabled and allows everything (the flags' "0 disables").
//
// A TokenBucket is a small value with no pointers: the tracker keeps one
// for the global limit (--global-beat-rate, --global-beat-burst), and for
// the per-pid limit (--max-beat-rate) the rate once and each slot only its
// fill (tokens), since every pid has the same rate. It is not safe for
// concurrent use; the observer loop is its only user.
type TokenBucket struct {
	rate  uint32 // tokens per second; 0 disables the bucket
	burst uint32 // capacity in tokens, at least 1 when enabled
	tokens
}

// tokens is a bucket's fill, without its rate and burst.
type tokens struct {
	level uint64 // current tokens × tokenUnit
	last  int64  // clock value of the last refill
}

// fullTokens is the fill of a new bucket with room for burst tokens.
func fullTokens(burst uint32, now int64) tokens {
	return tokens{level: uint64(burst) * tokenUnit, last: now}
}

// NewTokenBucket returns a full bucket refilling at rate tokens per second
// with room for burst tokens. A burst of 0 means burst = rate. Rate 0
// returns a disabled bucket that allows every event.
func NewTokenBucket(rate, burst uint32, now int64) TokenBucket {
	if rate == 0 {
		return TokenBucket{}
	}
	if burst == 0 {
		burst = rate
	}
	return TokenBucket{rate: rate, burst: burst, tokens: fullTokens(burst, now)}
}

// Enabled reports whether the bucket limits anything.
func (b *TokenBucket) Enabled() bool { return b.rate != 0 }

// Allow takes one token at time now and reports whether there was one. A
// clock that goes backwards refills nothing and never underflows.
func (b *TokenBucket) Allow(now int64) bool { return b.take(b.rate, b.burst, now) }

// Tokens returns the whole tokens available at time now, 0 for a disabled
// bucket (for tests and metrics); it refills but takes nothing.
func (b *TokenBucket) Tokens(now int64) uint32 {
	if b.rate == 0 {
		return 0
	}
	b.refill(b.rate, b.burst, now)
	return uint32(b.level / tokenUnit)
}

// allowPid takes a token from slot s's --max-beat-rate bucket (rate and
// burst alike are the tracker's pidRate).
func (t *Tracker) allowPid(s *Slot, now int64) bool { return s.limiter.take(t.pidRate, t.pidRate, now) }

// take is Allow for a fill whose bucket refills at rate up to burst.
func (k *tokens) take(rate, burst uint32, now int64) bool {
	if rate == 0 {
		return true
	}
	k.refill(rate, burst, now)
	if k.level < tokenUnit {
		return false
	}
	k.level -= tokenUnit
	return true
}

func (k *tokens) refill(rate, burst uint32, now int64) {
	if now <= k.last {
		return
	}
	capacity := uint64(burst) * tokenUnit // ≤ 2^32 × 10^9 < 2^62: no overflow
	hi, add := bits.Mul64(uint64(now-k.last), uint64(rate))
	// A long idle time overflows the product; it also means "full".
	if hi != 0 || add >= capacity-k.level {
		k.level = capacity
	} else {
		k.level += add
	}
	k.last = now
}
