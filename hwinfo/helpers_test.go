package hwinfo_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"keystation"
	"keystation/hwinfo"
)

// equalHardware fails t when got differs from want, showing both as JSON.
func equalHardware(t *testing.T, got, want keystation.Hardware) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.MarshalIndent(got, "", "  ")
	w, _ := json.MarshalIndent(want, "", "  ")
	t.Errorf("hardware mismatch\ngot:  %s\nwant: %s", g, w)
}

// loadRows reads recorded WMI rows from testdata/wmi/<name>.json.
func loadRows(t *testing.T, name string) hwinfo.WMIRows {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "wmi", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	var rows hwinfo.WMIRows
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return rows
}
