package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"keystation"
	"keystation/auth"
	"keystation/keylist"
	"keystation/store"
)

// cliStore opens the store for a one-shot command, logging warnings only.
func cliStore(ctx context.Context, dir string, stderr io.Writer) (*store.Server, *slog.Logger, error) {
	log, _ := newLogger(stderr, env("KEYSTATION_LOG_LEVEL", "warn"), false)
	st, err := openStore(ctx, dir, log, 0)
	return st, log, err
}

// runKeys runs "keys import": exit 0 when every line was imported or already
// present, 3 when some lines were rejected, 1 on failure.
func runKeys(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "import" {
		fmt.Fprintf(stderr, "syncserver: use: syncserver keys import [--data DIR] [--edition EDITION] FILE\n")
		return exitUsage
	}
	fs := newFlags("keys import", stderr)
	data := dataFlag(fs)
	edition := fs.String("edition", "", "edition of lines that name none (home, pro, ...)")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return exitCode(err, stderr)
	}
	if len(pos) != 1 {
		return exitCode(usageError{msg: "keys import takes exactly one FILE"}, stderr)
	}
	f, err := os.Open(pos[0])
	if err != nil {
		return exitCode(err, stderr)
	}
	defer f.Close()
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return exitCode(err, stderr)
	}
	defer st.Close()
	if *edition != "" {
		if _, err := findEdition(ctx, st, *edition); err != nil {
			return exitCode(err, stderr)
		}
	}
	list, err := keylist.Read(f, keylist.Options{DefaultEdition: *edition})
	if err != nil {
		return exitCode(err, stderr)
	}
	entries := make([]store.ImportEntry, len(list.Entries))
	for i, e := range list.Entries {
		entries[i] = store.ImportEntry{Line: e.Line, Key: e.Key, KeyID: e.KeyID, Edition: e.Edition}
	}
	src := fmt.Sprintf("import:%s sha256:%s", filepath.Base(pos[0]), list.SHA256)
	opt := store.ImportOptions{Source: src, Actor: "cli"}
	if len(entries) >= 20000 {
		opt.Progress = func(done, total int) {
			fmt.Fprintf(stderr, "importing: %d of %d keys (%d%%)\n", done, total, done*100/total)
		}
	}
	res, err := st.ImportKeys(ctx, entries, opt)
	if err != nil {
		return exitCode(err, stderr)
	}
	rejected := make([]store.LineNote, 0, len(list.Rejected)+len(res.Rejected))
	for _, r := range list.Rejected {
		rejected = append(rejected, store.LineNote{Line: r.Line, Reason: r.Reason})
	}
	rejected = append(rejected, res.Rejected...)
	sort.Slice(rejected, func(i, j int) bool { return rejected[i].Line < rejected[j].Line })
	eds := make([]string, 0, len(res.ByEdition))
	for e, n := range res.ByEdition {
		eds = append(eds, fmt.Sprintf("%s %d", e, n))
	}
	sort.Strings(eds)
	fmt.Fprintf(stdout, "%s: %d lines read (%s), sha256 %s\n", pos[0], list.Lines, list.Format, list.SHA256)
	fmt.Fprintf(stdout, "imported: %d", res.Imported)
	if len(eds) > 0 {
		fmt.Fprintf(stdout, " (%s)", strings.Join(eds, ", "))
	}
	fmt.Fprintf(stdout, "\nalready present: %d\nrejected: %d\n", len(res.Skipped), len(rejected))
	for _, r := range rejected {
		fmt.Fprintf(stdout, "  line %d: %s\n", r.Line, r.Reason)
	}
	if len(rejected) > 0 {
		return exitRejected
	}
	return exitOK
}

func findEdition(ctx context.Context, st *store.Server, v string) (keystation.Edition, error) {
	eds, err := st.Editions(ctx)
	if err != nil {
		return keystation.Edition{}, err
	}
	want := keylist.NormalizeEdition(v)
	names := make([]string, len(eds))
	for i, e := range eds {
		if e.Slug == want || keylist.NormalizeEdition(e.Name) == want {
			return e, nil
		}
		names[i] = e.Slug
	}
	return keystation.Edition{}, usageError{msg: fmt.Sprintf("no edition %q (have: %s)", v, strings.Join(names, ", "))}
}

// Demo data: marked demo in the database, credentials kept in the data
// directory so that running demo again prints the same ones.
const (
	demoFile         = "demo-credentials.json"
	demoOperator     = "demo-operator"
	demoKeysPerPool  = 1000
	demoSourcePrefix = "demo"
)

