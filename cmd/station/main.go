// Command station is KeyStation's station: it runs on the PC being built,
// reads its hardware, picks the edition, takes a product key from its local
// offline buffer, installs and activates it, and queues the report for the
// sync server. Run "station help" for its commands and exit codes.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	args := os.Args[1:]
	if len(args) == 0 && hasDisplay() {
		args = []string{"gui"} // double-clicked on a desktop: the line worker's GUI
	}
	if isGUI(args) && hasDisplay() {
		reexecForGUI()
		tuneGUIMemory()
	}
	os.Exit(Run(ctx, args, os.Stdin, os.Stdout, os.Stderr))
}
