package main

import (
	"path/filepath"

	"golang.org/x/sys/windows"
)

// onRemovableMedia reports whether path lies on a removable drive
// (GetDriveType DRIVE_REMOVABLE: a USB stick or a card).
func onRemovableMedia(path string) bool {
	vol := filepath.VolumeName(path)
	if vol == "" {
		return false
	}
	root, err := windows.UTF16PtrFromString(vol + `\`)
	if err != nil {
		return false
	}
	return windows.GetDriveType(root) == windows.DRIVE_REMOVABLE
}
