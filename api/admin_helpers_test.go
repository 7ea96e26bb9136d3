package api_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/seal"
	"keystation/store"
)

const admPassword = "correct horse battery"

// admEnv is a real store behind the real handler over loopback HTTP, with a
// super-admin, an operator and two tenants each with a tenant-admin and
// machine bindings.
type admEnv struct {
	t      *testing.T
	st     *store.Server
	srv    *httptest.Server
	api    *api.Server
	secret []byte
	path   string

	tenant2 int64
	// bindings per tenant, and the keys they hold.
	bind1, bind2 []int64
	keys1, keys2 []keystation.KeyID
	machines     []keystation.Machine // of bind1 then bind2, in order
	seq          atomic.Int64
}

var admCtx = context.Background()

func newAdmEnv(t *testing.T) *admEnv {
	t.Helper()
	auth.Cost = bcrypt.MinCost
	box, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), store.ServerFile)
	st, err := store.OpenServer(admCtx, path, store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	secret, err := st.TokenSecret(admCtx)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.NewTokens(secret)
	if err != nil {
		t.Fatal(err)
	}
	a := api.NewServer(st, auth.NewAuthenticator(st), nil)
	a.Auth.Limiter.MaxFailures = 1 << 20 // tests sign in wrongly on purpose, many times
	a.SetTokens(tokens)
	srv := httptest.NewServer(a)
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	e := &admEnv{t: t, st: st, srv: srv, api: a, secret: secret, path: path}
	t2, err := st.CreateTenant(admCtx, "second", store.AuditBy{User: "test"})
	if err != nil {
		t.Fatal(err)
	}
	e.tenant2 = t2.ID
	e.user("root", store.RoleSuperAdmin, 1)
	e.user("op", store.RoleOperator, 1)
	e.user("ta1", store.RoleTenantAdmin, 1)
	e.user("ta2", store.RoleTenantAdmin, e.tenant2)
	e.keysFor(1, 40)
	e.keysFor(e.tenant2, 40)
	for i := range 6 {
		id, k, m := e.bind(1, fmt.Sprintf("T1SN%04d", i), admModels[i%len(admModels)])
		e.bind1, e.keys1, e.machines = append(e.bind1, id), append(e.keys1, k), append(e.machines, m)
	}
	for i := range 3 {
		id, k, m := e.bind(e.tenant2, fmt.Sprintf("T2SN%04d", i), admModels[i%len(admModels)])
		e.bind2, e.keys2, e.machines = append(e.bind2, id), append(e.keys2, k), append(e.machines, m)
	}
	return e
}

var admModels = []string{"ThinkCentre M70q", "OptiPlex 7090", "EliteDesk 800 G6"}

func (e *admEnv) user(name, role string, tenant int64) store.User {
	e.t.Helper()
	hash, err := auth.HashPassword(admPassword)
	if err != nil {
		e.t.Fatal(err)
	}
	u, err := e.st.CreateUser(admCtx, store.User{Username: name, PasswordHash: hash, Role: role, TenantID: tenant})
	if err != nil {
		e.t.Fatal(err)
	}
	return u
}

// keysFor imports n random keys per default pool into tenant.
func (e *admEnv) keysFor(tenant int64, n int) []keystation.KeyID {
	e.t.Helper()
	var entries []store.ImportEntry
	for i := range n {
		ed := "home"
		if i%2 == 1 {
			ed = "pro"
		}
		entries = append(entries, store.ImportEntry{Line: i + 1, Key: admRandomKey(), Edition: ed,
			KeyID: keystation.KeyID(2_000_000_000_000 + e.seq.Add(1))})
	}
	if _, err := e.st.ImportKeys(admCtx, entries, store.ImportOptions{Tenant: tenant, Source: "test"}); err != nil {
		e.t.Fatal(err)
	}
	ids := make([]keystation.KeyID, n)
	for i, en := range entries {
		ids[i] = en.KeyID
	}
	return ids
}

func admRandomKey() keystation.ProductKey {
	var b strings.Builder
	var r [25]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err)
	}
	for _, c := range r {
		b.WriteByte(keystation.KeyAlphabet[int(c)%len(keystation.KeyAlphabet)])
	}
	k, err := keystation.ParseProductKey(b.String())
	if err != nil {
		panic(err)
	}
	return k
}

