package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"keystation"
	"keystation/store"
)

// ident is who calls: the headers of a request, and the body credentials of
// the station key API.
type ident struct {
	name    string
	headers map[string]string
	creds   string // seed 000 username/password fields for the key API, "" for none
}

// Identity names.
const (
	idNone        = "no token"
	idExpired     = "expired token"
	idTampered    = "tampered token"
	idAlgNone     = "alg none token"
	idOtherKey    = "token signed with another key"
	idRefresh     = "refresh token as access"
	idDisabled    = "token of a disabled user"
	idOperator    = "operator"
	idTenant      = "tenant-admin"
	idTenantOther = "tenant-admin asking for another tenant"
	idSuper       = "super-admin"
	idSuperT2     = "super-admin with X-Tenant-ID 2"
	idSuperBadT   = "super-admin with unknown X-Tenant-ID"
	idStation     = "station credential"
)

var badTokens = []string{idNone, idExpired, idTampered, idAlgNone, idOtherKey, idRefresh, idDisabled}

func (e *admEnv) identities() []ident {
	e.t.Helper()
	e.user("gone", store.RoleSuperAdmin, 1)
	e.user("victim", store.RoleOperator, 1)
	gone := e.login("gone")
	if err := e.st.SetDisabled(admCtx, "gone", true); err != nil {
		e.t.Fatal(err)
	}
	root, op, ta2 := e.login("root"), e.login("op"), e.login("ta2")
	station := e.newStation(1, "matrix") // a tenant-1 station, never revoked
	creds := func(u string) string { return `"username":"` + u + `","password":"` + admPassword + `",` }
	return []ident{
		{name: idNone, headers: map[string]string{}},
		{name: idExpired, headers: bearer(e.expiredToken("root"))},
		{name: idTampered, headers: bearer(tampered(e.t, ta2.Access))},
		{name: idAlgNone, headers: bearer(algNone(e.t, root.Access))},
		{name: idOtherKey, headers: bearer(e.otherKeyToken("root"))},
		{name: idRefresh, headers: bearer(root.Refresh)},
		{name: idDisabled, headers: bearer(gone.Access)},
		{name: idOperator, headers: bearer(op.Access), creds: creds("op")},
		{name: idTenant, headers: bearer(ta2.Access), creds: creds("ta2")},
		{name: idTenantOther, headers: map[string]string{"Authorization": "Bearer " + ta2.Access, "X-Tenant-ID": "1"}},
		{name: idSuper, headers: bearer(root.Access), creds: creds("root")},
		{name: idSuperT2, headers: map[string]string{"Authorization": "Bearer " + root.Access, "X-Tenant-ID": fmt.Sprint(e.tenant2)}},
		{name: idSuperBadT, headers: map[string]string{"Authorization": "Bearer " + root.Access, "X-Tenant-ID": "99"}},
		{name: idStation, headers: bearer(station.Credential)},
	}
}

// adminWant is the status of an admin endpoint for each identity, given
// what the allowed callers get (ok) and who is allowed.
func adminWant(ok int, superOnly bool, over map[string]int) map[string]int {
	w := map[string]int{idOperator: 403, idTenant: ok, idTenantOther: 403, idSuper: ok, idSuperT2: ok, idSuperBadT: 404}
	for _, b := range badTokens {
		w[b] = 401
	}
	w[idStation] = 401 // a station credential is not an admin token
	if superOnly {
		w[idTenant] = 403
	}
	for k, v := range over {
		w[k] = v
	}
	return w
}

