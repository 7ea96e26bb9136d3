package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"

	"keystation"
	"keystation/store"
)

// TestEncryptionAtRest reads the raw bytes of the database file and its WAL
// (invariant 7): no product key, no serial number and no hardware detail
// outside the plain summary may appear in them.
func TestEncryptionAtRest(t *testing.T) {
	f := newFixture(t, store.Options{})
	home := f.importN("home", 5)
	pro := f.importN("pro", 5)
	hw := &keystation.Hardware{
		CPU:       "Intel Core i7-9700K",
		UUID:      "4C4C4544-0042-3010-8052-B4C04F325A32",
		Baseboard: "ASUS PRIME B365M-A",
		Memory: []keystation.MemoryModule{
			{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"},
			{ID: 1, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"},
		},
		Disks: []keystation.Disk{{ID: 0, Size: 1_000_204_886_016, InterfaceType: "SCSI", Model: "NVMe KINGSTON SNV2S1000G", Serial: "50026B7686B3C0DE"}},
		MACs:  []string{"D8:BB:C1:0A:1B:2C"},
	}
	const sn = "SN-PLAIN-12345"
	a := f.mustAcquire(sn, osHome)
	if _, err := f.report(success(a.KeyID, sn, osHome, hw)); err != nil {
		t.Fatal(err)
	}
	b := f.mustAcquire("SN-OTHER-67890", osPro)
	if _, err := f.report(failure(b.KeyID, "SN-OTHER-67890", osPro, "0xC004C003", "blocked")); err != nil {
		t.Fatal(err)
	}
	f.mustAcquire("SN-THIRD-13579", osHome)

	// What the plain summary holds is allowed; check what it contains so
	// the assertions below only cover what must be sealed.
	var summary string
	if err := f.raw.QueryRow(`SELECT hardware_summary FROM machines WHERE hardware_summary IS NOT NULL`).Scan(&summary); err != nil {
		t.Fatal(err)
	}
	var sum keystation.Summary
	if err := json.Unmarshal([]byte(summary), &sum); err != nil {
		t.Fatalf("summary %q: %v", summary, err)
	}
	if sum.CPU != "Intel Core i7-9700K" || sum.Memory != "16 GB" || sum.Disk != "932 GB SCSI" {
		t.Errorf("summary = %+v", sum)
	}
	secrets := []string{sn, "SN-OTHER-67890", "SN-THIRD-13579", "Samsung", "NVMe KINGSTON SNV2S1000G", "KINGSTON",
		"50026B7686B3C0DE", "D8:BB:C1:0A:1B:2C", "4C4C4544-0042"}
	for _, s := range secrets {
		if strings.Contains(summary, s) {
			t.Fatalf("the plain summary %q holds the detail %q", summary, s)
		}
	}
	for _, k := range append(home, pro...) {
		secrets = append(secrets, k.Plain(), strings.ReplaceAll(k.Plain(), "-", ""))
	}

	scan := func(when string) {
		t.Helper()
		found := 0
		for _, suffix := range []string{"", "-wal", "-journal"} {
			data, err := os.ReadFile(f.path + suffix)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			found++
			for _, s := range secrets {
				if bytes.Contains(data, []byte(s)) {
					t.Errorf("%s: %s%s contains %q in plain text", when, "db", suffix, s)
				}
				// SQLite may store text as UTF-16 in some configurations.
				if bytes.Contains(data, utf16le(s)) {
					t.Errorf("%s: %s%s contains %q as UTF-16", when, "db", suffix, s)
				}
			}
		}
		if found == 0 {
			t.Fatalf("%s: no database file to read", when)
		}
	}
	// While open, recent pages sit in the WAL.
	if st, err := os.Stat(f.path + "-wal"); err != nil || st.Size() == 0 {
		t.Logf("no WAL content while open: %v", err)
	}
	scan("open")
	f.raw.Close()
	if err := f.s.Close(); err != nil {
		t.Fatal(err)
	}
	scan("closed")
}

func utf16le(s string) []byte {
	var b []byte
	for _, r := range s {
		b = append(b, byte(r), byte(r>>8))
	}
	return b
}
