package recovery

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestVerifyErrorChain: VerifyAudit's I/O failures keep their cause.
func TestVerifyErrorChain(t *testing.T) {
	_, err := VerifyAudit(filepath.Join(t.TempDir(), "missing"))
	var ve *VerifyError
	if !errors.As(err, &ve) || !errors.Is(err, os.ErrNotExist) || !errors.Is(err, syscall.ENOENT) {
		t.Errorf("VerifyAudit(missing) = %v, want a VerifyError wrapping ENOENT", err)
	}
}