// TestAuthorizationMatrix calls every endpoint with every role, without a
// token, with expired, tampered, alg:none, foreign-key, refresh and
// disabled-user tokens, and across tenants, and checks the exact status.
func TestAuthorizationMatrix(t *testing.T) {
	e := newAdmEnv(t)
	ids := e.identities()
	b1, b2 := fmt.Sprint(e.bind1[0]), fmt.Sprint(e.bind2[0])
	k1, k2 := e.keys1[0].String(), e.keys2[0].String()
	fresh := func() string { return fmt.Sprint(e.seq.Add(1)) }
	// Objects of tenant 1 seen by the tenant-2 admin (and by a super-admin
	// scoped to tenant 2) are not found.
	t1only := map[string]int{idTenant: 404, idSuperT2: 404}
	// Stations: st1 of tenant 1, st2 of tenant 2; the matrix's own station
	// credential (idStation) is of tenant 1.
	st1, st2 := e.newStation(1, "st-1"), e.newStation(e.tenant2, "st-2")
	e.sync(st1.Credential, `{"targets":{"home":1}}`)
	e.sync(st2.Credential, `{"targets":{"home":1}}`)
	var stationCred string
	for _, id := range ids {
		if id.name == idStation {
			stationCred = strings.TrimPrefix(id.headers["Authorization"], "Bearer ")
		}
	}
	// freshStation enrols a station of tenant for one call.
	freshStation := func(tenant int64, action string) func(ident) string {
		return func(ident) string { return stationPath(e.newStation(tenant, "st-"+fresh()).StationID, action) }
	}
	signIn := func(ident) string { return `{"username":"op","password":"` + admPassword + `"}` }

	type row struct {
		name   string
		method string
		path   func(id ident) string
		body   func(id ident) string
		want   map[string]int
	}
	static := func(p string) func(ident) string { return func(ident) string { return p } }
	none := func(ident) string { return "" }
	rows := []row{
		{"health", "GET", static("/healthz"), none, all(200)},
		{"openapi", "GET", static("/api/v1/openapi.json"), none, all(200)},
		{"token: body credentials only", "POST", static("/api/v1/auth/token/"),
			func(id ident) string { return `{"username":"root","password":"wrong password"}` }, all(401)},
		{"token refresh: bad refresh token", "POST", static("/api/v1/auth/token/refresh/"),
			func(ident) string { return `{"refresh":"x.y.z"}` }, all(401)},
		{"key acquire: body credentials", "POST", static("/api/v1/keys/acquire"), func(id ident) string {
			return `{` + id.creds + `"sn":"AZ` + fresh() + `","model":"Test PC","osVersion":"Windows 11 Home"}`
		}, keyAPIWant(200)},
		{"key report: body credentials", "POST", static("/api/v1/keys/report"), func(id ident) string {
			return `{` + id.creds + `"keyId":"1234567890123","sn":"RZ` + fresh() + `","model":"Test PC","osVersion":"Windows 11 Home","resultStatus":false,"resultMessage":"x"}`
		}, keyAPIWant(409)},
		// The sync API takes station credentials only: JWTs of any role, good
		// or bad, are refused like no credential (401).
		{"sync: admin tokens are not station credentials", "POST", static("/api/v1/sync"), func(ident) string { return `{}` }, stationWant(200)},
		{"sync reconciliation", "GET", static("/api/v1/sync/reconciliation"), none, stationWant(200)},
		{"sync signin", "POST", static("/api/v1/sync/signin"), signIn, stationWant(200)},
		// Enrolment and USB files carry their own credential in the body; no
		// Authorization header, JWT or station credential, stands in for it.
		{"enrol: unknown enrolment token", "POST", static("/api/v1/stations/enrol"),
			func(ident) string { return `{"token":"ks-enrol-unknown","name":"x"}` }, all(401)},
		{"enrol: the enrolment token is the credential", "POST", static("/api/v1/stations/enrol"),
			func(ident) string { return `{"token":"` + e.enrolToken(1) + `","name":"st-` + fresh() + `"}` }, all(200)},
		{"sync file: forged request file", "POST", static("/api/v1/sync/file"),
			func(ident) string { return syncFile(t, stationCred, true, keystation.SyncRequest{}) }, all(401)},
		{"sync file: the sealed request file is the credential", "POST", static("/api/v1/sync/file"),
			func(ident) string { return syncFile(t, stationCred, false, keystation.SyncRequest{}) }, all(200)},

		{"bindings list", "GET", static("/api/v1/licenses/admin/machine-bindings/"), none, adminWant(200, false, nil)},
		{"binding detail own tenant", "GET", static("/api/v1/licenses/admin/machine-bindings/" + b2 + "/"), none,
			adminWant(200, false, nil)},
		{"binding detail other tenant", "GET", static("/api/v1/licenses/admin/machine-bindings/" + b1 + "/"), none,
			adminWant(200, false, t1only)},
		{"binding detail unknown", "GET", static("/api/v1/licenses/admin/machine-bindings/999999/"), none,
			adminWant(404, false, nil)},
		{"binding block own tenant", "POST", static("/api/v1/licenses/admin/machine-bindings/" + fmt.Sprint(e.bind2[1]) + "/block/"),
			func(ident) string { return `{}` }, adminWant(200, false, nil)},
		{"binding block other tenant", "POST", static("/api/v1/licenses/admin/machine-bindings/" + fmt.Sprint(e.bind1[1]) + "/block/"),
			func(ident) string { return `{"reason":"test"}` }, adminWant(200, false, t1only)},

		{"pools", "GET", static("/api/v1/admin/pools/"), none, adminWant(200, false, nil)},
		{"pool create", "POST", static("/api/v1/admin/pools/"), func(ident) string {
			return `{"slug":"ed` + fresh() + `","name":"Edu` + fresh() + `","patterns":["education` + fresh() + `"]}`
		}, adminWant(201, true, nil)},
		{"pool low stock", "PATCH", static("/api/v1/admin/pools/home/"), func(ident) string { return `{"low_stock":10}` },
			adminWant(200, true, nil)},
		{"key import", "POST", static("/api/v1/admin/key-imports/?edition=home"), func(ident) string { return "" },
			adminWant(200, false, nil)},
		{"key detail own tenant", "GET", static("/api/v1/admin/keys/" + k2 + "/"), none, adminWant(200, false, nil)},
		{"key detail other tenant", "GET", static("/api/v1/admin/keys/" + k1 + "/"), none, adminWant(200, false, t1only)},
		{"key revoke", "POST", func(id ident) string {
			return "/api/v1/admin/keys/" + e.keysFor(e.tenant2, 1)[0].String() + "/revoke/"
		}, func(ident) string { return `{"reason":"leaked"}` }, adminWant(200, false, nil)},
		{"key revoke other tenant", "POST", func(id ident) string {
			return "/api/v1/admin/keys/" + e.keysFor(1, 1)[0].String() + "/revoke/"
		}, func(ident) string { return `{}` }, adminWant(200, false, t1only)},
		{"key return", "POST", func(id ident) string {
			return "/api/v1/admin/keys/" + e.assigned(e.tenant2).String() + "/return/"
		}, func(ident) string { return `{"reason":"PC scrapped before activation"}` }, adminWant(200, false, nil)},
		{"reports", "GET", static("/api/v1/admin/reports/"), none, adminWant(200, false, nil)},
		{"reports export", "GET", static("/api/v1/admin/reports/export/"), none, adminWant(200, false, nil)},
		{"stats", "GET", static("/api/v1/admin/stats/"), none, adminWant(200, false, nil)},
		{"audit log", "GET", static("/api/v1/admin/audit-log/"), none, adminWant(200, false, nil)},
		{"audit verify", "GET", static("/api/v1/admin/audit-log/verify/"), none, adminWant(200, true, nil)},
		{"users", "GET", static("/api/v1/admin/users/"), none, adminWant(200, true, nil)},
		{"user create", "POST", static("/api/v1/admin/users/"), func(ident) string {
			return `{"username":"u` + fresh() + `","password":"long enough password","role":"operator"}`
		}, adminWant(201, true, nil)},
		{"user disable", "POST", static("/api/v1/admin/users/victim/disable/"), none, adminWant(200, true, nil)},
		{"user enable", "POST", static("/api/v1/admin/users/victim/enable/"), none, adminWant(200, true, nil)},
		{"user set password", "POST", static("/api/v1/admin/users/ta1/set-password/"),
			func(ident) string { return `{"password":"` + admPassword + `"}` }, adminWant(200, true, nil)},
		{"tenants", "GET", static("/api/v1/admin/tenants/"), none, adminWant(200, true, nil)},
		{"tenant create", "POST", static("/api/v1/admin/tenants/"), func(ident) string { return `{"name":"t` + fresh() + `"}` },
			adminWant(201, true, nil)},

		{"stations", "GET", static("/api/v1/admin/stations/"), none, adminWant(200, false, nil)},
		{"station detail own tenant", "GET", static(stationPath(st2.StationID, "")), none, adminWant(200, false, nil)},
		{"station detail other tenant", "GET", static(stationPath(st1.StationID, "")), none, adminWant(200, false, t1only)},
		{"station detail unknown", "GET", static(stationPath(999999, "")), none, adminWant(404, false, nil)},
		{"station revoke own tenant", "POST", freshStation(e.tenant2, "revoke"), none, adminWant(200, false, nil)},
		{"station revoke other tenant", "POST", freshStation(1, "revoke"), none, adminWant(200, false, t1only)},
		{"station revoke unknown", "POST", static(stationPath(999999, "revoke")), none, adminWant(404, false, nil)},
		{"station reclaim own tenant", "POST", static(stationPath(st2.StationID, "reclaim")), none, adminWant(200, false, nil)},
		{"station reclaim other tenant", "POST", static(stationPath(st1.StationID, "reclaim")), none, adminWant(200, false, t1only)},
		{"station reclaim unknown", "POST", static(stationPath(999999, "reclaim")), none, adminWant(404, false, nil)},
		{"enrol token create", "POST", static("/api/v1/admin/enrol-tokens/"), func(ident) string { return `{"uses":1}` },
			adminWant(201, false, nil)},
	}
	for _, rw := range rows {
		for _, id := range ids {
			want, ok := rw.want[id.name]
			if !ok {
				t.Fatalf("%s: no expectation for %s", rw.name, id.name)
			}
			t.Run(rw.name+"/"+id.name, func(t *testing.T) {
				var r admResp
				path := rw.path(id)
				if rw.name == "key import" {
					r = e.upload(path, id.headers)
				} else {
					r = e.do(rw.method, path, rw.body(id), id.headers)
				}
				if r.status != want {
					t.Fatalf("%s %s as %s: status %d, want %d: %s", rw.method, path, id.name, r.status, want, r.body)
				}
				if strings.HasPrefix(path, "/api/v1/sync") || strings.HasPrefix(path, "/api/v1/stations/") {
					checkSyncAnswer(t, path, r)
				} else {
					checkDRFError(t, r)
				}
			})
		}
	}
}

