package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"
	"golang.org/x/crypto/bcrypt"

	"keystation/auth"
	syncserver "keystation/cmd/syncserver"
	"keystation/seal"
	"keystation/store"
)

func runCLIIn(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := syncserver.Run(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// TestAdminCommands: users and tenants on the command line, each change
// audited, and "audit verify" proving the chain or saying where it breaks.
func TestAdminCommands(t *testing.T) {
	auth.Cost = bcrypt.MinCost
	dir := t.TempDir()
	steps := []struct {
		name  string
		stdin string
		args  []string
		code  int
		out   string
	}{
		{"add a tenant", "", []string{"tenants", "add", "North Plant"}, 0, "tenant North Plant added (id 2)"},
		{"add the same tenant", "", []string{"tenants", "add", "North Plant"}, 1, ""},
		{"list tenants", "", []string{"tenants", "list"}, 0, "North Plant"},
		{"tenants without subcommand", "", []string{"tenants"}, 2, ""},
		{"add a tenant-admin", "secret password\n", []string{"users", "add", "nadia", "--role", "tenant-admin", "--tenant", "2", "--password-stdin"}, 0, "user nadia added (role tenant-admin, tenant 2)"},
		{"disable", "", []string{"users", "disable", "nadia"}, 0, "user nadia disabled"},
		{"enable", "", []string{"users", "enable", "nadia"}, 0, "user nadia enabled"},
		{"set password", "another password\n", []string{"users", "set-password", "nadia", "--password-stdin"}, 0, "password of nadia changed"},
		{"list users", "", []string{"users", "list"}, 0, "nadia"},
		{"audit verify", "", []string{"audit", "verify"}, 0, "audit log intact: 5 entries"},
		{"audit verify as JSON", "", []string{"audit", "verify", "--json"}, 0, `"ok":true`},
		{"audit without verify", "", []string{"audit"}, 2, ""},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			code, out, stderr := runCLIIn(t, s.stdin, append(s.args, "--data", dir)...)
			if code != s.code || !strings.Contains(out, s.out) {
				t.Fatalf("exit %d (want %d), out %q, stderr %q", code, s.code, out, stderr)
			}
		})
	}
	t.Run("every change is in the audit log", func(t *testing.T) {
		db := rawDB(t, dir)
		rows, err := db.Query(`SELECT action, actor, via FROM audit_log ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var got []string
		for rows.Next() {
			var a, actor, via string
			rows.Scan(&a, &actor, &via)
			got = append(got, a+" by "+actor+" via "+via)
		}
		want := []string{"tenant.create by cli via cli", "user.create by cli via cli", "user.disable by cli via cli",
			"user.enable by cli via cli", "user.set_password by cli via cli"}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})
	t.Run("a tampered log fails verification, naming the entry", func(t *testing.T) {
		db := rawDB(t, dir)
		for _, q := range []string{`DROP TRIGGER audit_log_no_update`, `UPDATE audit_log SET actor = 'mallory' WHERE id = 3`} {
			if _, err := db.Exec(q); err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		code, out, stderr := runCLIIn(t, "", "audit", "verify", "--data", dir)
		if code != 1 || !strings.Contains(out, "BROKEN at entry 3") || !strings.Contains(stderr, "broken at entry 3") {
			t.Fatalf("exit %d, out %q, stderr %q", code, out, stderr)
		}
	})
}

func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(dir, store.ServerFile)+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestDemoAdmin: demo adds a super-admin and a tenant-admin of a second
// tenant, prints them (operator first), creates bindings in both tenants,
// and a second run changes nothing; the printed credentials sign in.
func TestDemoAdmin(t *testing.T) {
	auth.Cost = bcrypt.MinCost
	dir := t.TempDir()
	code, first, stderr := runCLIIn(t, "", "demo", "--data", dir)
	if code != 0 {
		t.Fatalf("demo: %d %s", code, stderr)
	}
	var creds struct {
		Operator    struct{ Username, Password string }
		Admin       struct{ Username, Password string }
		TenantAdmin struct {
			Username, Password string
			TenantID           int64 `json:"tenantId"`
		} `json:"tenantAdmin"`
	}
	if err := json.Unmarshal([]byte(first), &creds); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(first, `{"operator":`) || creds.Admin.Password == "" || creds.TenantAdmin.Password == "" || creds.TenantAdmin.TenantID != 2 {
		t.Fatalf("demo output %s", first)
	}
	if code, second, _ := runCLIIn(t, "", "demo", "--data", dir); code != 0 || second != first {
		t.Fatalf("second run: %d\n%s\n%s", code, first, second)
	}
	box, _, err := seal.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenServer(context.Background(), filepath.Join(dir, store.ServerFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		tenant int64
		want   int
	}{{1, 24}, {2, 12}} {
		list, n, err := st.MachineBindings(context.Background(), store.BindingFilter{Tenant: c.tenant, Limit: 100})
		if err != nil || n != c.want {
			t.Fatalf("tenant %d: %d bindings (%v), want %d", c.tenant, n, err, c.want)
		}
		statuses := map[string]int{}
		for _, b := range list {
			statuses[b.Status]++
			if b.Summary.CPU == "" || b.OS.Caption == "" || b.KeyPreview == "" {
				t.Errorf("binding without hardware: %+v", b)
			}
		}
		if statuses["active"] == 0 || statuses["inactive"] == 0 {
			t.Errorf("tenant %d statuses %v", c.tenant, statuses)
		}
	}
	if c, err := st.VerifyAudit(context.Background()); err != nil || !c.OK {
		t.Fatalf("audit %+v %v", c, err)
	}
	st.Close()

	// The printed credentials sign in to the admin API.
	m := syncserver.NewMain()
	m.Config.DataDir, m.Config.Addr = dir, "127.0.0.1:0"
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for _, u := range []struct{ name, pw string }{{creds.Admin.Username, creds.Admin.Password}, {creds.TenantAdmin.Username, creds.TenantAdmin.Password}} {
		body := `{"username":"` + u.name + `","password":"` + u.pw + `"}`
		resp, err := http.Post("http://"+m.Addr()+"/api/v1/auth/token/", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		var tok struct{ Access, Refresh string }
		json.NewDecoder(resp.Body).Decode(&tok)
		resp.Body.Close()
		if resp.StatusCode != 200 || tok.Access == "" {
			t.Fatalf("sign in %s: %d", u.name, resp.StatusCode)
		}
		req, _ := http.NewRequest("GET", "http://"+m.Addr()+"/api/v1/licenses/admin/machine-bindings/?page_size=1", nil)
		req.Header.Set("Authorization", "Bearer "+tok.Access)
		c := http.Client{Timeout: 10 * time.Second}
		resp, err = c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Count int }
		json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if want := map[string]int{creds.Admin.Username: 36, creds.TenantAdmin.Username: 12}[u.name]; page.Count != want {
			t.Errorf("%s sees %d bindings, want %d", u.name, page.Count, want)
		}
	}
}
