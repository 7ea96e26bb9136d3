package queue_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/queue"
)

func syncSeeds() [][]byte {
	ok, _ := json.Marshal(map[string]any{"code": "OK", "message": "synced", "data": keystation.SyncResponse{
		ServerTime: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Results:    []keystation.SyncResult{{ID: "0b6f7c8e-1111-4222-8333-944445555666", Status: "applied"}},
		Grants:     []keystation.SyncGrant{{KeyID: 1234567890123, Key: "BCDFG-HJKMN-PQRTV-WXY23-46789", Edition: "pro"}},
		Revoked:    []keystation.KeyID{1234567890124},
		Editions:   keystation.DefaultEditions(),
		Levels:     map[string]int{"pro": 20},
	}})
	return [][]byte{
		ok,
		[]byte(`{"code":"UNAUTHORIZED","message":"bad credential"}`),
		[]byte(`{"code":"OK","message":"","data":{"serverTime":"2025-01-01T00:00:00Z","results":[],"grants":[{"keyId":1,"key":"x","edition":"pro"}]}}`),
		[]byte(`{"code":"OK","data":{"serverTime":"2025-01-01T00:00:00Z","grants":[{"keyId":"1234567890123","key":"BCDFG-HJKMN-PQRTV-WXY23-46789","edition":"pro"}]}}`),
		[]byte(`{"code":"OK","data":{"serverTime":"2025-01-01T00:00:00Z","results":[{"id":"a","status":"eaten"}]}}`),
		[]byte(`{"code":"OK","data":null}`),
		[]byte(`<html>502 Bad Gateway</html>`),
		[]byte(`{"code":"OK","data":{"serverTime":"2025-01-01T00:00:00Z"}} trailing`),
		[]byte(``),
	}
}

// FuzzDecodeSyncResponse: whatever the server (or something posing as it)
// answers, decoding never panics, and an accepted answer holds only what the
// station may store: valid keyIds, well-formed keys, edition slugs, known
// result statuses.
func FuzzDecodeSyncResponse(f *testing.F) {
	for _, s := range syncSeeds() {
		f.Add(200, s)
		f.Add(503, s)
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := queue.DecodeSyncResponse(status, body)
		if err != nil {
			var se *queue.ServerError
			if !errors.Is(err, queue.ErrMalformed) && !errors.As(err, &se) {
				t.Fatalf("error of an unexpected kind: %T %v", err, err)
			}
			if se != nil && se.Code == "" {
				t.Fatalf("server error without a code: %v", err)
			}
			return
		}
		if status >= 300 {
			t.Fatalf("HTTP %d accepted as an answer", status)
		}
		if r.ServerTime.IsZero() {
			t.Fatal("accepted without serverTime")
		}
		for _, g := range r.Grants {
			if !g.KeyID.Valid() {
				t.Fatalf("accepted grant keyId %d", g.KeyID)
			}
			k, err := keystation.ParseProductKey(g.Key)
			if err != nil || k.Plain() != g.Key {
				t.Fatalf("accepted grant key %q not normalised", keystation.MaskKey(g.Key))
			}
			if g.Edition == "" || strings.ToLower(g.Edition) != g.Edition {
				t.Fatalf("accepted edition %q", g.Edition)
			}
		}
		for _, res := range r.Results {
			switch res.Status {
			case keystation.SyncApplied, keystation.SyncDuplicate, keystation.SyncConflict, keystation.SyncRejected:
			default:
				t.Fatalf("accepted status %q", res.Status)
			}
		}
		for _, id := range r.Revoked {
			if !id.Valid() {
				t.Fatalf("accepted revoked keyId %d", id)
			}
		}
		for _, e := range r.Editions {
			if e.Validate() != nil {
				t.Fatalf("accepted edition %+v", e)
			}
		}
	})
}

// FuzzDecodeEnrolResponse: decoding an enrolment answer never panics and
// never accepts one without a station id and a usable credential.
func FuzzDecodeEnrolResponse(f *testing.F) {
	f.Add(200, []byte(`{"code":"OK","message":"enrolled","data":{"stationId":3,"name":"line 1","credential":"ks1.abc","serverTime":"2025-01-01T00:00:00Z","editions":[]}}`))
	f.Add(200, []byte(`{"code":"OK","data":{"stationId":3,"credential":"has space"}}`))
	f.Add(401, []byte(`{"code":"UNAUTHORIZED","message":"token used up"}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := queue.DecodeEnrolResponse(status, body)
		if err != nil {
			return
		}
		if r.StationID <= 0 || r.Credential == "" || strings.ContainsAny(r.Credential, " \r\n\t") {
			t.Fatalf("accepted %+v", r)
		}
	})
}

func TestDecodeSyncResponse(t *testing.T) {
	seeds := syncSeeds()
	tests := []struct {
		name   string
		status int
		body   []byte
		code   string // "" for success; "malformed" for ErrMalformed
	}{
		{"valid answer", 200, seeds[0], ""},
		{"error envelope", 401, seeds[1], keystation.EUNAUTHORIZED},
		{"bad grant", 200, seeds[2], "malformed"},
		{"keyId as a string", 200, seeds[3], "malformed"},
		{"unknown status", 200, seeds[4], "malformed"},
		{"no data", 200, seeds[5], "malformed"},
		{"proxy page", 502, seeds[6], keystation.EUNAVAILABLE},
		{"trailing data", 200, seeds[7], "malformed"},
		{"empty", 200, seeds[8], "malformed"},
		{"unknown field tolerated", 200, []byte(`{"code":"OK","data":{"serverTime":"2025-01-01T00:00:00Z","newThing":1},"extra":true}`), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := queue.DecodeSyncResponse(tc.status, tc.body)
			switch tc.code {
			case "":
				if err != nil {
					t.Fatal(err)
				}
			case "malformed":
				if !errors.Is(err, queue.ErrMalformed) {
					t.Fatalf("got %v, want a malformed answer", err)
				}
			default:
				if keystation.ErrorCode(err) != tc.code {
					t.Fatalf("got %v (code %s), want %s", err, keystation.ErrorCode(err), tc.code)
				}
			}
		})
	}
}
