//go:build !windows

package activation

// NewWindowsDriver fails with ErrNotWindows: only Windows can be activated.
func NewWindowsDriver() (Driver, error) { return nil, ErrNotWindows }
