package main

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/varta-go/varta/vlp"
)

// syslogDaemon stands in for syslogd: a datagram socket at path that keeps
// what it receives. (BusyBox syslogd listens only on /dev/log, which a
// test must not take over.)
func syslogDaemon(t *testing.T, path string) (*net.UnixConn, chan string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	got := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			got <- string(buf[:n])
		}
	}()
	return c, got
}

func waitMessage(t *testing.T, got chan string, want string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case m := <-got:
			if strings.Contains(m, want) {
				return m
			}
		case <-timeout:
			t.Fatalf("no syslog message containing %q within %v", want, d)
			return ""
		}
	}
}

// TestLogSyslog: with --log-syslog every line goes to the daemon's socket
// in the BSD format with facility daemon, without a timestamp of our own;
// a daemon that restarts (a new socket at the same path) gets the lines
// after it.
func TestLogSyslog(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "log")
	c, got := syslogDaemon(t, logPath)
	w := newWatcher(t, dir)
	w.launch(w.baseArgs("--threshold-ms", "200", "--log-syslog", "--log-syslog-path", logPath))
	m := waitMessage(t, got, `msg="listening"`, 10*time.Second)
	pid := strconv.Itoa(w.cmd.Process.Pid)
	if want := "<30>varta-watch[" + pid + "]: level=info msg=\"listening\""; !strings.HasPrefix(m, want) {
		t.Errorf("message %q, want it to start %q", m, want)
	}
	if strings.HasSuffix(m, "\n") {
		t.Errorf("message %q ends in a newline; syslog messages do not", m)
	}
	r := dialRaw(t, w.socket)
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 1})
	m = waitMessage(t, got, "stall", 5*time.Second)
	if !regexp.MustCompile(`^<28>varta-watch\[\d+\]: level=warn `).MatchString(m) {
		t.Errorf("stall message %q: want priority 28 (daemon.warning)", m)
	}

	// The daemon restarts: a new socket at the same path.
	c.Close()
	os.Remove(logPath) // as a daemon does before it binds again
	_, got = syslogDaemon(t, logPath)
	time.Sleep(1100 * time.Millisecond) // past the once-a-second reconnect bound
	r.frame(vlp.Frame{Status: vlp.Ok, Pid: ourPid(), Nonce: 2})
	waitMessage(t, got, "agent beats again", 5*time.Second)
	if w.logText() != "" {
		t.Errorf("standard error got lines although --log-syslog: %q", w.logText())
	}
}

// TestLogSyslogNoDaemon: no daemon at the path is a start-up error naming
// the path and what to do.
func TestLogSyslogNoDaemon(t *testing.T) {
	dir := t.TempDir()
	w := newWatcher(t, dir)
	w.launch(w.baseArgs("--threshold-ms", "1000", "--log-syslog", "--log-syslog-path", filepath.Join(dir, "nobody")))
	if code := w.wait(10 * time.Second); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if l := w.logText(); !strings.Contains(l, filepath.Join(dir, "nobody")) || !strings.Contains(l, "syslogd") {
		t.Errorf("error %q: want the path and a hint", l)
	}
}
