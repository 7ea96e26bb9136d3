package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"keystation"
	"keystation/hwinfo"
	"keystation/keylist"
	"keystation/queue"
	"keystation/station"
	"keystation/store"
)

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

func runEnrol(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("enrol", stderr, &c)
	server := fs.String("server", "", "the sync server's URL, e.g. http://10.0.0.5:8080")
	token := fs.String("token", "", "the enrolment token a supervisor created (syncserver stations enrol-token)")
	name := fs.String("name", "", "this station's name (default: the token's)")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait for the server")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if *server == "" || *token == "" {
		return usageError{"enrol needs --server URL and --token TOKEN"}
	}
	app, err := openCommon(ctx, c, stderr, AppOptions{Sync: queue.Config{HTTPTimeout: *timeout}})
	if err != nil {
		return err
	}
	defer app.Close()
	r, err := app.Client.Enrol(ctx, *server, *token, *name)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "enrolled as station %d (%s) with %s\ndata directory: %s\n", r.StationID, r.Name, *server, app.DataDir)
	// Fill the buffer right away.
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	sum, err := app.Client.SyncOnce(sctx)
	if err != nil {
		fmt.Fprintf(stdout, "first sync failed (it is retried on the next command): %v\n", err)
		return nil
	}
	fmt.Fprintf(stdout, "first sync: %d keys received\n", sum.Grants)
	return nil
}

// activateFlags are the flags of activate and batch.
type activateFlags struct {
	activator, simOutcome  string
	simDelay, timeout      time.Duration
	syncTimeout            time.Duration
	sn, model, osVersion   string
	operator               string
	noSync, json           bool
	keys, edition, results string
	importOnly             bool
}

func runActivate(ctx context.Context, args []string, stdout, stderr io.Writer, batch bool) error {
	var c common
	var f activateFlags
	name := "activate"
	if batch {
		name = "batch"
	}
	fs := newFlags(name, stderr, &c)
	fs.StringVar(&f.activator, "activator", defaultActivator(), "sim (simulated) or windows")
	fs.StringVar(&f.simOutcome, "sim-outcome", "", "simulated outcomes, one per activation (see station help)")
	fs.DurationVar(&f.simDelay, "sim-delay", 0, "simulated install and activate each take this long")
	fs.DurationVar(&f.timeout, "timeout", 3*time.Minute, "longest install+activate+verify run; the key stays with the PC when it expires")
	fs.DurationVar(&f.syncTimeout, "sync-timeout", 10*time.Second, "longest sync after the activation")
	fs.StringVar(&f.sn, "sn", "", "serial number (overrides what is read)")
	fs.StringVar(&f.model, "model", "", "model (overrides what is read)")
	fs.StringVar(&f.osVersion, "os-version", "", "OS version string, e.g. \"Windows 11 Pro\" (overrides what is read)")
	fs.StringVar(&f.operator, "operator", "", "the operator's name, recorded in the report")
	fs.BoolVar(&f.noSync, "no-sync", false, "do not sync after the activation")
	fs.BoolVar(&f.json, "json", false, "print the result as JSON")
	if batch {
		fs.StringVar(&f.keys, "keys", "", "the key list (CSV or text) on the USB stick")
		fs.StringVar(&f.edition, "edition", "", "edition of the list's lines that name none")
		fs.StringVar(&f.results, "results", "", "the results CSV (default: next to the list, LIST.results.csv)")
		fs.BoolVar(&f.importOnly, "import-only", false, "import the list, do not activate this PC")
	}
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if batch && f.keys == "" {
		return usageError{"batch needs --keys FILE"}
	}
	driver, err := newDriver(f.activator, f.simOutcome, f.simDelay)
	if err != nil {
		return err
	}
	ov := hwinfo.Override{SN: f.sn, Model: f.model, OSVersion: f.osVersion}
	hw := hwinfo.ReaderFunc(func(ctx context.Context) (keystation.Hardware, error) {
		h, err := hwinfo.Read(ctx)
		if err != nil {
			return h, err
		}
		return ov.Apply(h), nil
	})
	app, err := openCommon(ctx, c, stderr, AppOptions{Driver: driver, HW: hw, Operator: f.operator, Sync: queue.Config{HTTPTimeout: f.syncTimeout}})
	if err != nil {
		return err
	}
	defer app.Close()
	core := app.Core
	core.ActivationTimeout = f.timeout
	out := stdout
	if f.json {
		out = io.Discard
	}
	if core.Simulated() {
		fmt.Fprintln(out, simBanner)
	}

	var imp *station.Import
	if batch {
		i, err := core.ImportKeyList(ctx, f.keys, keylist.Options{DefaultEdition: f.edition})
		if err != nil {
			return err
		}
		imp = &i
		printImport(out, i)
		if _, err := core.StartBatch(ctx, i, f.results); err != nil {
			return err
		}
		if f.importOnly {
			if f.json {
				return printJSON(stdout, i)
			}
			return nil
		}
	}

	h, err := core.ReadHardware(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "PC: %s %s, serial %s, %s\n", h.Manufacturer, h.Model, h.SerialNumber, h.OS.OSVersion())
	res, aerr := core.Activate(ctx, h, func(e station.Event) { printEvent(out, e) })
	printResult(out, res)
	if f.json {
		v := struct {
			station.Result
			Import *station.Import `json:"import,omitempty"`
			Error  string          `json:"error,omitempty"`
		}{Result: res, Import: imp}
		if aerr != nil {
			v.Error = keystation.ErrorMessage(aerr)
		}
		if err := printJSON(stdout, v); err != nil {
			return err
		}
	}
	if !f.noSync && len(res.Reports()) > 0 {
		syncAfter(ctx, app, out, f.syncTimeout)
	}
	code := map[station.Outcome]int{
		station.OutcomeActivated: exitOK, station.OutcomePCFault: exitPCFault, station.OutcomeNoKey: exitNoKey,
		station.OutcomeBurnLimit: exitNoKey, station.OutcomeFirmwareKey: exitFirmware, station.OutcomeCancelled: exitInterrupted,
	}[res.Outcome]
	if res.Outcome == station.OutcomeError {
		code = exitFailure
	}
	if aerr == nil {
		return nil
	}
	fmt.Fprintf(stderr, "station: %s\n", resultLine(res, aerr))
	return &exitError{code: code, err: aerr, quiet: true}
}

