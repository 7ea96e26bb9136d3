package store_test

import (
	"path/filepath"
	"strings"
	"testing"

	"keystation"
	"keystation/seal"
	"keystation/store"
)

func TestOpenMigratesOnceAndReopens(t *testing.T) {
	box := newBox(t, 1)
	path := filepath.Join(t.TempDir(), "sub", "dir", store.ServerFile)
	s, err := store.OpenServer(ctx, path, store.Options{Box: box})
	if err != nil {
		t.Fatalf("first open: %v", err)
	}
	keys := newKeys(t, 3)
	if _, err := s.ImportKeys(ctx, []store.ImportEntry{
		{Line: 1, Key: keys[0], Edition: "home"}, {Line: 2, Key: keys[1], Edition: "pro"}, {Line: 3, Key: keys[2], Edition: "pro"},
	}, store.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	for i := range 3 {
		s, err := store.OpenServer(ctx, path, store.Options{Box: box})
		if err != nil {
			t.Fatalf("re-open %d: %v", i, err)
		}
		pc, err := s.PoolCounts(ctx, 0)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, p := range pc {
			got[p.Edition] = p.States[keystation.StateAvailable]
		}
		if got["home"] != 1 || got["pro"] != 2 || len(got) != 2 {
			t.Fatalf("after re-open %d: pools %v", i, got)
		}
		eds, err := s.Editions(ctx)
		if err != nil || len(eds) != 2 {
			t.Fatalf("editions after re-open: %v, %v (seeded rows duplicated?)", eds, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixtureAt(t, path, box)
	files, err := filepath.Glob(filepath.Join("migrations", "server", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no migration files: %v", err)
	}
	if n := f.count(`SELECT COUNT(*) FROM schema_migrations`); n != len(files) {
		t.Errorf("schema_migrations has %d rows, want one per file (%d)", n, len(files))
	}
	for _, file := range files {
		name := filepath.Base(file)
		if n := f.count(`SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name); n != 1 {
			t.Errorf("migration %s recorded %d times, want once", name, n)
		}
	}
	if n := f.count(`SELECT COUNT(*) FROM meta WHERE name = 'data_key_check'`); n != 1 {
		t.Errorf("data key check recorded %d times", n)
	}
	if n := f.count(`SELECT COUNT(*) FROM tenants`); n != 1 {
		t.Errorf("%d tenants, want 1", n)
	}
}

// newFixtureAt opens an existing database file.
func newFixtureAt(t *testing.T, path string, box *seal.Box) *fixture {
	t.Helper()
	s, err := store.OpenServer(ctx, path, store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, s: s, path: path, box: box}
	f.raw = openRaw(t, path)
	t.Cleanup(func() {
		f.raw.Close()
		s.Close()
	})
	return f
}

func TestOpenRefusesAnotherDataKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), store.ServerFile)
	s, err := store.OpenServer(ctx, path, store.Options{Box: newBox(t, 1)})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := store.OpenServer(ctx, path, store.Options{Box: newBox(t, 2)})
	if err == nil {
		s2.Close()
		t.Fatal("opened a database with another data key")
	}
	if !strings.Contains(err.Error(), "data key does not match") {
		t.Fatalf("error %q does not say the data key is wrong", err)
	}
	// The right key still opens it.
	s3, err := store.OpenServer(ctx, path, store.Options{Box: newBox(t, 1)})
	if err != nil {
		t.Fatalf("re-open with the right key: %v", err)
	}
	s3.Close()
}

func TestOpenRequiresBox(t *testing.T) {
	if _, err := store.OpenServer(ctx, filepath.Join(t.TempDir(), store.ServerFile), store.Options{}); err == nil {
		t.Fatal("opened without a seal.Box")
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	box := newBox(t, 1)
	path := filepath.Join(t.TempDir(), store.ServerFile)
	s, err := store.OpenServer(ctx, path, store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	raw := openRaw(t, path)
	if _, err := raw.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	if s, err := store.OpenServer(ctx, path, store.Options{Box: box}); err == nil {
		s.Close()
		t.Fatal("opened a database with a newer schema")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("error %q", err)
	}
}

func TestBurnCapOption(t *testing.T) {
	tests := []struct {
		name string
		opt  int
		want int
	}{
		{"default", 0, store.DefaultBurnCap},
		{"negative means default", -1, store.DefaultBurnCap},
		{"custom", 7, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{BurnCap: tc.opt})
			if got := f.s.BurnCap(); got != tc.want {
				t.Fatalf("BurnCap() = %d, want %d", got, tc.want)
			}
		})
	}
	if store.DefaultBurnCap != 3 {
		t.Errorf("DefaultBurnCap = %d, DESIGN.md says 3", store.DefaultBurnCap)
	}
}

func TestPing(t *testing.T) {
	f := newFixture(t, store.Options{})
	if err := f.s.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}
