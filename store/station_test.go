package store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"keystation"
	"keystation/internal/testutil"
	"keystation/seal"
	"keystation/store"
)

// stationFix is a station database in t.TempDir() with a settable clock.
type stationFix struct {
	t    testing.TB
	db   *store.StationDB
	path string
	box  *seal.Box
	mu   sync.Mutex
	now  time.Time
}

func newStationFix(t testing.TB, burnCap int) *stationFix {
	t.Helper()
	box, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &stationFix{t: t, box: box, path: filepath.Join(t.TempDir(), store.StationFile),
		now: time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)}
	f.open(burnCap)
	return f
}

func (f *stationFix) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(time.Millisecond)
	return f.now
}

func (f *stationFix) open(burnCap int) {
	f.t.Helper()
	db, err := store.OpenStationDB(context.Background(), f.path, store.Options{Box: f.box, Now: f.clock, BurnCap: burnCap})
	if err != nil {
		f.t.Fatalf("OpenStationDB: %v", err)
	}
	f.db = db
	f.t.Cleanup(func() { db.Close() })
}

// reopen closes and opens the database again (a restart).
func (f *stationFix) reopen() {
	f.t.Helper()
	if err := f.db.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.open(f.db.BurnCap())
}

// grant stores n leased keys of edition with keyIds from first, as a sync
// answer would; it returns the keys.
func (f *stationFix) grant(edition string, first keystation.KeyID, n int, seed uint64) []keystation.SyncGrant {
	f.t.Helper()
	keys := testutil.GenerateKeys(n, seed)
	resp := keystation.SyncResponse{ServerTime: f.clock()}
	for i, k := range keys {
		resp.Grants = append(resp.Grants, keystation.SyncGrant{KeyID: first + keystation.KeyID(i), Key: k, Edition: edition})
	}
	if err := f.db.ApplySync(context.Background(), &keystation.SyncRequest{}, &resp, 0); err != nil {
		f.t.Fatalf("ApplySync: %v", err)
	}
	return resp.Grants
}

func (f *stationFix) assign(sn, edition string) (store.KeyAssignment, error) {
	return f.db.AssignKey(context.Background(), store.KeyRequest{Machine: keystation.Machine{SN: sn, Model: "M-100"}, Edition: edition})
}

func (f *stationFix) mustAssign(sn, edition string) store.KeyAssignment {
	f.t.Helper()
	a, err := f.assign(sn, edition)
	if err != nil {
		f.t.Fatalf("AssignKey(%s): %v", sn, err)
	}
	return a
}

func testHardware(sn string) *keystation.Hardware {
	return &keystation.Hardware{SerialNumber: sn, Model: "M-100", CPU: "Test CPU", OS: keystation.OSInfo{Caption: "Windows 11 Pro"}}
}

// record records an attempt on a's key for machine sn.
func (f *stationFix) record(a store.KeyAssignment, sn string, o store.AttemptOutcome, code, msg string) string {
	f.t.Helper()
	r := keystation.Report{Machine: keystation.Machine{SN: sn, Model: "M-100"}, OSVersion: "Windows 11 Pro", Message: msg, Code: code, Hardware: testHardware(sn)}
	id, err := f.db.RecordAttempt(context.Background(), store.Attempt{Assignment: a, Outcome: o, Report: r})
	if err != nil {
		f.t.Fatalf("RecordAttempt(%s): %v", o, err)
	}
	return id
}

func (f *stationFix) status() store.StationStatus {
	f.t.Helper()
	st, err := f.db.Status(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

func stWantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := keystation.ErrorCode(err); got != code {
		t.Fatalf("error %v: code %q, want %q", err, got, code)
	}
}

func TestStationSameMachineGetsSameKey(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 1_000_000_000_001, 5, 1)
	tests := []struct {
		name string
		sn   string
	}{
		{"same serial", "SN-1"},
		{"lower case and spaces", "  sn-1 "},
		{"again", "SN-1"},
	}
	first := f.mustAssign("SN-1", "pro")
	if first.Reused {
		t.Fatal("first assignment marked reused")
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := f.mustAssign(tc.sn, "pro")
			if a.KeyID != first.KeyID || a.Key != first.Key || !a.Reused {
				t.Fatalf("got key %s (reused %v), want %s again", a.KeyID, a.Reused, first.KeyID)
			}
		})
	}
	other := f.mustAssign("SN-2", "pro")
	if other.KeyID == first.KeyID {
		t.Fatal("another machine got the same key")
	}
	// After activation the machine still gets its key back, never a second.
	f.record(first, "SN-1", store.AttemptActivated, "", "Licensed")
	if a := f.mustAssign("SN-1", "pro"); a.KeyID != first.KeyID || a.State != store.LocalActivated {
		t.Fatalf("after activation: key %s state %s, want %s activated", a.KeyID, a.State, first.KeyID)
	}
	_, err := f.assign("SN-1", "home")
	stWantCode(t, err, keystation.EEDITIONMISMATCH)
	if got := f.status().Buffer["pro"].Available; got != 3 {
		t.Fatalf("available pro keys: %d, want 3", got)
	}
}

