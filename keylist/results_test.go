package keylist_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"keystation"
	"keystation/keylist"
)

func TestWriteResults(t *testing.T) {
	at := time.Date(2025, 3, 14, 9, 26, 53, 0, time.FixedZone("CST", 8*3600))
	tests := []struct {
		name string
		rows []keylist.Result
		want string
	}{
		{
			name: "header only",
			want: "keyId,key,sn,model,status,message,time\n",
		},
		{
			name: "masked key, quoting, empty keyId and time",
			rows: []keylist.Result{
				{KeyID: 3307135000001, Key: "W7PY2-N837X-89C72-4PPXP-D69QR", SN: "PF3X9K2L", Model: "ThinkCentre M70q", Status: "activated", Time: at},
				{Key: "K6M23-JVXJ6-NCRRX-CVTMH-Q7W49", SN: "SN,with comma", Model: `15" "Pro"`, Status: "failed", Message: "0xC004C003: key blocked\nby the activation server"},
			},
			want: "keyId,key,sn,model,status,message,time\n" +
				"3307135000001,*****-*****-*****-*****-D69QR,PF3X9K2L,ThinkCentre M70q,activated,,2025-03-14T09:26:53+08:00\n" +
				`,*****-*****-*****-*****-Q7W49,"SN,with comma","15"" ""Pro""",failed,"0xC004C003: key blocked` + "\n" + `by the activation server",` + "\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := keylist.WriteResults(&b, tt.rows); err != nil {
				t.Fatalf("WriteResults: %v", err)
			}
			if b.String() != tt.want {
				t.Errorf("WriteResults wrote\n%s\nwant\n%s", b.String(), tt.want)
			}
			for _, r := range tt.rows {
				if strings.Contains(b.String(), r.Key.Plain()) {
					t.Errorf("output holds the whole key %s", r.Key)
				}
			}
		})
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteResultsError(t *testing.T) {
	rows := []keylist.Result{{Key: keystation.ProductKey("W7PY2-N837X-89C72-4PPXP-D69QR")}}
	if err := keylist.WriteResults(failWriter{}, rows); err == nil {
		t.Fatal("WriteResults to a failing writer returned nil")
	}
}
