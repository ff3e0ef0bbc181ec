package docs

import (
	"os"
	"testing"

	"github.com/varta-go/varta/cmd/internal/testbin"
)

// TestMain removes the varta-watch binary the reference test builds.
func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}