// testHardware is a PC's hardware with details that must never be stored in
// the clear.
func testHardware(m keystation.Machine) *keystation.Hardware {
	return &keystation.Hardware{SerialNumber: m.SN, Model: m.Model, Manufacturer: "LENOVO", UUID: "UUID-" + m.SN,
		Baseboard: "LENOVO 3330", BIOS: "LENOVO M3CKT3AA", CPU: "Intel(R) Core(TM) i5-12400T",
		Memory: []keystation.MemoryModule{{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}},
		Disks:  []keystation.Disk{{ID: 0, Size: 512 << 30, InterfaceType: "NVMe", Model: "SAMSUNG MZVL2512HCJQ", Serial: "DISK-" + m.SN}},
		MACs:   []string{"AA:BB:CC:" + m.SN[len(m.SN)-2:] + ":EE:FF"},
		OS:     keystation.OSInfo{Caption: "Microsoft Windows 11 Pro", Version: "23H2", Build: "22631.3296", Architecture: "x64", EditionID: "Professional"}}
}

// bind activates a key on a new machine of tenant and returns the binding.
func (e *admEnv) bind(tenant int64, sn, model string) (int64, keystation.KeyID, keystation.Machine) {
	e.t.Helper()
	m := keystation.Machine{SN: sn, Model: model}
	actor := store.Actor{Name: "op", Tenant: tenant, IP: "10.0.0.9"}
	a, err := e.st.Acquire(admCtx, store.AcquireRequest{Actor: actor, Machine: m, OSVersion: "Windows 11 Pro"})
	if err != nil {
		e.t.Fatalf("acquire %s: %v", sn, err)
	}
	if _, err := e.st.Report(admCtx, keystation.Report{KeyID: a.KeyID, Machine: m, OSVersion: "Windows 11 Pro", Success: true,
		Message: "ok", Hardware: testHardware(m)}, store.ReportOptions{Actor: actor}); err != nil {
		e.t.Fatalf("report %s: %v", sn, err)
	}
	id, err := e.st.MachineIDByKey(admCtx, a.KeyID)
	if err != nil {
		e.t.Fatal(err)
	}
	return id, a.KeyID, m
}

// assigned returns a key assigned (not yet activated) to a new machine of tenant.
func (e *admEnv) assigned(tenant int64) keystation.KeyID {
	e.t.Helper()
	m := keystation.Machine{SN: fmt.Sprintf("ASSIGNED%06d", e.seq.Add(1)), Model: "Test PC"}
	a, err := e.st.Acquire(admCtx, store.AcquireRequest{Actor: store.Actor{Name: "op", Tenant: tenant}, Machine: m, OSVersion: "Windows 11 Home"})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.KeyID
}

// admResp is an answer.
type admResp struct {
	status int
	header http.Header
	body   []byte
}

func (r admResp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("not a JSON object: %q", r.body)
	}
	return m
}

// do sends a request with optional headers ("Authorization", "X-Tenant-ID", ...).
func (e *admEnv) do(method, path, body string, headers map[string]string) admResp {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return admResp{status: resp.StatusCode, header: resp.Header, body: raw}
}

// login signs a user in through the API and returns its tokens.
func (e *admEnv) login(name string) auth.Pair {
	e.t.Helper()
	r := e.do("POST", "/api/v1/auth/token/", `{"username":"`+name+`","password":"`+admPassword+`"}`, nil)
	if r.status != 200 {
		e.t.Fatalf("login %s: %d %s", name, r.status, r.body)
	}
	var p auth.Pair
	if err := json.Unmarshal(r.body, &p); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

// expiredToken is an access token for u that expired an hour ago, signed
// with the right key.
func (e *admEnv) expiredToken(name string) string {
	e.t.Helper()
	tk, _ := auth.NewTokens(e.secret)
	tk.Now = func() time.Time { return time.Now().Add(-2 * time.Hour) }
	u, err := e.st.UserByName(admCtx, name)
	if err != nil {
		e.t.Fatal(err)
	}
	s, err := tk.Access(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// tampered changes the payload of a valid token (tenant-admin → super-admin)
// and keeps its signature.
func tampered(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	json.Unmarshal(raw, &claims)
	claims["role"] = store.RoleSuperAdmin
	claims["tenant_id"] = 1
	b, _ := json.Marshal(claims)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// algNone re-encodes a valid token's claims with alg "none" and no signature.
func algNone(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	return h + "." + parts[1] + "."
}

// otherKeyToken is a well-formed token for name signed with another secret.
func (e *admEnv) otherKeyToken(name string) string {
	e.t.Helper()
	tk, _ := auth.NewTokens(bytes.Repeat([]byte{9}, 32))
	u, _ := e.st.UserByName(admCtx, name)
	s, err := tk.Access(u)
	if err != nil {
		e.t.Fatal(err)
	}
	return s
}

// upload posts a key list with one new key as a multipart file.
func (e *admEnv) upload(path string, headers map[string]string) admResp {
	e.t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("file", "keys.txt")
	if err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(fw, "%s\n", admRandomKey().Plain())
	mw.Close()
	req, err := http.NewRequest("POST", e.srv.URL+path, &buf)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return admResp{status: resp.StatusCode, header: resp.Header, body: raw}
}
