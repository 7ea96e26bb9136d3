package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"keystation"
	"keystation/api"
)

// The fuzz targets drive the real handlers over a real store: one server
// per fuzzing process, reused by every input. Whatever the body, the API must
// answer in JSON without a 5xx, and a refused request must change nothing.

// newFuzzEnv is a keyEnv whose limiter never locks (fuzzed passwords are
// mostly wrong) and where machines FUZZ-H-i / FUZZ-P-i hold homeID(i) /
// proID(i) for i < 10.
func newFuzzEnv(f *testing.F) *keyEnv {
	e := newKeyEnv(f, envOptions{keys: 150})
	e.auth.Limiter.MaxFailures = 1 << 30
	for i := range 10 {
		if id, _ := e.acquire(fmt.Sprintf("FUZZ-H-%d", i), osHome); id != homeID(i) {
			f.Fatalf("FUZZ-H-%d got %s", i, id)
		}
		if id, _ := e.acquire(fmt.Sprintf("FUZZ-P-%d", i), osPro); id != proID(i) {
			f.Fatalf("FUZZ-P-%d got %s", i, id)
		}
	}
	return e
}

// quickState is a cheap fingerprint of everything a key request may write.
func (e *keyEnv) quickState() string {
	e.t.Helper()
	pc, err := e.st.PoolCounts(bg, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var b strings.Builder
	for _, p := range pc {
		fmt.Fprintf(&b, "%s %v;", p.Edition, p.States)
	}
	var hist, reports, machines, burnt int
	var lastKey, lastSeen string
	if err := e.raw.QueryRow(`SELECT (SELECT COUNT(*) FROM key_history), (SELECT COUNT(*) FROM reports),
		(SELECT COUNT(*) FROM machines), (SELECT COALESCE(SUM(burnt), 0) FROM machines),
		(SELECT COALESCE(MAX(updated_at), '') FROM product_keys), (SELECT COALESCE(MAX(last_seen_at), '') FROM machines)`).
		Scan(&hist, &reports, &machines, &burnt, &lastKey, &lastSeen); err != nil {
		e.t.Fatal(err)
	}
	fmt.Fprintf(&b, "history %d reports %d machines %d burnt %d key %s seen %s", hist, reports, machines, burnt, lastKey, lastSeen)
	return b.String()
}

// fuzzPost posts data and checks what holds for any body.
func (e *keyEnv) fuzzPost(t *testing.T, path string, data []byte) answer {
	e.t = t
	before := e.quickState()
	a := e.do("POST", path, "application/json", bytes.NewReader(data))
	if a.status >= 500 {
		t.Fatalf("%d for %q: %s", a.status, data, a.raw)
	}
	if a.Code == "" || a.Message == "" && a.status != http.StatusOK {
		t.Fatalf("no code or message: %s", a.raw)
	}
	switch {
	case a.status == http.StatusOK:
		if a.Code == keystation.EOK || len(a.Data) > 0 && string(a.Data) != "null" {
			var d map[string]json.RawMessage
			if err := json.Unmarshal(a.Data, &d); err != nil || len(d) != 2 || d["keyId"] == nil || d["key"] == nil {
				t.Fatalf("200 with data %s", a.Data)
			}
		}
	case a.status >= 400 && a.Failure == nil:
		// Refused, and no failure was recorded: nothing may have changed.
		if after := e.quickState(); after != before {
			t.Fatalf("%d %s changed the database for %q:\nbefore %s\nafter  %s", a.status, a.Code, data, before, after)
		}
	}
	if a.status == http.StatusBadRequest && len(a.Fields) == 0 {
		t.Fatalf("400 naming no field: %s", a.raw)
	}
	return a
}

// acquireMirror has the fields of the acquire body, for api.DecodeStrict.
type acquireMirror struct {
	Username  string `json:"username"`
	Password  string `json:"password"`
	SN        string `json:"sn"`
	Model     string `json:"model"`
	OSVersion string `json:"osVersion"`
}

// reportMirror accepts at least what the report body accepts (keyId and
// memory speed are left raw).
type reportMirror struct {
	Username      string          `json:"username"`
	Password      string          `json:"password"`
	KeyID         json.RawMessage `json:"keyId"`
	SN            string          `json:"sn"`
	Model         string          `json:"model"`
	OSVersion     string          `json:"osVersion"`
	ResultStatus  *bool           `json:"resultStatus"`
	ResultMessage *string         `json:"resultMessage"`
	ResultCode    string          `json:"resultCode"`
	ReportID      string          `json:"reportId"`
	CPU           string          `json:"cpu"`
	Memory        []struct {
		ID           int             `json:"id"`
		Size         uint64          `json:"size"`
		Speed        json.RawMessage `json:"speed"`
		Manufacturer string          `json:"manufacturer"`
	} `json:"memory"`
	Disk []struct {
		ID            int    `json:"id"`
		Size          uint64 `json:"size"`
		InterfaceType string `json:"interfaceType"`
		Model         string `json:"model"`
	} `json:"disk"`
}

// decodeRefusal reports whether an answer is a refusal by the JSON decoder
// (as opposed to a refusal of the decoded values).
func decodeRefusal(a answer) bool {
	if a.status == http.StatusRequestEntityTooLarge {
		return true
	}
	if a.status != http.StatusBadRequest {
		return false
	}
	if _, ok := a.Fields["body"]; ok {
		return true
	}
	for _, v := range a.Fields {
		if v == "unknown field" || strings.HasPrefix(v, "must be ") {
			return true
		}
	}
	return false
}

func FuzzDecodeAcquire(f *testing.F) {
	for _, s := range []string{
		body(acquireBase("a234354564234"), nil),
		body(acquireBase("FUZZ-H-1"), nil),
		body(acquireBase("FUZZ-H-2"), map[string]any{"osVersion": osPro}),
		body(acquireBase("FUZZ-NEW"), map[string]any{"osVersion": "Windows 11 Pro for Workstations"}),
		body(acquireBase("FUZZ-X"), map[string]any{"osVersion": "Windows 11 Enterprise"}),
		body(acquireBase("FUZZ-X"), map[string]any{"password": "wrong-password"}),
		body(acquireBase("FUZZ-X"), map[string]any{"username": "tadmin", "password": "tadmin-password"}),
		body(acquireBase("FUZZ-X"), map[string]any{"sn": 5}),
		body(acquireBase("FUZZ-X"), map[string]any{"extra": []any{1, "x", nil}}),
		`{"username":"moumou","password":"moumou-password","sn":"\u0000","model":"N151","osVersion":"home"}`,
		`{"username":"moumou","password":"moumou-password","sn":"é\ud800","model":"N151","osVersion":"HOME"}`,
		`{"username":"moumou","password":"moumou-password","sn":"a","model":"b","osVersion":"home"} {}`,
		`{"USERNAME":"moumou","Password":"moumou-password","SN":"a","model":"b","osversion":"home","sn":"c"}`,
		`{"credentials":{"username":"moumou"}}`,
		``, `{`, `[]`, `null`, `"x"`, `{"sn":1e999}`, `{"sn":"` + strings.Repeat("x", 300) + `"}`,
	} {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a := e.fuzzPost(t, pathAcquire, data)
		if a.Failure != nil {
			t.Fatalf("an acquire answer with a failure: %s", a.raw)
		}
		var m acquireMirror
		err := api.DecodeStrict(data, &m)
		if err != nil && !decodeRefusal(a) {
			t.Fatalf("DecodeStrict refuses %q (%v) but the handler answered %d %s", data, err, a.status, a.raw)
		}
		if err == nil && decodeRefusal(a) {
			t.Fatalf("DecodeStrict accepts %q but the handler refused it while decoding: %d %s", data, a.status, a.raw)
		}
		if err != nil && keystation.ErrorCode(err) != keystation.EINVALID {
			t.Fatalf("DecodeStrict error code %s", keystation.ErrorCode(err))
		}
	})
}

