package recovery

import (
	"math/rand/v2"
	"testing"
	"time"
)

// TestValidKVTime: the shape check of a key=value record's time agrees
// with time.Parse on the layout, on real times, edge dates and mangled
// ones (a digit off range, a separator swapped, a leap day in a common
// year).
func TestValidKVTime(t *testing.T) {
	cases := []string{"2026-12-07T11:40:00.123456Z", "2024-02-29T00:00:00.000000Z", "2023-02-29T00:00:00.000000Z",
		"2100-02-29T00:00:00.000000Z", "2000-02-29T23:59:59.999999Z", "2026-13-01T00:00:00.000000Z",
		"2026-00-10T00:00:00.000000Z", "2026-04-31T00:00:00.000000Z", "2026-04-30T24:00:00.000000Z",
		"2026-04-30T23:60:00.000000Z", "2026-04-30T23:59:60.000000Z", "2026-04-30 23:59:59.000000Z",
		"2026-04-30T23:59:59.000000z", "2026-04-30T23:59:59,000000Z", "2026-04-3oT23:59:59.000000Z",
		"0000-01-01T00:00:00.000000Z", "2026-1-07T11:40:00.1234567Z", ""}
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		b := []byte(time.Unix(int64(r.Uint32())*4, int64(r.IntN(1e9))).UTC().Format(kvTimeLayout))
		if r.IntN(2) == 0 { // mangle one byte
			b[r.IntN(len(b))] = "0123456789:-.TZ x"[r.IntN(17)]
		}
		cases = append(cases, string(b))
	}
	bad := 0
	for _, c := range cases {
		_, err := time.Parse(kvTimeLayout, c)
		if got := validKVTime([]byte(c)); got != (err == nil) {
			t.Fatalf("validKVTime(%q) = %v, time.Parse says %v", c, got, err)
		}
		if err != nil {
			bad++
		}
	}
	if bad < 100 {
		t.Fatalf("only %d of %d cases were invalid: the test mangles too little", bad, len(cases))
	}
}
