package store_test

import (
	"crypto/rand"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"keystation/store"
)

// TestPageCacheWrapper checks the page cache wrapper on the workload it is
// for and on the one it must not break: random inserts into an index (b-tree
// rebalancing, which parks pages under a temporary number), commits that
// skip the truncation, and rolled-back transactions that grew the file,
// whose pages must be dropped from the cache.
func TestPageCacheWrapper(t *testing.T) {
	if !store.PCacheInstalled() {
		t.Fatal("the page cache wrapper is not installed")
	}
	path := filepath.Join(t.TempDir(), "pcache.db")
	db := openRaw(t, path)
	defer db.Close()
	db.SetMaxOpenConns(1)
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(`PRAGMA journal_mode = WAL`)
	exec(`PRAGMA cache_size = -8192`)
	exec(`CREATE TABLE t (id INTEGER PRIMARY KEY, h BLOB NOT NULL UNIQUE, v BLOB NOT NULL)`)
	insert := func(tx *sql.Tx, n int) {
		t.Helper()
		for range n {
			h, v := make([]byte, 32), make([]byte, 200)
			rand.Read(h)
			rand.Read(v)
			if _, err := tx.Exec(`INSERT INTO t (h, v) VALUES (?, ?)`, h, v); err != nil {
				t.Fatal(err)
			}
		}
	}
	skipped0, _ := store.PCacheTruncates()
	want := 0
	for round := range 60 {
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		insert(tx, 300)
		if round%5 == 4 {
			// Grows the file, then is undone: its pages must go.
			insert(tx, 2000)
			if err := tx.Rollback(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := tx.Commit(); err != nil {
			t.Fatal(err)
		}
		want += 300
	}
	var n int
	var check string
	if err := db.QueryRow(`SELECT COUNT(*) FROM t`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil {
		t.Fatal(err)
	}
	if n != want || check != "ok" {
		t.Fatalf("%d rows (want %d), integrity_check: %s", n, want, check)
	}
	// Every row is found through the index, read through the cache.
	if err := db.QueryRow(`SELECT COUNT(*) FROM t WHERE h IN (SELECT h FROM t)`).Scan(&n); err != nil || n != want {
		t.Fatalf("%d rows found by their index entry (want %d), err %v", n, want, err)
	}
	if skipped, _ := store.PCacheTruncates(); skipped == skipped0 {
		t.Error("no truncation was skipped: the wrapper does not spare commits the cache scan")
	}
}

// TestDisableMemoryStatistics runs itself in a fresh process, where SQLite
// is not in use yet: there the statistics go off (SQLite then counts no
// memory at all while the server works) and a second call, with SQLite in
// use, fails. In this process, where they stay on, the count is not zero.
func TestDisableMemoryStatistics(t *testing.T) {
	if os.Getenv("KS_TEST_MEMSTAT_CHILD") == "1" {
		if err := store.DisableMemoryStatistics(); err != nil {
			t.Fatalf("first call: %v", err)
		}
		f := newFixture(t, store.Options{})
		f.importN("home", 10)
		if _, err := f.acquire("MEMSTAT-1", osHome); err != nil {
			t.Fatal(err)
		}
		if n := store.SQLiteMemoryUsed(); n != 0 {
			t.Errorf("SQLite counted %d bytes with its memory statistics off", n)
		}
		if err := store.DisableMemoryStatistics(); err == nil {
			t.Error("a call with SQLite in use did not fail")
		}
		return
	}
	f := newFixture(t, store.Options{})
	f.importN("home", 10)
	if n := store.SQLiteMemoryUsed(); n <= 0 {
		t.Errorf("with the statistics on SQLite counted %d bytes", n)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDisableMemoryStatistics$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "KS_TEST_MEMSTAT_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDisableMemoryStatistics") {
		t.Fatalf("child process: %v\n%s", err, out)
	}
}
