package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"keystation"
	"keystation/internal/testutil"
	"keystation/seal"
	"keystation/store"
)

const (
	osHome = "mircosoft window 11 home" // seed 000
	osPro  = "mircosoft window 11 pro"
	model  = "N151"
)

var ctx = context.Background()

// newBox returns a Box for a data key made of one repeated byte.
func newBox(t testing.TB, b byte) *seal.Box {
	t.Helper()
	box, err := seal.New(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// fixture is a server store on a fresh database file, and a second plain
// database/sql connection to the same file for direct SQL.
type fixture struct {
	t    testing.TB
	s    *store.Server
	path string
	box  *seal.Box
	raw  *sql.DB
}

// newFixture opens a store in t.TempDir(); opt.Box defaults to newBox(t, 1).
func newFixture(t testing.TB, opt store.Options) *fixture {
	t.Helper()
	if opt.Box == nil {
		opt.Box = newBox(t, 1)
	}
	path := filepath.Join(t.TempDir(), store.ServerFile)
	s, err := store.OpenServer(ctx, path, opt)
	if err != nil {
		t.Fatalf("OpenServer: %v", err)
	}
	raw := openRaw(t, path)
	f := &fixture{t: t, s: s, path: path, box: opt.Box, raw: raw}
	t.Cleanup(func() {
		raw.Close()
		s.Close()
	})
	return f
}

// openRaw opens a second, plain database/sql connection to a database file.
func openRaw(t testing.TB, path string) *sql.DB {
	t.Helper()
	raw, err := sql.Open("sqlite3", "file:"+filepath.ToSlash(path)+"?_busy_timeout=10000&_foreign_keys=on")
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

var keyMu sync.Mutex
var keyRand = rand.New(rand.NewPCG(1, 2))

// newKeys returns n distinct, well-formed random product keys.
func newKeys(t testing.TB, n int) []keystation.ProductKey {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	out := make([]keystation.ProductKey, n)
	for i := range out {
		var b strings.Builder
		for j := range 25 {
			if j > 0 && j%5 == 0 {
				b.WriteByte('-')
			}
			b.WriteByte(keystation.KeyAlphabet[keyRand.IntN(len(keystation.KeyAlphabet))])
		}
		k, err := keystation.ParseProductKey(b.String())
		if err != nil {
			t.Fatal(err)
		}
		out[i] = k
	}
	return out
}

// importN imports n new keys into edition and returns them.
func (f *fixture) importN(edition string, n int) []keystation.ProductKey {
	f.t.Helper()
	keys := newKeys(f.t, n)
	entries := make([]store.ImportEntry, n)
	for i, k := range keys {
		entries[i] = store.ImportEntry{Line: i + 1, Key: k, Edition: edition}
	}
	res, err := f.s.ImportKeys(ctx, entries, store.ImportOptions{Source: "test", Actor: "tester"})
	if err != nil {
		f.t.Fatalf("ImportKeys: %v", err)
	}
	if res.Imported != n {
		f.t.Fatalf("imported %d of %d: %+v", res.Imported, n, res)
	}
	return keys
}

func machine(sn string) keystation.Machine { return keystation.Machine{SN: sn, Model: model} }

var operator = store.Actor{Name: "op1", IP: "10.0.0.9"}

func (f *fixture) acquire(sn, osVersion string) (store.Assignment, error) {
	return f.s.Acquire(ctx, store.AcquireRequest{Actor: operator, Machine: machine(sn), OSVersion: osVersion})
}

// mustAcquire acquires a key and fails the test on error.
func (f *fixture) mustAcquire(sn, osVersion string) store.Assignment {
	f.t.Helper()
	a, err := f.acquire(sn, osVersion)
	if err != nil {
		f.t.Fatalf("Acquire(%s, %q): %v", sn, osVersion, err)
	}
	return a
}

func (f *fixture) report(r keystation.Report) (store.ReportResult, error) {
	return f.s.Report(ctx, r, store.ReportOptions{Actor: operator})
}

func failure(id keystation.KeyID, sn, osVersion, code, message string) keystation.Report {
	return keystation.Report{KeyID: id, Machine: machine(sn), OSVersion: osVersion, Code: code, Message: message}
}

func success(id keystation.KeyID, sn, osVersion string, hw *keystation.Hardware) keystation.Report {
	return keystation.Report{KeyID: id, Machine: machine(sn), OSVersion: osVersion, Success: true,
		Message: "Product activated successfully.", Hardware: hw}
}

func (f *fixture) keyInfo(id keystation.KeyID) store.KeyInfo {
	f.t.Helper()
	ki, err := f.s.KeyByID(ctx, id)
	if err != nil {
		f.t.Fatalf("KeyByID(%s): %v", id, err)
	}
	return ki
}

// reasons lists the reasons of a key's history.
func reasons(ki store.KeyInfo) []string {
	out := make([]string, len(ki.History))
	for i, h := range ki.History {
		out[i] = h.Reason
	}
	return out
}

func (f *fixture) count(query string, args ...any) int {
	f.t.Helper()
	var n int
	if err := f.raw.QueryRowContext(ctx, query, args...).Scan(&n); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (f *fixture) exec(query string, args ...any) {
	f.t.Helper()
	if _, err := f.raw.ExecContext(ctx, query, args...); err != nil {
		f.t.Fatalf("%s: %v", query, err)
	}
}

// snapshot renders every row that a refused operation must leave alone.
func (f *fixture) snapshot() string {
	f.t.Helper()
	var b strings.Builder
	for _, q := range []string{
		`SELECT id, key_id, state, COALESCE(machine_id, 0), COALESCE(station_id, 0), review, updated_at FROM product_keys ORDER BY id`,
		`SELECT id, key_ref, from_state, to_state, reason FROM key_history ORDER BY id`,
		`SELECT id, uuid, key_id, success, outcome FROM reports ORDER BY id`,
		`SELECT id, status, burnt, COALESCE(key_ref, 0), last_seen_at, COALESCE(hardware_summary, '') FROM machines ORDER BY id`,
	} {
		f.eachRow(q, func(_ []string, vals []any) { fmt.Fprintln(&b, vals...) })
		b.WriteString("--\n")
	}
	return b.String()
}

// eachRow runs query on the raw connection and calls fn with the column
// names and the values of each row.
func (f *fixture) eachRow(query string, fn func(cols []string, vals []any)) {
	f.t.Helper()
	if err := testutil.EachRow(ctx, f.raw, query, fn); err != nil {
		f.t.Fatal(err)
	}
}

// assertUnchanged fails when the database differs from before.
func (f *fixture) assertUnchanged(before string) {
	f.t.Helper()
	if after := f.snapshot(); after != before {
		f.t.Fatalf("database changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// checkHistory checks invariant 8 over the whole database: each key's history
// is a chain of legal transitions from "" that ends in its current state.
func (f *fixture) checkHistory() {
	f.t.Helper()
	rows, err := f.raw.QueryContext(ctx, `SELECT k.id, k.state, h.from_state, h.to_state, h.reason
		FROM product_keys k LEFT JOIN key_history h ON h.key_ref = k.id ORDER BY k.id, h.id`)
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	type chain struct {
		state string
		last  string
		n     int
	}
	keys := map[int64]*chain{}
	var order []int64
	for rows.Next() {
		var id int64
		var state string
		var from, to, reason sql.NullString
		if err := rows.Scan(&id, &state, &from, &to, &reason); err != nil {
			f.t.Fatal(err)
		}
		c, ok := keys[id]
		if !ok {
			c = &chain{state: state}
			keys[id] = c
			order = append(order, id)
		}
		if !from.Valid {
			continue
		}
		if from.String != c.last {
			f.t.Errorf("key %d: history row %s→%s (%s) does not follow %q", id, from.String, to.String, reason.String, c.last)
		}
		if err := keystation.CheckTransition(keystation.KeyState(from.String), keystation.KeyState(to.String)); err != nil {
			f.t.Errorf("key %d: history records an illegal transition: %v", id, err)
		}
		c.last = to.String
		c.n++
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	for _, id := range order {
		c := keys[id]
		if c.n == 0 || c.last != c.state {
			f.t.Errorf("key %d is %s but its history (%d rows) ends in %q", id, c.state, c.n, c.last)
		}
	}
}

// wantCode fails unless err carries code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := keystation.ErrorCode(err); got != code {
		t.Fatalf("error = %v (code %q), want code %s", err, got, code)
	}
}
