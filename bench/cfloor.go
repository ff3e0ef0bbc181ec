package bench

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// ErrNoCC: this machine has no C compiler, so the C floor cannot be
// built; the report says so instead of a number.
var ErrNoCC = errors.New("no C compiler (cc) on this machine")

// BuildCFloor compiles bench/cfloor/floor.c, the C floor receiver, with
// the system C compiler into dir.
func BuildCFloor(root, dir string) (string, error) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		return "", ErrNoCC
	}
	bin := filepath.Join(dir, "cfloor")
	out, err := exec.Command(cc, "-O2", "-o", bin, filepath.Join(root, "bench", "cfloor", "floor.c")).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("cc bench/cfloor/floor.c: %v\n%s", err, out)
	}
	return bin, nil
}

// StartCFloor runs the C floor bound at socket: woken per datagram, or
// with tickMs > 0 reading the socket on a tick. It speaks the baseline
// receiver's protocol, so it is driven as a Baseline.
func StartCFloor(bin, socket string, tickMs int) (*Baseline, error) {
	args := []string{socket}
	if tickMs > 0 {
		args = []string{"-tick", strconv.Itoa(tickMs), socket}
	}
	c, err := startCmd(exec.Command(bin, args...))
	if err != nil {
		return nil, err
	}
	if l, err := c.readLine(); err != nil || l != "ready" {
		c.stop(time.Second)
		return nil, fmt.Errorf("C floor receiver did not start: %q %v", l, err)
	}
	return &Baseline{c: c, Socket: socket}, nil
}
