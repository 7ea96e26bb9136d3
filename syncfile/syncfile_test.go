package syncfile_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/syncfile"
)

const cred = "ks1.7.c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"

func key(t *testing.T, c string) syncfile.Key {
	t.Helper()
	k, _, err := syncfile.DeriveKey(c)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestRoundTripAndBinding(t *testing.T) {
	k, id, err := syncfile.DeriveKey(cred)
	if err != nil || id != 7 {
		t.Fatalf("DeriveKey = %d, %v", id, err)
	}
	req := keystation.SyncRequest{StationTime: time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC), Targets: map[string]int{"home": 20}, Backlog: 3}
	var reqFile bytes.Buffer
	if err := syncfile.WriteRequest(&reqFile, k, 7, req); err != nil {
		t.Fatal(err)
	}
	if format, st, err := syncfile.Peek(reqFile.Bytes()); err != nil || format != syncfile.RequestFormat || st != 7 {
		t.Fatalf("Peek = %s %d %v", format, st, err)
	}
	got, err := syncfile.ReadRequest(reqFile.Bytes(), k)
	if err != nil || got.Targets["home"] != 20 || got.Backlog != 3 {
		t.Fatalf("ReadRequest = %+v, %v", got, err)
	}
	resp := keystation.SyncResponse{Grants: []keystation.SyncGrant{{KeyID: 3259666517449, Key: "W7PY2-N837X-89C72-4PPXP-D69QR", Edition: "home"}}}
	var respFile bytes.Buffer
	if err := syncfile.WriteResponse(&respFile, k, 7, reqFile.Bytes(), resp); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(respFile.String(), "W7PY2") || strings.Contains(respFile.String(), "3259666517449") {
		t.Fatal("the response file shows a key in plain")
	}
	back, err := syncfile.ReadResponse(respFile.Bytes(), k, 7, reqFile.Bytes())
	if err != nil || len(back.Grants) != 1 || back.Grants[0].Key != resp.Grants[0].Key {
		t.Fatalf("ReadResponse = %+v, %v", back, err)
	}

	var other bytes.Buffer
	syncfile.WriteRequest(&other, k, 7, keystation.SyncRequest{Backlog: 9})
	tamper := func(b []byte) []byte {
		var e map[string]any
		json.Unmarshal(b, &e)
		s := e["sealed"].(string)
		c := "A"
		if s[20] == 'A' {
			c = "B"
		}
		e["sealed"] = s[:20] + c + s[21:]
		out, _ := json.Marshal(e)
		return out
	}
	tests := []struct {
		name string
		run  func() error
		code string
	}{
		{"another station's key", func() error {
			_, err := syncfile.ReadRequest(reqFile.Bytes(), key(t, "ks1.7.other-secret"))
			return err
		}, keystation.EUNAUTHORIZED},
		{"altered request", func() error { _, err := syncfile.ReadRequest(tamper(reqFile.Bytes()), k); return err }, keystation.EUNAUTHORIZED},
		{"response to another request", func() error {
			_, err := syncfile.ReadResponse(respFile.Bytes(), k, 7, other.Bytes())
			return err
		}, keystation.ECONFLICT},
		{"response for another station", func() error { _, err := syncfile.ReadResponse(respFile.Bytes(), k, 8, nil); return err }, keystation.EUNAUTHORIZED},
		{"response read as request", func() error { _, err := syncfile.ReadRequest(respFile.Bytes(), k); return err }, keystation.EINVALID},
		{"request read as response", func() error { _, err := syncfile.ReadResponse(reqFile.Bytes(), k, 7, nil); return err }, keystation.EINVALID},
		{"not a sync file", func() error { _, err := syncfile.ReadRequest([]byte(`{"hello":1}`), k); return err }, keystation.EINVALID},
		{"station renamed in the envelope", func() error {
			b := bytes.Replace(reqFile.Bytes(), []byte(`"stationId": 7`), []byte(`"stationId": 8`), 1)
			_, err := syncfile.ReadRequest(b, k)
			return err
		}, keystation.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keystation.ErrorCode(tt.run()); got != tt.code {
				t.Fatalf("code %q, want %q", got, tt.code)
			}
		})
	}
}

func FuzzReadFiles(f *testing.F) {
	k, _, _ := syncfile.DeriveKey(cred)
	var b bytes.Buffer
	syncfile.WriteRequest(&b, k, 7, keystation.SyncRequest{Targets: map[string]int{"pro": 1}})
	f.Add(b.Bytes())
	f.Add([]byte(`{"format":"keystation-sync-request/1","stationId":7,"sealed":"AAAA"}`))
	f.Add([]byte(`{"format":"keystation-sync-response/1","stationId":-1,"sealed":""}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		format, st, err := syncfile.Peek(data)
		if err == nil && (st <= 0 || (format != syncfile.RequestFormat && format != syncfile.ResponseFormat)) {
			t.Fatalf("Peek accepted format %q station %d", format, st)
		}
		if _, err := syncfile.ReadRequest(data, k); err != nil && keystation.ErrorCode(err) == keystation.EINTERNAL {
			t.Fatalf("ReadRequest: untyped error %v", err)
		}
		if _, err := syncfile.ReadResponse(data, k, 7, nil); err != nil && keystation.ErrorCode(err) == keystation.EINTERNAL {
			t.Fatalf("ReadResponse: untyped error %v", err)
		}
	})
}
