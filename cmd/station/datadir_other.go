//go:build !linux && !windows

package main

// onRemovableMedia is not detected on this platform: the data directory
// defaults to the user's application-data directory.
func onRemovableMedia(path string) bool { return false }
