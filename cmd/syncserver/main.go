// Command syncserver is KeyStation's sync server: it holds the key pools,
// hands keys to stations and operators, applies their reports and serves the
// supervisors' and licensing APIs. Run "syncserver help" for its commands.
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
	os.Exit(Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
