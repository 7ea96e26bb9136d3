package api_test

import (
	"reflect"
	"testing"

	"keystation"
	"keystation/api"
)

// FuzzDecodeSyncRequest feeds arbitrary bodies through the strict decoding
// of POST /api/v1/sync and the validation every report gets: no panic, and
// a report that passes validation is one the store can apply.
func FuzzDecodeSyncRequest(f *testing.F) {
	f.Add([]byte(`{"stationTime":"2026-11-21T08:00:00Z","reports":[],"holding":[],"acks":[],"targets":{"home":20},"backlog":0}`))
	f.Add([]byte(`{"reports":[{"id":"6f1c1d8e-1111-4a2b-9c3d-000000000001","keyId":3259666517449,"machine":{"sn":"SN","model":"M"},` +
		`"osVersion":"Windows 11 Home","resultStatus":true,"resultMessage":"ok","hardware":{"sn":"SN","model":"M","cpu":"x","memory":[],"disk":[],` +
		`"os":{"name":"Windows 11 Home","version":"","build":"","architecture":"x64"}},"at":"2026-11-21T07:59:00Z","edition":"home"}]}`))
	f.Add([]byte(`{"reports":[{"id":"x","keyId":-1,"key":"W7PY2-N837X-89C72-4PPXP-D69QR","provenance":{"file":"k.csv","sha256":"ab"}}]}`))
	f.Add([]byte(`{"holding":[1,2,3],"release":[4],"targets":{"pro":-5}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req keystation.SyncRequest
		if err := api.DecodeStrict(body, &req); err != nil {
			if keystation.ErrorCode(err) == keystation.EINTERNAL {
				t.Fatalf("decoding failed with an untyped error: %v", err)
			}
			return
		}
		for _, r := range req.Reports {
			if err := r.Validate(); err != nil {
				if len(keystation.ErrorFields(err)) == 0 {
					t.Fatalf("a refused report names no field: %v", err)
				}
				continue
			}
			if !r.KeyID.Valid() || r.At.IsZero() || (r.Success && r.Hardware == nil) {
				t.Fatalf("an invalid report passed validation: %+v", r)
			}
			if r.Key != "" {
				if _, err := keystation.ParseProductKey(r.Key); err != nil || r.Provenance == nil {
					t.Fatalf("a report with a bad key or no provenance passed validation: %+v", r)
				}
			}
		}
	})
}

// FuzzDecodeSyncRequestStream checks the streaming decoder of POST
// /api/v1/sync against the strict decoder of every other body: what one
// accepts the other accepts, with the same request. The streaming decoder
// refuses, beyond that, a body that names "reports" twice.
func FuzzDecodeSyncRequestStream(f *testing.F) {
	for _, b := range []string{
		`{"stationTime":"2026-11-21T08:00:00Z","reports":[],"holding":[],"acks":[],"targets":{"home":20},"backlog":0}`,
		`{"reports":[{"id":"6f1c1d8e-1111-4a2b-9c3d-000000000001","keyId":3259666517449,"machine":{"sn":"SN","model":"M"},"resultStatus":true}],"backlog":3}`,
		`{"Reports":null,"holding":[1]}`,
		`{"backlog":1,"reports":[{},{"edition":"home"}],"acks":[2]}`,
		`{"reports":[{"x":1}]}`,
		`{"reports":{}}`,
		`{"reports":[],"reports":[{}]}`,
		`[]`, `null`, `{"holding":"x"}`, `{} {}`,
	} {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var want keystation.SyncRequest
		errStrict := api.DecodeStrict(body, &want)
		var reports []keystation.SyncReport
		got, err := api.DecodeSyncRequest(body, func(rs []keystation.SyncReport) error {
			reports = append(reports, rs...)
			return nil
		})
		if err != nil {
			if keystation.ErrorCode(err) == keystation.EINTERNAL {
				t.Fatalf("refused with an untyped error: %v", err)
			}
			if errStrict == nil && keystation.ErrorFields(err)["reports"] == "" {
				t.Fatalf("stream refused %q (%v), strict accepted it", body, err)
			}
			return
		}
		if errStrict != nil {
			t.Fatalf("stream accepted %q, strict refused it: %v", body, errStrict)
		}
		got.Reports = reports
		if len(want.Reports) == 0 && len(got.Reports) == 0 {
			want.Reports, got.Reports = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("stream decoded %q as\n%+v\nstrict as\n%+v", body, got, want)
		}
	})
}
