package vlp

import (
	"bytes"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

// hexRun finds key material quoted back: eight or more hex digits in a row.
var hexRun = regexp.MustCompile(`[0-9a-fA-F]{8,}`)

// FuzzParseKeys: any bytes in a key file give keys or an error, never a
// panic. Keys come back exactly as written (checked by writing them out
// again and by an independent line count); an error never quotes key
// material.
func FuzzParseKeys(f *testing.F) {
	f.Add([]byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"))
	f.Add([]byte("# rotation\n  000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F  # new\n\nfeed000000000000000000000000000000000000000000000000000000000000\r\n"))
	f.Add([]byte("0000000000000000000000000000000000000000000000000000000000000000\n"))
	f.Add([]byte("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1\n"))
	f.Add([]byte("#\n\n \t\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		keys, err := ParseKeys(text)
		if err != nil {
			if keys != nil {
				t.Fatalf("error %v with %d keys", err, len(keys))
			}
			if m := hexRun.FindString(err.Error()); m != "" {
				t.Fatalf("error %q quotes %q from the file", err, m)
			}
			return
		}
		// Independent count: lines with something left once the comment
		// and surrounding white space are gone.
		want := 0
		for _, line := range strings.Split(string(text), "\n") {
			line, _, _ = strings.Cut(line, "#")
			if strings.TrimSpace(line) != "" {
				want++
			}
		}
		if len(keys) != want || want == 0 {
			t.Fatalf("%d keys from %d key lines", len(keys), want)
		}
		var out bytes.Buffer
		for i, k := range keys {
			if k == (Key{}) {
				t.Fatalf("key %d is all zero", i)
			}
			for _, prev := range keys[:i] {
				if prev == k {
					t.Fatalf("key %d repeats an earlier one", i)
				}
			}
			out.WriteString(hex.EncodeToString(k[:]) + "\n")
		}
		again, err := ParseKeys(out.Bytes())
		if err != nil || len(again) != len(keys) {
			t.Fatalf("keys written out again do not parse back: %v", err)
		}
		for i := range keys {
			if again[i] != keys[i] {
				t.Fatalf("key %d: %x written out parses as %x", i, keys[i], again[i])
			}
		}
		if !bytes.Contains(bytes.ToLower(text), out.Bytes()[:2*KeySize]) {
			t.Fatalf("first key %x is not spelled in the file", keys[0])
		}
	})
}
