package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/internal/testutil"
	"keystation/seal"
	"keystation/store"
)

// syncServer is a real store behind the real handler, over loopback HTTP.
type syncServer struct {
	st  *store.Server
	srv *httptest.Server
}

func newSyncServer(t *testing.T) *syncServer {
	t.Helper()
	auth.Cost = bcrypt.MinCost
	box, err := seal.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenServer(context.Background(), filepath.Join(t.TempDir(), store.ServerFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(st, auth.NewAuthenticator(st), nil))
	t.Cleanup(func() {
		srv.Close()
		st.Close()
	})
	return &syncServer{st: st, srv: srv}
}

type syncAnswer struct {
	status int
	Code   string            `json:"code"`
	Fields map[string]string `json:"fields"`
	Data   json.RawMessage   `json:"data"`
}

func (s *syncServer) do(t *testing.T, method, path, cred, body string) syncAnswer {
	t.Helper()
	return s.send(t, method, path, cred, strings.NewReader(body))
}

// send is do with any body: a reader whose length net/http cannot tell
// goes without a Content-Length.
func (s *syncServer) send(t *testing.T, method, path, cred string, body io.Reader) syncAnswer {
	t.Helper()
	req, err := http.NewRequest(method, s.srv.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a syncAnswer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s %s: not JSON: %q", method, path, raw)
	}
	a.status = resp.StatusCode
	return a
}

func (s *syncServer) enrol(t *testing.T) keystation.EnrolResponse {
	t.Helper()
	tok, err := s.st.CreateEnrolToken(context.Background(), store.EnrolTokenOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	a := s.do(t, "POST", "/api/v1/stations/enrol", "", `{"token":"`+tok+`","name":"line-1"}`)
	if a.status != 200 {
		t.Fatalf("enrol: %d %+v", a.status, a)
	}
	var resp keystation.EnrolResponse
	if err := json.Unmarshal(a.Data, &resp); err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestSyncEndpoints(t *testing.T) {
	s := newSyncServer(t)
	if _, err := s.st.ImportKeys(context.Background(), []store.ImportEntry{
		{Line: 1, Key: "W7PY2-N837X-89C72-4PPXP-D69QR", Edition: "home"},
		{Line: 2, Key: "BCDFG-HJKMN-PQRTV-WXY23-46789", Edition: "home"},
	}, store.ImportOptions{Source: "test"}); err != nil {
		t.Fatal(err)
	}
	enrolled := s.enrol(t)
	cred := enrolled.Credential
	reports := make([]string, store.MaxSyncRequestReports+1)
	for i := range reports {
		reports[i] = "{}"
	}
	tests := []struct {
		name, method, path, cred, body string
		status                         int
		code                           string
		field                          string
	}{
		{"enrol with an unknown token", "POST", "/api/v1/stations/enrol", "", `{"token":"ks-enrol-nope","name":"x"}`, 401, keystation.EUNAUTHORIZED, ""},
		{"enrol without a token", "POST", "/api/v1/stations/enrol", "", `{"name":"x"}`, 400, keystation.EINVALID, "token"},
		{"enrol without a name", "POST", "/api/v1/stations/enrol", "", `{"token":"t"}`, 400, keystation.EINVALID, "name"},
		{"enrol with an unknown field", "POST", "/api/v1/stations/enrol", "", `{"token":"t","name":"x","x":1}`, 400, keystation.EINVALID, "x"},
		{"sync without a credential", "POST", "/api/v1/sync", "", `{}`, 401, keystation.EUNAUTHORIZED, ""},
		{"sync with a wrong credential", "POST", "/api/v1/sync", cred + "x", `{}`, 401, keystation.EUNAUTHORIZED, ""},
		{"sync with a negative target", "POST", "/api/v1/sync", cred, `{"targets":{"home":-1}}`, 400, keystation.EINVALID, "targets.home"},
		{"sync with a huge target", "POST", "/api/v1/sync", cred, `{"targets":{"home":5000}}`, 400, keystation.EINVALID, "targets.home"},
		{"sync with too many reports", "POST", "/api/v1/sync", cred, `{"reports":[` + strings.Join(reports, ",") + `]}`, 400, keystation.EINVALID, "reports"},
		{"sync with malformed JSON", "POST", "/api/v1/sync", cred, `{"targets":`, 400, keystation.EINVALID, "body"},
		{"sync with a wrong type", "POST", "/api/v1/sync", cred, `{"holding":"x"}`, 400, keystation.EINVALID, "holding"},
		{"reconciliation without a credential", "GET", "/api/v1/sync/reconciliation", "", ``, 401, keystation.EUNAUTHORIZED, ""},
		{"sync with GET", "GET", "/api/v1/sync", cred, ``, 405, "METHOD_NOT_ALLOWED", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(t, tt.method, tt.path, tt.cred, tt.body)
			if a.status != tt.status || a.Code != tt.code {
				t.Fatalf("got %d %s %v, want %d %s", a.status, a.Code, a.Fields, tt.status, tt.code)
			}
			if tt.field != "" && a.Fields[tt.field] == "" {
				t.Fatalf("fields %v do not name %q", a.Fields, tt.field)
			}
		})
	}
	if n, _ := s.st.PoolCounts(context.Background(), 0); n[0].States[keystation.StateAvailable] != 2 {
		t.Fatalf("refused requests changed the pool: %+v", n[0].States)
	}

	a := s.do(t, "POST", "/api/v1/sync", cred, `{"targets":{"home":2}}`)
	var resp keystation.SyncResponse
	if err := json.Unmarshal(a.Data, &resp); err != nil || a.status != 200 || len(resp.Grants) != 2 || len(resp.Editions) < 2 {
		t.Fatalf("sync: %d %s %+v %v", a.status, a.Code, resp, err)
	}
	a = s.do(t, "GET", "/api/v1/sync/reconciliation", cred, "")
	var rec keystation.Reconciliation
	if err := json.Unmarshal(a.Data, &rec); err != nil || rec.Leased != 2 || rec.StationID != enrolled.StationID {
		t.Fatalf("reconciliation: %+v %v", rec, err)
	}
	hash, _ := auth.HashPassword("operator-password")
	if _, err := s.st.CreateUser(context.Background(), store.User{Username: "op", PasswordHash: hash, Role: store.RoleOperator}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, cred, body string
		status           int
	}{
		{"operator signs in", cred, `{"username":"op","password":"operator-password"}`, 200},
		{"wrong password", cred, `{"username":"op","password":"nope-nope"}`, 401},
		{"unknown operator", cred, `{"username":"who","password":"operator-password"}`, 401},
		{"no station credential", "", `{"username":"op","password":"operator-password"}`, 401},
		{"missing password", cred, `{"username":"op"}`, 400},
	} {
		t.Run("signin "+tt.name, func(t *testing.T) {
			if a := s.do(t, "POST", "/api/v1/sync/signin", tt.cred, tt.body); a.status != tt.status {
				t.Fatalf("status %d %s, want %d", a.status, a.Code, tt.status)
			}
		})
	}
	if err := s.st.RevokeStation(context.Background(), 0, enrolled.StationID, store.AuditBy{User: "test"}); err != nil {
		t.Fatal(err)
	}
	if a := s.do(t, "POST", "/api/v1/sync", cred, `{}`); a.status != 403 || a.Code != keystation.ESTATIONREVOKED {
		t.Fatalf("revoked station: %d %s", a.status, a.Code)
	}
}

// A sync request refused late in its body (the reports are decoded and
// applied as the body is read) changes nothing on the server.
func TestSyncRefusedLateChangesNothing(t *testing.T) {
	s := newSyncServer(t)
	cred := s.enrol(t).Credential
	var reports []string
	for i, k := range testutil.GenerateKeys(600, 41) {
		r := keystation.SyncReport{Edition: "home", Key: k, Provenance: &keystation.Provenance{File: "keys.txt", SHA256: strings.Repeat("ab", 32), Line: i + 1},
			Report: keystation.Report{ID: uuid.NewString(), KeyID: keystation.KeyID(3_100_000_000_000 + i), Machine: keystation.Machine{SN: fmt.Sprint("SN-", i), Model: "M"},
				OSVersion: osHome, Success: true, Message: "Licensed", Hardware: &keystation.Hardware{CPU: "cpu"}, At: time.Now()}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		reports = append(reports, string(b))
	}
	all := strings.Join(reports, ",")
	tests := []struct {
		name, body, field string
	}{
		{"a bad target after the reports", `{"reports":[` + all + `],"targets":{"home":-1}}`, "targets.home"},
		{"an unknown field in the last report", `{"reports":[` + all + `,{"nope":1}]}`, "nope"},
		{"truncated after the reports", `{"reports":[` + all + `],"targets":`, "body"},
		{"data after the object", `{"reports":[` + all + `]} {}`, "body"},
		{"reports twice", `{"reports":[` + all + `],"reports":[]}`, "reports"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(t, "POST", "/api/v1/sync", cred, tt.body)
			if a.status != 400 || a.Fields[tt.field] == "" {
				t.Fatalf("got %d %s %v, want 400 naming %q", a.status, a.Code, a.Fields, tt.field)
			}
			if rows, n, err := s.st.AdminReports(context.Background(), store.ReportFilter{Limit: 5}); err != nil || n != 0 {
				t.Fatalf("the server holds %d reports after a refused request (%v, %v)", n, rows, err)
			}
		})
	}
	// The same reports, well formed, are applied.
	a := s.do(t, "POST", "/api/v1/sync", cred, `{"reports":[`+all+`]}`)
	var resp keystation.SyncResponse
	if err := json.Unmarshal(a.Data, &resp); err != nil || a.status != 200 || len(resp.Results) != 600 || resp.Results[599].Status != keystation.SyncApplied {
		t.Fatalf("sync: %d %s %v", a.status, a.Code, err)
	}
}

// A sync body is read whole before it is applied, whether it announces its
// length or comes in chunks; one larger than MaxSyncBodyBytes is refused
// either way.
func TestSyncBodyWithAndWithoutLength(t *testing.T) {
	s := newSyncServer(t)
	cred := s.enrol(t).Credential
	body := `{"targets":{"home":0},"backlog":0}`
	huge := `{"reports":[], "backlog":0` + strings.Repeat(" ", api.MaxSyncBodyBytes) + `}`
	for _, tc := range []struct {
		name   string
		body   func() io.Reader
		status int
		code   string
	}{
		{"with a Content-Length", func() io.Reader { return strings.NewReader(body) }, 200, keystation.EOK},
		{"chunked", func() io.Reader { return io.MultiReader(strings.NewReader(body)) }, 200, keystation.EOK},
		{"too large, with a Content-Length", func() io.Reader { return strings.NewReader(huge) }, 413, keystation.ETOOLARGE},
		{"too large, chunked", func() io.Reader { return io.MultiReader(strings.NewReader(huge)) }, 413, keystation.ETOOLARGE},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := s.send(t, "POST", "/api/v1/sync", cred, tc.body())
			if a.status != tc.status || a.Code != tc.code {
				t.Fatalf("got %d %s %v, want %d %s", a.status, a.Code, a.Fields, tc.status, tc.code)
			}
		})
	}
}
