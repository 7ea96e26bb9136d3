package api_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/internal/testutil"
	"keystation/seal"
	"keystation/store"
)

func TestMain(m *testing.M) {
	auth.Cost = bcrypt.MinCost
	os.Exit(m.Run())
}

var bg = context.Background()

const (
	opUser = "moumou"
	opPass = "moumou-password"
	osHome = "mircosoft window 11 home" // seed 000
	osPro  = "mircosoft window 11 pro"

	pathAcquire = "/api/v1/keys/acquire"
	pathReport  = "/api/v1/keys/report"
)

// keyEnv is a real store behind the real handler, served over loopback.
type keyEnv struct {
	t     testing.TB
	st    *store.Server
	api   *api.Server
	auth  *auth.Authenticator
	srv   *httptest.Server
	raw   *sql.DB
	clock *fakeClock
	home  []keystation.ProductKey // imported with keyIds homeID(0), homeID(1), ...
	pro   []keystation.ProductKey
}

type envOptions struct {
	keys    int // per edition; 5 when 0
	logger  *slog.Logger
	burnCap int
}

// fakeClock is the authenticator's time source.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func homeID(i int) keystation.KeyID { return keystation.KeyID(2_000_000_000_000 + i) }
func proID(i int) keystation.KeyID  { return keystation.KeyID(3_000_000_000_000 + i) }

// newKeyEnv opens a store with users of every role and keys in both pools,
// and serves the API over httptest.
func newKeyEnv(t testing.TB, o envOptions) *keyEnv {
	t.Helper()
	if o.keys == 0 {
		o.keys = 5
	}
	box, err := seal.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), store.ServerFile)
	st, err := store.OpenServer(bg, path, store.Options{Box: box, Logger: o.logger, BurnCap: o.burnCap})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []struct {
		name, role string
		disabled   bool
	}{
		{opUser, store.RoleOperator, false},
		{"root", store.RoleSuperAdmin, false},
		{"tadmin", store.RoleTenantAdmin, false},
		{"gone", store.RoleOperator, true},
	} {
		h, err := auth.HashPassword(u.name + "-password")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(bg, store.User{Username: u.name, PasswordHash: h, Role: u.role, Disabled: u.disabled}); err != nil {
			t.Fatal(err)
		}
	}
	e := &keyEnv{t: t, st: st, clock: &fakeClock{t: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}}
	e.home, e.pro = makeKeys(o.keys, 'H'), makeKeys(o.keys, 'P')
	var entries []store.ImportEntry
	for i := range o.keys {
		entries = append(entries,
			store.ImportEntry{Line: 2*i + 1, Key: e.home[i], KeyID: homeID(i), Edition: "home"},
			store.ImportEntry{Line: 2*i + 2, Key: e.pro[i], KeyID: proID(i), Edition: "pro"})
	}
	if res, err := st.ImportKeys(bg, entries, store.ImportOptions{Source: "test"}); err != nil || res.Imported != 2*o.keys {
		t.Fatalf("import: %+v, %v", res, err)
	}
	e.auth = auth.NewAuthenticator(st)
	e.auth.Now = e.clock.Now
	e.api = api.NewServer(st, e.auth, o.logger)
	e.srv = httptest.NewServer(e.api)
	e.raw, err = sql.Open("sqlite3", "file:"+filepath.ToSlash(path)+"?_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		e.srv.Close()
		e.raw.Close()
		st.Close()
	})
	return e
}

// makeKeys returns n distinct well-formed keys; tag makes the two pools'
// keys differ.
func makeKeys(n int, tag byte) []keystation.ProductKey {
	const a = keystation.KeyAlphabet
	out := make([]keystation.ProductKey, n)
	for i := range n {
		b := []byte("W7PY2N837X89C724PPXPD69QR")
		b[0] = tag
		v := i
		for j := 24; j >= 20; j-- {
			b[j] = a[v%len(a)]
			v /= len(a)
		}
		k, err := keystation.ParseProductKey(string(b))
		if err != nil {
			panic(err)
		}
		out[i] = k
	}
	return out
}

// answer is a response of the API.
type answer struct {
	status  int
	header  http.Header
	raw     []byte
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Data    json.RawMessage     `json:"data"`
	Fields  map[string]string   `json:"fields"`
	Failure *keystation.Failure `json:"failure"`
}

