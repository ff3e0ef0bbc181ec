package bench

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
)

// Targets of the release build, as .ci/build-release names its output
// directories.
var releaseTargets = []string{"linux-amd64", "linux-arm64", "linux-armv7"}

// BinarySizes builds the release binaries with .ci/build-release into dir
// and returns varta-watch's size per target, in bytes.
func BinarySizes(root, dir string) (map[string]int64, error) {
	cmd := exec.Command("bash", filepath.Join(root, ".ci", "build-release"), dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf(".ci/build-release: %v\n%s", err, out)
	}
	sizes := map[string]int64{}
	for _, t := range releaseTargets {
		bin := filepath.Join(dir, t, "varta-watch")
		st, err := os.Stat(bin)
		if err != nil {
			return nil, err
		}
		if err := checkStatic(bin); err != nil {
			return nil, err
		}
		sizes[t] = st.Size()
	}
	return sizes, nil
}

// checkStatic refuses an ELF file with a program interpreter (dynamically
// linked); without readelf it trusts the build flags.
func checkStatic(bin string) error {
	out, err := exec.Command("readelf", "-l", bin).Output()
	if err != nil {
		return nil
	}
	if bytes.Contains(out, []byte("INTERP")) {
		return fmt.Errorf("%s is dynamically linked", bin)
	}
	return nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+)\s+\d+\s+([\d.]+) ns/op`)

// GoBenchmark runs one Go benchmark of package pkg in root and returns its
// ns/op.
func GoBenchmark(root, pkg, name, benchtime string) (float64, error) {
	cmd := exec.Command("go", "test", "-run", "^$", "-bench", "^"+name+"$", "-benchtime", benchtime, "-benchmem", pkg)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("go test -bench %s %s: %v\n%s", name, pkg, err, out)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := benchLine.FindStringSubmatch(sc.Text()); m != nil {
			return strconv.ParseFloat(m[2], 64)
		}
	}
	return 0, fmt.Errorf("go test -bench %s: no result in\n%s", name, out)
}
