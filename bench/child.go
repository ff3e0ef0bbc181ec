package bench

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// roleEnv names the role a re-executed harness binary plays.
const roleEnv = "VARTA_BENCH_ROLE"

const (
	roleSender   = "sender"
	roleBaseline = "baseline"
)

// Child runs this process in the role named by $VARTA_BENCH_ROLE and exits;
// without it, Child returns at once. Call it first in main (and TestMain):
// the harness re-executes its own binary for senders and the baseline
// receiver, so that their pids are real.
func Child() {
	role := os.Getenv(roleEnv)
	if role == "" {
		return
	}
	var err error
	switch role {
	case roleSender:
		err = senderMain(os.Args[1:], os.Stdout)
	case roleBaseline:
		err = baselineMain(os.Args[1:], os.Stdin, os.Stdout)
	default:
		err = errors.New("unknown role")
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// child is a running harness child process.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stdout *bufio.Reader
	stderr *strings.Builder
}

// startChild re-executes this binary in role with args.
func startChild(role string, args ...string) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, args...)
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		// Cross-arch tests under qemu-user: no binfmt_misc here, so the
		// child binary needs the emulator too (see cmd/internal/testbin).
		cmd = exec.Command(emu, append([]string{self}, args...)...)
	}
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	if os.Getenv("GOMAXPROCS") == "" {
		// One P from the start, as varta-watch runs (it re-executes itself
		// so): the same runtime set-up on both sides of a comparison.
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	return startCmd(cmd)
}

// startCmd starts cmd with its standard input and output piped to the
// harness, as every child speaks the same line protocol.
func startCmd(cmd *exec.Cmd) (*child, error) {
	var err error
	c := &child{cmd: cmd, stderr: &strings.Builder{}}
	c.cmd.Stderr = c.stderr
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	c.stdout = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// readLine reads one line of the child's output.
func (c *child) readLine() (string, error) {
	l, err := c.stdout.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s: %v %s", c.cmd.Path, err, strings.TrimSpace(c.stderr.String()))
	}
	return strings.TrimSuffix(l, "\n"), nil
}

// stop asks the child to finish (SIGTERM and end of input), then returns
// its last output line, which every role uses for its summary.
func (c *child) stop(grace time.Duration) (string, error) {
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.stdin.Close()
	return c.wait(grace)
}

// wait collects the last output line and reaps the child, killing it after
// grace.
func (c *child) wait(grace time.Duration) (string, error) {
	done := make(chan struct{})
	var last string
	var rerr error
	go func() {
		defer close(done)
		for {
			l, err := c.stdout.ReadString('\n')
			if l = strings.TrimSpace(l); l != "" {
				last = l
			}
			if err != nil {
				if err != io.EOF {
					rerr = err
				}
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(grace):
		c.cmd.Process.Kill()
		<-done
	}
	werr := c.cmd.Wait()
	if werr != nil {
		return last, fmt.Errorf("%v: %s", werr, strings.TrimSpace(c.stderr.String()))
	}
	return last, rerr
}

// fields parses "k=v k=v" summary lines.
func fields(line string) map[string]string {
	m := map[string]string{}
	for _, f := range strings.Fields(line) {
		if k, v, ok := strings.Cut(f, "="); ok {
			m[k] = v
		}
	}
	return m
}

func fieldInt(m map[string]string, k string) int64 {
	v, _ := strconv.ParseInt(m[k], 10, 64)
	return v
}