// do sends a request with an optional Content-Type ("" for none).
func (e *keyEnv) do(method, path, contentType string, body io.Reader) answer {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, body)
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	a := answer{status: resp.StatusCode, header: resp.Header, raw: raw}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		e.t.Fatalf("%s %s: %d with Content-Type %q: %q", method, path, resp.StatusCode, ct, raw)
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		e.t.Fatalf("%s %s: %d, not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return a
}

func (e *keyEnv) post(path, body string) answer {
	e.t.Helper()
	return e.do("POST", path, "application/json", strings.NewReader(body))
}

// grant decodes seed 000's {keyId, key}.
func (a answer) grant(t testing.TB) (keystation.KeyID, string) {
	t.Helper()
	var d struct {
		KeyID keystation.KeyID `json:"keyId"`
		Key   string           `json:"key"`
	}
	if err := json.Unmarshal(a.Data, &d); err != nil || d.KeyID == 0 {
		t.Fatalf("data %s: %v", a.Data, err)
	}
	return d.KeyID, d.Key
}

// del marks a field to remove from a body.
type delT struct{}

var del = delT{}

// body renders base with the changes in over applied (del removes a field).
func body(base, over map[string]any) string {
	m := map[string]any{}
	for k, v := range base {
		m[k] = v
	}
	for k, v := range over {
		if _, ok := v.(delT); ok {
			delete(m, k)
			continue
		}
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func acquireBase(sn string) map[string]any {
	return map[string]any{"username": opUser, "password": opPass, "sn": sn, "model": "N151", "osVersion": osHome}
}

func failureBase(id keystation.KeyID, sn string) map[string]any {
	return map[string]any{"username": opUser, "password": opPass, "keyId": int64(id), "sn": sn, "model": "N151",
		"osVersion": osHome, "resultStatus": false, "resultMessage": "Error: 0xC004C003 the key is blocked", "resultCode": "0xC004C003"}
}

func successBase(id keystation.KeyID, sn string) map[string]any {
	return map[string]any{"username": opUser, "password": opPass, "keyId": int64(id), "sn": sn, "model": "N151",
		"osVersion": osHome, "resultStatus": true, "resultMessage": "Product activated successfully.",
		"cpu":    "amd 6600h",
		"memory": []any{map[string]any{"id": 0, "size": 17179869184, "speed": "3200", "manufacturer": "Samsung"}},
		"disk":   []any{map[string]any{"id": 0, "size": 1000204886016, "interfaceType": "SCSI", "model": "NVMe KINGSTON SNV2S1000G"}}}
}

// snapshot renders what a refused request must leave alone: the pools by
// state and every row of the tables a key request writes.
func (e *keyEnv) snapshot() string {
	e.t.Helper()
	var b strings.Builder
	pc, err := e.st.PoolCounts(bg, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, p := range pc {
		fmt.Fprintf(&b, "%s %v\n", p.Edition, p.States)
	}
	for _, q := range []string{
		`SELECT id, state, COALESCE(machine_id, 0), review, updated_at FROM product_keys ORDER BY id`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM key_history`,
		`SELECT COUNT(*), COALESCE(MAX(id), 0) FROM reports`,
		`SELECT id, status, burnt, COALESCE(key_ref, 0), last_seen_at FROM machines ORDER BY id`,
	} {
		if err := testutil.EachRow(bg, e.raw, q, func(_ []string, vals []any) { fmt.Fprintln(&b, vals...) }); err != nil {
			e.t.Fatal(err)
		}
	}
	return b.String()
}

func (e *keyEnv) assertUnchanged(before string) {
	e.t.Helper()
	if after := e.snapshot(); after != before {
		e.t.Fatalf("the database changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// acquire gets a key for a machine through the API.
func (e *keyEnv) acquire(sn, osVersion string) (keystation.KeyID, string) {
	e.t.Helper()
	a := e.post(pathAcquire, body(acquireBase(sn), map[string]any{"osVersion": osVersion}))
	if a.status != http.StatusOK {
		e.t.Fatalf("acquire %s: %d %s", sn, a.status, a.raw)
	}
	return a.grant(e.t)
}