// DemoCredentials is what "syncserver demo" prints: one JSON object starting
// with the operator. Later features add their own members.
type DemoCredentials struct {
	Operator    Credential        `json:"operator"`
	Admin       *Credential       `json:"admin,omitempty"`
	TenantAdmin *TenantCredential `json:"tenantAdmin,omitempty"`
	// StationEnrolToken enrols demo stations (make run enrols one with it).
	StationEnrolToken string `json:"stationEnrolToken"`
	Demo              string `json:"demo"`
	Server            string `json:"server,omitempty"`
}

// Credential is a username and password.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("demo", stderr)
	data := dataFlag(fs)
	if _, err := parse(fs, args); err != nil {
		return err
	}
	st, log, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	creds, err := loadDemoCredentials(*data)
	if err != nil {
		return err
	}
	if creds.Operator.Password == "" {
		creds.Operator = Credential{Username: demoOperator, Password: randomPassword(20)}
	}
	creds.Demo = "demo data: generated keys that activate nothing; never use this data directory in production"
	if err := ensureUser(ctx, st, creds.Operator, store.RoleOperator, 1); err != nil {
		return err
	}
	if err := ensureDemoEnrolToken(ctx, st, &creds); err != nil {
		return err
	}
	if err := fillDemoPools(ctx, st, log, store.AuditBy{User: "demo", Via: store.ViaDemo}, nil); err != nil {
		return err
	}
	if err := ensureDemoAdmin(ctx, st, &creds, log); err != nil {
		return err
	}
	if err := saveDemoCredentials(*data, creds); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	return enc.Encode(creds)
}

// fillDemoPools tops up the default tenant's pools (those only passes, when
// not nil) to demoKeysPerPool generated demo keys each.
func fillDemoPools(ctx context.Context, st *store.Server, log *slog.Logger, by store.AuditBy, only func(slug string) bool) error {
	counts, err := st.PoolCounts(ctx, 1)
	if err != nil {
		return err
	}
	for _, c := range counts {
		have := 0
		for _, n := range c.States {
			have += n
		}
		if have >= demoKeysPerPool || (only != nil && !only(c.Edition)) {
			continue
		}
		entries := make([]store.ImportEntry, 0, demoKeysPerPool-have)
		for i := have; i < demoKeysPerPool; i++ {
			entries = append(entries, store.ImportEntry{Line: i + 1, Key: randomKey(), Edition: c.Edition})
		}
		res, err := st.ImportKeys(ctx, entries, store.ImportOptions{Source: demoSourcePrefix, Actor: "demo", Demo: true, By: by})
		if err != nil {
			return err
		}
		log.Info("demo keys generated", "edition", c.Edition, "imported", res.Imported)
	}
	return nil
}

// ensureDemoEnrolToken keeps a usable demo enrolment token in creds.
func ensureDemoEnrolToken(ctx context.Context, st *store.Server, creds *DemoCredentials) error {
	if creds.StationEnrolToken != "" {
		ok, err := st.EnrolTokenUsable(ctx, creds.StationEnrolToken)
		if err != nil || ok {
			return err
		}
	}
	tok, err := st.CreateEnrolToken(ctx, store.EnrolTokenOptions{Name: "demo-station", Uses: 1000,
		TTL: 10 * 365 * 24 * time.Hour, Actor: "demo", Demo: true})
	if err != nil {
		return err
	}
	creds.StationEnrolToken = tok
	return nil
}

func ensureUser(ctx context.Context, st *store.Server, c Credential, role string, tenant int64) error {
	hash, err := auth.HashPassword(c.Password)
	if err != nil {
		return err
	}
	u, err := st.UserByName(ctx, c.Username)
	switch keystation.ErrorCode(err) {
	case "":
		// Keep the printed password true even if someone changed it.
		if u.Disabled {
			if err := st.SetDisabled(ctx, c.Username, false); err != nil {
				return err
			}
		}
		return st.SetPassword(ctx, c.Username, hash)
	case keystation.ENOTFOUND:
		_, err = st.CreateUser(ctx, store.User{Username: c.Username, PasswordHash: hash, Role: role, TenantID: tenant, Demo: true})
		return err
	default:
		return err
	}
}

func loadDemoCredentials(dir string) (DemoCredentials, error) {
	var c DemoCredentials
	b, err := os.ReadFile(filepath.Join(dir, demoFile))
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s is damaged: %w", demoFile, err)
	}
	return c, nil
}

func saveDemoCredentials(dir string, c DemoCredentials) error {
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := filepath.Join(dir, demoFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, demoFile))
}

func randomPassword(n int) string {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, n)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		b[i] = alphabet[v.Int64()]
	}
	return string(b)
}

