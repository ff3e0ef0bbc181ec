package docs

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// repoRoot walks up from the test's directory to the one holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// proseFiles lists the repository files whose comments or text may cite
// a document: Go sources, Markdown, shell scripts, YAML, and everything
// under .ci/. Tracked files when git can say which; otherwise every file
// outside hidden directories (and .ci/ itself).
func proseFiles(t *testing.T, root string) []string {
	t.Helper()
	var all []string
	if out, err := exec.Command("git", "-C", root, "ls-files", "-z").Output(); err == nil && len(out) > 0 {
		for _, f := range bytes.Split(bytes.TrimRight(out, "\x00"), []byte{0}) {
			all = append(all, filepath.FromSlash(string(f)))
		}
	} else {
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, p)
			if d.IsDir() {
				if name := d.Name(); rel != "." && strings.HasPrefix(name, ".") && name != ".ci" {
					return filepath.SkipDir
				}
				return nil
			}
			all = append(all, rel)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	var files []string
	for _, f := range all {
		switch {
		case strings.HasPrefix(filepath.ToSlash(f), ".ci/"):
		case slices.Contains([]string{".go", ".md", ".sh", ".yml", ".yaml"}, filepath.Ext(f)):
		default:
			continue
		}
		if _, err := os.Stat(filepath.Join(root, f)); errors.Is(err, fs.ErrNotExist) {
			continue // deleted in the working tree, not yet committed
		}
		files = append(files, f)
	}
	return files
}

var (
	// mdName matches a path-like word ending in .md: README.md,
	// vlp/PROTOCOL.md, ../../varta-watch/README.md. The first group keeps it from
	// starting inside a longer path or URL (a URL's host never qualifies,
	// so links to other sites are not checked).
	mdName = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./-])((?:\.\.?/)*\.?[A-Za-z0-9_][A-Za-z0-9_./-]*\.md)(?:[^A-Za-z0-9_]|$)`)
	// issueRef matches a numbered issue, with or without '#': the
	// repository carries no tracker, so such a number means nothing to a
	// reader. Name the feature instead.
	issueRef = regexp.MustCompile(`(?i)\bissues?\s*(?:#\s*\d+|\d+\b)`)
)

// TestCitationsResolve fails for every line that names a Markdown file
// the repository lacks (resolved against the citing file's directory and
// against the repository root) or that cites an issue number.
func TestCitationsResolve(t *testing.T) {
	root := repoRoot(t)
	files := proseFiles(t, root)
	if len(files) == 0 {
		t.Fatal("found no files to check")
	}
	exists := func(p string) bool {
		st, err := os.Stat(p)
		return err == nil && !st.IsDir()
	}
	bad := 0
	for _, f := range files {
		text, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(text), "\n") {
			for _, m := range mdName.FindAllStringSubmatch(line, -1) {
				name := filepath.FromSlash(m[1])
				if exists(filepath.Join(root, filepath.Dir(f), name)) || exists(filepath.Join(root, name)) {
					continue
				}
				t.Errorf("%s:%d: names %s, which is not in the repository", filepath.ToSlash(f), i+1, m[1])
				bad++
			}
			for _, m := range issueRef.FindAllString(line, -1) {
				t.Errorf("%s:%d: cites %q; the repository has no issue tracker, name the feature instead", filepath.ToSlash(f), i+1, m)
				bad++
			}
		}
	}
	if bad > 0 {
		t.Logf("%d offences in %d files checked", bad, len(files))
	}
}
