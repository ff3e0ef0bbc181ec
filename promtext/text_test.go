package promtext

import (
	"math"
	"strconv"
	"testing"
	"unicode/utf8"
)

func TestAppendLabelValue(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "bad_magic", "bad_magic"},
		{"backslash", `a\b`, `a\\b`},
		{"quote", `say "hi"`, `say \"hi\"`},
		{"newline", "two\nlines", `two\nlines`},
		{"all at the edges", "\\\"\n", `\\\"\n`},
		{"carriage return kept", "a\rb", "a\rb"},
		{"tab kept", "a\tb", "a\tb"},
		{"utf8 kept", "größe", "größe"},
		{"already escaped is escaped again", `\n`, `\\n`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendLabelValue([]byte("x="), tt.in))
			if got != "x="+tt.want {
				t.Errorf("AppendLabelValue(%q) = %q, want %q", tt.in, got, "x="+tt.want)
			}
		})
	}
}

func TestAppendHelp(t *testing.T) {
	tests := []struct {
		name, help, want string
	}{
		{"plain", "Beats accepted.", "# HELP m Beats accepted.\n"},
		{"quote not escaped", `the "ok" status`, "# HELP m the \"ok\" status\n"},
		{"backslash", `C:\dir`, "# HELP m C:\\\\dir\n"},
		{"newline", "line one\nline two", "# HELP m line one\\nline two\n"},
		{"empty", "", "# HELP m \n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendHelp(nil, "m", tt.help)); got != tt.want {
				t.Errorf("AppendHelp(%q) = %q, want %q", tt.help, got, tt.want)
			}
		})
	}
}

func TestAppendType(t *testing.T) {
	tests := []struct {
		name string
		typ  Type
		want string
	}{
		{"counter", TypeCounter, "# TYPE m counter\n"},
		{"gauge", TypeGauge, "# TYPE m gauge\n"},
		{"histogram", TypeHistogram, "# TYPE m histogram\n"},
		{"untyped", TypeUntyped, "# TYPE m untyped\n"},
		{"unknown reads untyped", Type(200), "# TYPE m untyped\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(AppendType(nil, "m", tt.typ)); got != tt.want {
				t.Errorf("AppendType(%d) = %q, want %q", tt.typ, got, tt.want)
			}
		})
	}
}

func TestAppendFloat(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{"zero", 0, "0"},
		{"negative zero", math.Copysign(0, -1), "-0"},
		{"integer", 42, "42"},
		{"fraction", 0.25, "0.25"},
		{"negative", -1.5, "-1.5"},
		{"shortest repr", 0.1, "0.1"},
		{"large uses exponent", 1e21, "1e+21"},
		{"million", 1e6, "1e+06"},
		{"small uses exponent", 1e-7, "1e-07"},
		{"max", math.MaxFloat64, "1.7976931348623157e+308"},
		{"smallest", math.SmallestNonzeroFloat64, "5e-324"},
		{"nan", math.NaN(), "NaN"},
		{"+inf", math.Inf(1), "+Inf"},
		{"-inf", math.Inf(-1), "-Inf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(AppendFloat(nil, tt.in))
			if got != tt.want {
				t.Errorf("AppendFloat(%v) = %q, want %q", tt.in, got, tt.want)
			}
			// Every spelling must read back as the same value, as
			// Prometheus parses it with strconv.ParseFloat.
			back, err := strconv.ParseFloat(got, 64)
			if err != nil || !(back == tt.in || math.IsNaN(back) && math.IsNaN(tt.in)) {
				t.Errorf("ParseFloat(%q) = %v, %v; want %v", got, back, err, tt.in)
			}
		})
	}
}

func TestValidNames(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		metric, labl bool
	}{
		{"simple", "varta_beats_total", true, true},
		{"leading underscore", "_x", true, true},
		{"colon", "job:rate5m", true, false},
		{"leading colon", ":x", true, false},
		{"reserved label", "__name__", true, false},
		{"digit inside", "a1", true, true},
		{"leading digit", "1a", false, false},
		{"empty", "", false, false},
		{"dash", "a-b", false, false},
		{"space", "a b", false, false},
		{"non-ascii", "größe", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validMetricName(tt.in); got != tt.metric {
				t.Errorf("validMetricName(%q) = %v, want %v", tt.in, got, tt.metric)
			}
			if got := validLabelName(tt.in); got != tt.labl {
				t.Errorf("validLabelName(%q) = %v, want %v", tt.in, got, tt.labl)
			}
		})
	}
}

func TestAppendLabelValueBytes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"sshd", "sshd"},
		{`a"b\c` + "\n", `a\"b\\c\n`},
		{"caf\xc3\xa9", "café"},
		{"bad\xff\xfe", "bad\uFFFD\uFFFD"},
		{"\xc3", "\uFFFD"},
	} {
		if got := string(AppendLabelValueBytes(nil, []byte(tc.in))); got != tc.want {
			t.Errorf("AppendLabelValueBytes(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if !utf8.ValidString(string(AppendLabelValueBytes(nil, []byte(tc.in)))) {
			t.Errorf("AppendLabelValueBytes(%q) is not valid UTF-8", tc.in)
		}
	}
}
