package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// The observer's reference, relative to the repository root.
const referencePath = "cmd/varta-watch/README.md"

func readFile(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// rawConst returns the text of the raw-string constant name declared in
// the Go source src (const name = `...`). The commands are package main,
// which a test cannot import, so their help texts are read as source.
func rawConst(t *testing.T, src, file, name string) string {
	t.Helper()
	start := "const " + name + " = `"
	i := strings.Index(src, start)
	if i < 0 {
		t.Fatalf("%s: no %s", file, start)
	}
	text := src[i+len(start):]
	j := strings.IndexByte(text, '`')
	if j < 0 {
		t.Fatalf("%s: %s is not closed", file, name)
	}
	return text[:j]
}

// optionLine matches a help line that introduces a flag: two spaces of
// indent, then the flag ("-h, --help" counts as --help). Continuation
// lines are indented further, so a flag named inside a description is
// not taken for one of the command's own.
var optionLine = regexp.MustCompile(`(?m)^  (?:-h, )?(--[a-z][a-z0-9-]*)`)

// flagWord matches any --flag in running text.
var flagWord = regexp.MustCompile(`(?:^|[^A-Za-z0-9_-])(--[a-z][a-z0-9-]*)`)

func helpFlags(t *testing.T, root, file, name string) []string {
	t.Helper()
	return optionFlags(t, rawConst(t, readFile(t, root, file), file, name), file+" "+name)
}

// watchHelpFlags runs the real varta-watch --help: its help text is
// generated from the flag table, so it is read from the binary.
func watchHelpFlags(t *testing.T) []string {
	t.Helper()
	bin := testbin.Build(t, "github.com/varta-go/varta/cmd/varta-watch")
	out, err := testbin.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("varta-watch --help: %v\n%s", err, out)
	}
	return optionFlags(t, string(out), "varta-watch --help")
}

// optionFlags returns the flags text introduces on option lines.
func optionFlags(t *testing.T, text, name string) []string {
	t.Helper()
	var flags []string
	for _, m := range optionLine.FindAllStringSubmatch(text, -1) {
		flags = append(flags, m[1])
	}
	if len(flags) == 0 {
		t.Fatalf("found no flags in %s", name)
	}
	slices.Sort(flags)
	return slices.Compact(flags)
}

// tableFlags returns the flags in the first cell of the reference's flag
// table rows (lines starting "| `--" or "| `-h`").
func tableFlags(reference string) []string {
	var flags []string
	for _, line := range strings.Split(reference, "\n") {
		if !strings.HasPrefix(line, "| `-") {
			continue
		}
		cell, _, _ := strings.Cut(strings.TrimPrefix(line, "|"), "|")
		for _, m := range flagWord.FindAllStringSubmatch(cell, -1) {
			flags = append(flags, m[1])
		}
	}
	slices.Sort(flags)
	return slices.Compact(flags)
}

// TestReferenceFlagsMatchHelp: the flag table of the observer's reference
// and its --help text name the same flags, and every other --flag the
// reference mentions is one of them, a varta-beat flag, or an upstream
// flag the observer refuses by name.
func TestReferenceFlagsMatchHelp(t *testing.T) {
	root := repoRoot(t)
	help := watchHelpFlags(t)
	reference := readFile(t, root, referencePath)
	table := tableFlags(reference)
	for _, f := range help {
		if !slices.Contains(table, f) {
			t.Errorf("--help prints %s, but the flag table of %s has no row for it", f, referencePath)
		}
	}
	for _, f := range table {
		if !slices.Contains(help, f) {
			t.Errorf("%s has a row for %s, which --help (cmd/varta-watch/help.go) does not print", referencePath, f)
		}
	}

	known := slices.Concat(help, helpFlags(t, root, "cmd/varta-beat/main.go", "usage"), removedFlags(t, root),
		helpFlags(t, root, "cmd/varta-watch/control.go", "controlUsage")) // status --json
	for i, line := range strings.Split(reference, "\n") {
		for _, m := range flagWord.FindAllStringSubmatch(line, -1) {
			if !slices.Contains(known, m[1]) {
				t.Errorf("%s:%d: mentions %s, which neither varta-watch nor varta-beat accepts", referencePath, i+1, m[1])
			}
		}
	}
}

// removedFlags reads the upstream flags varta-watch refuses with a hint
// (the removed map in cmd/varta-watch/flags.go).
func removedFlags(t *testing.T, root string) []string {
	t.Helper()
	src := readFile(t, root, "cmd/varta-watch/flags.go")
	i := strings.Index(src, "var removed = map[string]string{")
	if i < 0 {
		t.Fatal("cmd/varta-watch/flags.go: no removed map")
	}
	body, _, _ := strings.Cut(src[i:], "\n}")
	var flags []string
	for _, m := range regexp.MustCompile(`(?m)^\s*"([a-z][a-z0-9-]*)":`).FindAllStringSubmatch(body, -1) {
		flags = append(flags, "--"+m[1])
	}
	return flags
}

var (
	// metricName matches a metric family name in prose.
	metricName = regexp.MustCompile(`\bvarta_[a-z0-9_]*[a-z0-9]\b`)
	// familyDecl matches where the observer declares a family.
	familyDecl = regexp.MustCompile(`(?:Family|counter|gauge)\((?:e, )?"(varta_[a-z0-9_]+)"`)
)

// goSources returns the text of the non-test Go files under dir.
func goSources(t *testing.T, root, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestReferenceMetricsExist: every metric family the reference names is
// a quoted name in the code (so a renamed or removed family cannot linger
// in the docs), and every family the observer declares is in the
// reference's metrics table.
func TestReferenceMetricsExist(t *testing.T) {
	root := repoRoot(t)
	reference := readFile(t, root, referencePath)
	var code strings.Builder
	for _, dir := range []string{"poll", "recovery", "promtext", "cmd"} {
		for _, src := range goSources(t, root, dir) {
			code.WriteString(src)
		}
	}
	all := code.String()
	for i, line := range strings.Split(reference, "\n") {
		for _, name := range metricName.FindAllString(line, -1) {
			if !strings.Contains(all, `"`+name+`"`) {
				t.Errorf("%s:%d: names metric %s, which no Go source declares", referencePath, i+1, name)
			}
		}
	}
	declared := 0
	for file, src := range goSources(t, root, "poll") {
		for _, m := range familyDecl.FindAllStringSubmatch(src, -1) {
			declared++
			if !strings.Contains(reference, "| `"+m[1]+"` |") {
				rel, _ := filepath.Rel(root, file)
				t.Errorf("%s declares metric family %s; add a row for it to the metrics table of %s", filepath.ToSlash(rel), m[1], referencePath)
			}
		}
	}
	if declared == 0 {
		t.Error("found no metric family declarations under poll/; has the rendering code moved?")
	}
}
