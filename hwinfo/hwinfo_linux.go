package hwinfo

import (
	"context"

	"keystation"
)

// Read reads the hardware of this PC from sysfs and procfs.
func Read(ctx context.Context) (keystation.Hardware, error) {
	return LinuxReader{Root: "/"}.Read(ctx)
}
