package poll_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// The rooms under poll/internal never import poll (the loop wires them,
// not the other way round), and only tests import testutil.
func TestRoomsImportDownwardOnly(t *testing.T) {
	const self = "github.com/varta-go/varta/poll"
	rooms := 0
	err := filepath.WalkDir("internal", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rooms++
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if p == self {
				t.Errorf("%s imports %s: a room must not import the loop", path, p)
			}
			if p == self+"/internal/testutil" && !strings.HasSuffix(path, "_test.go") {
				t.Errorf("%s imports testutil outside a test", path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if rooms < 10 {
		t.Fatalf("found only %d files under poll/internal; is the test run from poll/?", rooms)
	}
}
