// Package testbin builds the project's commands for tests that drive the
// real binaries, and runs them the same way under cross-arch emulation.
//
// Under `go test -exec qemu-aarch64-static` the binary is built for the
// target architecture (GOARCH is inherited), and this machine has no
// binfmt_misc registration to run it directly, so .ci/run sets
// VARTA_TEST_EMULATOR=qemu-aarch64-static and Command prefixes it.
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	mu      sync.Mutex
	pending = map[string]*build{}
	dir     string
)

// build is one go build, run once; done is closed when it ends.
type build struct {
	done chan struct{}
	bin  string
	err  error
	out  []byte
}

// Build compiles the package at pkg (an import path) once per test binary
// and returns the executable's path. It builds with the varta_testhooks
// tag, which compiles in the hooks tests drive (a wedged loop, see
// poll/internal/ops); release builds never have them.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	b := start(pkg)
	<-b.done
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.bin
}

// Prebuild starts building pkgs at once, side by side, so that the
// first test to need one (Build) waits less; call it from TestMain.
func Prebuild(pkgs ...string) {
	for _, pkg := range pkgs {
		start(pkg)
	}
}

// start returns pkg's build, starting it unless it is under way or done.
func start(pkg string) *build {
	mu.Lock()
	defer mu.Unlock()
	if b, ok := pending[pkg]; ok {
		return b
	}
	b := &build{done: make(chan struct{})}
	pending[pkg] = b
	if dir == "" {
		d, err := os.MkdirTemp("", "varta-testbin-")
		if err != nil {
			b.err = err
			close(b.done)
			return b
		}
		dir = d
	}
	b.bin = filepath.Join(dir, filepath.Base(pkg))
	go func() {
		defer close(b.done)
		b.out, b.err = exec.Command("go", "build", "-tags", "varta_testhooks", "-o", b.bin, pkg).CombinedOutput()
	}()
	return b
}

// Command is exec.Command for a binary from Build, run through the
// emulator named by $VARTA_TEST_EMULATOR when it is set.
func Command(bin string, args ...string) *exec.Cmd {
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		return exec.Command(emu, append([]string{bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// AgentCommand is Command for an agent that must be recoverable from its
// first beat on: it starts bin 30 ms after its process starts, through a
// shell that execs it (the pid and its start time stay the same). The
// observer's pid-reuse guard cannot tell a frame queued within the 10 ms
// clock tick of its sender's start time from one a dead predecessor of
// that pid queued (cmd/varta-watch/README.md §3, pid reuse), and stalls
// of such a session are not recovered until a later frame verifies it; a
// real daemon initialises for longer than that before its first beat, a
// test agent started bare may not.
func AgentCommand(bin string, args ...string) *exec.Cmd {
	c := Command(bin, args...)
	return exec.Command("/bin/sh", append([]string{"-c", `sleep 0.03; exec "$@"`, "sh"}, c.Args...)...)
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	bs := make([]*build, 0, len(pending))
	for _, b := range pending {
		bs = append(bs, b)
	}
	mu.Unlock()
	for _, b := range bs { // a build still running would write into dir
		<-b.done
	}
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}
