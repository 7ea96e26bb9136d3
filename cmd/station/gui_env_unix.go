//go:build unix

package main

import (
	"os"
	"syscall"
)

// reexecForGUI re-executes the station in place (same process ID, same
// arguments) with the environment guiEnvironment asks for, so that Fyne
// sees it when it initialises. It returns only when there is nothing to do
// or the exec failed (the GUI then runs with Fyne's defaults).
func reexecForGUI() {
	env := guiEnvironment()
	if len(env) == 0 {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	_ = syscall.Exec(exe, os.Args, append(os.Environ(), env...))
}
