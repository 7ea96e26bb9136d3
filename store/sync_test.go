package store_test

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"keystation"
	"keystation/store"
	"keystation/syncfile"
)

// enrolStation enrols a station with a fresh single-use token.
func (f *fixture) enrolStation(name string) store.Station {
	f.t.Helper()
	tok, err := f.s.CreateEnrolToken(ctx, store.EnrolTokenOptions{Actor: "tester"})
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.s.Enrol(ctx, keystation.EnrolRequest{Token: tok, Name: name}, "127.0.0.1")
	if err != nil {
		f.t.Fatalf("Enrol: %v", err)
	}
	st, err := f.s.StationByCredential(ctx, resp.Credential)
	if err != nil {
		f.t.Fatalf("StationByCredential: %v", err)
	}
	return st
}

func (f *fixture) sync(st store.Station, req keystation.SyncRequest) keystation.SyncResponse {
	f.t.Helper()
	resp, err := f.s.Sync(ctx, st, req, "127.0.0.1")
	if err != nil {
		f.t.Fatalf("Sync: %v", err)
	}
	return resp
}

func grantIDs(gs []keystation.SyncGrant) []keystation.KeyID {
	out := make([]keystation.KeyID, len(gs))
	for i, g := range gs {
		out[i] = g.KeyID
	}
	return out
}

func syncReport(id keystation.KeyID, sn string, success bool, msg string) keystation.SyncReport {
	r := keystation.SyncReport{Edition: "home", Report: keystation.Report{ID: uuid.NewString(), KeyID: id, Machine: machine(sn),
		OSVersion: osHome, Success: success, Message: msg, At: time.Now()}}
	if success {
		r.Hardware = &keystation.Hardware{CPU: "cpu", OS: keystation.OSInfo{Caption: osHome}}
	}
	return r
}