func FuzzDecodeReport(f *testing.F) {
	for _, s := range []string{
		body(failureBase(homeID(1), "FUZZ-H-1"), nil),
		body(failureBase(homeID(2), "FUZZ-H-2"), map[string]any{"resultCode": "0xC004F074", "resultMessage": "no KMS"}),
		body(failureBase(homeID(3), "FUZZ-H-3"), map[string]any{"resultCode": "", "resultMessage": "错误: 0x80072EE7 \"no internet\""}),
		body(failureBase(homeID(4), "FUZZ-H-4"), map[string]any{"resultCode": "0x12345678", "reportId": "6f1c0c5e-3c51-4c4b-9b7e-0f5e0c7b9a11"}),
		body(failureBase(proID(1), "FUZZ-P-1"), map[string]any{"osVersion": osPro, "keyId": proID(1).String()}),
		body(successBase(homeID(5), "FUZZ-H-5"), nil),
		body(successBase(proID(2), "FUZZ-P-2"), map[string]any{"osVersion": osPro}),
		body(successBase(homeID(6), "FUZZ-H-6"), map[string]any{"memory": []any{map[string]any{"speed": 3200}}, "disk": []any{}}),
		body(successBase(homeID(7), "FUZZ-H-7"), map[string]any{"memory": []any{map[string]any{"size": -1}}}),
		body(failureBase(homeID(8), "FUZZ-H-9"), nil),
		body(failureBase(3259666517449, "FUZZ-H-8"), nil),
		body(failureBase(homeID(8), "FUZZ-H-8"), map[string]any{"keyId": "abc"}),
		body(failureBase(homeID(8), "FUZZ-H-8"), map[string]any{"keyId": 1e13}),
		body(failureBase(homeID(8), "FUZZ-H-8"), map[string]any{"resultStatus": "false"}),
		body(failureBase(homeID(8), "FUZZ-H-8"), map[string]any{"password": "wrong-password"}),
		`{"keyId":"2000000000009","sn":"FUZZ-H-9","model":"N151","osVersion":"home","resultStatus":false,"resultMessage":"","username":"moumou","password":"moumou-password"}`,
		`{"keyId":"\u0032000000000009"}`, `{"keyId":"2000000000009`, `{"memory":[{"speed":{}}]}`,
		``, `{`, `[]`, `null`, `{"resultStatus":null,"resultMessage":null}`,
	} {
		f.Add([]byte(s))
	}
	e := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		a := e.fuzzPost(t, pathReport, data)
		if a.Failure != nil && a.status >= 400 && a.status != http.StatusConflict {
			t.Fatalf("a failure was recorded but the answer is %d: %s", a.status, a.raw)
		}
		var m reportMirror
		if err := api.DecodeStrict(data, &m); err != nil && !decodeRefusal(a) {
			t.Fatalf("DecodeStrict refuses %q (%v) but the handler answered %d %s", data, err, a.status, a.raw)
		}
	})
}
