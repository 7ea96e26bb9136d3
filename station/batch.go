package station

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"keystation"
	"keystation/keylist"
	"keystation/store"
)

// Batch is an active batch: PCs take keys from one key list first, and the
// results CSV next to the list is rewritten as each PC is done.
type Batch struct {
	SourceID   int64  `json:"sourceId"`
	File       string `json:"file"`    // the key list
	SHA256     string `json:"sha256"`  // of the key list
	Results    string `json:"results"` // the results CSV
	ResultsErr string `json:"resultsError,omitempty"`
}

// ResultsPath is where the results CSV of a key list goes: next to it, named
// after it ("keys.csv" → "keys.results.csv").
func ResultsPath(list string) string {
	ext := filepath.Ext(list)
	return strings.TrimSuffix(list, ext) + ".results.csv"
}

// LineNote is a line of a key list that was not imported, and why.
type LineNote struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
	Key    string `json:"key,omitempty"` // masked
}

// Import says what importing a key list did.
type Import struct {
	File            string         `json:"file"`
	SHA256          string         `json:"sha256"`
	Format          string         `json:"format"`
	Lines           int            `json:"lines"`
	SourceID        int64          `json:"sourceId"`
	AlreadyImported bool           `json:"alreadyImported"`
	Imported        int            `json:"imported"`
	ByEdition       map[string]int `json:"byEdition"`
	Skipped         []LineNote     `json:"skipped"`  // keys already on the station
	Rejected        []LineNote     `json:"rejected"` // invalid lines, with reasons
}

// ReadKeyList reads a key list without importing it (a preview).
func ReadKeyList(path string, opt keylist.Options) (*keylist.List, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return keylist.Read(f, opt)
}

// ImportKeyList imports a key list from a USB stick into a local pool marked
// with its file name and SHA-256. Importing the same file again imports
// nothing; keys already on the station are skipped; invalid lines are listed
// with their line numbers and reasons.
func (c *Core) ImportKeyList(ctx context.Context, path string, opt keylist.Options) (Import, error) {
	l, err := ReadKeyList(path, opt)
	if err != nil {
		return Import{}, err
	}
	imp := Import{File: path, SHA256: l.SHA256, Format: l.Format, Lines: l.Lines, ByEdition: map[string]int{}, Skipped: []LineNote{}, Rejected: []LineNote{}}
	for _, r := range l.Rejected {
		imp.Rejected = append(imp.Rejected, LineNote{Line: r.Line, Reason: r.Reason, Key: r.Key})
	}
	in := store.KeyListImport{File: filepath.Base(path), Path: path, SHA256: l.SHA256, Lines: l.Lines, Rejected: len(l.Rejected)}
	masked := map[int]string{}
	for _, e := range l.Entries {
		in.Entries = append(in.Entries, store.ImportEntry{Line: e.Line, Key: e.Key, KeyID: e.KeyID, Edition: e.Edition})
		masked[e.Line] = e.Key.Masked()
	}
	res, err := c.Store.ImportKeyList(ctx, in)
	if err != nil {
		return imp, err
	}
	imp.SourceID, imp.AlreadyImported, imp.Imported, imp.ByEdition = res.SourceID, res.AlreadyImported, res.Imported, res.ByEdition
	for _, n := range res.Skipped {
		imp.Skipped = append(imp.Skipped, LineNote{Line: n.Line, Reason: n.Reason, Key: masked[n.Line]})
	}
	for _, n := range res.Rejected {
		imp.Rejected = append(imp.Rejected, LineNote{Line: n.Line, Reason: n.Reason, Key: masked[n.Line]})
	}
	sort.Slice(imp.Rejected, func(i, j int) bool { return imp.Rejected[i].Line < imp.Rejected[j].Line })
	return imp, nil
}

// StartBatch makes PCs take keys from an imported key list first and keeps
// its results CSV (results: "" for ResultsPath(list)) up to date.
func (c *Core) StartBatch(ctx context.Context, imp Import, results string) (*Batch, error) {
	if results == "" {
		results = ResultsPath(imp.File)
	}
	b := &Batch{SourceID: imp.SourceID, File: imp.File, SHA256: imp.SHA256, Results: results}
	c.bmu.Lock()
	c.batch = b
	c.bmu.Unlock()
	return b, c.WriteBatchResults(ctx)
}

// EndBatch ends the active batch.
func (c *Core) EndBatch() {
	c.bmu.Lock()
	c.batch = nil
	c.bmu.Unlock()
}

// Batch returns a copy of the active batch, or nil.
func (c *Core) Batch() *Batch {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	if c.batch == nil {
		return nil
	}
	b := *c.batch
	return &b
}

// BatchResults returns the rows of the active batch's results CSV.
func (c *Core) BatchResults(ctx context.Context) ([]keylist.Result, error) {
	b := c.Batch()
	if b == nil {
		return nil, keystation.Errorf(keystation.ENOTFOUND, "no batch is active")
	}
	rows, err := c.Store.SourceResults(ctx, b.SourceID)
	if err != nil {
		return nil, err
	}
	out := make([]keylist.Result, len(rows))
	for i, r := range rows {
		status := r.Status
		if c.Simulated() {
			status += " (SIMULATED)"
		}
		out[i] = keylist.Result{KeyID: r.KeyID, Key: r.Key, SN: r.SN, Model: r.Model, Status: status, Message: r.Message, Time: r.Time}
	}
	return out, nil
}

// WriteBatchResults rewrites the active batch's results CSV (atomically:
// a temporary file renamed over it).
func (c *Core) WriteBatchResults(ctx context.Context) error {
	b := c.Batch()
	if b == nil {
		return nil
	}
	rows, err := c.BatchResults(ctx)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := keylist.WriteResults(&buf, rows); err != nil {
		return err
	}
	return writeFileAtomic(b.Results, buf.Bytes())
}

func (c *Core) writeBatchResults(ctx context.Context) {
	if err := c.WriteBatchResults(context.WithoutCancel(ctx)); err != nil {
		c.log().Error("write batch results", "err", err)
		c.bmu.Lock()
		if c.batch != nil {
			c.batch.ResultsErr = err.Error()
		}
		c.bmu.Unlock()
	}
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("results file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("results file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("results file: %w", err)
	}
	return nil
}
