package ops

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/varta-go/varta/poll/internal/sysfile"
)

// lockedBuffer is a log writer the watchdog goroutine and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestSelfWatchdogAborts(t *testing.T) {
	var out lockedBuffer
	exited := make(chan int, 1)
	start := time.Now()
	d := startSelfWatchdog(200*time.Millisecond, &out, false, func(code int) { exited <- code })
	defer d.stop()
	select {
	case code := <-exited:
		if el := time.Since(start); el < 200*time.Millisecond {
			t.Errorf("aborted after %v, before the 200ms deadline", el)
		}
		if code != ExitWedged {
			t.Errorf("exit code %d, want %d", code, ExitWedged)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a loop without progress was not aborted within 5s")
	}
	log := out.String()
	for _, want := range []string{`level=error msg="observer loop wedged`, "stuck_ms=", "exit=134",
		"goroutine ", "TestSelfWatchdogAborts"} {
		if !strings.Contains(log, want) {
			t.Errorf("abort output lacks %q:\n%s", want, log)
		}
	}
}

func TestSelfWatchdogProgressKeepsItQuiet(t *testing.T) {
	var out lockedBuffer
	exited := make(chan int, 1)
	d := startSelfWatchdog(300*time.Millisecond, &out, false, func(code int) { exited <- code })
	for i := range 150 { // 1.5 s of progress, five deadlines' worth
		d.progress.Store(uint64(i + 1))
		time.Sleep(10 * time.Millisecond)
	}
	d.stop()
	d.stop() // idempotent
	select {
	case code := <-exited:
		t.Fatalf("aborted (exit %d) although the loop made progress:\n%s", code, out.String())
	default:
	}
}

func TestSystemdWatchdog(t *testing.T) {
	me := strconv.Itoa(os.Getpid())
	cases := []struct {
		name, usec, pid string
		want            time.Duration
		bad             bool
	}{
		{name: "unset"},
		{name: "ours implicitly", usec: "4000000", want: 4 * time.Second},
		{name: "ours by pid", usec: "200000", pid: me, want: 200 * time.Millisecond},
		{name: "another process's", usec: "200000", pid: "1"},
		{name: "pid without usec", pid: me},
		{name: "zero", usec: "0", bad: true},
		{name: "not a number", usec: "10s", bad: true},
		{name: "negative", usec: "-5", bad: true},
		{name: "bad pid", usec: "100", pid: "me", bad: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(WatchdogUsecEnv, tc.usec)
			t.Setenv(WatchdogPidEnv, tc.pid)
			if tc.usec == "" {
				os.Unsetenv(WatchdogUsecEnv)
			}
			got, err := SystemdWatchdog()
			if tc.bad {
				var fe *sysfile.Error
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), "unset it") {
					t.Errorf("SystemdWatchdog() = %v, %v, want a clear error", got, err)
				}
			} else if err != nil || got != tc.want {
				t.Errorf("SystemdWatchdog() = %v, %v, want %v, nil", got, err, tc.want)
			}
			for _, k := range []string{WatchdogUsecEnv, WatchdogPidEnv} {
				if v, ok := os.LookupEnv(k); ok {
					t.Errorf("%s still set to %q: children would inherit it", k, v)
				}
			}
		})
	}
}
