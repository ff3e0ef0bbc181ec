package bench

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ModuleRoot is the directory of the varta-go go.mod the harness runs in.
func ModuleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the varta-go module: run from the repository")
	}
	return filepath.Dir(mod), nil
}

// BuildObserver builds cmd/varta-watch into dir the way .ci/build-release
// does (static, stripped, -trimpath) for this machine, and returns its path.
func BuildObserver(root, dir string) (string, error) {
	bin := filepath.Join(dir, "varta-watch")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, "./cmd/varta-watch")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/varta-watch: %v\n%s", err, out)
	}
	return bin, nil
}
