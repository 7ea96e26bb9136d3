package api_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/store"
)

type bindingList struct {
	Count    int              `json:"count"`
	Next     *string          `json:"next"`
	Previous *string          `json:"previous"`
	Results  []map[string]any `json:"results"`
}

func (e *admEnv) list(t *testing.T, query string, headers map[string]string) (admResp, bindingList) {
	t.Helper()
	r := e.do("GET", "/api/v1/licenses/admin/machine-bindings/"+query, "", headers)
	var l bindingList
	if r.status == 200 {
		if err := json.Unmarshal(r.body, &l); err != nil {
			t.Fatalf("%s: %v", r.body, err)
		}
	}
	return r, l
}

func resultIDs(l bindingList) []int64 {
	var ids []int64
	for _, r := range l.Results {
		ids = append(ids, int64(r["id"].(float64)))
	}
	return ids
}

// TestMachineBindingsListParams covers every query parameter of seed 001's
// list, including the error bodies.
func TestMachineBindingsListParams(t *testing.T) {
	e := newAdmEnv(t)
	// Distinct ages: binding i of tenant 1 was first seen i days after the
	// first, last seen i hours before now; bind1[5] has not been seen for 40 days.
	now := time.Now()
	all := append(append([]int64{}, e.bind1...), e.bind2...)
	for i, id := range all {
		first := now.Add(-60*24*time.Hour + time.Duration(i)*24*time.Hour)
		last := now.Add(-time.Duration(i+1) * time.Hour)
		if id == e.bind1[5] {
			last = now.Add(-40 * 24 * time.Hour)
		}
		if err := e.st.SetMachineSeen(admCtx, id, first, last); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.st.BlockMachineBinding(admCtx, 0, e.bind1[4], "", store.AuditBy{User: "test"}); err != nil {
		t.Fatal(err)
	}
	root := bearer(e.login("root").Access)
	ta2 := bearer(e.login("ta2").Access)
	base := e.srv.URL + "/api/v1/licenses/admin/machine-bindings/"
	byLastDesc := []int64{all[0], all[1], all[2], all[3], all[4], all[6], all[7], all[8], all[5]}
	byFirst := slices.Clone(all)

	cases := []struct {
		name    string
		query   string
		headers map[string]string
		status  int
		body    string  // exact body for errors
		count   int     // for 200
		ids     []int64 // expected order of ids, when given
		next    string
		prev    string
	}{
		{name: "defaults", query: "", status: 200, count: 9, ids: byLastDesc},
		{name: "tenant-admin sees own tenant", query: "", headers: ta2, status: 200, count: 3, ids: e.bind2},
		{name: "super-admin X-Tenant-ID", query: "", headers: map[string]string{"Authorization": root["Authorization"], "X-Tenant-ID": "1"}, status: 200, count: 6},
		{name: "page_size 2 first page", query: "?page_size=2", status: 200, count: 9, ids: byLastDesc[:2], next: base + "?page=2&page_size=2"},
		{name: "page 2 previous drops page", query: "?page=2&page_size=2", status: 200, count: 9, ids: byLastDesc[2:4],
			next: base + "?page=3&page_size=2", prev: base + "?page_size=2"},
		{name: "last page", query: "?page=5&page_size=2", status: 200, count: 9, ids: byLastDesc[8:], prev: base + "?page=4&page_size=2"},
		{name: "page past the end", query: "?page=6&page_size=2", status: 404, body: `{"detail":"无效页面。"}`},
		{name: "page 0", query: "?page=0", status: 400, body: `{"page":["确保该值大于或等于 1。"]}`},
		{name: "page negative", query: "?page=-3", status: 400, body: `{"page":["确保该值大于或等于 1。"]}`},
		{name: "page not a number", query: "?page=abc", status: 400, body: `{"page":["请填写合法的整数值。"]}`},
		{name: "page_size 0", query: "?page_size=0", status: 400, body: `{"page_size":["确保该值大于或等于 1。"]}`},
		{name: "page_size not a number", query: "?page_size=x", status: 400, body: `{"page_size":["请填写合法的整数值。"]}`},
		{name: "page_size over 100 is capped", query: "?page_size=1000", status: 200, count: 9},
		{name: "status active", query: "?status=active", status: 200, count: 7},
		{name: "status inactive", query: "?status=inactive", status: 200, count: 1, ids: []int64{e.bind1[5]}},
		{name: "status blocked", query: "?status=blocked", status: 200, count: 1, ids: []int64{e.bind1[4]}},
		{name: "status invalid", query: "?status=abc", status: 400, body: `{"status":["选择一个有效的选项。abc 不在可用选项中。"]}`},
		{name: "seed example: status and page", query: "?status=abc&page=0", status: 400,
			body: `{"page":["确保该值大于或等于 1。"],"status":["选择一个有效的选项。abc 不在可用选项中。"]}`},
		{name: "status invalid in English", query: "?status=abc",
			headers: map[string]string{"Authorization": root["Authorization"], "Accept-Language": "en-US,en;q=0.9,zh;q=0.5"},
			status:  400, body: `{"status":["Select a valid choice. abc is not one of the available choices."]}`},
		{name: "license", query: "?license=" + e.keys1[2].String(), status: 200, count: 1, ids: []int64{e.bind1[2]}},
		{name: "license and status", query: "?license=" + e.keys1[2].String() + "&status=blocked", status: 200, count: 0},
		{name: "license unknown", query: "?license=1234567890123", status: 200, count: 0},
		{name: "license of another tenant for a tenant-admin", query: "?license=" + e.keys1[0].String(), headers: ta2, status: 200, count: 0},
		{name: "license not a number", query: "?license=abc", status: 400, body: `{"license":["请填写合法的整数值。"]}`},
		{name: "search whole machine id", query: "?search=" + url.QueryEscape(e.machines[0].ID()), status: 200, count: 1, ids: []int64{e.bind1[0]}},
		{name: "search machine id any case", query: "?search=" + url.QueryEscape(strings.ToLower(e.machines[1].ID())), status: 200, count: 1, ids: []int64{e.bind1[1]}},
		{name: "search serial number", query: "?search=t1sn0003", status: 200, count: 1, ids: []int64{e.bind1[3]}},
		{name: "search model prefix", query: "?search=OptiPlex", status: 200, count: 3},
		{name: "search model part", query: "?search=m70", status: 200, count: 3},
		{name: "search model within a tenant", query: "?search=OptiPlex", headers: ta2, status: 200, count: 1, ids: []int64{e.bind2[1]}},
		{name: "search model and status", query: "?search=OptiPlex&status=active", status: 200, count: 2},
		{name: "search part of a serial finds nothing", query: "?search=T1SN", status: 200, count: 0},
		{name: "search no match", query: "?search=DESKTOP-ABC", status: 200, count: 0},
		{name: "search too long", query: "?search=" + strings.Repeat("x", 261), status: 400, body: `{"search":["该字段不能超过260个字符。"]}`},
		{name: "ordering default is -last_seen_at", query: "?ordering=-last_seen_at", status: 200, count: 9, ids: byLastDesc},
		{name: "ordering last_seen_at", query: "?ordering=last_seen_at", status: 200, count: 9, ids: reversed(byLastDesc)},
		{name: "ordering first_seen_at", query: "?ordering=first_seen_at", status: 200, count: 9, ids: byFirst},
		{name: "ordering -first_seen_at", query: "?ordering=-first_seen_at", status: 200, count: 9, ids: reversed(byFirst)},
		{name: "ordering -first_seen_at with search", query: "?ordering=-first_seen_at&search=ThinkCentre", status: 200, count: 3,
			ids: []int64{all[6], all[3], all[0]}},
		{name: "ordering unknown", query: "?ordering=machine_id", status: 400, body: `{"ordering":["选择一个有效的选项。machine_id 不在可用选项中。"]}`},
		{name: "every error at once", query: "?page=0&page_size=a&status=x&ordering=y&license=z", status: 400,
			body: `{"license":["请填写合法的整数值。"],"ordering":["选择一个有效的选项。y 不在可用选项中。"],"page":["确保该值大于或等于 1。"],"page_size":["请填写合法的整数值。"],"status":["选择一个有效的选项。x 不在可用选项中。"]}`},
		{name: "unknown parameters are ignored", query: "?foo=bar", status: 200, count: 9},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.headers
			if h == nil {
				h = root
			}
			r, l := e.list(t, c.query, h)
			if r.status != c.status {
				t.Fatalf("status %d, want %d: %s", r.status, c.status, r.body)
			}
			if c.body != "" {
				if got := strings.TrimSpace(string(r.body)); got != c.body {
					t.Fatalf("body\n got %s\nwant %s", got, c.body)
				}
				return
			}
			if l.Count != c.count {
				t.Errorf("count %d, want %d", l.Count, c.count)
			}
			if c.ids != nil && !slices.Equal(resultIDs(l), c.ids) {
				t.Errorf("ids %v, want %v", resultIDs(l), c.ids)
			}
			if got := deref(l.Next); got != c.next && (c.next != "" || got != "") {
				t.Errorf("next %q, want %q", got, c.next)
			}
			if got := deref(l.Previous); got != c.prev {
				t.Errorf("previous %q, want %q", got, c.prev)
			}
		})
	}
}

