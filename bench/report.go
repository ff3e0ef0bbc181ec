package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Options choose the report's size.
type Options struct {
	Quick   bool     // CI size: every measurement, seconds in total, indicative numbers
	Only    []string // section names to run (ingest, stall, idle, rss, size, render, beat); empty = all
	Command string   // how the report was invoked, for the header
	Log     io.Writer
}

// Row is one line of the report table.
type Row struct {
	Metric, Target, Measured string
	Pass                     string // "yes", "**no**" or "—" when there is no target
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// Report is a finished run.
type Report struct {
	Header []string
	Rows   []Row
	Notes  []string
	Missed int
}

// section is one measurement; it appends rows and notes. A heavy one
// keeps both CPUs busy for minutes, and the next section waits restAfter
// before it starts (full runs only).
type section struct {
	name  string
	run   func(r *Report, env *Env, root string, quick bool) error
	heavy bool
}

var sections = []section{
	{"ingest", ingestSection, true},
	{"stall", stallSection, false},
	{"idle", idleSection, false},
	{"rss", rssSection, true},
	{"render", renderSection, false},
	{"beat", beatSection, false},
	{"size", sizeSection, false}, // last: building three targets heats the machine
}

// restAfter is the pause after a heavy section. This VM wakes its
// processes late for a while after two minutes of both CPUs flat out:
// the stall p99 without a flood was 1.02 and 1.11 ms right after the
// ingest section, 0.22 ms after a 60 s pause, and 0.20–0.30 ms run alone
// (2026-12-07).
const restAfter = 60 * time.Second

// Run builds varta-watch from the module at the working directory and
// runs the measurements one at a time.
func Run(opt Options) (*Report, error) {
	logf := func(format string, args ...any) {
		if opt.Log != nil {
			fmt.Fprintf(opt.Log, "report: "+format+"\n", args...)
		}
	}
	root, err := ModuleRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "varta-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	logf("building varta-watch")
	bin, err := BuildObserver(root, dir)
	if err != nil {
		return nil, err
	}
	env := &Env{Bin: bin, Dir: dir, Log: logf}
	if env.CFloor, err = BuildCFloor(root, dir); err != nil {
		logf("no C floor: %v", err) // the idle rows say so
	}
	r := &Report{Header: header(opt)}
	rest, rested := false, []string(nil)
	for _, s := range sections {
		if len(opt.Only) > 0 && !contains(opt.Only, s.name) {
			continue
		}
		if rest && !opt.Quick {
			logf("resting %s after a heavy section", restAfter)
			time.Sleep(restAfter)
			rested = append(rested, s.name)
		}
		rest = s.heavy
		logf("%s", s.name)
		t0 := time.Now()
		if err := s.run(r, env, root, opt.Quick); err != nil {
			return r, fmt.Errorf("%s: %w", s.name, err)
		}
		logf("%s done in %.1fs", s.name, time.Since(t0).Seconds())
	}
	for _, row := range r.Rows {
		if row.Pass == verdict(false) {
			r.Missed++
		}
	}
	if len(rested) > 0 {
		r.Notes = append(r.Notes, "Sections "+strings.Join(rested, ", ")+" started after a "+restAfter.String()+
			" rest: they follow one that keeps both CPUs busy for minutes, after which this VM wakes processes late for a while.")
	}
	r.Notes = append(r.Notes, "Load average at the end: "+loadAvg()+".")
	return r, nil
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// Markdown writes the header, the table and the notes.
func (r *Report) Markdown(w io.Writer) {
	for _, h := range r.Header {
		fmt.Fprintln(w, h)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| metric | target | measured | pass? |")
	fmt.Fprintln(w, "|---|---|---|---|")
	for _, row := range r.Rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", row.Metric, row.Target, row.Measured, row.Pass)
	}
	if len(r.Notes) > 0 {
		fmt.Fprintln(w)
		for _, n := range r.Notes {
			fmt.Fprintln(w, "- "+n)
		}
	}
}

func header(opt Options) []string {
	mode := "full"
	if opt.Quick {
		mode = "quick (CI size; indicative numbers only)"
	}
	goVersion := runtime.Version()
	if out, err := exec.Command("go", "version").Output(); err == nil {
		goVersion = strings.TrimPrefix(strings.TrimSpace(string(out)), "go version ")
	}
	return []string{
		"Date: " + time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		"",
		"Machine: " + strconv.Itoa(runtime.NumCPU()) + " CPUs (nproc), " + cpuModel() + ", Linux " + kernel() +
			", net.unix.max_dgram_qlen=" + readTrim("/proc/sys/net/unix/max_dgram_qlen"),
		"",
		"Go: " + goVersion,
		"",
		"Command: `" + opt.Command + "` (" + mode + ")",
		"",
		"Load average at start: " + loadAvg(),
	}
}

// loadAvg is /proc/loadavg's 1, 5 and 15 minute figures: anything near
// the CPU count means other work shared the machine with the run.
func loadAvg() string {
	f := strings.Fields(readTrim("/proc/loadavg"))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

func kernel() string { return readTrim("/proc/sys/kernel/osrelease") }

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// Formatting helpers.

func si(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 2, 64) + " M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + " k"
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " "
}

func ms(d time.Duration) string { return strconv.FormatFloat(d.Seconds()*1e3, 'f', 2, 64) + " ms" }

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 2, 64) + " MiB" }

func itoa(n int) string { return strconv.Itoa(n) }

func tmpSub(env *Env, name string) string { return filepath.Join(env.Dir, name) }
