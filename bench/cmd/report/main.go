// Command report measures varta-watch against the targets of the
// performance issue and prints one Markdown table:
//
//	go run ./bench/cmd/report          # full run, a few minutes
//	go run ./bench/cmd/report -quick   # CI size, seconds
//
// Progress goes to stderr, the table to stdout. Exit status: 0 when the
// run completed (missed targets are marked in the table; -strict makes
// them exit 3), 1 when a measurement failed, 2 on a usage error.
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/varta-go/varta/bench"
)

func main() {
	bench.Child()
	quick := flag.Bool("quick", false, "CI size: every measurement, reduced, in seconds")
	only := flag.String("only", "", "comma-separated sections to run: ingest,stall,idle,rss,render,beat,size")
	strict := flag.Bool("strict", false, "exit 3 when a target is missed")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "report: unexpected argument", flag.Arg(0), "; see -h")
		os.Exit(2)
	}
	cmd := "go run ./bench/cmd/report"
	if len(os.Args) > 1 {
		cmd += " " + strings.Join(os.Args[1:], " ")
	}
	opt := bench.Options{Quick: *quick, Command: cmd, Log: os.Stderr}
	if *only != "" {
		opt.Only = strings.Split(*only, ",")
	}
	r, err := bench.Run(opt)
	if r != nil {
		r.Markdown(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
	if *strict && r.Missed > 0 {
		fmt.Fprintf(os.Stderr, "report: %d targets missed\n", r.Missed)
		os.Exit(3)
	}
}
