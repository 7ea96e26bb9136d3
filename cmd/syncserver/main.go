// Command syncserver is KeyStation's sync server: it holds the key pools,
// hands keys to stations and operators, applies their reports and serves the
// supervisors' and licensing APIs. Run "syncserver help" for its commands.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"keystation/store"
)

func main() {
	// Before anything uses SQLite: its memory statistics cost a mutex in
	// every allocation, and the server reads none of them.
	if err := store.DisableMemoryStatistics(); err != nil {
		fmt.Fprintln(os.Stderr, "syncserver:", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(Run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