func reversed(ids []int64) []int64 {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

var previewRE = regexp.MustCompile(`^[` + keystation.KeyAlphabet + `]{5}\.\.\.[` + keystation.KeyAlphabet + `]{5}$`)

// TestMachineBindingShapes checks the seed's list and detail fields.
func TestMachineBindingShapes(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	_, l := e.list(t, "?search="+url.QueryEscape(e.machines[0].ID()), root)
	if len(l.Results) != 1 {
		t.Fatalf("results %v", l.Results)
	}
	item := l.Results[0]
	wantKeys := []string{"days_since_last_seen", "first_seen_at", "hardware_summary", "id", "last_ip_address", "last_seen_at",
		"license", "license_key_preview", "machine_id", "os_info", "status"}
	if got := sortedMapKeys(item); !slices.Equal(got, wantKeys) {
		t.Errorf("list item keys %v, want %v", got, wantKeys)
	}
	if got := sortedMapKeys(item["hardware_summary"].(map[string]any)); !slices.Equal(got, []string{"cpu", "disk", "memory", "motherboard"}) {
		t.Errorf("list hardware_summary keys %v", got)
	}
	if item["machine_id"] != e.machines[0].ID() || item["status"] != "active" || item["last_ip_address"] != "10.0.0.9" {
		t.Errorf("item %v", item)
	}
	if int64(item["license"].(float64)) != int64(e.keys1[0]) {
		t.Errorf("license %v, want %d", item["license"], e.keys1[0])
	}
	info, err := e.st.KeyByID(admCtx, e.keys1[0])
	if err != nil {
		t.Fatal(err)
	}
	if p := item["license_key_preview"].(string); !previewRE.MatchString(p) || p != info.Preview {
		t.Errorf("preview %q (key preview %q)", p, info.Preview)
	}
	if _, err := time.Parse(time.RFC3339, item["last_seen_at"].(string)); err != nil || !strings.HasSuffix(item["last_seen_at"].(string), "Z") {
		t.Errorf("last_seen_at %v", item["last_seen_at"])
	}
	hs := item["hardware_summary"].(map[string]any)
	if hs["cpu"] != "Intel(R) Core(TM) i5-12400T" || hs["memory"] != "8 GB" || hs["disk"] != "512 GB NVMe" || hs["motherboard"] != "LENOVO 3330" {
		t.Errorf("hardware_summary %v", hs)
	}
	osi := item["os_info"].(map[string]any)
	if osi["name"] != "Microsoft Windows 11 Pro" || osi["version"] != "23H2" || osi["build"] != "22631.3296" || osi["architecture"] != "x64" {
		t.Errorf("os_info %v", osi)
	}

	r := e.do("GET", fmt.Sprintf("/api/v1/licenses/admin/machine-bindings/%d/", e.bind1[0]), "", root)
	if r.status != 200 {
		t.Fatalf("detail %d %s", r.status, r.body)
	}
	d := r.json(t)
	if got := sortedMapKeys(d); !slices.Equal(got, wantKeys) {
		t.Errorf("detail keys %v", got)
	}
	if got := sortedMapKeys(d["hardware_summary"].(map[string]any)); !slices.Equal(got,
		[]string{"bios", "cpu", "disk", "graphics", "memory", "motherboard", "network_adapters"}) {
		t.Errorf("detail hardware_summary keys %v", got)
	}
	if got := sortedMapKeys(d["os_info"].(map[string]any)); !slices.Equal(got, []string{"architecture", "build", "domain",
		"install_date", "language", "last_boot_time", "name", "timezone", "version"}) {
		t.Errorf("detail os_info keys %v", got)
	}
	if d["hardware_summary"].(map[string]any)["bios"] != "LENOVO M3CKT3AA" {
		t.Errorf("bios %v", d["hardware_summary"])
	}
	for _, c := range []struct{ name, path string }{
		{"unknown id", "/api/v1/licenses/admin/machine-bindings/424242/"},
		{"not a number", "/api/v1/licenses/admin/machine-bindings/abc/"},
		{"block unknown id", "/api/v1/licenses/admin/machine-bindings/424242/block/"},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := "GET"
			if strings.HasSuffix(c.path, "/block/") {
				m = "POST"
			}
			r := e.do(m, c.path, "", root)
			if r.status != 404 || strings.TrimSpace(string(r.body)) != `{"detail":"未找到。"}` {
				t.Fatalf("%d %s", r.status, r.body)
			}
		})
	}
	t.Run("not found in English", func(t *testing.T) {
		r := e.do("GET", "/api/v1/licenses/admin/machine-bindings/424242/", "", map[string]string{
			"Authorization": root["Authorization"], "Accept-Language": "en"})
		if strings.TrimSpace(string(r.body)) != `{"detail":"Not found."}` {
			t.Fatalf("%s", r.body)
		}
	})
}

