package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/varta-go/varta/vlp"
)

// TestExportStdoutReaderStops: with --export-file - and a standard output
// that nobody reads (a stopped log collector), writing events must not
// block the loop. Beats fill the output, and still the agent's stall is
// raised on time and metrics are served; the lines that could not be
// written are counted, and what did get through is whole lines. Standard
// output is a pipe (a shell pipeline, OpenRC/BusyBox supervisors) or a
// stream socket (systemd's journal).
func TestExportStdoutReaderStops(t *testing.T) {
	t.Run("pipe", func(t *testing.T) {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		exportToStoppedReader(t, r, w)
	})
	t.Run("socket", func(t *testing.T) {
		if testing.Short() {
			t.Skip("slow: the pipe case is enough for -short; run without -short for the socket")
		}
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		// A small send buffer, so 4000 beats' lines overflow it as they
		// overflow a pipe.
		if err := unix.SetsockoptInt(fds[1], unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
			t.Fatal(err)
		}
		exportToStoppedReader(t, os.NewFile(uintptr(fds[0]), "reader"), os.NewFile(uintptr(fds[1]), "stdout"))
	})
}

func exportToStoppedReader(t *testing.T, r, stdout *os.File) {
	defer r.Close()
	w := newWatcher(t, t.TempDir())
	w.stdout = stdout
	w.startArgs([]string{"--socket", w.socket, "--export-file", "-", "--threshold-ms", "300",
		"--prom-addr", "127.0.0.1:0", "--max-beat-rate", "0", "--global-beat-rate", "0"})
	stdout.Close() // the observer holds the only writing end now

	e, err := vlp.Dial(w.socket)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	const beats = 4000 // about 150 KB of event lines: more than the output holds
	deadline := time.Now().Add(20 * time.Second)
	for sent := 0; sent < beats; {
		switch err := e.Beat(vlp.Ok, uint32(sent)); {
		case err == nil:
			sent++
		case errors.Is(err, vlp.ErrQueueFull):
			if time.Now().After(deadline) {
				t.Fatalf("the observer stopped reading its socket after %d beats: the loop is blocked writing standard output\n%s",
					sent, w.logText())
			}
			time.Sleep(200 * time.Microsecond)
		default:
			t.Fatalf("beat %d: %v", sent, err)
		}
	}
	pid := strconv.Itoa(os.Getpid())
	if w.waitLog(`msg="agent stalled" pid=`+pid, 10*time.Second) == "" {
		t.Fatalf("no stall for the silent agent while standard output is full: the loop is blocked\n%s", w.logText())
	}
	m := w.scrape()
	if got := m[`varta_beats_total{pid="`+pid+`"}`]; got != beats {
		t.Errorf("beats accepted %v, want %d", got, beats)
	}
	if m["varta_io_errors_total"] == 0 {
		t.Error("varta_io_errors_total = 0: the lines that could not be written were not counted")
	}
	if w.waitLog(`its reader is not keeping up`, time.Second) == "" {
		t.Errorf("the log does not say why the event lines could not be written:\n%s", w.logText())
	}

	// The reader wakes up: what was held back follows, and new beats too,
	// without a torn line where the output filled up.
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(r)
		got <- b
	}()
	for i := 0; i < 10; i++ {
		if err := e.Beat(vlp.Ok, uint32(beats+i)); err != nil {
			t.Fatalf("beat after the reader resumed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // paced: ten beats, not a burst into a queue of ten
	}
	if got := w.waitMetric(`varta_beats_total{pid="`+pid+`"}`, beats+10, 10*time.Second); got != beats+10 {
		t.Fatalf("beats accepted %v after the reader resumed, want %d", got, beats+10)
	}
	w.signal(syscall.SIGINT)
	w.wait(10 * time.Second)
	var out []byte
	select {
	case out = <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("standard output was not closed when the observer exited")
	}
	if len(out) < 30<<10 || !bytes.HasSuffix(out, []byte("\n")) {
		t.Fatalf("%d bytes reached the reader, last %q; want the output filled and ending in a whole line", len(out), out[max(len(out)-40, 0):])
	}
	// The last beat's line, found by its payload (its nonce counts the
	// beats dropped on a full queue too).
	if !bytes.Contains(out, []byte("\tok\t"+strconv.Itoa(beats+9)+"\n")) {
		t.Errorf("the last beat's line (payload %d) is not in the output once the reader drains it; tail %q",
			beats+9, out[max(len(out)-300, 0):])
	}
	for i, line := range bytes.Split(bytes.TrimSuffix(out, []byte("\n")), []byte("\n")) {
		if n := bytes.Count(line, []byte("\t")); n != 5 {
			t.Fatalf("line %d has %d tabs, want 5 (a torn line): %q", i+1, n, line)
		}
	}
}
