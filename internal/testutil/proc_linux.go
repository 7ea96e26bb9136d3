package testutil

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes the server die with the process that started it, so
// that a test killed by its timeout leaves no server behind.
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