// syncAfter syncs briefly after an activation; offline is not an error.
func syncAfter(ctx context.Context, app *App, out io.Writer, timeout time.Duration) {
	if e, err := app.DB.Enrolment(ctx); err != nil || !e.Enrolled() {
		fmt.Fprintln(out, "not enrolled: the report waits in the outbox (station enrol)")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	sum, err := app.Client.SyncOnce(sctx)
	st, _ := app.DB.Status(ctx)
	if err != nil {
		fmt.Fprintf(out, "offline: %d reports wait in the outbox (%v)\n", st.Outbox, err)
		return
	}
	fmt.Fprintf(out, "synced: %d reports delivered, %d keys received; %d reports wait\n", sum.Applied+sum.Duplicates+sum.Conflicts, sum.Grants, st.Outbox)
}

func printImport(w io.Writer, i station.Import) {
	if i.AlreadyImported {
		fmt.Fprintf(w, "key list %s (sha256 %s) was imported before: nothing imported\n", i.File, i.SHA256[:12])
		return
	}
	fmt.Fprintf(w, "key list %s (%s, sha256 %s): %d keys imported", i.File, i.Format, i.SHA256[:12], i.Imported)
	for ed, n := range i.ByEdition {
		fmt.Fprintf(w, ", %s %d", ed, n)
	}
	fmt.Fprintf(w, "; %d skipped, %d rejected\n", len(i.Skipped), len(i.Rejected))
	for _, n := range i.Skipped {
		fmt.Fprintf(w, "  line %d skipped: %s\n", n.Line, n.Reason)
	}
	for _, n := range i.Rejected {
		fmt.Fprintf(w, "  line %d rejected: %s\n", n.Line, n.Reason)
	}
}

func printEvent(w io.Writer, e station.Event) {
	var b strings.Builder
	fmt.Fprintf(&b, "  [%d] %-8s %-6s", max(e.Attempt, 1), e.Step, e.Phase)
	if e.Message != "" {
		b.WriteString(" " + e.Message)
	}
	if e.Failure != nil {
		fmt.Fprintf(&b, " [%s fault %s]", e.Failure.Class, e.Failure.HRESULT)
	}
	fmt.Fprintln(w, b.String())
}

func resultLine(r station.Result, err error) string {
	sim := ""
	if r.Simulated {
		sim = "SIMULATED "
	}
	switch r.Outcome {
	case station.OutcomeActivated:
		return fmt.Sprintf("%sACTIVATED with key %s %s (%s)", sim, r.KeyID, r.Key, r.Edition)
	case station.OutcomePCFault:
		return fmt.Sprintf("%sPC FAULT: %s %s The key %s stays with this PC.", sim, r.Message, r.Fix, r.KeyID)
	}
	msg := string(r.Outcome)
	if err != nil {
		msg = strings.ToUpper(strings.ReplaceAll(msg, "-", " ")) + ": " + keystation.ErrorMessage(err)
	}
	if r.Fix != "" {
		msg += " " + r.Fix
	}
	return sim + msg
}

func printResult(w io.Writer, r station.Result) {
	for _, t := range r.Tries {
		line := fmt.Sprintf("  key %s %s (%s): %s", t.KeyID, t.Key, t.Source, t.Outcome)
		if t.Code != "" {
			line += " " + t.Code
		}
		if t.Message != "" && t.Outcome != "activated" {
			line += " — " + t.Message
		}
		fmt.Fprintln(w, line)
	}
	var err error
	if r.Outcome != station.OutcomeActivated {
		err = &keystation.Error{Message: r.Message}
	}
	fmt.Fprintln(w, "RESULT: "+resultLine(r, err))
}

func runSync(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("sync", stderr, &c)
	timeout := fs.Duration("timeout", 5*time.Minute, "longest sync")
	asJSON := fs.Bool("json", false, "print the summary as JSON")
	export := fs.String("export", "", "air-gapped: write the sync request to this file (on a USB stick) instead of calling the server")
	imp := fs.String("import", "", "air-gapped: apply the server's response file to the last exported request")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if *export != "" && *imp != "" {
		return usageError{"give --export or --import, not both"}
	}
	cfg := queue.Config{HTTPTimeout: min(*timeout, 60*time.Second)}
	if !*asJSON {
		cfg.Progress = func(s queue.Summary) {
			if s.Backlog > 0 {
				fmt.Fprintf(stderr, "sync: %d reports sent, %d waiting\n", s.Sent, s.Backlog)
			}
		}
	}
	app, err := openCommon(ctx, c, stderr, AppOptions{Sync: cfg})
	if err != nil {
		return err
	}
	defer app.Close()
	if *export != "" {
		return exportSyncFile(ctx, app, *export, stdout)
	}
	sctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	var sum queue.Summary
	if *imp != "" {
		sum, err = importSyncFile(ctx, app, *imp)
	} else {
		sum, err = app.Client.SyncOnce(sctx)
	}
	if *asJSON {
		v := struct {
			queue.Summary
			Error string `json:"error,omitempty"`
		}{Summary: sum}
		if err != nil {
			v.Error = err.Error()
		}
		if perr := printJSON(stdout, v); perr != nil {
			return perr
		}
	} else {
		fmt.Fprintf(stdout, "sync: %d round trips, %d reports sent (%d applied, %d duplicate, %d conflict, %d rejected), %d keys granted, %d revoked, %d reports waiting, clock skew %s\n",
			sum.Rounds, sum.Sent, sum.Applied, sum.Duplicates, sum.Conflicts, sum.Rejected, sum.Grants, sum.Revoked, sum.Backlog, sum.ClockSkew.Round(time.Millisecond))
	}
	return err
}

func runStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("status", stderr, &c)
	asJSON := fs.Bool("json", false, "print the status as one JSON object")
	offline := fs.Bool("offline", false, "do not check whether the server answers")
	activator := fs.String("activator", defaultActivator(), "the activator this station uses (sim or windows)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	driver, err := newDriver(*activator, "", 0)
	if err != nil && *activator != "windows" {
		return err
	}
	app, err := openCommon(ctx, c, stderr, AppOptions{Driver: driver, Sync: queue.Config{HTTPTimeout: 3 * time.Second}})
	if err != nil {
		return err
	}
	defer app.Close()
	if !*offline {
		if e, _ := app.DB.Enrolment(ctx); e.Enrolled() {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			app.Client.Ping(pctx)
			cancel()
		}
	}
	st, err := app.Core.Status(ctx)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(stdout, struct {
			station.Status
			DataDir  string `json:"dataDir"`
			Portable bool   `json:"portable"`
		}{st, app.DataDir, app.Portable})
	}
	if st.Simulated {
		fmt.Fprintln(stdout, "activator: simulated (SIMULATED: nothing real is activated)")
	} else if st.Driver != "" {
		fmt.Fprintln(stdout, "activator: "+st.Driver)
	}
	online := "offline"
	switch {
	case !st.Enrolled:
		online = "not enrolled (station enrol --server URL --token TOKEN)"
	case st.Online:
		online = "online"
	case !st.Checked:
		online = "not checked"
	}
	fmt.Fprintf(stdout, "station:   %s (id %d) → %s: %s\n", st.Station, st.StationID, st.Server, online)
	last := "never"
	if st.LastSync != nil {
		last = st.LastSync.Local().Format(time.DateTime) + " (" + st.LastSyncAge + " ago)"
	}
	fmt.Fprintf(stdout, "last sync: %s; clock skew %d ms\n", last, st.ClockSkewMS)
	if st.LastSyncError != "" {
		fmt.Fprintf(stdout, "last error: %s\n", st.LastSyncError)
	}
	fmt.Fprintf(stdout, "outbox:    %d waiting, %d need attention, %d conflicts, %d delivered\n", st.Outbox, st.Attention, st.Conflicts, st.Delivered)
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "edition\tkeys left\tleased\tusb\tassigned\ttarget\tlow water\t")
	for _, ed := range sortedKeys(st.Buffer) {
		b := st.Buffer[ed]
		low := ""
		if b.Low {
			low = "LOW STOCK"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", ed, b.Available, b.Leased, b.USB, b.Assigned, b.Target, b.LowWater, low)
	}
	tw.Flush()
	mode := ""
	if app.Portable {
		mode = " (portable: on removable media)"
	}
	fmt.Fprintf(stdout, "data:      %s%s\n", app.DataDir, mode)
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func runHistory(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("history", stderr, &c)
	limit := fs.Int("limit", 50, "how many activations")
	syncState := fs.String("sync", "", "only waiting, synced, conflict or rejected")
	search := fs.String("search", "", "serial number, model or keyId contains")
	asJSON := fs.Bool("json", false, "print as JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	app, err := openCommon(ctx, c, stderr, AppOptions{})
	if err != nil {
		return err
	}
	defer app.Close()
	recs, err := app.Core.History(ctx, store.HistoryFilter{Limit: *limit, Sync: *syncState, Search: *search})
	if err != nil {
		return err
	}
	if *asJSON {
		if recs == nil {
			recs = []store.ActivationRecord{}
		}
		return printJSON(stdout, recs)
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "time\tsn\tmodel\tkeyId\tkey\toutcome\tsync\tmessage\t")
	for _, r := range recs {
		sim := ""
		if r.Simulated {
			sim = " (SIMULATED)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s%s\t%s\t%s\n", r.At.Local().Format(time.DateTime), r.SN, r.Model, r.KeyID, r.Key, r.Outcome, sim, r.Sync, oneLine(r.Code+" "+r.Message))
	}
	return tw.Flush()
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

func runTargets(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	fs := newFlags("targets", stderr, &c)
	edition := fs.String("edition", "", "edition slug, e.g. pro")
	target := fs.Int("target", store.DefaultTarget, "keys to keep in the buffer")
	low := fs.Int("low-water", -1, "sync as soon as fewer keys are left (default: a quarter of the target)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if *edition == "" {
		return usageError{"targets needs --edition EDITION"}
	}
	if *low < 0 {
		*low = *target / 4
	}
	app, err := openCommon(ctx, c, stderr, AppOptions{})
	if err != nil {
		return err
	}
	defer app.Close()
	if err := app.DB.SetTarget(ctx, *edition, store.BufferTarget{Target: *target, LowWater: *low}); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "buffer target of %s: %d keys, sync below %d\n", *edition, *target, *low)
	return nil
}
