//go:build !varta_testhooks

package ops

import "github.com/varta-go/varta/poll/internal/sink"

// Release builds have no test hooks (see testhooks_on.go): nothing in the
// environment can wedge the loop on purpose.
func testWedgeAt(now int64) int64 { return 0 }

func testWedge(*sink.Logger) {}
