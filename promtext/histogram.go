package promtext

import (
	"errors"
	"math"
	"strconv"
)

// ErrBadBounds is returned by NewHistogram for bucket bounds that are not
// finite and strictly increasing; the +Inf bucket is always implied.
var ErrBadBounds = errors.New("promtext: histogram bounds must be finite and strictly increasing")

// Histogram counts observations into buckets whose upper bounds are fixed
// when it is made, like a Prometheus client histogram without labels.
type Histogram struct {
	bounds []float64 // finite, strictly increasing upper bounds
	// counts[i] holds the observations in (bounds[i-1], bounds[i]]; the
	// extra last element those above every bound. Counts are kept per
	// bucket, not cumulative, so Observe touches one word; the total count
	// is derived when it is read.
	counts []uint64
	sum    float64
}

// NewHistogram returns a histogram with the given upper bounds, which it
// copies. The +Inf bucket is implied and must not be listed.
func NewHistogram(bounds []float64) (*Histogram, error) {
	for i, b := range bounds {
		if math.IsNaN(b) || math.IsInf(b, 0) || i > 0 && b <= bounds[i-1] {
			return nil, ErrBadBounds
		}
	}
	return &Histogram{
		bounds: append([]float64(nil), bounds...),
		counts: make([]uint64, len(bounds)+1),
	}, nil
}

// Observe records v. It never allocates. As in the Prometheus client
// libraries, v lands in the first bucket whose bound is >= v, and NaN,
// which compares with nothing, lands in +Inf (and makes the sum NaN).
func (h *Histogram) Observe(v float64) {
	// Binary search for the first bound >= v, written out so that NaN
	// falls through to the end; ~20 bounds cost five comparisons.
	i, j := 0, len(h.bounds)
	for i < j {
		m := int(uint(i+j) >> 1)
		if h.bounds[m] >= v {
			j = m
		} else {
			i = m + 1
		}
	}
	h.counts[i]++
	h.sum += v
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 {
	var n uint64
	for _, c := range h.counts {
		n += c
	}
	return n
}

// Sum returns the sum of the observations.
func (h *Histogram) Sum() float64 { return h.sum }

// AppendHistogram appends the sample lines of h under the family name:
// one cumulative name_bucket{le="..."} line per bound and le="+Inf", then
// name_sum and name_count. It does not write "# HELP" or "# TYPE".
func AppendHistogram(dst []byte, name string, h *Histogram) []byte {
	return appendHistogram(dst, name, nil, h)
}

// appendHistogram is AppendHistogram with labels, the already escaped
// `a="x",b="y"` text every line carries besides le.
func appendHistogram(dst []byte, name string, labels []byte, h *Histogram) []byte {
	var cum uint64
	for i, n := range h.counts {
		cum += n
		dst = append(dst, name...)
		dst = append(dst, "_bucket{"...)
		if len(labels) > 0 {
			dst = append(dst, labels...)
			dst = append(dst, ',')
		}
		dst = append(dst, `le="`...)
		if i < len(h.bounds) {
			dst = AppendFloat(dst, h.bounds[i])
		} else {
			dst = append(dst, "+Inf"...)
		}
		dst = append(dst, `"} `...)
		dst = strconv.AppendUint(dst, cum, 10)
		dst = append(dst, '\n')
	}
	dst = appendSeries(dst, name, "_sum", labels)
	dst = AppendFloat(dst, h.sum)
	dst = append(dst, '\n')
	dst = appendSeries(dst, name, "_count", labels)
	dst = strconv.AppendUint(dst, cum, 10)
	return append(dst, '\n')
}

// appendSeries appends name+suffix and the label set, if any, followed by
// the space that separates a series from its value.
func appendSeries(dst []byte, name, suffix string, labels []byte) []byte {
	dst = append(dst, name...)
	dst = append(dst, suffix...)
	if len(labels) > 0 {
		dst = append(dst, '{')
		dst = append(dst, labels...)
		dst = append(dst, '}')
	}
	return append(dst, ' ')
}
