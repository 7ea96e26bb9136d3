package store_test

import (
	"log/slog"
	"strings"
	"testing"

	"keystation"
	"keystation/store"
)

// TestLogsNeverContainKey runs imports, acquisitions and reports with a
// debug-level JSON logger and looks for the keys in what was logged.
func TestLogsNeverContainKey(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, store.Options{Logger: log})
	keys := f.importN("home", 5)
	a := f.mustAcquire("SN1", osHome)
	f.mustAcquire("SN1", osHome)
	res, err := f.report(failure(a.KeyID, "SN1", osHome, "0xC004C003", "blocked"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.report(success(res.Next.KeyID, "SN1", osHome, nil)); err != nil {
		t.Fatal(err)
	}
	f.mustAcquire("SN2", osHome)
	f.acquire("SN3", "Windows 11 Enterprise")
	out := buf.String()
	if !strings.Contains(out, `"key assigned"`) {
		t.Fatalf("nothing logged at debug level:\n%s", out)
	}
	for _, k := range keys {
		for _, form := range []string{k.Plain(), strings.ReplaceAll(k.Plain(), "-", "")} {
			if strings.Contains(out, form) {
				t.Errorf("log contains the key %s", k.Masked())
			}
		}
	}
	if !strings.Contains(out, keystation.MaskKey(a.Key.Plain())) {
		t.Errorf("the masked key is not logged either; expected it with \"key assigned\"")
	}
}
