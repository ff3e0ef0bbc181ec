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
	mu    sync.Mutex
	built = map[string]string{}
	dir   string
)

// Build compiles the package at pkg (an import path) once per test binary
// and returns the executable's path. It builds with the varta_testhooks
// tag, which compiles in the hooks tests drive (a wedged loop, see
// poll/internal/ops); release builds never have them.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if bin, ok := built[pkg]; ok {
		return bin
	}
	if dir == "" {
		d, err := os.MkdirTemp("", "varta-testbin-")
		if err != nil {
			t.Fatal(err)
		}
		dir = d
	}
	bin := filepath.Join(dir, filepath.Base(pkg))
	out, err := exec.Command("go", "build", "-tags", "varta_testhooks", "-o", bin, pkg).CombinedOutput()
	if err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, out)
	}
	built[pkg] = bin
	return bin
}

// Command is exec.Command for a binary from Build, run through the
// emulator named by $VARTA_TEST_EMULATOR when it is set.
func Command(bin string, args ...string) *exec.Cmd {
	if emu := os.Getenv("VARTA_TEST_EMULATOR"); emu != "" {
		return exec.Command(emu, append([]string{bin}, args...)...)
	}
	return exec.Command(bin, args...)
}

// Cleanup removes the built binaries; call it from TestMain after m.Run.
func Cleanup() {
	mu.Lock()
	defer mu.Unlock()
	if dir != "" {
		os.RemoveAll(dir)
	}
}