func TestStationKeyFaultBurnsKeyAndCap(t *testing.T) {
	f := newStationFix(t, 2)
	f.grant("pro", 1_000_000_000_001, 5, 2)
	a1 := f.mustAssign("SN-1", "pro")
	f.record(a1, "SN-1", store.AttemptKeyFault, "0xC004C003", "blocked")
	a2 := f.mustAssign("SN-1", "pro")
	if a2.KeyID == a1.KeyID || a2.Reused || a2.Burnt != 1 {
		t.Fatalf("after a key fault: key %s reused %v burnt %d, want a new key and 1 burnt", a2.KeyID, a2.Reused, a2.Burnt)
	}
	f.record(a2, "SN-1", store.AttemptKeyFault, "0xC004C003", "blocked")
	_, err := f.assign("SN-1", "pro")
	stWantCode(t, err, keystation.EBURNLIMIT)
	// The cap is per machine: another PC still gets keys.
	if a := f.mustAssign("SN-2", "pro"); a.KeyID == a1.KeyID || a.KeyID == a2.KeyID {
		t.Fatal("a burnt key was issued again")
	}
	// Recording on a burnt key is refused.
	_, err = f.db.RecordAttempt(context.Background(), store.Attempt{Assignment: a1, Outcome: store.AttemptActivated,
		Report: keystation.Report{Machine: keystation.Machine{SN: "SN-1", Model: "M-100"}, OSVersion: "Windows 11 Pro", Hardware: testHardware("SN-1")}})
	stWantCode(t, err, keystation.EILLEGALSTATE)
}

func TestStationPCFaultKeepsKey(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 1_000_000_000_001, 3, 3)
	a := f.mustAssign("SN-1", "pro")
	for range 3 {
		f.record(a, "SN-1", store.AttemptPCFault, "0xC004F074", "No KMS")
		b := f.mustAssign("SN-1", "pro")
		if b.KeyID != a.KeyID || !b.Reused || b.Burnt != 0 {
			t.Fatalf("after a PC fault: key %s burnt %d, want %s again and none burnt", b.KeyID, b.Burnt, a.KeyID)
		}
	}
	st := f.status()
	if st.Buffer["pro"].Available != 2 || st.Buffer["pro"].Assigned != 1 || st.Outbox != 3 {
		t.Fatalf("buffer %+v outbox %d, want 2 available, 1 assigned, 3 reports", st.Buffer["pro"], st.Outbox)
	}
	// A record for another machine is refused.
	_, err := f.db.RecordAttempt(context.Background(), store.Attempt{Assignment: a, Outcome: store.AttemptActivated,
		Report: keystation.Report{Machine: keystation.Machine{SN: "SN-9", Model: "M-100"}, OSVersion: "Windows 11 Pro", Hardware: testHardware("SN-9")}})
	stWantCode(t, err, keystation.ENOTASSIGNED)
}

