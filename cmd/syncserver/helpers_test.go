package main_test

import (
	"context"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/auth"
	syncserver "keystation/cmd/syncserver"
	"keystation/internal/testutil"
	"keystation/store"
)

func TestMain(m *testing.M) {
	// Passwords hashed in-process by these tests need not be slow to guess.
	auth.Cost = bcrypt.MinCost
	os.Exit(m.Run())
}

// testServer is an in-process sync server with an operator and key pools.
type testServer struct {
	main     *syncserver.Main
	operator testutil.Credential
	// keys holds the plain keys imported into each pool.
	keys map[string]map[string]bool
}

// newTestServer runs a sync server (Main, as "syncserver serve" does) on a
// loopback port with a fresh data directory, creates an operator and imports
// pools[edition] generated keys into each pool.
func newTestServer(t *testing.T, pools map[string]int) *testServer {
	t.Helper()
	ctx := context.Background()
	m := syncserver.NewMain()
	m.Config.DataDir = t.TempDir()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.ShutdownTimeout = 10 * time.Second
	if err := m.Run(ctx); err != nil {
		if m.Store != nil {
			m.Store.Close()
		}
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("close server: %v", err)
		}
	})
	op := testutil.Credential{Username: "line-operator", Password: "correct horse battery"}
	hash, err := auth.HashPassword(op.Password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Store.CreateUser(ctx, store.User{Username: op.Username, PasswordHash: hash, Role: store.RoleOperator}); err != nil {
		t.Fatalf("create operator: %v", err)
	}
	s := &testServer{main: m, operator: op, keys: map[string]map[string]bool{}}
	seed := uint64(1)
	for edition, n := range pools {
		plain := testutil.GenerateKeys(n, seed)
		seed++
		keys, err := testutil.ProductKeys(plain)
		if err != nil {
			t.Fatal(err)
		}
		s.keys[edition] = map[string]bool{}
		for _, k := range plain {
			s.keys[edition][k] = true
		}
		entries := make([]store.ImportEntry, n)
		for i, k := range keys {
			entries[i] = store.ImportEntry{Line: i + 1, Key: k, Edition: edition}
		}
		res, err := m.Store.ImportKeys(ctx, entries, store.ImportOptions{Source: "test", Actor: "test"})
		if err != nil {
			t.Fatalf("import %s keys: %v", edition, err)
		}
		if res.Imported != n {
			t.Fatalf("imported %d %s keys, want %d (skipped %v, rejected %v)", res.Imported, edition, n, res.Skipped, res.Rejected)
		}
	}
	return s
}

// client returns a client of the server sized for conns concurrent callers.
func (s *testServer) client(t *testing.T, conns int) *testutil.Client {
	t.Helper()
	c := testutil.NewClient(s.main.Addr(), s.operator.Username, s.operator.Password, conns)
	t.Cleanup(c.CloseIdle)
	return c
}

// poolStates returns the state counts of an edition's pool.
func poolStates(t *testing.T, st *store.Server, edition string) map[keystation.KeyState]int {
	t.Helper()
	counts, err := st.PoolCounts(context.Background(), 0)
	if err != nil {
		t.Fatalf("pool counts: %v", err)
	}
	for _, c := range counts {
		if c.Edition == edition {
			return c.States
		}
	}
	t.Fatalf("no pool %q in %v", edition, counts)
	return nil
}

// osVersions is an osVersion string that selects each seeded pool.
var osVersions = map[string]string{
	"home": "Windows 11 Home 23H2",
	"pro":  "Microsoft Windows 11 Pro",
}