// checkDRFError checks the seed's error bodies of 401, 403 and 404 answers
// of the DRF-style endpoints.
func checkDRFError(t *testing.T, r admResp) {
	t.Helper()
	if !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") || r.status < 400 {
		return
	}
	body := strings.TrimSpace(string(r.body))
	if !strings.HasPrefix(body, `{"detail":`) {
		return // the station key API's envelope, or a 400 field map
	}
	switch r.status {
	case http.StatusUnauthorized:
		if body != `{"detail":"未提供认证凭据。"}` && body != `{"detail":"认证令牌无效或已过期。"}` &&
			body != `{"detail":"找不到指定凭据对应的有效用户。"}` {
			t.Errorf("401 body %s", body)
		}
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("401 without WWW-Authenticate")
		}
	case http.StatusForbidden:
		if body != `{"detail":"您没有执行该操作的权限。"}` {
			t.Errorf("403 body %s", body)
		}
	case http.StatusNotFound:
		if body != `{"detail":"未找到。"}` {
			t.Errorf("404 body %s", body)
		}
	}
}

// checkSyncAnswer checks that the sync API answers in its own envelope:
// refusals are UNAUTHORIZED, successes OK (the USB file answer is the
// response file).
func checkSyncAnswer(t *testing.T, path string, r admResp) {
	t.Helper()
	if r.status == 200 && path == "/api/v1/sync/file" {
		if !strings.Contains(string(r.body), `"format": "keystation-sync-response/1"`) {
			t.Errorf("not a response file: %s", r.body)
		}
		return
	}
	want := map[int]string{200: keystation.EOK, 401: keystation.EUNAUTHORIZED}[r.status]
	if a := r.envelope(t, nil); a.Code != want || want == "" {
		t.Errorf("%d answered with code %q, want %q: %s", r.status, a.Code, want, r.body)
	}
}

// stationWant: the sync API answers ok to a station credential and 401 to
// everyone else, JWTs included.
func stationWant(ok int) map[string]int {
	w := all(401)
	w[idStation] = ok
	return w
}

// all expects the same status for every identity.
func all(status int) map[string]int {
	w := map[string]int{}
	for _, n := range []string{idNone, idExpired, idTampered, idAlgNone, idOtherKey, idRefresh, idDisabled, idOperator,
		idTenant, idTenantOther, idSuper, idSuperT2, idSuperBadT, idStation} {
		w[n] = status
	}
	return w
}

// keyAPIWant: the station key API authenticates with the seed-000 body
// credentials, never with a token: operators and super-admins get ok (a
// key, or for a report of a key that is not theirs 409 not assigned); a
// tenant-admin gets 403; a body without credentials gets 400, whatever
// token comes with it.
func keyAPIWant(ok int) map[string]int {
	w := all(400)
	w[idOperator], w[idSuper], w[idTenant] = ok, ok, 403
	return w
}