func sortedMapKeys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestBlockMachineBinding: the reason's default and limit, the seed's
// answer, the audit entry (who, when, IP, which machine, why), and that the
// machine gets no key any more.
func TestBlockMachineBinding(t *testing.T) {
	e := newAdmEnv(t)
	root := bearer(e.login("root").Access)
	path := func(id int64) string { return fmt.Sprintf("/api/v1/licenses/admin/machine-bindings/%d/block/", id) }
	cases := []struct {
		name   string
		id     int64
		body   string
		status int
		answer string
		reason string // in the audit log
	}{
		{"reason over 500 characters", e.bind1[0], `{"reason":"` + strings.Repeat("阻", 501) + `"}`, 400, `{"reason":["该字段不能超过500个字符。"]}`, ""},
		{"unknown field", e.bind1[0], `{"why":"x"}`, 400, `{"why":["未知字段。"]}`, ""},
		{"malformed JSON", e.bind1[0], `{"reason":`, 400, `{"detail":"JSON 解析错误。"}`, ""},
		{"reason of 500 characters", e.bind1[0], `{"reason":"` + strings.Repeat("阻", 500) + `"}`, 200, `{"success":true,"message":"机器绑定已阻止"}`, strings.Repeat("阻", 500)},
		{"default reason for {}", e.bind1[1], `{}`, 200, `{"success":true,"message":"机器绑定已阻止"}`, "管理员阻止"},
		{"default reason for no body", e.bind1[2], ``, 200, `{"success":true,"message":"机器绑定已阻止"}`, "管理员阻止"},
		{"given reason", e.bind1[3], `{"reason":"发现可疑活动，违反许可证使用条款"}`, 200, `{"success":true,"message":"机器绑定已阻止"}`, "发现可疑活动，违反许可证使用条款"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("POST", path(c.id), c.body, root)
			if r.status != c.status || strings.TrimSpace(string(r.body)) != c.answer {
				t.Fatalf("%d %s, want %d %s", r.status, r.body, c.status, c.answer)
			}
			if c.status != 200 {
				return
			}
			entries, _, err := e.st.AuditEntries(admCtx, store.AuditFilter{Action: store.AuditBindingBlock, ObjectID: fmt.Sprint(c.id)})
			if err != nil || len(entries) == 0 {
				t.Fatalf("no audit entry: %v", err)
			}
			a := entries[0]
			var d map[string]any
			json.Unmarshal(a.Detail, &d)
			if a.Actor != "root" || a.ActorRole != store.RoleSuperAdmin || a.IP != "127.0.0.1" || a.Via != store.ViaAPI ||
				d["reason"] != c.reason || d["machine_fingerprint"] == "" || a.At == "" {
				t.Errorf("audit entry %+v detail %v", a, d)
			}
			b := e.do("GET", fmt.Sprintf("/api/v1/licenses/admin/machine-bindings/%d/", c.id), "", root).json(t)
			if b["status"] != "blocked" {
				t.Errorf("status %v", b["status"])
			}
		})
	}
	t.Run("blocked machine gets no key", func(t *testing.T) {
		m := e.machines[1]
		r := e.do("POST", "/api/v1/keys/acquire", `{"username":"op","password":"`+admPassword+`","sn":"`+m.SN+`","model":"`+m.Model+`","osVersion":"Windows 11 Pro"}`, nil)
		if r.status != 403 || !strings.Contains(string(r.body), keystation.EMACHINEBLOCKED) {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("audit chain verifies", func(t *testing.T) {
		c, err := e.st.VerifyAudit(admCtx)
		if err != nil || !c.OK {
			t.Fatalf("%+v %v", c, err)
		}
	})
}
