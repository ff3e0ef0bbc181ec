package promtext

import (
	"errors"
	"math"
	"testing"
)

func TestNewHistogramBounds(t *testing.T) {
	tests := []struct {
		name   string
		bounds []float64
		err    error
	}{
		{"none", nil, nil},
		{"increasing", []float64{-1, 0, 0.5, 10}, nil},
		{"equal", []float64{1, 1}, ErrBadBounds},
		{"decreasing", []float64{2, 1}, ErrBadBounds},
		{"nan", []float64{math.NaN()}, ErrBadBounds},
		{"explicit +Inf", []float64{1, math.Inf(1)}, ErrBadBounds},
		{"-Inf", []float64{math.Inf(-1), 1}, ErrBadBounds},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHistogram(tt.bounds)
			if !errors.Is(err, tt.err) {
				t.Errorf("NewHistogram(%v) error = %v, want %v", tt.bounds, err, tt.err)
			}
		})
	}
}

func TestNewHistogramCopiesBounds(t *testing.T) {
	b := []float64{1, 2}
	h, _ := NewHistogram(b)
	b[0] = 5
	h.Observe(1.5)
	if got, want := string(AppendHistogram(nil, "h", h)), "h_bucket{le=\"1\"} 0\nh_bucket{le=\"2\"} 1\nh_bucket{le=\"+Inf\"} 1\nh_sum 1.5\nh_count 1\n"; got != want {
		t.Errorf("after changing the caller's bounds: %q, want %q", got, want)
	}
}

func TestHistogramObserve(t *testing.T) {
	tests := []struct {
		name string
		v    float64
		want []uint64 // per-bucket counts for bounds {1, 2, 4}
	}{
		{"below first", -3, []uint64{1, 0, 0, 0}},
		{"on a bound is less-or-equal", 2, []uint64{0, 1, 0, 0}},
		{"between bounds", 3, []uint64{0, 0, 1, 0}},
		{"on the last bound", 4, []uint64{0, 0, 1, 0}},
		{"above every bound", 4.0001, []uint64{0, 0, 0, 1}},
		{"+Inf", math.Inf(1), []uint64{0, 0, 0, 1}},
		{"-Inf", math.Inf(-1), []uint64{1, 0, 0, 0}},
		{"NaN goes to +Inf", math.NaN(), []uint64{0, 0, 0, 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := NewHistogram([]float64{1, 2, 4})
			h.Observe(tt.v)
			for i, n := range h.counts {
				if n != tt.want[i] {
					t.Fatalf("Observe(%v): counts = %v, want %v", tt.v, h.counts, tt.want)
				}
			}
			if h.Count() != 1 {
				t.Errorf("Count() = %d, want 1", h.Count())
			}
		})
	}
}

func TestAppendHistogram(t *testing.T) {
	h, _ := NewHistogram([]float64{0.25, 1})
	for _, v := range []float64{0.1, 0.25, 0.5, 7} {
		h.Observe(v)
	}
	want := `lat_bucket{le="0.25"} 2
lat_bucket{le="1"} 3
lat_bucket{le="+Inf"} 4
lat_sum 7.85
lat_count 4
`
	if got := string(AppendHistogram(nil, "lat", h)); got != want {
		t.Errorf("AppendHistogram = %q, want %q", got, want)
	}
	if h.Sum() != 7.85 || h.Count() != 4 {
		t.Errorf("Sum, Count = %v, %d; want 7.85, 4", h.Sum(), h.Count())
	}
}
