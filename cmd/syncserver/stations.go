package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"keystation/store"
)

func runStations(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{msg: "stations: use enrol-token, list, reclaim, revoke, reconcile or sync-file"}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("stations "+sub, stderr)
	data := dataFlag(fs)
	name := fs.String("name", "", "station name for stations enrolled with the token")
	uses := fs.Int("uses", 1, "how many stations may enrol with the token")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	tenant := fs.Int64("tenant", 1, "tenant ID")
	asJSON := fs.Bool("json", false, "print JSON")
	in := fs.String("in", "", "sync-file: the station's request file")
	out := fs.String("out", "", "sync-file: where to write the response file (default: next to the request)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	var id int64
	switch sub {
	case "reclaim", "revoke", "reconcile":
		if len(pos) != 1 {
			return usageError{msg: "stations " + sub + " takes exactly one station ID"}
		}
		if id, err = strconv.ParseInt(pos[0], 10, 64); err != nil {
			return usageError{msg: "station ID must be a number"}
		}
	case "enrol-token", "list", "sync-file":
	default:
		return usageError{msg: "stations: unknown subcommand " + sub}
	}
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "enrol-token":
		if *uses < 1 || *uses > 10000 {
			return usageError{msg: "--uses must be between 1 and 10000"}
		}
		tok, err := st.CreateEnrolToken(ctx, store.EnrolTokenOptions{Name: *name, Tenant: *tenant, Uses: *uses, TTL: *ttl, By: cliBy()})
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(map[string]any{"token": tok, "uses": *uses, "expiresIn": ttl.String()})
		}
		fmt.Fprintf(stdout, "%s\n", tok)
		fmt.Fprintf(stderr, "enrolment token for %d station(s), valid %s; on the station: station enrol --server URL --token %s\n", *uses, ttl, tok)
	case "list":
		sts, err := st.Stations(ctx, 0)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(sts)
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tTENANT\tLAST SYNC\tSKEW\tBACKLOG\tBUFFER\tSTATUS")
		for _, s := range sts {
			skew, status, last := "-", "active", s.LastSyncAt
			if s.ClockSkewMS != nil {
				skew = (time.Duration(*s.ClockSkewMS) * time.Millisecond).String()
			}
			if s.Revoked {
				status = "revoked"
			}
			if last == "" {
				last = "never"
			}
			buf, _ := json.Marshal(s.Buffer)
			fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", s.ID, s.Name, s.TenantID, last, skew, s.Backlog, buf, status)
		}
		return tw.Flush()
	case "reclaim":
		n, err := st.ReclaimStation(ctx, 0, id, cliBy())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "station %d: %d leased keys returned to the pool; reports of any it used offline will be flagged as conflicts\n", id, n)
	case "revoke":
		if err := st.RevokeStation(ctx, 0, id, cliBy()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "station %d: credential revoked; reclaim its keys with: syncserver stations reclaim %d\n", id, id)
	case "sync-file":
		if *in == "" {
			return usageError{msg: "stations sync-file needs --in REQUEST_FILE"}
		}
		req, err := os.ReadFile(*in)
		if err != nil {
			return err
		}
		resp, err := st.SyncFile(ctx, req, "usb-file")
		if err != nil {
			return err
		}
		dst := *out
		if dst == "" {
			dst = strings.TrimSuffix(*in, filepath.Ext(*in)) + ".response.json"
		}
		if err := os.WriteFile(dst, resp, 0o600); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "response written to %s; carry it back to the station and run: station sync --import %s\n", dst, filepath.Base(dst))
	case "reconcile":
		if _, err := st.StationByID(ctx, id); err != nil {
			return err
		}
		rec, err := st.Reconcile(ctx, id)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(stdout).Encode(rec)
		}
		fmt.Fprintf(stdout, "station %d: leased %d, used %d, activated %d, failed %d, returned %d, conflicting %d\n",
			id, rec.Leased, rec.Used, rec.Activated, rec.Failed, rec.Returned, rec.Conflicting)
	}
	return nil
}
