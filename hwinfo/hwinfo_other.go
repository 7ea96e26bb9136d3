//go:build !linux && !windows

package hwinfo

import (
	"context"
	"errors"
	"fmt"
	"runtime"

	"keystation"
)

// Read is not supported on this platform; use Fixed or LinuxReader instead.
func Read(ctx context.Context) (keystation.Hardware, error) {
	return keystation.Hardware{}, fmt.Errorf("hwinfo: reading hardware on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}