// randomKey generates a product key of the right format (demo data only).
func randomKey() keystation.ProductKey {
	b := make([]byte, 25)
	for i := range b {
		v, _ := rand.Int(rand.Reader, big.NewInt(int64(len(keystation.KeyAlphabet))))
		b[i] = keystation.KeyAlphabet[v.Int64()]
	}
	k, err := keystation.ParseProductKey(string(b))
	if err != nil {
		panic(err)
	}
	return k
}

func readPassword(stdin io.Reader, fromStdin bool) (string, bool, error) {
	if !fromStdin {
		return randomPassword(16), true, nil
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, err
	}
	return strings.TrimRight(line, "\r\n"), false, nil
}

func runUsers(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{msg: "users: use add, list, disable, enable or set-password"}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("users "+sub, stderr)
	data := dataFlag(fs)
	role := fs.String("role", "", "operator, tenant-admin or super-admin")
	tenant := fs.Int64("tenant", 1, "tenant ID")
	pwStdin := fs.Bool("password-stdin", false, "read the password from standard input (else one is generated and printed)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	needName := sub != "list"
	if needName && len(pos) != 1 {
		return usageError{msg: "users " + sub + " takes exactly one NAME"}
	}
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "add":
		if *role == "" {
			return usageError{msg: "users add needs --role operator|tenant-admin|super-admin"}
		}
		pw, generated, err := readPassword(stdin, *pwStdin)
		if err != nil {
			return err
		}
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		u, err := st.CreateUserBy(ctx, store.User{Username: pos[0], PasswordHash: hash, Role: *role, TenantID: *tenant}, cliBy())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s added (role %s, tenant %d)\n", u.Username, u.Role, u.TenantID)
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	case "set-password":
		pw, generated, err := readPassword(stdin, *pwStdin)
		if err != nil {
			return err
		}
		hash, err := auth.HashPassword(pw)
		if err != nil {
			return err
		}
		if err := st.SetPasswordBy(ctx, pos[0], hash, cliBy()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "password of %s changed\n", pos[0])
		if generated {
			fmt.Fprintf(stdout, "password: %s\n", pw)
		}
	case "disable", "enable":
		if err := st.SetDisabledBy(ctx, pos[0], sub == "disable", cliBy()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "user %s %sd\n", pos[0], sub)
	case "list":
		us, err := st.Users(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "USERNAME\tROLE\tTENANT\tSTATUS\tCREATED")
		for _, u := range us {
			status := "active"
			if u.Disabled {
				status = "disabled"
			}
			if u.Demo {
				status += " (demo)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", u.Username, u.Role, u.TenantID, status, u.CreatedAt)
		}
		return tw.Flush()
	default:
		return usageError{msg: "users: unknown subcommand " + sub}
	}
	return nil
}

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runEditions(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageError{msg: "editions: use list or add"}
	}
	sub, args := args[0], args[1:]
	fs := newFlags("editions "+sub, stderr)
	data := dataFlag(fs)
	slug := fs.String("slug", "", "short name, e.g. pro-workstations")
	name := fs.String("name", "", "display name, e.g. \"Pro for Workstations\"")
	low := fs.Int("low-stock", 50, "warn when fewer keys are available")
	var pats multiFlag
	fs.Var(&pats, "pattern", "case-insensitive text of osVersion that selects this pool (repeatable)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	st, _, err := cliStore(ctx, *data, stderr)
	if err != nil {
		return err
	}
	defer st.Close()
	switch sub {
	case "add":
		if err := st.CreatePool(ctx, keystation.Edition{Slug: *slug, Name: *name, Patterns: pats, LowStock: *low}, cliBy()); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "edition %s added\n", *slug)
	case "list":
		counts, err := st.PoolCounts(ctx, 0)
		if err != nil {
			return err
		}
		eds, err := st.Editions(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLUG\tNAME\tPATTERNS\tAVAILABLE\tLEASED\tASSIGNED\tACTIVATED\tFAILED\tREVOKED")
		for i, e := range eds {
			c := counts[i].States
			warn := ""
			if counts[i].Low {
				warn = " (low)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d%s\t%d\t%d\t%d\t%d\t%d\n", e.Slug, e.Name, strings.Join(e.Patterns, ", "),
				c[keystation.StateAvailable], warn, c[keystation.StateLeased], c[keystation.StateAssigned],
				c[keystation.StateActivated], c[keystation.StateFailed], c[keystation.StateRevoked])
		}
		return tw.Flush()
	default:
		return usageError{msg: "editions: unknown subcommand " + sub}
	}
	return nil
}
