package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"keystation/queue"
	"keystation/syncfile"
)

// lastRequestFile keeps a copy of the last exported request in the data
// directory: the response must answer it.
const lastRequestFile = "sync-request.last.json"

func exportSyncFile(ctx context.Context, app *App, path string, stdout io.Writer) error {
	file, req, err := queue.ExportRequest(ctx, app.DB)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(app.DataDir, lastRequestFile), file, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(path, file, 0o600); err != nil {
		return fmt.Errorf("write the request file: %w", err)
	}
	fmt.Fprintf(stdout, "request written to %s: %d reports, %d keys held, %d more reports waiting.\n"+
		"On the server: syncserver stations sync-file --in %s\nThen here: station sync --import <response file>\n",
		path, len(req.Reports), len(req.Holding), req.Backlog, filepath.Base(path))
	return nil
}

func importSyncFile(ctx context.Context, app *App, path string) (queue.Summary, error) {
	resp, err := os.ReadFile(path)
	if err != nil {
		return queue.Summary{}, err
	}
	if len(resp) > syncfile.MaxFileBytes {
		return queue.Summary{}, fmt.Errorf("%s is too large to be a sync response", path)
	}
	req, err := os.ReadFile(filepath.Join(app.DataDir, lastRequestFile))
	if errors.Is(err, fs.ErrNotExist) {
		return queue.Summary{}, fmt.Errorf("no request was exported from this station: run station sync --export FILE first")
	}
	if err != nil {
		return queue.Summary{}, err
	}
	return queue.ImportResponse(ctx, app.DB, req, resp)
}