func TestStationRevokedKeyNeverUsed(t *testing.T) {
	f := newStationFix(t, 3)
	g := f.grant("pro", 1_000_000_000_001, 3, 4)
	a := f.mustAssign("SN-1", "pro") // holds g[0]
	// The server revokes the assigned key and an available one.
	resp := keystation.SyncResponse{ServerTime: f.clock(), Revoked: []keystation.KeyID{g[0].KeyID, g[1].KeyID}}
	if err := f.db.ApplySync(context.Background(), &keystation.SyncRequest{}, &resp, 0); err != nil {
		t.Fatal(err)
	}
	b := f.mustAssign("SN-1", "pro")
	if b.KeyID != g[2].KeyID {
		t.Fatalf("after revocation got key %s, want %s (the only one left)", b.KeyID, g[2].KeyID)
	}
	_, err := f.assign("SN-2", "pro")
	stWantCode(t, err, keystation.EPOOLEMPTY)
	// A revoked key granted again is not taken back.
	re := keystation.SyncResponse{ServerTime: f.clock(), Grants: []keystation.SyncGrant{g[1]}}
	if err := f.db.ApplySync(context.Background(), &keystation.SyncRequest{}, &re, 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.assign("SN-2", "pro")
	stWantCode(t, err, keystation.EPOOLEMPTY)
	// Revoked keys are not listed as held.
	req, err := f.db.NextSync(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Holding) != 0 {
		t.Fatalf("holding %v, want none", req.Holding)
	}
	// ...and the one granted again is given back, so the server does not
	// count it as leased here.
	if len(req.Release) != 1 || req.Release[0] != g[1].KeyID {
		t.Fatalf("release %v, want [%s]", req.Release, g[1].KeyID)
	}
	// The PC that was using the revoked key: its report is still queued.
	f.record(a, "SN-1", store.AttemptActivated, "", "Licensed")
	if f.status().Outbox != 1 {
		t.Fatal("the report of a key revoked during use was not queued")
	}
}

func TestStationOutboxDurableAndOrdered(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 1_000_000_000_001, 20, 5)
	var ids []string
	for i := range 12 {
		sn := "SN-" + string(rune('A'+i))
		a := f.mustAssign(sn, "pro")
		ids = append(ids, f.record(a, sn, store.AttemptActivated, "", "Licensed"))
	}
	f.reopen() // the reports survive a restart
	ctx := context.Background()
	req, err := f.db.NextSync(ctx, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Reports) != 5 || req.Backlog != 7 {
		t.Fatalf("batch of %d, backlog %d; want 5 and 7", len(req.Reports), req.Backlog)
	}
	for i, r := range req.Reports {
		if r.ID != ids[i] {
			t.Fatalf("report %d is %s, want %s (order)", i, r.ID, ids[i])
		}
		if !r.Success || r.Hardware == nil || r.Key != "" || r.Edition != "pro" {
			t.Fatalf("report %d: %+v", i, r)
		}
	}
	// The server applies the first, finds the second already applied,
	// flags the third, rejects the fourth and does not answer the fifth.
	resp := keystation.SyncResponse{ServerTime: f.clock(), Results: []keystation.SyncResult{
		{ID: ids[0], Status: keystation.SyncApplied},
		{ID: ids[1], Status: keystation.SyncDuplicate},
		{ID: ids[2], Status: keystation.SyncConflict, Code: keystation.ECONFLICT, Message: "reclaimed"},
		{ID: ids[3], Status: keystation.SyncRejected, Code: keystation.EINVALID, Message: "bad"},
	}}
	if err := f.db.ApplySync(ctx, &req, &resp, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	st := f.status()
	if st.Outbox != 8 || st.Attention != 1 || st.Conflicts != 1 || st.Delivered != 3 || st.ClockSkew != 1500*time.Millisecond {
		t.Fatalf("status %+v", st)
	}
	next, err := f.db.NextSync(ctx, 5, 0)
	if err != nil {
		t.Fatal(err)
	}
	if next.Reports[0].ID != ids[4] || next.Reports[1].ID != ids[5] {
		t.Fatalf("next batch starts with %s, want %s (the unanswered one) then %s", next.Reports[0].ID, ids[4], ids[5])
	}
	// Byte limit: the first report always goes, then the budget applies.
	small, err := f.db.NextSync(ctx, 5, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(small.Reports) != 1 {
		t.Fatalf("byte-limited batch of %d, want 1", len(small.Reports))
	}
	hist, err := f.db.History(ctx, store.HistoryFilter{Sync: store.SyncRejected})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 1 || hist[0].ReportID != ids[3] || hist[0].SyncNote != "bad" {
		t.Fatalf("rejected history %+v", hist)
	}
	if n, err := f.db.RetryRejected(ctx); err != nil || n != 1 {
		t.Fatalf("RetryRejected: %d, %v", n, err)
	}
}

func TestStationGrantsAndAcks(t *testing.T) {
	f := newStationFix(t, 3)
	ctx := context.Background()
	g := f.grant("home", 1_000_000_000_001, 3, 6)
	req, err := f.db.NextSync(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Acks) != 3 || len(req.Holding) != 3 || req.Targets["home"] != store.DefaultTarget {
		t.Fatalf("acks %v holding %v targets %v", req.Acks, req.Holding, req.Targets)
	}
	// The answer got lost: the server re-sends the same grants.
	resp := keystation.SyncResponse{ServerTime: f.clock(), Grants: g}
	if err := f.db.ApplySync(ctx, &req, &resp, 0); err != nil {
		t.Fatal(err)
	}
	if n := f.status().Buffer["home"].Available; n != 3 {
		t.Fatalf("%d home keys after a re-sent grant, want 3", n)
	}
	req2, _ := f.db.NextSync(ctx, 0, 0)
	if len(req2.Acks) != 3 {
		t.Fatalf("re-sent grants not acknowledged again: %v", req2.Acks)
	}
	if err := f.db.ApplySync(ctx, &req2, &keystation.SyncResponse{ServerTime: f.clock()}, 0); err != nil {
		t.Fatal(err)
	}
	req3, _ := f.db.NextSync(ctx, 0, 0)
	if len(req3.Acks) != 0 {
		t.Fatalf("acks after they were delivered: %v", req3.Acks)
	}
	if err := f.db.SetTarget(ctx, "home", store.BufferTarget{Target: 50, LowWater: 10}); err != nil {
		t.Fatal(err)
	}
	req4, _ := f.db.NextSync(ctx, 0, 0)
	if req4.Targets["home"] != 50 || req4.Targets["pro"] != store.DefaultTarget {
		t.Fatalf("targets %v", req4.Targets)
	}
	// Editions from the server replace the local rules.
	eds := append(keystation.DefaultEditions(), keystation.Edition{Slug: "edu", Name: "Education", Patterns: []string{"education"}})
	if err := f.db.ApplySync(ctx, &keystation.SyncRequest{}, &keystation.SyncResponse{ServerTime: f.clock(), Editions: eds}, 0); err != nil {
		t.Fatal(err)
	}
	got, err := f.db.Editions(ctx)
	if err != nil || len(got) != 3 {
		t.Fatalf("editions %v, %v", got, err)
	}
}

func writeList(t *testing.T, dir, name, body string) (string, string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(body))
	return p, hex.EncodeToString(sum[:])
}

func TestStationKeyListImport(t *testing.T) {
	f := newStationFix(t, 3)
	ctx := context.Background()
	keys := testutil.GenerateKeys(4, 7)
	g := f.grant("pro", 1_000_000_000_001, 1, 8) // a leased key the list repeats
	lease, _ := keystation.ParseProductKey(g[0].Key)
	entries := []store.ImportEntry{
		{Line: 2, Key: keystation.ProductKey(keys[0]), KeyID: 2_000_000_000_001, Edition: "pro"},
		{Line: 3, Key: keystation.ProductKey(keys[1]), Edition: "pro"},
		{Line: 4, Key: keystation.ProductKey(keys[2]), Edition: "server"},
		{Line: 5, Key: lease, Edition: "pro"},
		{Line: 6, Key: keystation.ProductKey(keys[3]), KeyID: g[0].KeyID, Edition: "home"},
	}
	_, sum := writeList(t, t.TempDir(), "keys.csv", strings.Join(keys, "\n"))
	in := store.KeyListImport{File: "keys.csv", SHA256: sum, Lines: 6, Entries: entries}
	res, err := f.db.ImportKeyList(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.AlreadyImported || res.Imported != 2 || len(res.Skipped) != 2 || len(res.Rejected) != 1 || res.Rejected[0].Line != 4 {
		t.Fatalf("first import: %+v", res)
	}
	again, err := f.db.ImportKeyList(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if !again.AlreadyImported || again.Imported != 0 || again.SourceID != res.SourceID {
		t.Fatalf("second import of the same file: %+v", again)
	}
	// The list's keys are preferred while its batch is active and carry
	// their provenance.
	a, err := f.db.AssignKey(ctx, store.KeyRequest{Machine: keystation.Machine{SN: "SN-1", Model: "M"}, Edition: "pro", PreferSource: res.SourceID})
	if err != nil {
		t.Fatal(err)
	}
	if a.Source != store.SourceUSB || a.Provenance == nil || a.Provenance.SHA256 != sum || a.Provenance.Line != 2 || a.KeyID != 2_000_000_000_001 {
		t.Fatalf("assignment %+v provenance %+v", a, a.Provenance)
	}
	id, err := f.db.RecordAttempt(ctx, store.Attempt{Assignment: a, Outcome: store.AttemptActivated, Report: keystation.Report{
		Machine: keystation.Machine{SN: "SN-1", Model: "M"}, OSVersion: "Windows 11 Pro", Message: "ok", Hardware: testHardware("SN-1")}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := f.db.NextSync(ctx, 0, 0)
	if len(req.Reports) != 1 || req.Reports[0].ID != id || req.Reports[0].Key != keys[0] || req.Reports[0].Provenance == nil {
		t.Fatalf("USB report %+v", req.Reports)
	}
	// Keys without a keyId got a valid local one.
	b := f.mustAssign("SN-2", "pro") // leased key first without a batch
	if b.Source != store.SourceLease {
		t.Fatalf("without a batch the leased key comes first, got %s", b.Source)
	}
	c := f.mustAssign("SN-3", "pro")
	if c.Source != store.SourceUSB || !c.KeyID.Valid() {
		t.Fatalf("generated keyId %s from %s", c.KeyID, c.Source)
	}
	rows, err := f.db.SourceResults(ctx, res.SourceID)
	if err != nil || len(rows) != 1 || rows[0].SN != "SN-1" || rows[0].Status != "activated" {
		t.Fatalf("source results %+v, %v", rows, err)
	}
}

func TestStationAtRestAndDataKey(t *testing.T) {
	f := newStationFix(t, 3)
	g := f.grant("pro", 1_000_000_000_001, 2, 9)
	a := f.mustAssign("SERIAL-XYZZY-42", "pro")
	f.record(a, "SERIAL-XYZZY-42", store.AttemptActivated, "", "Licensed")
	if err := f.db.SaveEnrolment(context.Background(), "http://127.0.0.1:1", keystation.EnrolResponse{StationID: 4, Name: "line 1", Credential: "ks1.secret-credential-value"}); err != nil {
		t.Fatal(err)
	}
	err := f.db.SaveEnrolment(context.Background(), "http://127.0.0.1:1", keystation.EnrolResponse{StationID: 5, Name: "x", Credential: "y"})
	stWantCode(t, err, keystation.ECONFLICT)
	f.db.Close()
	var raw []byte
	for _, suffix := range []string{"", "-wal"} {
		b, _ := os.ReadFile(f.path + suffix)
		raw = append(raw, b...)
	}
	for _, secret := range []string{g[0].Key, g[1].Key, strings.ReplaceAll(g[0].Key, "-", ""), "SERIAL-XYZZY-42", "secret-credential-value"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("the database file holds %q in the clear", secret)
		}
	}
	other, _ := seal.New(bytes.Repeat([]byte{8}, 32))
	_, err = store.OpenStationDB(context.Background(), f.path, store.Options{Box: other})
	if err == nil || !strings.Contains(err.Error(), "data key") {
		t.Fatalf("opening with another data key: %v", err)
	}
	f.open(3)
	e, err := f.db.Enrolment(context.Background())
	if err != nil || e.Credential != "ks1.secret-credential-value" || e.StationID != 4 {
		t.Fatalf("enrolment %+v, %v", e, err)
	}
}

func TestStationConcurrentAssignDistinctKeys(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 1_000_000_000_001, 40, 10)
	var mu sync.Mutex
	seen := map[keystation.KeyID]string{}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sn := "SN-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
			a, err := f.assign(sn, "pro")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if prev, ok := seen[a.KeyID]; ok && prev != sn {
				t.Errorf("key %s given to %s and %s", a.KeyID, prev, sn)
			}
			seen[a.KeyID] = sn
		}()
	}
	wg.Wait()
}

func TestStationActivatedKeyStaysBound(t *testing.T) {
	f := newStationFix(t, 3)
	f.grant("pro", 1_000_000_000_001, 3, 11)
	a := f.mustAssign("SN-1", "pro")
	f.record(a, "SN-1", store.AttemptActivated, "", "Licensed")
	again := f.mustAssign("SN-1", "pro")
	tests := []struct {
		name    string
		outcome store.AttemptOutcome
		code    string
	}{
		{"key fault refused", store.AttemptKeyFault, keystation.EILLEGALSTATE},
		{"pc fault refused", store.AttemptPCFault, keystation.EILLEGALSTATE},
		{"success recorded again", store.AttemptActivated, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.db.RecordAttempt(context.Background(), store.Attempt{Assignment: again, Outcome: tc.outcome, Report: keystation.Report{
				Machine: keystation.Machine{SN: "SN-1", Model: "M-100"}, OSVersion: "Windows 11 Pro", Message: "x", Code: "0xC004C003", Hardware: testHardware("SN-1")}})
			if tc.code == "" && err != nil || tc.code != "" && keystation.ErrorCode(err) != tc.code {
				t.Fatalf("got %v, want code %q", err, tc.code)
			}
		})
	}
	if b := f.mustAssign("SN-1", "pro"); b.KeyID != a.KeyID || b.State != store.LocalActivated {
		t.Fatalf("the PC's key is %s (%s), want %s activated", b.KeyID, b.State, a.KeyID)
	}
}
