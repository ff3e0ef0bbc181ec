package sdnotify

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	cases := []struct {
		name string
		msg  string
		want Message // Status compared as a string below; Kinds by the listed ones
		kind []Kind
		stat string
	}{
		{"ping", "WATCHDOG=1", Message{Watchdog: WatchdogPing, Lines: 1}, []Kind{KindWatchdog}, ""},
		{"ping and newline", "WATCHDOG=1\n", Message{Watchdog: WatchdogPing, Lines: 1}, []Kind{KindWatchdog}, ""},
		{"trigger", "WATCHDOG=trigger", Message{Watchdog: WatchdogTrigger, Lines: 1}, []Kind{KindTrigger}, ""},
		{"later wins", "WATCHDOG=trigger\nWATCHDOG=1", Message{Watchdog: WatchdogPing, Lines: 2}, []Kind{KindTrigger, KindWatchdog}, ""},
		{"ready status usec", "READY=1\nSTATUS=warming up = 50%\nWATCHDOG_USEC=2500000\n",
			Message{Ready: true, HasStatus: true, HasUsec: true, Usec: 2500000, Lines: 3},
			[]Kind{KindReady, KindStatus, KindWatchdogUsec}, "warming up = 50%"},
		{"empty status", "STATUS=", Message{HasStatus: true, Lines: 1}, []Kind{KindStatus}, ""},
		{"stopping", "STOPPING=1", Message{Stopping: true, Lines: 1}, []Kind{KindStopping}, ""},
		{"barrier reloading", "BARRIER=1\nRELOADING=1", Message{Barrier: true, Reloading: true, Lines: 2}, []Kind{KindBarrier, KindReloading}, ""},
		{"mainpid", "MAINPID=4242", Message{MainPid: 4242, Lines: 1}, []Kind{KindMainPid}, ""},
		{"ignored keys", "FDSTORE=1\nERRNO=2\nEXTEND_TIMEOUT_USEC=5", Message{Lines: 3}, []Kind{KindIgnored, KindIgnored, KindIgnored}, ""},
		{"unknown keys", "FOO=1\nX_MY_APP=2", Message{Lines: 2, Unknown: 2}, nil, ""},
		{"usec zero", "WATCHDOG_USEC=0", Message{Lines: 1, Bad: 1, BadUsec: true}, nil, ""},
		{"usec garbage", "WATCHDOG_USEC=12ms", Message{Lines: 1, Bad: 1, BadUsec: true}, nil, ""},
		{"usec too long", "WATCHDOG_USEC=99999999999999999999", Message{Lines: 1, Bad: 1, BadUsec: true}, nil, ""},
		{"usec sign", "WATCHDOG_USEC=+5", Message{Lines: 1, Bad: 1, BadUsec: true}, nil, ""},
		{"bad watchdog", "WATCHDOG=2", Message{Lines: 1, Bad: 1}, nil, ""},
		{"bad ready", "READY=yes", Message{Lines: 1, Bad: 1}, nil, ""},
		{"bad mainpid", "MAINPID=0\nMAINPID=x\nMAINPID=4294967296", Message{Lines: 3, Bad: 3}, nil, ""},
		{"no equals", "WATCHDOG", Message{Bad: 1}, nil, ""},
		{"empty key", "=1", Message{Bad: 1}, nil, ""},
		{"nul", "WATCHDOG=1\x00", Message{Bad: 1}, nil, ""},
		{"bad line among good", "garbage\nWATCHDOG=1", Message{Watchdog: WatchdogPing, Lines: 1, Bad: 1}, []Kind{KindWatchdog}, ""},
		{"empty", "", Message{}, nil, ""},
		{"only newlines", "\n\n", Message{}, nil, ""},
	}
	for _, c := range cases {
		var m Message
		Parse([]byte(c.msg), &m)
		if string(m.Status) != c.stat {
			t.Errorf("%s: Status = %q, want %q", c.name, m.Status, c.stat)
		}
		for _, k := range c.kind {
			c.want.Kinds[k]++
		}
		m.Status = nil
		if !reflect.DeepEqual(m, c.want) {
			t.Errorf("%s: Parse(%q) = %+v, want %+v", c.name, c.msg, m, c.want)
		}
	}
}

// TestParseStatusAliases: the status text is the message's own bytes.
func TestParseStatusAliases(t *testing.T) {
	b := []byte("STATUS=abc")
	var m Message
	Parse(b, &m)
	b[7] = 'x'
	if string(m.Status) != "xbc" {
		t.Fatalf("Status = %q, want it to alias the message", m.Status)
	}
}

func TestParseNoAllocs(t *testing.T) {
	long := "STATUS=" + strings.Repeat("s", 3000) + "\nWATCHDOG=" + strings.Repeat("1", 100) + "\n" +
		strings.Repeat("K", 200) + "=v\nWATCHDOG_USEC=1000\nFDSTORE=1\nWATCHDOG=trigger\nREADY=1"
	b := []byte(long)
	var m Message
	if a := testing.AllocsPerRun(100, func() { Parse(b, &m) }); a != 0 {
		t.Fatalf("Parse: %v allocs per message, want 0", a)
	}
	if !m.Ready || m.Watchdog != WatchdogTrigger || m.Usec != 1000 || m.Unknown != 1 || m.Bad != 1 {
		t.Fatalf("Parse of the long message = %+v", m)
	}
}

// FuzzParse: any bytes parse without a panic, and the counts hold
// together: every non-empty line is a KEY=VALUE line or a bad one, and a
// status aliases the input.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"WATCHDOG=1", "READY=1\nSTATUS=x\nWATCHDOG_USEC=5", "WATCHDOG=trigger\n\n=\n", "a\x00b", "MAINPID=1\nFOO=2"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var m Message
		Parse(b, &m)
		if bytes.IndexByte(b, 0) >= 0 {
			if m.Bad != 1 || m.Lines != 0 {
				t.Fatalf("a message with a NUL: %+v, want one bad and nothing else", m)
			}
			return
		}
		lines := 0
		for _, l := range bytes.Split(b, []byte("\n")) {
			if len(l) > 0 {
				lines++
			}
		}
		withKey := 0
		for _, l := range bytes.Split(b, []byte("\n")) {
			if i := bytes.IndexByte(l, '='); i > 0 {
				withKey++
			}
		}
		if m.Lines != withKey || m.Lines > lines || m.Lines+m.Bad < lines {
			t.Fatalf("Parse(%q): %d KEY=VALUE lines and %d bad of %d, want %d", b, m.Lines, m.Bad, lines, withKey)
		}
		if m.HasStatus && len(m.Status) > 0 && !bytes.Contains(b, m.Status) {
			t.Fatalf("Status %q is not part of the message", m.Status)
		}
		if m.HasUsec && m.Usec == 0 || m.MainPid == 0 && m.Kinds[KindMainPid] > 0 {
			t.Fatalf("Parse(%q) kept a zero value: %+v", b, m)
		}
	})
}
