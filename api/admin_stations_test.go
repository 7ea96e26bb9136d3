package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/store"
	"keystation/syncfile"
)

// Station helpers: stations enrol and sync through the real sync API.

// envAnswer is KeyStation's envelope, as the sync API answers.
type envAnswer struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
	Data    json.RawMessage   `json:"data"`
}

// envelope decodes a sync API answer and, when v is not nil, its data.
func (r admResp) envelope(t *testing.T, v any) envAnswer {
	t.Helper()
	var a envAnswer
	if err := json.Unmarshal(r.body, &a); err != nil {
		t.Fatalf("not an envelope: %q", r.body)
	}
	if v != nil {
		if err := json.Unmarshal(a.Data, v); err != nil {
			t.Fatalf("envelope data %s: %v", a.Data, err)
		}
	}
	return a
}

// enrolToken creates an enrolment token for tenant in the store.
func (e *admEnv) enrolToken(tenant int64) string {
	e.t.Helper()
	tok, err := e.st.CreateEnrolToken(admCtx, store.EnrolTokenOptions{Tenant: tenant, Actor: "test"})
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// enrolWith enrols a station with token through the sync API.
func (e *admEnv) enrolWith(token, name string) keystation.EnrolResponse {
	e.t.Helper()
	r := e.do("POST", "/api/v1/stations/enrol", `{"token":"`+token+`","name":"`+name+`","hostname":"`+strings.ToUpper(name)+`"}`, nil)
	if r.status != 200 {
		e.t.Fatalf("enrol %s: %d %s", name, r.status, r.body)
	}
	var resp keystation.EnrolResponse
	r.envelope(e.t, &resp)
	return resp
}

// newStation enrols a station into tenant.
func (e *admEnv) newStation(tenant int64, name string) keystation.EnrolResponse {
	e.t.Helper()
	return e.enrolWith(e.enrolToken(tenant), name)
}

// station sends a request to the sync API with a station credential.
func (e *admEnv) station(method, path, cred, body string) admResp {
	e.t.Helper()
	return e.do(method, path, body, bearer(cred))
}

// sync runs one sync round trip and returns the answer's data.
func (e *admEnv) sync(cred, body string) keystation.SyncResponse {
	e.t.Helper()
	r := e.station("POST", "/api/v1/sync", cred, body)
	if r.status != 200 {
		e.t.Fatalf("sync: %d %s", r.status, r.body)
	}
	var resp keystation.SyncResponse
	r.envelope(e.t, &resp)
	return resp
}

// syncFile is a station's request file, sealed with the key of the
// station's credential, or (forge) with another key.
func syncFile(t *testing.T, cred string, forge bool, req keystation.SyncRequest) string {
	t.Helper()
	k, id, err := syncfile.DeriveKey(cred)
	if err != nil {
		t.Fatal(err)
	}
	if forge {
		k = syncfile.DeriveKeyFromSecret("not the station's secret")
	}
	var buf bytes.Buffer
	if err := syncfile.WriteRequest(&buf, k, id, req); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func stationPath(id int64, action string) string {
	p := fmt.Sprintf("/api/v1/admin/stations/%d/", id)
	if action != "" {
		p += action + "/"
	}
	return p
}

// auditOf lists the audit log entries of action about station id.
func (e *admEnv) auditOf(action string, id int64) []store.AuditEntry {
	e.t.Helper()
	es, _, err := e.st.AuditEntries(admCtx, store.AuditFilter{Action: action, ObjectType: "station", ObjectID: fmt.Sprint(id), Limit: 100})
	if err != nil {
		e.t.Fatal(err)
	}
	return es
}

// TestStationList: the list after a real enrolment and sync, its exact
// fields, pagination and parameter errors.
func TestStationList(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	st := e.newStation(1, "line-1")
	other := e.newStation(e.tenant2, "line-2")
	resp := e.sync(st.Credential, `{"stationTime":"`+time.Now().Add(-3*time.Second).UTC().Format(time.RFC3339Nano)+
		`","targets":{"home":3,"pro":2},"backlog":4}`)
	if len(resp.Grants) != 5 {
		t.Fatalf("sync granted %d keys, want 5", len(resp.Grants))
	}

	r := e.do("GET", "/api/v1/admin/stations/", "", root)
	if r.status != 200 {
		t.Fatalf("list: %d %s", r.status, r.body)
	}
	var page struct {
		Count   int              `json:"count"`
		Next    *string          `json:"next"`
		Results []map[string]any `json:"results"`
	}
	if err := json.Unmarshal(r.body, &page); err != nil {
		t.Fatal(err)
	}
	if page.Count != 2 || len(page.Results) != 2 || page.Next != nil {
		t.Fatalf("list: count %d, %d results, next %v", page.Count, len(page.Results), page.Next)
	}
	got := page.Results[0]
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"buffer", "clock_skew_ms", "created_at", "demo", "hostname", "id", "keys_leased", "last_ip_address",
		"last_sync_at", "name", "outbox_backlog", "status", "targets", "tenant"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("fields %v, want %v", keys, want)
	}
	for _, c := range []struct {
		field string
		want  any
	}{
		{"id", float64(st.StationID)},
		{"name", "line-1"},
		{"hostname", "LINE-1"},
		{"tenant", float64(1)},
		{"status", "active"},
		{"last_ip_address", "127.0.0.1"},
		{"outbox_backlog", float64(4)},
		{"keys_leased", float64(5)},
		{"demo", false},
		{"buffer", map[string]any{"home": float64(3), "pro": float64(2)}},
		{"targets", map[string]any{"home": float64(3), "pro": float64(2)}},
	} {
		if fmt.Sprint(got[c.field]) != fmt.Sprint(c.want) {
			t.Errorf("%s = %v, want %v", c.field, got[c.field], c.want)
		}
	}
	if skew, ok := got["clock_skew_ms"].(float64); !ok || skew < 2000 || skew > 60000 {
		t.Errorf("clock_skew_ms = %v, want about 3000", got["clock_skew_ms"])
	}
	for _, f := range []string{"created_at", "last_sync_at"} {
		if s, _ := got[f].(string); !strings.HasSuffix(s, "Z") {
			t.Errorf("%s = %v, want an RFC 3339 time", f, got[f])
		} else if _, err := time.Parse(time.RFC3339, s); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	never := page.Results[1]
	if never["id"] != float64(other.StationID) || never["last_sync_at"] != nil || never["clock_skew_ms"] != nil ||
		fmt.Sprint(never["buffer"]) != "map[]" || never["keys_leased"] != float64(0) || never["tenant"] != float64(e.tenant2) {
		t.Errorf("never-synced station: %v", never)
	}

	ta2 := bearer(e.login("ta2").Access)
	tests := []struct {
		name    string
		query   string
		headers map[string]string
		status  int
		count   int
		next    bool
		body    string // the exact error body
	}{
		{"super-admin sees every tenant", "", root, 200, 2, false, ""},
		{"page size 1", "?page_size=1", root, 200, 2, true, ""},
		{"second page", "?page_size=1&page=2", root, 200, 2, false, ""},
		{"tenant-admin sees their tenant", "", ta2, 200, 1, false, ""},
		{"super-admin scoped to tenant 2", "", map[string]string{"Authorization": root["Authorization"], "X-Tenant-ID": fmt.Sprint(e.tenant2)}, 200, 1, false, ""},
		{"page 0", "?page=0", root, 400, 0, false, `{"page":["确保该值大于或等于 1。"]}`},
		{"page not a number", "?page=x&page_size=0", root, 400, 0, false, `{"page":["请填写合法的整数值。"],"page_size":["确保该值大于或等于 1。"]}`},
		{"past the last page", "?page=3", root, 404, 0, false, `{"detail":"无效页面。"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", "/api/v1/admin/stations/"+tt.query, "", tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.body != "" {
				if got := strings.TrimSpace(string(r.body)); got != tt.body {
					t.Fatalf("body %s, want %s", got, tt.body)
				}
				return
			}
			var p struct {
				Count   int              `json:"count"`
				Next    *string          `json:"next"`
				Results []map[string]any `json:"results"`
			}
			json.Unmarshal(r.body, &p)
			if p.Count != tt.count || (p.Next != nil) != tt.next {
				t.Fatalf("count %d next %v, want %d %v", p.Count, p.Next, tt.count, tt.next)
			}
			if tt.count == 1 && p.Results[0]["id"] != float64(other.StationID) {
				t.Fatalf("tenant 2 sees %v", p.Results[0])
			}
		})
	}
}

// TestStationDetail: the detail answer is the list entry plus the
// station's reconciliation.
func TestStationDetail(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	st := e.newStation(1, "line-1")
	resp := e.sync(st.Credential, `{"targets":{"home":2}}`)
	e.sync(st.Credential, `{"holding":[`+fmt.Sprint(int64(resp.Grants[0].KeyID))+`],"release":[`+fmt.Sprint(int64(resp.Grants[1].KeyID))+`]}`)

	r := e.do("GET", stationPath(st.StationID, ""), "", root)
	if r.status != 200 {
		t.Fatalf("detail: %d %s", r.status, r.body)
	}
	var d struct {
		ID             int64                      `json:"id"`
		Status         string                     `json:"status"`
		KeysLeased     int                        `json:"keys_leased"`
		Reconciliation *keystation.Reconciliation `json:"reconciliation"`
	}
	if err := json.Unmarshal(r.body, &d); err != nil {
		t.Fatal(err)
	}
	want := keystation.Reconciliation{StationID: st.StationID, Leased: 1, Returned: 1}
	if d.ID != st.StationID || d.Status != "active" || d.KeysLeased != 1 || d.Reconciliation == nil || *d.Reconciliation != want {
		t.Fatalf("detail %+v (reconciliation %+v), want leased 1 and %+v", d, d.Reconciliation, want)
	}
	// The station's own view agrees.
	var rec keystation.Reconciliation
	e.station("GET", "/api/v1/sync/reconciliation", st.Credential, "").envelope(t, &rec)
	if rec != want {
		t.Fatalf("station's reconciliation %+v, want %+v", rec, want)
	}
	// The list has no reconciliation.
	if l := e.do("GET", "/api/v1/admin/stations/", "", root); strings.Contains(string(l.body), "reconciliation") {
		t.Fatalf("list carries the reconciliation: %s", l.body)
	}
	for _, tt := range []struct{ name, path string }{
		{"unknown id", "/api/v1/admin/stations/999999/"},
		{"not a number", "/api/v1/admin/stations/abc/"},
		{"zero", "/api/v1/admin/stations/0/"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("GET", tt.path, "", root)
			if r.status != 404 || strings.TrimSpace(string(r.body)) != `{"detail":"未找到。"}` {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
}

// TestStationRevoke: a revoked station can no longer sync (403
// STATION_REVOKED, online and by USB file), and the revoke is audited.
func TestStationRevoke(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	st := e.newStation(1, "line-1")
	bystander := e.newStation(1, "line-2")
	e.sync(st.Credential, `{}`)

	r := e.do("POST", stationPath(st.StationID, "revoke"), "", root)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"success":true,"message":"工作站凭据已撤销"}` {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	file := syncFile(t, st.Credential, false, keystation.SyncRequest{})
	for _, c := range []struct{ method, path, cred, body string }{
		{"POST", "/api/v1/sync", st.Credential, `{}`},
		{"GET", "/api/v1/sync/reconciliation", st.Credential, ""},
		{"POST", "/api/v1/sync/signin", st.Credential, `{"username":"op","password":"` + admPassword + `"}`},
		{"POST", "/api/v1/sync/file", "", file},
	} {
		r := e.station(c.method, c.path, c.cred, c.body)
		if a := r.envelope(t, nil); r.status != 403 || a.Code != keystation.ESTATIONREVOKED {
			t.Errorf("%s %s after revoke: %d %s", c.method, c.path, r.status, r.body)
		}
	}
	// Other stations are not affected.
	e.sync(bystander.Credential, `{}`)

	d := e.do("GET", stationPath(st.StationID, ""), "", root).json(t)
	if d["status"] != "revoked" {
		t.Fatalf("status after revoke: %v", d["status"])
	}
	entries := e.auditOf(store.AuditStationRevoke, st.StationID)
	if len(entries) != 1 || entries[0].Actor != "root" || entries[0].ActorRole != store.RoleSuperAdmin || entries[0].Via != store.ViaAPI ||
		entries[0].Tenant != 1 || entries[0].IP != "127.0.0.1" {
		t.Fatalf("audit entries %+v", entries)
	}
	// The audit log endpoint lists it too.
	a := e.do("GET", "/api/v1/admin/audit-log/?action=station.revoke", "", root)
	if a.status != 200 || !strings.Contains(string(a.body), `"object_id":"`+fmt.Sprint(st.StationID)+`"`) {
		t.Fatalf("audit log: %d %s", a.status, a.body)
	}
	if chk, err := e.st.VerifyAudit(admCtx); err != nil || !chk.OK {
		t.Fatalf("audit chain: %+v %v", chk, err)
	}
	// Revoking again is harmless; English when asked.
	r = e.do("POST", stationPath(st.StationID, "revoke"), "", map[string]string{"Authorization": root["Authorization"], "Accept-Language": "en"})
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"success":true,"message":"station credential revoked"}` {
		t.Fatalf("revoke again: %d %s", r.status, r.body)
	}
}

// TestStationReclaim: a reclaim returns the station's leased keys to the
// pool (counted in the answer), the station is told to drop them, and the
// reclaim is audited.
func TestStationReclaim(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	st := e.newStation(1, "lost")
	resp := e.sync(st.Credential, `{"targets":{"home":2,"pro":1}}`)
	if len(resp.Grants) != 3 {
		t.Fatalf("granted %d", len(resp.Grants))
	}
	for _, g := range resp.Grants {
		if k := e.do("GET", "/api/v1/admin/keys/"+g.KeyID.String()+"/", "", root).json(t); k["state"] != "leased" {
			t.Fatalf("key %s before reclaim: %v", g.KeyID, k["state"])
		}
	}

	r := e.do("POST", stationPath(st.StationID, "reclaim"), "", root)
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"success":true,"message":"工作站的租用密钥已收回","keys":3}` {
		t.Fatalf("reclaim: %d %s", r.status, r.body)
	}
	var held []string
	for _, g := range resp.Grants {
		held = append(held, g.KeyID.String())
		if k := e.do("GET", "/api/v1/admin/keys/"+g.KeyID.String()+"/", "", root).json(t); k["state"] != "available" {
			t.Errorf("key %s after reclaim: %v", g.KeyID, k["state"])
		}
	}
	d := e.do("GET", stationPath(st.StationID, ""), "", root).json(t)
	rec, _ := d["reconciliation"].(map[string]any)
	if d["keys_leased"] != float64(0) || rec["leased"] != float64(0) || rec["returned"] != float64(3) || d["status"] != "active" {
		t.Fatalf("detail after reclaim: %v", d)
	}
	entries := e.auditOf(store.AuditLeaseReclaim, st.StationID)
	if len(entries) != 1 || entries[0].Actor != "root" || entries[0].Tenant != 1 || !strings.Contains(string(entries[0].Detail), `"keys":3`) {
		t.Fatalf("audit entries %+v", entries)
	}
	// The station, back online, is told to drop the keys it held.
	back := e.sync(st.Credential, `{"holding":[`+strings.Join(held, ",")+`]}`)
	if len(back.Revoked) != 3 || len(back.Grants) != 0 {
		t.Fatalf("sync after reclaim: revoked %v grants %v", back.Revoked, back.Grants)
	}
	// A second reclaim finds nothing; English when asked.
	r = e.do("POST", stationPath(st.StationID, "reclaim"), "", map[string]string{"Authorization": root["Authorization"], "Accept-Language": "en"})
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"success":true,"message":"the station's leased keys were returned to the pool","keys":0}` {
		t.Fatalf("reclaim again: %d %s", r.status, r.body)
	}
}

// TestEnrolTokenCreate: the enrolment token endpoint validates its fields,
// and its tokens enrol stations into the tenant in scope.
func TestEnrolTokenCreate(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	ta2 := bearer(e.login("ta2").Access)
	rootT2 := map[string]string{"Authorization": root["Authorization"], "X-Tenant-ID": fmt.Sprint(e.tenant2)}
	en := map[string]string{"Authorization": root["Authorization"], "Accept-Language": "en"}
	tests := []struct {
		name    string
		body    string
		headers map[string]string
		status  int
		want    string // exact body of an error; for 201: uses and tenant "uses/tenant"
	}{
		{"defaults", ``, root, 201, "1/1"},
		{"empty object", `{}`, root, 201, "1/1"},
		{"all fields", `{"name":"line","uses":3,"ttl_seconds":3600}`, root, 201, "3/1"},
		{"tenant-admin: their tenant", `{"uses":2}`, ta2, 201, "2/2"},
		{"super-admin with X-Tenant-ID", `{}`, rootT2, 201, "1/2"},
		{"uses 0", `{"uses":0}`, root, 400, `{"uses":["确保该值大于或等于 1。"]}`},
		{"uses negative", `{"uses":-5}`, root, 400, `{"uses":["确保该值大于或等于 1。"]}`},
		{"uses too many", `{"uses":10001}`, root, 400, `{"uses":["确保该值小于或等于 10000。"]}`},
		{"uses not a number", `{"uses":"x"}`, root, 400, `{"uses":["请填写合法的整数值。"]}`},
		{"ttl too small", `{"ttl_seconds":59}`, root, 400, `{"ttl_seconds":["确保该值大于或等于 60。"]}`},
		{"ttl too large", `{"ttl_seconds":40000000}`, root, 400, `{"ttl_seconds":["确保该值小于或等于 31622400。"]}`},
		{"name too long", `{"name":"` + strings.Repeat("名", 65) + `"}`, root, 400, `{"name":["该字段不能超过64个字符。"]}`},
		{"every field wrong", `{"name":"` + strings.Repeat("x", 65) + `","uses":0,"ttl_seconds":1}`, root, 400,
			`{"name":["该字段不能超过64个字符。"],"ttl_seconds":["确保该值大于或等于 60。"],"uses":["确保该值大于或等于 1。"]}`},
		{"English", `{"uses":0}`, en, 400, `{"uses":["Ensure this value is greater than or equal to 1."]}`},
		{"unknown field", `{"tenant":2}`, root, 400, `{"tenant":["未知字段。"]}`},
		{"not JSON", `uses=1`, root, 400, `{"detail":"JSON 解析错误。"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do("POST", "/api/v1/admin/enrol-tokens/", tt.body, tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != 201 {
				if got := strings.TrimSpace(string(r.body)); got != tt.want {
					t.Fatalf("body %s, want %s", got, tt.want)
				}
				return
			}
			var a struct {
				Token     string `json:"token"`
				Uses      int    `json:"uses"`
				ExpiresAt string `json:"expires_at"`
				Tenant    int64  `json:"tenant"`
			}
			if err := json.Unmarshal(r.body, &a); err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%d/%d", a.Uses, a.Tenant); got != strings.Replace(tt.want, "/2", "/"+fmt.Sprint(e.tenant2), 1) {
				t.Fatalf("uses/tenant %s, want %s", got, tt.want)
			}
			ttl := 24 * time.Hour
			if strings.Contains(tt.body, "ttl_seconds") {
				ttl = time.Hour
			}
			exp, err := time.Parse(time.RFC3339, a.ExpiresAt)
			if err != nil || exp.Sub(time.Now().Add(ttl)).Abs() > time.Minute {
				t.Fatalf("expires_at %s, want in %v", a.ExpiresAt, ttl)
			}
			if !strings.HasPrefix(a.Token, "ks-enrol-") {
				t.Fatalf("token %q", a.Token)
			}
			// The token enrols its uses' worth of stations into its tenant, then no more.
			for i := range a.Uses {
				st := e.enrolWith(a.Token, fmt.Sprintf("st-%s-%d", strings.ReplaceAll(tt.name, " ", "-"), i))
				got, err := e.st.StationByID(admCtx, st.StationID)
				if err != nil || got.TenantID != a.Tenant {
					t.Fatalf("station enrolled into tenant %d (%v), want %d", got.TenantID, err, a.Tenant)
				}
			}
			r = e.do("POST", "/api/v1/stations/enrol", `{"token":"`+a.Token+`","name":"one too many"}`, nil)
			if env := r.envelope(t, nil); r.status != 401 || env.Code != keystation.EUNAUTHORIZED {
				t.Fatalf("enrol past the token's uses: %d %s", r.status, r.body)
			}
		})
	}
	t.Run("wrong content type", func(t *testing.T) {
		r := e.do("POST", "/api/v1/admin/enrol-tokens/", `{}`, map[string]string{"Authorization": root["Authorization"], "Content-Type": "text/plain"})
		if r.status != 415 {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("token name is the station name when the station sends none", func(t *testing.T) {
		r := e.do("POST", "/api/v1/admin/enrol-tokens/", `{"name":"assembly line 7"}`, root)
		tok, _ := r.json(t)["token"].(string)
		r = e.do("POST", "/api/v1/stations/enrol", `{"token":"`+tok+`","hostname":"PC-7"}`, nil)
		var resp keystation.EnrolResponse
		if r.status != 200 || r.envelope(t, &resp).Code != keystation.EOK || resp.Name != "assembly line 7" {
			t.Fatalf("enrol: %d %s", r.status, r.body)
		}
	})
	t.Run("audited", func(t *testing.T) {
		es, _, err := e.st.AuditEntries(admCtx, store.AuditFilter{Action: store.AuditEnrolToken, Actor: "ta2", Limit: 10})
		if err != nil || len(es) != 1 || es[0].Tenant != e.tenant2 || !strings.Contains(string(es[0].Detail), `"uses":2`) {
			t.Fatalf("audit entries %+v %v", es, err)
		}
		es, _, err = e.st.AuditEntries(admCtx, store.AuditFilter{Action: store.AuditStationEnrol, Limit: 100})
		if err != nil || len(es) < 8 {
			t.Fatalf("enrol audit entries: %d %v", len(es), err)
		}
	})
}

// TestStationTenantScope: a tenant-admin (and a super-admin scoped to
// another tenant) cannot see, revoke or reclaim another tenant's station.
func TestStationTenantScope(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	ta1 := bearer(e.login("ta1").Access)
	ta2 := bearer(e.login("ta2").Access)
	rootT2 := map[string]string{"Authorization": root["Authorization"], "X-Tenant-ID": fmt.Sprint(e.tenant2)}
	ta2AsT1 := map[string]string{"Authorization": ta2["Authorization"], "X-Tenant-ID": "1"}
	st := e.newStation(1, "line-1")
	own := e.newStation(e.tenant2, "line-2")
	e.sync(st.Credential, `{"targets":{"home":2}}`)

	tests := []struct {
		name, method, path string
		headers            map[string]string
		status             int
	}{
		{"tenant-admin 2: detail", "GET", stationPath(st.StationID, ""), ta2, 404},
		{"tenant-admin 2: revoke", "POST", stationPath(st.StationID, "revoke"), ta2, 404},
		{"tenant-admin 2: reclaim", "POST", stationPath(st.StationID, "reclaim"), ta2, 404},
		{"tenant-admin 2 naming tenant 1: detail", "GET", stationPath(st.StationID, ""), ta2AsT1, 403},
		{"tenant-admin 2 naming tenant 1: revoke", "POST", stationPath(st.StationID, "revoke"), ta2AsT1, 403},
		{"tenant-admin 2 naming tenant 1: list", "GET", "/api/v1/admin/stations/", ta2AsT1, 403},
		{"super-admin scoped to tenant 2: detail", "GET", stationPath(st.StationID, ""), rootT2, 404},
		{"super-admin scoped to tenant 2: revoke", "POST", stationPath(st.StationID, "revoke"), rootT2, 404},
		{"super-admin scoped to tenant 2: reclaim", "POST", stationPath(st.StationID, "reclaim"), rootT2, 404},
		{"tenant-admin 1: detail", "GET", stationPath(st.StationID, ""), ta1, 200},
		{"tenant-admin 1: other tenant's detail", "GET", stationPath(own.StationID, ""), ta1, 404},
		{"tenant-admin 2: own detail", "GET", stationPath(own.StationID, ""), ta2, 200},
		{"tenant-admin 2: own reclaim", "POST", stationPath(own.StationID, "reclaim"), ta2, 200},
		{"super-admin: detail", "GET", stationPath(st.StationID, ""), root, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, "", tt.headers)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			checkDRFError(t, r)
		})
	}
	// The list of tenant 2 does not show tenant 1's station.
	if l := e.do("GET", "/api/v1/admin/stations/", "", ta2).json(t); l["count"] != float64(1) {
		t.Fatalf("tenant 2's list: %v", l)
	}
	// Nothing happened to tenant 1's station: it still syncs, keeps its keys,
	// and no revoke or reclaim was audited.
	var rec keystation.Reconciliation
	if r := e.station("GET", "/api/v1/sync/reconciliation", st.Credential, ""); r.status != 200 || r.envelope(t, &rec).Code != keystation.EOK || rec.Leased != 2 {
		t.Fatalf("tenant 1's station after tenant 2's attempts: %s", r.body)
	}
	if n := len(e.auditOf(store.AuditStationRevoke, st.StationID)) + len(e.auditOf(store.AuditLeaseReclaim, st.StationID)); n != 0 {
		t.Fatalf("%d audit entries for refused actions", n)
	}
	if n := len(e.auditOf(store.AuditLeaseReclaim, own.StationID)); n != 1 {
		t.Fatalf("%d audit entries for tenant 2's own reclaim", n)
	}
}