func TestEnrolTokensAndCredentials(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, store.Options{Now: func() time.Time { return now }})
	tok, err := f.s.CreateEnrolToken(ctx, store.EnrolTokenOptions{Uses: 2, TTL: time.Hour, Actor: "tester"})
	if err != nil {
		t.Fatal(err)
	}
	var creds []string
	for i := range 2 {
		resp, err := f.s.Enrol(ctx, keystation.EnrolRequest{Token: tok, Name: fmt.Sprintf("line-%d", i)}, "")
		if err != nil {
			t.Fatalf("enrol %d: %v", i, err)
		}
		if len(resp.Editions) < 2 || resp.StationID == 0 {
			t.Fatalf("enrol answer = %+v", resp)
		}
		creds = append(creds, resp.Credential)
	}
	_, err = f.s.Enrol(ctx, keystation.EnrolRequest{Token: tok, Name: "third"}, "")
	wantCode(t, err, keystation.EUNAUTHORIZED)

	expiring, _ := f.s.CreateEnrolToken(ctx, store.EnrolTokenOptions{TTL: time.Minute, Actor: "tester"})
	now = now.Add(2 * time.Minute)
	_, err = f.s.Enrol(ctx, keystation.EnrolRequest{Token: expiring, Name: "late"}, "")
	wantCode(t, err, keystation.EUNAUTHORIZED)

	st, err := f.s.StationByCredential(ctx, creds[0])
	if err != nil || st.Name != "line-0" {
		t.Fatalf("station = %+v, %v", st, err)
	}
	tests := []struct {
		name, cred, code string
	}{
		{"wrong secret", creds[0][:len(creds[0])-2] + "xx", keystation.EUNAUTHORIZED},
		{"other station's id", strings.Replace(creds[0], ".1.", ".2.", 1), keystation.EUNAUTHORIZED},
		{"malformed", "garbage", keystation.EUNAUTHORIZED},
		{"unknown station", "ks1.99.abc", keystation.EUNAUTHORIZED},
		{"empty", "", keystation.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.s.StationByCredential(ctx, tt.cred)
			wantCode(t, err, tt.code)
		})
	}
	if err := f.s.RevokeStation(ctx, 0, st.ID, store.AuditBy{User: "tester"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.StationByCredential(ctx, creds[0])
	wantCode(t, err, keystation.ESTATIONREVOKED)
	if f.count(`SELECT COUNT(*) FROM enrol_tokens WHERE token_hash LIKE 'ks-enrol-%'`) != 0 {
		t.Fatal("a plain enrolment token is stored")
	}
}

func TestSyncGrantsUntilAcknowledged(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 10)
	f.importN("pro", 10)
	st := f.enrolStation("line-1")

	first := f.sync(st, keystation.SyncRequest{Targets: map[string]int{"home": 3, "pro": 2}})
	if len(first.Grants) != 5 || first.Levels["home"] != 3 || first.Levels["pro"] != 2 {
		t.Fatalf("first sync: %d grants, levels %v", len(first.Grants), first.Levels)
	}
	for _, g := range first.Grants {
		if _, err := keystation.ParseProductKey(g.Key); err != nil {
			t.Fatalf("grant carries a bad key: %v", err)
		}
	}
	// The answer was lost: the same grants come again, no new ones.
	again := f.sync(st, keystation.SyncRequest{Targets: map[string]int{"home": 3, "pro": 2}})
	if fmt.Sprint(grantIDs(again.Grants)) != fmt.Sprint(grantIDs(first.Grants)) {
		t.Fatalf("re-sent grants %v, want %v", grantIDs(again.Grants), grantIDs(first.Grants))
	}
	ids := grantIDs(first.Grants)
	acked := f.sync(st, keystation.SyncRequest{Acks: ids, Holding: ids, Targets: map[string]int{"home": 3, "pro": 2}})
	if len(acked.Grants) != 0 || len(acked.Revoked) != 0 {
		t.Fatalf("after acks: grants %v revoked %v", grantIDs(acked.Grants), acked.Revoked)
	}
	if got := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'leased' AND station_id = ?`, st.ID); got != 5 {
		t.Fatalf("leased = %d, want 5", got)
	}
	// Raising a target tops up by the difference only.
	more := f.sync(st, keystation.SyncRequest{Acks: ids, Holding: ids, Targets: map[string]int{"home": 5, "pro": 2}})
	if len(more.Grants) != 2 || more.Levels["home"] != 5 {
		t.Fatalf("top-up: %d grants, levels %v", len(more.Grants), more.Levels)
	}
	// Releasing gives keys back to the pool with the station in their history.
	rel := f.sync(st, keystation.SyncRequest{Release: grantIDs(more.Grants), Targets: map[string]int{}})
	if rel.Levels["home"] != 3 {
		t.Fatalf("after release levels = %v", rel.Levels)
	}
	rec, err := f.s.Reconcile(ctx, st.ID)
	if err != nil || rec.Leased != 5 || rec.Returned != 2 {
		t.Fatalf("reconciliation = %+v, %v", rec, err)
	}
	f.checkHistory()
}

func TestSyncAppliesEachReportOnce(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 10)
	st := f.enrolStation("line-1")
	g := f.sync(st, keystation.SyncRequest{Targets: map[string]int{"home": 4}}).Grants

	ok := syncReport(g[0].KeyID, "SN-OK", true, "Product activated successfully.")
	keyFault := syncReport(g[1].KeyID, "SN-KF", false, "0xC004C003 The activation server determined the specified product key has been blocked.")
	pcFault := syncReport(g[2].KeyID, "SN-PC", false, "0x8007232B DNS name does not exist.")
	bad := syncReport(g[3].KeyID, "SN-BAD", true, "ok")
	bad.ID = "not-a-uuid"
	req := keystation.SyncRequest{Reports: []keystation.SyncReport{ok, keyFault, pcFault, bad}, Targets: map[string]int{}}
	resp := f.sync(st, req)
	want := []string{keystation.SyncApplied, keystation.SyncApplied, keystation.SyncApplied, keystation.SyncRejected}
	for i, r := range resp.Results {
		if r.Status != want[i] {
			t.Errorf("result %d = %+v, want %s", i, r, want[i])
		}
	}
	// The response was lost: the station sends the same batch again.
	resp = f.sync(st, req)
	for i, r := range resp.Results[:3] {
		if r.Status != keystation.SyncDuplicate {
			t.Errorf("re-sent result %d = %+v, want duplicate", i, r)
		}
	}
	if n := f.count(`SELECT COUNT(*) FROM reports`); n != 3 {
		t.Fatalf("reports stored = %d, want 3", n)
	}
	states := map[keystation.KeyID]keystation.KeyState{}
	for _, id := range grantIDs(g[:4]) {
		states[id] = f.keyInfo(id).State
	}
	if states[g[0].KeyID] != keystation.StateActivated || states[g[1].KeyID] != keystation.StateFailed ||
		states[g[2].KeyID] != keystation.StateAssigned || states[g[3].KeyID] != keystation.StateLeased {
		t.Fatalf("states = %v", states)
	}
	if msg := f.keyInfo(g[1].KeyID).History; msg[len(msg)-1].ResultMessage != keyFault.Message || msg[len(msg)-1].HRESULT != "0xC004C003" {
		t.Fatalf("key fault history = %+v", msg[len(msg)-1])
	}
	// The PC is fixed; the retry with the same key on the same PC succeeds.
	retry := syncReport(g[2].KeyID, "SN-PC", true, "ok")
	if r := f.sync(st, keystation.SyncRequest{Reports: []keystation.SyncReport{retry}}).Results[0]; r.Status != keystation.SyncApplied {
		t.Fatalf("retry after PC fault = %+v", r)
	}
	rec, _ := f.s.Reconcile(ctx, st.ID)
	if rec.Used != 3 || rec.Activated != 2 || rec.Failed != 1 || rec.Conflicting != 0 {
		t.Fatalf("reconciliation = %+v", rec)
	}
	f.checkHistory()
}

func TestSyncReclaimedAndForeignKeysAreConflicts(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 10)
	a, b := f.enrolStation("line-a"), f.enrolStation("line-b")
	ga := f.sync(a, keystation.SyncRequest{Targets: map[string]int{"home": 3}}).Grants
	gb := f.sync(b, keystation.SyncRequest{Targets: map[string]int{"home": 3}}).Grants
	seen := map[keystation.KeyID]bool{}
	for _, g := range append(append([]keystation.SyncGrant{}, ga...), gb...) {
		if seen[g.KeyID] {
			t.Fatalf("key %s granted to both stations (invariant 2)", g.KeyID)
		}
		seen[g.KeyID] = true
	}
	// Station b reports a key leased to a.
	foreign := syncReport(ga[0].KeyID, "SN-1", true, "ok")
	if r := f.sync(b, keystation.SyncRequest{Reports: []keystation.SyncReport{foreign}}).Results[0]; r.Status != keystation.SyncConflict {
		t.Fatalf("foreign key report = %+v", r)
	}
	if st := f.keyInfo(ga[0].KeyID).State; st != keystation.StateLeased {
		t.Fatalf("foreign key changed to %s", st)
	}
	// A supervisor reclaims a's lease while a is offline; a used one key.
	if n, err := f.s.ReclaimStation(ctx, 0, a.ID, store.AuditBy{User: "supervisor"}); err != nil || n != 3 {
		t.Fatalf("reclaim = %d, %v", n, err)
	}
	used := syncReport(ga[1].KeyID, "SN-2", true, "ok")
	resp := f.sync(a, keystation.SyncRequest{Reports: []keystation.SyncReport{used}, Holding: grantIDs(ga[2:]), Targets: map[string]int{}})
	if resp.Results[0].Status != keystation.SyncConflict || !strings.Contains(resp.Results[0].Message, "no longer leased") {
		t.Fatalf("report of a reclaimed key = %+v", resp.Results[0])
	}
	if len(resp.Revoked) != 1 || resp.Revoked[0] != ga[2].KeyID {
		t.Fatalf("revoked = %v, want [%s]", resp.Revoked, ga[2].KeyID)
	}
	if st := f.keyInfo(ga[1].KeyID).State; st != keystation.StateAvailable {
		t.Fatalf("reclaimed key was silently applied: %s", st)
	}
	if n := f.count(`SELECT COUNT(*) FROM reports WHERE outcome = 'conflict' AND conflict_reason <> ''`); n != 2 {
		t.Fatalf("conflict reports kept = %d, want 2", n)
	}
	ra, _ := f.s.Reconcile(ctx, a.ID)
	rb, _ := f.s.Reconcile(ctx, b.ID)
	if ra.Returned != 3 || ra.Conflicting != 1 || rb.Conflicting != 1 || rb.Leased != 3 {
		t.Fatalf("reconciliation a=%+v b=%+v", ra, rb)
	}
	f.checkHistory()
}

func TestSyncRecordsKeysFromUSBLists(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("pro", 2)
	st := f.enrolStation("usb-line")
	k := newKeys(t, 1)[0]
	r := syncReport(keystation.KeyID(3259666517449), "SN-USB", true, "ok")
	r.Edition, r.Key = "pro", k.Plain()
	r.Provenance = &keystation.Provenance{File: "keys.csv", SHA256: strings.Repeat("ab", 32), Line: 7}
	if res := f.sync(st, keystation.SyncRequest{Reports: []keystation.SyncReport{r}}).Results[0]; res.Status != keystation.SyncApplied {
		t.Fatalf("USB key report = %+v", res)
	}
	ki := f.keyInfo(3259666517449)
	if ki.State != keystation.StateActivated || !strings.Contains(ki.Source, "usb:keys.csv") || ki.Edition != "pro" {
		t.Fatalf("recorded key = %+v", ki)
	}
	// The same key used on another PC is a conflict, not a second binding.
	r2 := syncReport(keystation.KeyID(3259666517449), "SN-OTHER", true, "ok")
	r2.Edition, r2.Key, r2.Provenance = "pro", k.Plain(), r.Provenance
	if res := f.sync(st, keystation.SyncRequest{Reports: []keystation.SyncReport{r2}}).Results[0]; res.Status != keystation.SyncConflict {
		t.Fatalf("second machine with the same USB key = %+v", res)
	}
	f.checkHistory()
}

func TestSyncConcurrentStationsNeverShareKeys(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 200)
	const stations = 8
	sts := make([]store.Station, stations)
	for i := range sts {
		sts[i] = f.enrolStation(fmt.Sprintf("line-%d", i))
	}
	var mu sync.Mutex
	owner := map[keystation.KeyID]int64{}
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				resp, err := f.s.Sync(ctx, st, keystation.SyncRequest{Targets: map[string]int{"home": 40}}, "")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, g := range resp.Grants {
					if o, ok := owner[g.KeyID]; ok && o != st.ID {
						t.Errorf("key %s granted to stations %d and %d", g.KeyID, o, st.ID)
					}
					owner[g.KeyID] = st.ID
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(owner) != 200 {
		t.Fatalf("%d keys granted, want the whole pool of 200", len(owner))
	}
	f.checkHistory()
}

func TestSyncFileRoundTrip(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 5)
	tok, _ := f.s.CreateEnrolToken(ctx, store.EnrolTokenOptions{Actor: "tester"})
	enr, err := f.s.Enrol(ctx, keystation.EnrolRequest{Token: tok, Name: "air-gapped"}, "")
	if err != nil {
		t.Fatal(err)
	}
	k, id, err := syncfile.DeriveKey(enr.Credential)
	if err != nil || id != enr.StationID {
		t.Fatalf("DeriveKey: %d %v", id, err)
	}
	var req bytes.Buffer
	if err := syncfile.WriteRequest(&req, k, id, keystation.SyncRequest{Targets: map[string]int{"home": 2}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.s.SyncFile(ctx, req.Bytes(), "usb")
	if err != nil {
		t.Fatalf("SyncFile: %v", err)
	}
	resp, err := syncfile.ReadResponse(out, k, id, req.Bytes())
	if err != nil || len(resp.Grants) != 2 {
		t.Fatalf("response: %+v, %v", resp, err)
	}
	// The same request carried twice grants nothing new (the grants are re-sent).
	out2, err := f.s.SyncFile(ctx, req.Bytes(), "usb")
	if err != nil {
		t.Fatal(err)
	}
	resp2, _ := syncfile.ReadResponse(out2, k, id, req.Bytes())
	if fmt.Sprint(grantIDs(resp2.Grants)) != fmt.Sprint(grantIDs(resp.Grants)) {
		t.Fatalf("second answer grants %v, want %v", grantIDs(resp2.Grants), grantIDs(resp.Grants))
	}
	// A file forged without the station's credential is refused.
	var forged bytes.Buffer
	syncfile.WriteRequest(&forged, syncfile.DeriveKeyFromSecret("guess"), id, keystation.SyncRequest{Targets: map[string]int{"home": 3}})
	_, err = f.s.SyncFile(ctx, forged.Bytes(), "usb")
	wantCode(t, err, keystation.EUNAUTHORIZED)
	if err := f.s.RevokeStation(ctx, 0, id, store.AuditBy{User: "tester"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.SyncFile(ctx, req.Bytes(), "usb")
	wantCode(t, err, keystation.ESTATIONREVOKED)
}

// usbReports returns n reports of successful activations with keys from a
// USB key list, each on a new machine.
func usbReports(t testing.TB, tag string, n int) []keystation.SyncReport {
	keys := newKeys(t, n)
	out := make([]keystation.SyncReport, n)
	for i := range out {
		r := syncReport(keystation.KeyID(4_000_000_000_000+usbKeySeq.Add(7919)), fmt.Sprintf("SN-%s-%d", tag, i), true, "Licensed")
		r.Key = keys[i].Plain()
		r.Provenance = &keystation.Provenance{File: "keys.csv", SHA256: strings.Repeat("cd", 32), Line: i + 1}
		out[i] = r
	}
	return out
}

// A request refused while it is decoded (a bad report or field late in the
// body) changes nothing, however many of its reports were applied in its
// transaction already.
func TestSyncStreamRefusedChangesNothing(t *testing.T) {
	tests := []struct {
		name  string
		emit  int // reports emitted before the decoder fails
		fails func() (keystation.SyncRequest, error)
	}{
		{"bad body after many reports", 1500, func() (keystation.SyncRequest, error) {
			return keystation.SyncRequest{}, keystation.FieldError(map[string]string{"body": "truncated JSON"})
		}},
		{"bad field after the reports", 700, func() (keystation.SyncRequest, error) {
			return keystation.SyncRequest{}, keystation.FieldError(map[string]string{"targets.home": "must be between 0 and 1000"})
		}},
		{"nothing but a bad field", 0, func() (keystation.SyncRequest, error) {
			return keystation.SyncRequest{}, keystation.FieldError(map[string]string{"backlog": "must not be negative"})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 3)
			st := f.enrolStation("line")
			before := f.snapshot()
			reports := usbReports(t, tt.name, tt.emit)
			_, err := f.s.SyncStream(ctx, st, "127.0.0.1", func(emit func([]keystation.SyncReport) error) (keystation.SyncRequest, error) {
				for i := 0; i < len(reports); i += 100 {
					if err := emit(reports[i:min(len(reports), i+100)]); err != nil {
						return keystation.SyncRequest{}, err
					}
				}
				return tt.fails()
			})
			if keystation.ErrorCode(err) != keystation.EINVALID {
				t.Fatalf("SyncStream = %v, want the decoder's error", err)
			}
			f.assertUnchanged(before)
		})
	}
}

// A long sync makes way for other writers while it runs; every report is
// still applied exactly once, in order, and the others are served.
func TestSyncLongRunsBesideOtherWriters(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 300)
	st := f.enrolStation("line")
	reports := usbReports(t, "long", 3000)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	acquired := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := f.acquire(fmt.Sprintf("ONLINE-%d", i), osHome); err != nil {
				t.Errorf("acquire during a sync: %v", err)
				return
			}
			acquired++
		}
	}()
	resp, err := f.s.Sync(ctx, st, keystation.SyncRequest{Reports: reports}, "127.0.0.1")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range resp.Results {
		if r.ID != reports[i].ID || r.Status != keystation.SyncApplied {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	rows, err := f.raw.QueryContext(ctx, `SELECT uuid FROM reports WHERE station_id = ? ORDER BY id`, st.ID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		if id != reports[i].ID {
			t.Fatalf("report %d applied out of order", i)
		}
	}
	if i != len(reports) || acquired == 0 {
		t.Fatalf("%d reports applied, %d keys acquired meanwhile", i, acquired)
	}
	// Sent again (its answer lost), the request changes nothing more.
	again, err := f.s.Sync(ctx, st, keystation.SyncRequest{Reports: reports}, "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range again.Results {
		if r.Status != keystation.SyncDuplicate {
			t.Fatalf("re-sent report = %+v", r)
		}
	}
	f.checkHistory()
}
