package ops

import (
	"io"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/poll/internal/sysfile"
)

// ExitWedged is the exit status of a self-watchdog abort: what a shell
// reports for a process killed by SIGABRT, and not 2 (a usage error, which
// init systems are told not to restart).
const ExitWedged = 134

// selfWatchdog aborts the process when the loop stops completing
// iterations (--self-watchdog-secs). It is the only goroutine besides the
// loop and the signal forwarder, and it shares exactly one word with the
// loop: progress, the iteration count the loop stores at the end of each
// iteration (opsTick). It keeps its own notion of when progress last
// changed, on the Go runtime's monotonic clock, which does not advance
// while the system is suspended, so a resume is not mistaken for a wedge.
//
// A wedged loop can be stuck anywhere (a blocking write, a livelock, a
// deadlocked recovery fork): the abort prints the stack of every goroutine
// to the log writer and exits with ExitWedged, so the init system restarts
// the observer and the operator has the stacks. The hardware watchdog is
// deliberately not magic-closed on this path.
type selfWatchdog struct {
	progress atomic.Uint64
	deadline time.Duration
	out      io.Writer
	stamp    bool      // stamp the abort line with the time
	exit     func(int) // os.Exit; tests substitute it
	quit     chan struct{}
	done     chan struct{}
	once     sync.Once
}

func startSelfWatchdog(deadline time.Duration, out io.Writer, stamp bool, exit func(int)) *selfWatchdog {
	d := &selfWatchdog{deadline: deadline, out: out, stamp: stamp, exit: exit,
		quit: make(chan struct{}), done: make(chan struct{})}
	go d.run()
	return d
}

// period is how often the goroutine looks: often enough to abort within
// an eighth of the deadline, never a busy loop, at least once a second.
func (d *selfWatchdog) period() time.Duration {
	return min(max(d.deadline/8, 10*time.Millisecond), time.Second)
}

func (d *selfWatchdog) run() {
	defer close(d.done)
	period := d.period()
	t := time.NewTicker(period)
	defer t.Stop()
	seen := d.progress.Load()
	since := time.Now()
	prev := since
	for {
		select {
		case <-d.quit:
			return
		case <-t.C:
		}
		now := time.Now()
		if now.Sub(prev) > 4*period {
			// This goroutine did not run either (SIGSTOP, a starved
			// machine): the gap is no evidence against the loop.
			since = now
		}
		prev = now
		if p := d.progress.Load(); p != seen {
			seen, since = p, now
			continue
		}
		if stuck := now.Sub(since); stuck >= d.deadline {
			d.abort(stuck, seen)
			return
		}
	}
}

// abort logs one line, dumps every goroutine's stack and exits.
func (d *selfWatchdog) abort(stuck time.Duration, iterations uint64) {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) || len(buf) >= 64<<20 {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	// A logger of its own: the loop's is not safe for another goroutine.
	l := sink.NewLogger(d.out)
	l.SetTimestamps(d.stamp)
	l.Error("observer loop wedged: no iteration completed within --self-watchdog-secs; aborting with a stack dump of all goroutines",
		sink.Num("stuck_ms", stuck.Milliseconds()), sink.Num("iterations", int64(iterations)),
		sink.Num("exit", ExitWedged))
	d.out.Write(buf)
	d.out.Write([]byte("\n"))
	d.exit(ExitWedged)
}

// stop ends the goroutine and waits for it. Safe to call more than once.
func (d *selfWatchdog) stop() {
	d.once.Do(func() { close(d.quit) })
	<-d.done
}

// The service manager's watchdog (sd_watchdog_enabled(3)).
const (
	WatchdogUsecEnv = "WATCHDOG_USEC"
	WatchdogPidEnv  = "WATCHDOG_PID"
)

// SystemdWatchdog returns the watchdog interval the service manager asks
// for in $WATCHDOG_USEC, or 0 when it is unset or $WATCHDOG_PID names
// another process. It unsets both, so that no child (a recovery command
// inheriting the environment) takes them for its own. A value that is not
// a positive number is an error, like a bad $NOTIFY_SOCKET.
func SystemdWatchdog() (time.Duration, error) {
	usec, pid := os.Getenv(WatchdogUsecEnv), os.Getenv(WatchdogPidEnv)
	os.Unsetenv(WatchdogUsecEnv)
	os.Unsetenv(WatchdogPidEnv)
	if usec == "" {
		return 0, nil
	}
	if pid != "" {
		p, err := strconv.Atoi(pid)
		if err != nil || p <= 0 {
			return 0, errWatchdogEnv(WatchdogPidEnv, pid, "a pid")
		}
		if p != os.Getpid() {
			return 0, nil
		}
	}
	v, err := strconv.ParseUint(usec, 10, 63)
	if err != nil || v == 0 || v > uint64(1<<63-1)/1000 {
		return 0, errWatchdogEnv(WatchdogUsecEnv, usec, "a positive number of microseconds")
	}
	return time.Duration(v) * time.Microsecond, nil
}

func errWatchdogEnv(name, val, want string) error {
	return &sysfile.Error{What: "environment", Path: name + "=" + val, Problem: "is not " + want,
		Hint: "unset it when not run by a service manager"}
}
