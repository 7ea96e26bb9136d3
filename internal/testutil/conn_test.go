package testutil_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"keystation/internal/testutil"
)

// Conn and Client read the same answers from the same server, whatever
// framing the server uses, and Conn reconnects after the server closes.
func TestConnMatchesClient(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct{ Username, Password, SN, Model, OSVersion string }
		if r.URL.Path != "/api/v1/keys/acquire" || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, `{"code":"BAD"}`, 400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		switch {
		case req.Password != "pw":
			w.WriteHeader(401)
			w.Write([]byte(`{"code":"UNAUTHORIZED","message":"wrong username or password"}`))
		case req.SN == "chunked":
			w.Write([]byte(`{"code":"OK","message":"m",`))
			w.(http.Flusher).Flush()
			w.Write([]byte(`"data":{"keyId":3301234567890,"key":"VK7JG-NPHTM-C97JM-9MPGT-3V66T"}}`))
		case req.SN == "close":
			w.Header().Set("Connection", "close")
			w.Write([]byte(`{"code":"OK","message":"m","data":{"keyId":3301234567891,"key":"VK7JG-NPHTM-C97JM-9MPGT-3V66T"}}`))
		default:
			msg, _ := json.Marshal(req.SN + "|" + req.Model + "|" + req.OSVersion)
			w.Write([]byte(`{"code":"OK","message":` + string(msg) + `,"data":{"keyId":3301234567892,"key":"VK7JG-NPHTM-C97JM-9MPGT-3V66T"}}`))
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name     string
		password string
		m        testutil.Machine
		want     string
	}{
		{"plain", "pw", testutil.Machine{SN: "SN-1", Model: "Model \"X\"", OSVersion: "Windows 11 Pro"}, `200 OK keyId 3301234567892`},
		{"non-ASCII", "pw", testutil.Machine{SN: "序列号-1", Model: "M", OSVersion: "Windows 11 家庭版"}, `200 OK keyId 3301234567892`},
		{"error status", "nope", testutil.Machine{SN: "SN-1", Model: "M", OSVersion: "Windows 11 Pro"}, `401 UNAUTHORIZED: wrong username or password`},
		{"chunked", "pw", testutil.Machine{SN: "chunked", Model: "M", OSVersion: "Windows 11 Pro"}, `200 OK keyId 3301234567890`},
		{"server closes", "pw", testutil.Machine{SN: "close", Model: "M", OSVersion: "Windows 11 Pro"}, `200 OK keyId 3301234567891`},
		{"after the close", "pw", testutil.Machine{SN: "SN-2", Model: "M", OSVersion: "Windows 11 Pro"}, `200 OK keyId 3301234567892`},
	}
	c := testutil.NewClient(addr, "op", "pw", 1)
	bad := testutil.NewClient(addr, "op", "nope", 1)
	k, kbad := c.Dial(), bad.Dial()
	defer k.Close()
	defer kbad.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cl, conn := c, k
			if tt.password != "pw" {
				cl, conn = bad, kbad
			}
			viaClient, err := cl.Acquire(context.Background(), tt.m)
			if err != nil {
				t.Fatal(err)
			}
			viaConn, err := conn.Acquire(context.Background(), tt.m)
			if err != nil {
				t.Fatal(err)
			}
			if viaConn != viaClient || viaConn.String() != tt.want {
				t.Fatalf("Conn read %+v, Client %+v, want %s", viaConn, viaClient, tt.want)
			}
			if want := tt.m.SN + "|" + tt.m.Model + "|" + tt.m.OSVersion; tt.want == `200 OK keyId 3301234567892` && viaConn.Message != want {
				t.Fatalf("Conn read %+v, Client %+v, want %s", viaConn, viaClient, tt.want)
			}
		})
	}
}
