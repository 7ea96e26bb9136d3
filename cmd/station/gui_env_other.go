//go:build !unix

package main

// reexecForGUI: Windows cannot replace a running program with another
// (exec); the station keeps Fyne's default cache lifetime there, where the
// GPU, not system RAM, holds the textures.
func reexecForGUI() {}
