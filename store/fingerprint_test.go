package store_test

import (
	"strings"
	"testing"

	"keystation/store"
)

// TestFingerprintUpgrade opens a database whose machines carry fingerprints
// of the scheme before the serial-number prefix: they are rewritten once, and
// the machines are still found by id and by serial number.
func TestFingerprintUpgrade(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 5)
	bound := f.mustAcquire("UPG-BOUND", osHome)
	if _, err := f.report(success(bound.KeyID, "UPG-BOUND", osHome, nil)); err != nil {
		t.Fatal(err)
	}
	held := f.mustAcquire("UPG-HELD", osHome)
	// Make it look like a database written before the upgrade.
	for _, sn := range []string{"UPG-BOUND", "UPG-HELD"} {
		old := f.box.Hash("machine", strings.ToUpper(model)+"\x00"+sn)
		f.exec(`UPDATE machines SET fingerprint = ? WHERE fingerprint LIKE ? || '%'`, old, f.box.Hash("sn", sn)[:32])
	}
	f.exec(`DELETE FROM meta WHERE name = 'machine_fingerprint'`)
	if c := f.count(`SELECT COUNT(*) FROM machines WHERE fingerprint LIKE ? || '%'`, f.box.Hash("sn", "UPG-HELD")[:32]); c != 0 {
		t.Fatalf("setup: %d machines still in the new scheme", c)
	}
	f.s.Close()

	for round := range 2 { // the second open has nothing to do
		s, err := store.OpenServer(ctx, f.path, store.Options{Box: f.box})
		if err != nil {
			t.Fatalf("open %d: %v", round, err)
		}
		f.s = s
		a, err := f.acquire("UPG-HELD", osHome)
		if err != nil || !a.Reused || a.KeyID != held.KeyID {
			t.Fatalf("open %d: held machine got %+v, %v; want %s again", round, a, err, held.KeyID)
		}
		bs, n, err := s.MachineBindings(ctx, store.BindingFilter{Search: "upg-bound"})
		if err != nil || n != 1 || len(bs) != 1 {
			t.Fatalf("open %d: search by serial number: %d bindings (%v)", round, n, err)
		}
		if c := f.count(`SELECT COUNT(*) FROM machines`); c != 2 {
			t.Fatalf("open %d: %d machines, want 2", round, c)
		}
		if c := f.count(`SELECT COUNT(*) FROM meta WHERE name = 'machine_fingerprint' AND value <> ''`); c != 1 {
			t.Fatalf("open %d: the scheme is not recorded", round)
		}
		s.Close()
	}
	s, err := store.OpenServer(ctx, f.path, store.Options{Box: f.box})
	if err != nil {
		t.Fatal(err)
	}
	f.s = s
}
