package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"keystation"
	"keystation/api"
)

// oaDoc is the OpenAPI document with a small JSON-schema checker: $ref,
// type (with nullable), enum, required, properties (closed: a property the
// document does not declare is an error, so answers cannot grow silently),
// additionalProperties, items, oneOf, pattern, minimum.
type oaDoc struct {
	raw   map[string]any
	paths map[string]any
}

func loadOpenAPI(t *testing.T, data []byte) *oaDoc {
	t.Helper()
	var raw map[string]any
	if err := json.Unmarshal(data, &raw); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if raw["openapi"] != "3.0.3" {
		t.Fatalf("openapi version %v", raw["openapi"])
	}
	return &oaDoc{raw: raw, paths: raw["paths"].(map[string]any)}
}

// template finds the documented path template matching a concrete path.
func (d *oaDoc) template(path string) (string, bool) {
	path, _, _ = strings.Cut(path, "?")
	for tmpl := range d.paths {
		re := "^" + regexp.MustCompile(`\\\{[^}]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$"
		if regexp.MustCompile(re).MatchString(path) {
			return tmpl, true
		}
	}
	return "", false
}

func (d *oaDoc) resolve(s map[string]any) map[string]any {
	for {
		r, ok := s["$ref"].(string)
		if !ok {
			return s
		}
		name := strings.TrimPrefix(r, "#/components/schemas/")
		s = d.raw["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
	}
}

// check validates v against schema s and returns the problems found.
func (d *oaDoc) check(s map[string]any, v any, at string) []string {
	s = d.resolve(s)
	if v == nil {
		if s["nullable"] == true || len(s) == 0 {
			return nil
		}
		if _, typed := s["type"]; !typed && s["oneOf"] == nil {
			return nil
		}
		return []string{at + ": null but not nullable"}
	}
	if one, ok := s["oneOf"].([]any); ok {
		for _, o := range one {
			if len(d.check(o.(map[string]any), v, at)) == 0 {
				return nil
			}
		}
		return []string{at + ": matches none of oneOf"}
	}
	var errs []string
	if enum, ok := s["enum"].([]any); ok {
		found := false
		for _, e := range enum {
			if e == v {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Sprintf("%s: %v not in %v", at, v, enum))
		}
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want an object, got %T", at, v))
		}
		props, _ := s["properties"].(map[string]any)
		for _, r := range asList(s["required"]) {
			if _, ok := m[r]; !ok {
				errs = append(errs, at+": missing required "+r)
			}
		}
		for k, val := range m {
			if ps, ok := props[k]; ok {
				errs = append(errs, d.check(ps.(map[string]any), val, at+"."+k)...)
				continue
			}
			switch ap := s["additionalProperties"].(type) {
			case map[string]any:
				errs = append(errs, d.check(ap, val, at+"."+k)...)
			case nil:
				if props != nil {
					errs = append(errs, at+": undocumented property "+k)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want an array, got %T", at, v))
		}
		if it, ok := s["items"].(map[string]any); ok {
			for i, e := range a {
				errs = append(errs, d.check(it, e, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want a string, got %T", at, v))
		}
		if p, ok := s["pattern"].(string); ok && !regexp.MustCompile(p).MatchString(str) {
			errs = append(errs, fmt.Sprintf("%s: %q does not match %s", at, str, p))
		}
	case "integer", "number":
		f, ok := v.(float64)
		if !ok {
			return append(errs, fmt.Sprintf("%s: want a number, got %T", at, v))
		}
		if s["type"] == "integer" && f != math.Trunc(f) {
			errs = append(errs, fmt.Sprintf("%s: %v is not an integer", at, f))
		}
		if m, ok := s["minimum"].(float64); ok && f < m {
			errs = append(errs, fmt.Sprintf("%s: %v below minimum %v", at, f, m))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			errs = append(errs, fmt.Sprintf("%s: want a boolean, got %T", at, v))
		}
	}
	return errs
}

func asList(v any) []string {
	var out []string
	for _, x := range asAny(v) {
		out = append(out, x.(string))
	}
	return out
}

func asAny(v any) []any { a, _ := v.([]any); return a }

// checkAnswer validates a real answer against the documented response.
func (d *oaDoc) checkAnswer(t *testing.T, method, path string, r admResp) {
	t.Helper()
	tmpl, ok := d.template(path)
	if !ok {
		t.Errorf("%s %s: path not documented", method, path)
		return
	}
	op, ok := d.paths[tmpl].(map[string]any)[strings.ToLower(method)].(map[string]any)
	if !ok {
		t.Errorf("%s %s: method not documented", method, tmpl)
		return
	}
	resp, ok := op["responses"].(map[string]any)[strconv.Itoa(r.status)].(map[string]any)
	if !ok {
		t.Errorf("%s %s: status %d not documented (%s)", method, tmpl, r.status, r.body)
		return
	}
	content, _ := resp["content"].(map[string]any)
	ct := r.header.Get("Content-Type")
	if strings.HasPrefix(ct, "application/json") {
		js, ok := content["application/json"].(map[string]any)
		if !ok {
			t.Errorf("%s %s %d: JSON answer, none documented", method, tmpl, r.status)
			return
		}
		var v any
		if err := json.Unmarshal(r.body, &v); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return
		}
		if errs := d.check(js["schema"].(map[string]any), v, "body"); len(errs) > 0 {
			t.Errorf("%s %s %d does not match the document:\n  %s\n  body %s", method, path, r.status, strings.Join(errs, "\n  "), r.body)
		}
		return
	}
	mt, _, _ := strings.Cut(ct, ";")
	if _, ok := content[mt]; !ok {
		t.Errorf("%s %s %d: content type %q not documented", method, tmpl, r.status, ct)
	}
}

// TestOpenAPIMatchesAnswers sends real requests to every documented
// endpoint (successes and the errors the document names) and checks each
// answer against the document; every documented path must be served.
func TestOpenAPIMatchesAnswers(t *testing.T) {
	e := newAdmEnv(t)
	served := e.do("GET", "/api/v1/openapi.json", "", nil)
	if served.status != 200 || string(served.body) != string(api.OpenAPI()) {
		t.Fatalf("GET /api/v1/openapi.json: %d", served.status)
	}
	doc := loadOpenAPI(t, served.body)
	pair := e.login("root")
	root := bearer(pair.Access)
	ta2 := bearer(e.login("ta2").Access)
	op := bearer(e.login("op").Access)
	en := map[string]string{"Authorization": root["Authorization"], "Accept-Language": "en"}
	b1 := fmt.Sprint(e.bind1[0])
	k1 := e.keys1[0].String()
	failed := e.assigned(1)
	seen := map[string]bool{}
	type call struct {
		method, path, body string
		headers            map[string]string
		status             int
	}
	calls := []call{
		{"GET", "/healthz", "", nil, 200},
		{"POST", "/api/v1/keys/acquire", `{"username":"op","password":"` + admPassword + `","sn":"OA1","model":"PC","osVersion":"Windows 11 Home"}`, nil, 200},
		{"POST", "/api/v1/keys/acquire", `{"username":"op"}`, nil, 400},
		{"POST", "/api/v1/keys/acquire", `{"username":"op","password":"bad password","sn":"OA1","model":"PC","osVersion":"Windows 11 Home"}`, nil, 401},
		{"POST", "/api/v1/keys/acquire", `{"username":"ta2","password":"` + admPassword + `","sn":"OA1","model":"PC","osVersion":"Windows 11 Home"}`, nil, 403},
		{"POST", "/api/v1/keys/acquire", `{"username":"op","password":"` + admPassword + `","sn":"OA1","model":"PC","osVersion":"Windows 11 Pro"}`, nil, 409},
		{"POST", "/api/v1/keys/acquire", `{"username":"op","password":"` + admPassword + `","sn":"OA2","model":"PC","osVersion":"Linux"}`, nil, 422},
		{"POST", "/api/v1/keys/report", `{"username":"op","password":"` + admPassword + `","keyId":"1234567890123","sn":"OA9","model":"PC","osVersion":"Windows 11 Home","resultStatus":false,"resultMessage":"x"}`, nil, 409},
		{"POST", "/api/v1/auth/token/", `{"username":"root","password":"` + admPassword + `"}`, nil, 200},
		{"POST", "/api/v1/auth/token/", `{"username":"root","password":"nope nope"}`, nil, 401},
		{"POST", "/api/v1/auth/token/", `{}`, nil, 400},
		{"POST", "/api/v1/auth/token/refresh/", `{"refresh":"` + pair.Refresh + `"}`, nil, 200},
		{"POST", "/api/v1/auth/token/refresh/", `{"refresh":"` + pair.Access + `"}`, nil, 401},
		{"POST", "/api/v1/auth/token/refresh/", `{}`, nil, 400},
		{"GET", "/api/v1/licenses/admin/machine-bindings/?page_size=2", "", root, 200},
		{"GET", "/api/v1/licenses/admin/machine-bindings/?status=abc&page=0", "", root, 400},
		{"GET", "/api/v1/licenses/admin/machine-bindings/", "", nil, 401},
		{"GET", "/api/v1/licenses/admin/machine-bindings/", "", op, 403},
		{"GET", "/api/v1/licenses/admin/machine-bindings/?page=99", "", root, 404},
		{"GET", "/api/v1/licenses/admin/machine-bindings/" + b1 + "/", "", root, 200},
		{"GET", "/api/v1/licenses/admin/machine-bindings/" + b1 + "/", "", ta2, 404},
		{"POST", "/api/v1/licenses/admin/machine-bindings/" + b1 + "/block/", `{"reason":"` + strings.Repeat("x", 501) + `"}`, root, 400},
		{"POST", "/api/v1/licenses/admin/machine-bindings/" + b1 + "/block/", `{}`, en, 200},
		{"GET", "/api/v1/admin/pools/", "", root, 200},
		{"POST", "/api/v1/admin/pools/", `{"slug":"education","name":"Education","patterns":["education"],"low_stock":5}`, root, 201},
		{"POST", "/api/v1/admin/pools/", `{"slug":"education","name":"Education","patterns":["education"]}`, root, 409},
		{"POST", "/api/v1/admin/pools/", `{"slug":"Bad Slug","name":"","patterns":[]}`, root, 400},
		{"PATCH", "/api/v1/admin/pools/home/", `{"low_stock":100}`, root, 200},
		{"PATCH", "/api/v1/admin/pools/home/", `{"low_stock":-1}`, root, 400},
		{"GET", "/api/v1/admin/keys/" + k1 + "/", "", root, 200},
		{"POST", "/api/v1/admin/keys/" + failed.String() + "/return/", `{}`, root, 400},
		{"POST", "/api/v1/admin/keys/" + failed.String() + "/return/", `{"reason":"unused"}`, root, 200},
		{"POST", "/api/v1/admin/keys/" + k1 + "/revoke/", `{"reason":"leaked"}`, root, 200},
		{"POST", "/api/v1/admin/keys/" + k1 + "/revoke/", `{}`, root, 409},
		{"GET", "/api/v1/admin/reports/?status=success", "", root, 200},
		{"GET", "/api/v1/admin/reports/?since=yesterday", "", root, 400},
		{"GET", "/api/v1/admin/reports/export/", "", root, 200},
		{"GET", "/api/v1/admin/stats/", "", root, 200},
		{"GET", "/api/v1/admin/audit-log/?page_size=5", "", root, 200},
		{"GET", "/api/v1/admin/audit-log/verify/", "", root, 200},
		{"GET", "/api/v1/admin/audit-log/verify/", "", ta2, 403},
		{"GET", "/api/v1/admin/users/", "", root, 200},
		{"POST", "/api/v1/admin/users/", `{"username":"newop","password":"long enough","role":"operator"}`, root, 201},
		{"POST", "/api/v1/admin/users/", `{"username":"newop","password":"long enough","role":"operator"}`, root, 409},
		{"POST", "/api/v1/admin/users/", `{"username":"x","password":"short","role":"boss"}`, root, 400},
		{"POST", "/api/v1/admin/users/newop/disable/", "", root, 200},
		{"POST", "/api/v1/admin/users/root/disable/", "", root, 400},
		{"POST", "/api/v1/admin/users/newop/enable/", "", root, 200},
		{"POST", "/api/v1/admin/users/newop/set-password/", `{"password":"another long one"}`, root, 200},
		{"POST", "/api/v1/admin/users/newop/set-password/", `{"password":"x"}`, root, 400},
		{"GET", "/api/v1/admin/tenants/", "", root, 200},
		{"POST", "/api/v1/admin/tenants/", `{"name":"third"}`, root, 201},
		{"POST", "/api/v1/admin/tenants/", `{"name":"third"}`, root, 409},
		{"POST", "/api/v1/admin/tenants/", `{}`, root, 400},
	}
	exercise := func(c call) admResp {
		t.Helper()
		r := e.do(c.method, c.path, c.body, c.headers)
		if r.status != c.status {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, r.status, c.status, r.body)
			return r
		}
		doc.checkAnswer(t, c.method, c.path, r)
		tmpl, _ := doc.template(c.path)
		seen[c.method+" "+tmpl] = true
		return r
	}
	for _, c := range calls {
		exercise(c)
	}

	// Stations: an enrolment token, enrolment, the sync protocol (online and
	// by USB file), operator sign-in, and the station admin endpoints.
	tokAnswer := exercise(call{"POST", "/api/v1/admin/enrol-tokens/", `{"name":"line","uses":2,"ttl_seconds":3600}`, root, 201})
	if tokAnswer.status != 201 {
		t.Fatal("no enrolment token")
	}
	tok, _ := tokAnswer.json(t)["token"].(string)
	enrol := exercise(call{"POST", "/api/v1/stations/enrol", `{"token":"` + tok + `","name":"line-1","hostname":"LINE-1"}`, nil, 200})
	var enrolled keystation.EnrolResponse
	if enrol.status == 200 {
		enrol.envelope(t, &enrolled)
	}
	if enrolled.Credential == "" {
		t.Fatal("no station credential")
	}
	cred := bearer(enrolled.Credential)
	sid := enrolled.StationID
	file := func(forge bool) string { return syncFile(t, enrolled.Credential, forge, keystation.SyncRequest{}) }
	stationCalls := []call{
		{"POST", "/api/v1/admin/enrol-tokens/", `{"uses":0,"ttl_seconds":1}`, root, 400},
		{"POST", "/api/v1/admin/enrol-tokens/", `uses=1`, root, 400},
		{"POST", "/api/v1/admin/enrol-tokens/", `{}`, map[string]string{"Authorization": root["Authorization"], "Content-Type": "text/plain"}, 415},
		{"POST", "/api/v1/admin/enrol-tokens/", `{}`, nil, 401},
		{"POST", "/api/v1/admin/enrol-tokens/", `{}`, cred, 401},
		{"POST", "/api/v1/admin/enrol-tokens/", `{}`, op, 403},
		{"POST", "/api/v1/admin/enrol-tokens/", `{}`, map[string]string{"Authorization": root["Authorization"], "X-Tenant-ID": "99"}, 404},
		{"POST", "/api/v1/stations/enrol", `{"name":"x"}`, nil, 400},
		{"POST", "/api/v1/stations/enrol", `{"token":"ks-enrol-unknown","name":"x"}`, nil, 401},
		{"POST", "/api/v1/stations/enrol", `{"token":"` + strings.Repeat("x", 70<<10) + `"}`, nil, 413},
		{"POST", "/api/v1/sync", `{"stationTime":"2025-03-01T08:00:00Z","targets":{"home":2,"pro":1},"backlog":3}`, cred, 200},
		{"POST", "/api/v1/sync", `{"reports":[{"id":"not a uuid","keyId":1}],"acks":[],"holding":[]}`, cred, 200},
		{"POST", "/api/v1/sync", `{"targets":{"home":-1}}`, cred, 400},
		{"POST", "/api/v1/sync", `{}`, nil, 401},
		{"POST", "/api/v1/sync", `{}`, root, 401},
		{"GET", "/api/v1/sync/reconciliation", "", cred, 200},
		{"GET", "/api/v1/sync/reconciliation", "", root, 401},
		{"POST", "/api/v1/sync/file", file(false), nil, 200},
		{"POST", "/api/v1/sync/file", `{}`, nil, 400},
		{"POST", "/api/v1/sync/file", file(true), nil, 401},
		{"POST", "/api/v1/sync/signin", `{"username":"op","password":"` + admPassword + `"}`, cred, 200},
		{"POST", "/api/v1/sync/signin", `{"username":"op"}`, cred, 400},
		{"POST", "/api/v1/sync/signin", `{"username":"op","password":"wrong password"}`, cred, 401},
		{"POST", "/api/v1/sync/signin", `{"username":"ta2","password":"` + admPassword + `"}`, cred, 403},
		{"GET", "/api/v1/admin/stations/", "", root, 200},
		{"GET", "/api/v1/admin/stations/?page_size=1&page=2", "", root, 404},
		{"GET", "/api/v1/admin/stations/?page=0", "", root, 400},
		{"GET", "/api/v1/admin/stations/", "", cred, 401},
		{"GET", "/api/v1/admin/stations/", "", op, 403},
		{"GET", fmt.Sprintf("/api/v1/admin/stations/%d/", sid), "", root, 200},
		{"GET", fmt.Sprintf("/api/v1/admin/stations/%d/", sid), "", ta2, 404},
		{"GET", fmt.Sprintf("/api/v1/admin/stations/%d/", sid), "", nil, 401},
		{"GET", fmt.Sprintf("/api/v1/admin/stations/%d/", sid), "", op, 403},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/reclaim/", sid), "", ta2, 404},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/reclaim/", sid), "", op, 403},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/reclaim/", sid), "", cred, 401},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/reclaim/", sid), "", en, 200},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/revoke/", sid), "", ta2, 404},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/revoke/", sid), "", op, 403},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/revoke/", sid), "", cred, 401},
		{"POST", fmt.Sprintf("/api/v1/admin/stations/%d/revoke/", sid), "", root, 200},
		// The revoked station is refused everywhere.
		{"GET", fmt.Sprintf("/api/v1/admin/stations/%d/", sid), "", root, 200},
		{"POST", "/api/v1/sync", `{}`, cred, 403},
		{"GET", "/api/v1/sync/reconciliation", "", cred, 403},
		{"POST", "/api/v1/sync/file", file(false), nil, 403},
		{"POST", "/api/v1/sync/signin", `{"username":"op","password":"` + admPassword + `"}`, cred, 403},
	}
	for _, c := range stationCalls {
		exercise(c)
	}
	for _, c := range []struct{ query string }{{"?edition=home"}, {"?edition=nope"}} {
		r := e.upload("/api/v1/admin/key-imports/"+c.query, root)
		doc.checkAnswer(t, "POST", "/api/v1/admin/key-imports/", r)
		seen["POST /api/v1/admin/key-imports/"] = true
	}
	seen["GET /api/v1/openapi.json"] = true
	var missing []string
	for p, item := range doc.paths {
		for m := range item.(map[string]any) {
			if m == "parameters" {
				continue
			}
			if !seen[strings.ToUpper(m)+" "+p] {
				missing = append(missing, strings.ToUpper(m)+" "+p)
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("documented but not exercised: %v", missing)
	}
}

// TestOpenAPIChecker: the schema checker finds what it must.
func TestOpenAPIChecker(t *testing.T) {
	doc := loadOpenAPI(t, api.OpenAPI())
	binding := map[string]any{"$ref": "#/components/schemas/MachineBinding"}
	good := `{"id":1,"license":1234567890123,"license_key_preview":"ABCDE...FGHJK","machine_id":"m/s",
		"hardware_summary":{"cpu":"c","memory":"m","disk":"d","motherboard":"b"},
		"os_info":{"name":"n","version":"v","architecture":"x64"},"last_ip_address":null,"status":"active",
		"first_seen_at":"2023-10-01T08:30:00Z","last_seen_at":"2023-10-15T14:25:30Z","days_since_last_seen":2}`
	cases := []struct {
		name, edit, want string
	}{
		{"valid", "", ""},
		{"missing field", `"days_since_last_seen":2`, "missing required days_since_last_seen"},
		{"wrong type", `"id":1,`, "want a number"},
		{"bad enum", `"status":"active"`, "not in"},
		{"not nullable", `"machine_id":"m/s"`, "null but not nullable"},
		{"undocumented field", `"status":"active"`, "undocumented property extra"},
		{"not an integer", `"days_since_last_seen":2`, "is not an integer"},
	}
	repl := map[string]string{
		"missing field":      `"x":2`,
		"wrong type":         `"id":"1",`,
		"bad enum":           `"status":"gone"`,
		"not nullable":       `"machine_id":null`,
		"undocumented field": `"status":"active","extra":1`,
		"not an integer":     `"days_since_last_seen":2.5`,
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := good
			if c.edit != "" {
				body = strings.Replace(good, c.edit, repl[c.name], 1)
			}
			var v any
			if err := json.Unmarshal([]byte(body), &v); err != nil {
				t.Fatal(err)
			}
			errs := strings.Join(doc.check(binding, v, "body"), "; ")
			if (c.want == "") != (errs == "") || !strings.Contains(errs, c.want) {
				t.Fatalf("errors %q, want %q", errs, c.want)
			}
		})
	}
}
