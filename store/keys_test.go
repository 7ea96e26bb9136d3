package store_test

import (
	"strings"
	"testing"

	"keystation"
	"keystation/store"
)

func TestImportKeys(t *testing.T) {
	keys := newKeys(t, 8)
	tests := []struct {
		name     string
		prior    []store.ImportEntry // imported first
		entries  []store.ImportEntry
		imported int
		skipped  []string // reasons, in order
		rejected []string
		pools    map[string]int // available keys per edition afterwards
		bug      string         // a known bug: skip with this when the result shows it
	}{
		{
			name: "imports into editions by slug or name",
			entries: []store.ImportEntry{
				{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"},
				{Line: 2, Key: keys[1], KeyID: 3259666517450, Edition: "Home"},
				{Line: 3, Key: keys[2], Edition: "PRO"},
				{Line: 4, Key: keys[3], Edition: " pro "},
			},
			imported: 4,
			pools:    map[string]int{"home": 2, "pro": 2},
		},
		{
			name:     "skips keys already present",
			prior:    []store.ImportEntry{{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"}},
			entries:  []store.ImportEntry{{Line: 1, Key: keys[0], Edition: "home"}, {Line: 2, Key: keys[1], Edition: "home"}},
			imported: 1,
			skipped:  []string{"key already present"},
			pools:    map[string]int{"home": 2},
		},
		{
			name:     "skips a key present under another keyId, naming it",
			prior:    []store.ImportEntry{{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"}},
			entries:  []store.ImportEntry{{Line: 7, Key: keys[0], KeyID: 1111111111111, Edition: "home"}},
			imported: 0,
			skipped:  []string{"key already present with keyId 3259666517449"},
			pools:    map[string]int{"home": 1},
		},
		{
			name:     "rejects a keyId of another key",
			prior:    []store.ImportEntry{{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"}},
			entries:  []store.ImportEntry{{Line: 1, Key: keys[1], KeyID: 3259666517449, Edition: "pro"}},
			rejected: []string{"keyId 3259666517449 already belongs to another key"},
			pools:    map[string]int{"home": 1},
		},
		{
			name:     "rejects a keyId repeated within the file",
			entries:  []store.ImportEntry{{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"}, {Line: 2, Key: keys[1], KeyID: 3259666517449, Edition: "home"}},
			imported: 1,
			rejected: []string{"already belongs to another key"},
			pools:    map[string]int{"home": 1},
		},
		{
			name:     "skips a key repeated within the file",
			entries:  []store.ImportEntry{{Line: 1, Key: keys[0], Edition: "home"}, {Line: 2, Key: keys[0], Edition: "home"}},
			imported: 1,
			skipped:  []string{"key already present"},
			pools:    map[string]int{"home": 1},
		},
		{
			name: "rejects a keyId that is not 13 digits",
			entries: []store.ImportEntry{
				{Line: 1, Key: keys[0], KeyID: 123, Edition: "home"},
				{Line: 2, Key: keys[1], KeyID: 10_000_000_000_000, Edition: "home"},
				{Line: 3, Key: keys[2], KeyID: -3259666517449, Edition: "home"},
				{Line: 4, Key: keys[3], Edition: "home"},
			},
			imported: 1,
			rejected: []string{"keyId", "keyId", "keyId"},
			pools:    map[string]int{"home": 1},
			bug: "store.ImportKeys stores an ImportEntry.KeyID that is not 13 digits (123, 10000000000000, negative); " +
				"such a key can be handed out but never reported (the API's keyId must be 13 digits). In keys.go, " +
				"before the byID check: `if e.KeyID != 0 && !e.KeyID.Valid() { reject \"keyId %d is not a 13-digit Product Key ID\" }`",
		},
		{
			name: "rejects unknown and missing editions",
			entries: []store.ImportEntry{
				{Line: 1, Key: keys[0], Edition: "enterprise"},
				{Line: 2, Key: keys[1], Edition: ""},
				{Line: 3, Key: keys[2], Edition: "home"},
			},
			imported: 1,
			rejected: []string{`no key pool named "enterprise"`, "no edition"},
			pools:    map[string]int{"home": 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			if tc.prior != nil {
				if _, err := f.s.ImportKeys(ctx, tc.prior, store.ImportOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			res, err := f.s.ImportKeys(ctx, tc.entries, store.ImportOptions{Source: "test.csv", Actor: "cli"})
			if err != nil {
				t.Fatalf("ImportKeys: %v", err)
			}
			if tc.bug != "" && res.Imported != tc.imported {
				t.Fatal("regression: " + tc.bug)
			}
			if res.Imported != tc.imported {
				t.Errorf("imported %d, want %d (%+v)", res.Imported, tc.imported, res)
			}
			checkNotes(t, "skipped", res.Skipped, tc.skipped)
			checkNotes(t, "rejected", res.Rejected, tc.rejected)
			pools := availableByEdition(t, f)
			for ed, n := range tc.pools {
				if pools[ed] != n {
					t.Errorf("%s pool has %d available keys, want %d", ed, pools[ed], n)
				}
			}
			f.checkHistory()
		})
	}
}

func checkNotes(t *testing.T, what string, got []store.LineNote, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s = %+v, want %q", what, got, want)
		return
	}
	for i := range want {
		if !strings.Contains(got[i].Reason, want[i]) {
			t.Errorf("%s[%d] = %+v, want reason %q", what, i, got[i], want[i])
		}
		if got[i].Line == 0 {
			t.Errorf("%s[%d] has no line number", what, i)
		}
		if hasWholeKey(got[i].Reason) {
			t.Errorf("%s[%d] reason repeats a key", what, i)
		}
	}
}

func hasWholeKey(s string) bool {
	run := 0
	for _, r := range s {
		switch {
		case r == '-':
		case strings.ContainsRune(keystation.KeyAlphabet, r):
			if run++; run >= 25 {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

func availableByEdition(t *testing.T, f *fixture) map[string]int {
	t.Helper()
	pc, err := f.s.PoolCounts(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, p := range pc {
		out[p.Edition] = p.States[keystation.StateAvailable]
	}
	return out
}

func TestImportSameFileTwiceChangesNothing(t *testing.T) {
	f := newFixture(t, store.Options{})
	keys := newKeys(t, 20)
	var entries []store.ImportEntry
	for i, k := range keys {
		ed := "home"
		if i%2 == 1 {
			ed = "pro"
		}
		entries = append(entries, store.ImportEntry{Line: i + 1, Key: k, Edition: ed})
	}
	entries[3].KeyID = 3259666517449
	first, err := f.s.ImportKeys(ctx, entries, store.ImportOptions{Source: "keys.csv"})
	if err != nil || first.Imported != 20 || first.ByEdition["home"] != 10 || first.ByEdition["pro"] != 10 {
		t.Fatalf("first import: %+v, %v", first, err)
	}
	before := f.snapshot()
	second, err := f.s.ImportKeys(ctx, entries, store.ImportOptions{Source: "keys.csv"})
	if err != nil {
		t.Fatal(err)
	}
	if second.Imported != 0 || len(second.Skipped) != 20 || len(second.Rejected) != 0 {
		t.Fatalf("second import: imported %d, skipped %d, rejected %d", second.Imported, len(second.Skipped), len(second.Rejected))
	}
	f.assertUnchanged(before)
}

func TestImportAssignsKeyIDs(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 200)
	rows, err := f.raw.Query(`SELECT key_id FROM product_keys`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	seen := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if kid := keystation.KeyID(id); !kid.Valid() || len(kid.String()) != 13 {
			t.Errorf("assigned keyId %d is not 13 digits", id)
		}
		if seen[id] {
			t.Errorf("keyId %d assigned twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 200 {
		t.Fatalf("%d keyIds, want 200", len(seen))
	}
}

func TestImportRecordsFulfilled(t *testing.T) {
	f := newFixture(t, store.Options{})
	keys := newKeys(t, 3)
	res, err := f.s.ImportKeys(ctx, []store.ImportEntry{
		{Line: 1, Key: keys[0], KeyID: 3259666517449, Edition: "home"},
		{Line: 2, Key: keys[1], KeyID: 3259666517450, Edition: "pro"},
		{Line: 3, Key: keys[2], KeyID: 3259666517451, Edition: "pro"},
	}, store.ImportOptions{Source: "import:keys.csv", Actor: "alice"})
	if err != nil || res.Imported != 3 {
		t.Fatalf("%+v, %v", res, err)
	}
	for i, id := range []keystation.KeyID{3259666517449, 3259666517450, 3259666517451} {
		ki := f.keyInfo(id)
		if ki.State != keystation.StateAvailable || ki.Source != "import:keys.csv" || ki.Preview != keys[i].Preview() {
			t.Errorf("key %s: %+v", id, ki)
		}
		if len(ki.History) != 1 {
			t.Fatalf("key %s has %d history rows, want 1", id, len(ki.History))
		}
		h := ki.History[0]
		if h.From != "" || h.To != keystation.StateAvailable || h.Reason != keystation.ReasonFulfilled || h.Actor != "alice" {
			t.Errorf("key %s history: %+v", id, h)
		}
	}
	if n := f.count(`SELECT COUNT(*) FROM key_history WHERE reason = 'Fulfilled'`); n != 3 {
		t.Errorf("%d Fulfilled rows, want 3", n)
	}
	if _, err := f.s.KeyByID(ctx, 1234567890123); keystation.ErrorCode(err) != keystation.ENOTFOUND {
		t.Errorf("KeyByID of an unknown keyId: %v", err)
	}
}
