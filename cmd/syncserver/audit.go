package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// errAuditBroken makes "audit verify" exit non-zero.
var errAuditBroken = errors.New("the audit log does not verify")

// runAudit runs "audit verify": it walks the audit log's hash chain and says
// where it breaks (exit 1) or that it is intact (exit 0).
func runAudit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "verify" {
		return usageError{msg: "audit: use verify"}
	}
	fs := newFlags("audit verify", stderr)
	data := dataFlag(fs)
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if _, err := parse(fs, args[1:]); err != nil {
		return err
	}
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	c, err := st.VerifyAudit(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(c); err != nil {
			return err
		}
	} else if c.OK {
		fmt.Fprintf(stdout, "audit log intact: %d entries, head %s\n", c.Entries, c.Head)
	} else {
		fmt.Fprintf(stdout, "audit log BROKEN at entry %d: %s\n", c.BrokenAt, c.Problem)
	}
	if !c.OK {
		return fmt.Errorf("%w: broken at entry %d: %s", errAuditBroken, c.BrokenAt, c.Problem)
	}
	return nil
}
