package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"keystation/api"
	"keystation/auth"
	"keystation/store"
)

// setupAdminAPI gives the admin API its token issuer: the signing secret is
// kept sealed in the database (store.TokenSecret).
func setupAdminAPI(ctx context.Context, a *api.Server, st *store.Server) error {
	secret, err := st.TokenSecret(ctx)
	if err != nil {
		return fmt.Errorf("token secret: %w", err)
	}
	t, err := auth.NewTokens(secret)
	if err != nil {
		return err
	}
	a.SetTokens(t)
	return nil
}

// cliBy is the audit actor of command-line changes.
func cliBy() store.AuditBy {
	return store.AuditBy{User: "cli", Via: store.ViaCLI}
}

// runTenants runs "tenants add NAME" and "tenants list".
func runTenants(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{msg: "tenants: use add or list"}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("tenants "+sub, stderr)
	data := dataFlag(fs)
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	switch sub {
	case "add":
		if len(pos) == 0 {
			return usageError{msg: "tenants add takes a NAME"}
		}
	case "list":
		if len(pos) != 0 {
			return usageError{msg: "tenants list takes no arguments"}
		}
	default:
		return usageError{msg: "tenants: unknown subcommand " + sub}
	}
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub == "add" {
		t, err := st.CreateTenant(ctx, strings.Join(pos, " "), cliBy())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "tenant %s added (id %d)\n", t.Name, t.ID)
		return nil
	}
	ts, err := st.Tenants(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED")
	for _, t := range ts {
		fmt.Fprintf(tw, "%d\t%s\t%s\n", t.ID, t.Name, t.CreatedAt)
	}
	return tw.Flush()
}
