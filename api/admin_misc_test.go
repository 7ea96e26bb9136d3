package api_test

import (
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"keystation"
	"keystation/store"
)

// TestTokenFlow: sign-ins are audited; a changed password ends the user's
// tokens; English messages on request.
func TestTokenFlow(t *testing.T) {
	e := newAdmEnv(t)
	pair := e.login("ta1")
	steps := []struct {
		name    string
		method  string
		path    string
		body    string
		headers map[string]string
		status  int
		answer  string
	}{
		{"wrong password", "POST", "/api/v1/auth/token/", `{"username":"ta1","password":"wrong one"}`, nil, 401,
			`{"detail":"找不到指定凭据对应的有效用户。"}`},
		{"wrong password in English", "POST", "/api/v1/auth/token/", `{"username":"ta1","password":"wrong one"}`,
			map[string]string{"Accept-Language": "en"}, 401, `{"detail":"No active account found with the given credentials."}`},
		{"unknown user", "POST", "/api/v1/auth/token/", `{"username":"nobody","password":"wrong one"}`, nil, 401,
			`{"detail":"找不到指定凭据对应的有效用户。"}`},
		{"missing fields", "POST", "/api/v1/auth/token/", `{"username":""}`, nil, 400,
			`{"password":["该字段是必填项。"],"username":["该字段不能为空。"]}`},
		{"unknown field", "POST", "/api/v1/auth/token/", `{"user":"x"}`, nil, 400, `{"user":["未知字段。"]}`},
		{"not JSON", "POST", "/api/v1/auth/token/", `username=x`, map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415,
			`{"detail":"不支持请求中的媒体类型 “application/x-www-form-urlencoded”。"}`},
		{"refresh works", "POST", "/api/v1/auth/token/refresh/", `{"refresh":"` + pair.Refresh + `"}`, nil, 200, ""},
		{"access works", "GET", "/api/v1/licenses/admin/machine-bindings/", "", bearer(pair.Access), 200, ""},
		{"password changed by a super-admin", "POST", "/api/v1/admin/users/ta1/set-password/", `{"password":"a new password"}`,
			bearer(e.login("root").Access), 200, `{"success":true,"message":"密码已修改"}`},
		{"old refresh token refused", "POST", "/api/v1/auth/token/refresh/", `{"refresh":"` + pair.Refresh + `"}`, nil, 401,
			`{"detail":"认证令牌无效或已过期。"}`},
		{"old access token refused", "GET", "/api/v1/licenses/admin/machine-bindings/", "", bearer(pair.Access), 401,
			`{"detail":"认证令牌无效或已过期。"}`},
		{"no token in English", "GET", "/api/v1/licenses/admin/machine-bindings/", "", map[string]string{"Accept-Language": "en-GB"}, 401,
			`{"detail":"Authentication credentials were not provided."}`},
		{"other scheme", "GET", "/api/v1/licenses/admin/machine-bindings/", "", map[string]string{"Authorization": "Basic eDp5"}, 401,
			`{"detail":"未提供认证凭据。"}`},
		{"bad X-Tenant-ID", "GET", "/api/v1/licenses/admin/machine-bindings/", "",
			map[string]string{"Authorization": "Bearer " + e.login("root").Access, "X-Tenant-ID": "abc"}, 400, `{"X-Tenant-ID":["请填写合法的整数值。"]}`},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			r := e.do(s.method, s.path, s.body, s.headers)
			if r.status != s.status || (s.answer != "" && strings.TrimSpace(string(r.body)) != s.answer) {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, s.status, s.answer)
			}
		})
	}
	es, _, err := e.st.AuditEntries(admCtx, store.AuditFilter{Actor: "ta1", Action: store.AuditSignIn})
	if err != nil || len(es) != 1 || es[0].IP != "127.0.0.1" || es[0].Tenant != 1 {
		t.Fatalf("sign-in entries %+v %v", es, err)
	}
	fails, _, _ := e.st.AuditEntries(admCtx, store.AuditFilter{Action: store.AuditSignInFailed})
	if len(fails) != 3 {
		t.Errorf("%d failed sign-ins audited, want 3", len(fails))
	}
}

// TestReportsExportStatsAudit: the supervisor's reports, the CSV export (a
// key only as its preview), stats, and the audit list scoped to a tenant.
func TestReportsExportStatsAudit(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	ta2 := bearer(e.login("ta2").Access)

	var page struct {
		Count   int               `json:"count"`
		Results []store.ReportRow `json:"results"`
	}
	r := e.do("GET", "/api/v1/admin/reports/?status=success", "", ta2)
	if err := json.Unmarshal(r.body, &page); err != nil || page.Count != 3 {
		t.Fatalf("tenant 2 reports: %d %s", r.status, r.body)
	}
	r = e.do("GET", "/api/v1/admin/reports/?machine="+e.machines[0].SN, "", root)
	json.Unmarshal(r.body, &page)
	if page.Count != 1 || page.Results[0].MachineID != e.machines[0].ID() {
		t.Fatalf("by machine: %s", r.body)
	}

	r = e.do("GET", "/api/v1/admin/reports/export/", "", root)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
		t.Fatalf("export %d %s", r.status, r.header)
	}
	recs, err := csv.NewReader(strings.NewReader(string(r.body))).ReadAll()
	if err != nil || len(recs) != 1+9 {
		t.Fatalf("export rows %d: %v", len(recs), err)
	}
	if strings.Join(recs[0], ",") != strings.Join(store.ActivationsHeader, ",") {
		t.Errorf("header %v", recs[0])
	}
	for _, rec := range recs[1:] {
		ki, err := e.st.KeyByID(admCtx, mustKeyID(t, rec[0]))
		if err != nil {
			t.Fatal(err)
		}
		if rec[1] != ki.Preview || len(rec[1]) != 13 || rec[3] == "" || rec[6] == "" {
			t.Errorf("export row %v", rec)
		}
	}

	var st store.Stats
	r = e.do("GET", "/api/v1/admin/stats/", "", root)
	if err := json.Unmarshal(r.body, &st); err != nil || st.Reports != 9 || st.Successes != 9 || st.SuccessRate != 1 || len(st.ActivationsPerHour) == 0 {
		t.Fatalf("stats %s", r.body)
	}

	// Audit entries about tenant 1 stay hidden from the tenant-2 admin.
	if r := e.do("POST", "/api/v1/licenses/admin/machine-bindings/"+itoa(e.bind1[0])+"/block/", `{}`, root); r.status != 200 {
		t.Fatal(r.status)
	}
	var audit struct {
		Count   int                `json:"count"`
		Results []store.AuditEntry `json:"results"`
	}
	r = e.do("GET", "/api/v1/admin/audit-log/?action=machine_binding.block", "", ta2)
	json.Unmarshal(r.body, &audit)
	if audit.Count != 0 {
		t.Errorf("tenant-2 admin sees %d tenant-1 blocks", audit.Count)
	}
	r = e.do("GET", "/api/v1/admin/audit-log/?action=machine_binding.block", "", root)
	json.Unmarshal(r.body, &audit)
	if audit.Count != 1 || audit.Results[0].Actor != "root" {
		t.Errorf("super-admin audit %s", r.body)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func mustKeyID(t *testing.T, s string) keystation.KeyID {
	t.Helper()
	id, err := keystation.ParseKeyID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
