//go:build !varta_testhooks

package escalate

import (
	"github.com/varta-go/varta/poll/internal/sink"
	"github.com/varta-go/varta/recovery/resetreason"
)

// Release builds have no seam (see testhooks_on.go): the reboot is real
// and the boot id is the kernel's.
func newRebooter(*sink.Logger) rebooter { return sysRebooter{} }

func bootIDPath() string { return resetreason.BootIDPath }
