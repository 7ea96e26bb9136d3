package store_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"keystation"
	"keystation/store"
)

// A sync applies the reports of a station that worked from a USB key list
// set-wise, in runs; the database ends exactly as when every report is
// applied one by one, whatever other paths the reports of a request take
// in between.
func TestSyncRunsLeaveTheSameState(t *testing.T) {
	at := time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	imported := newKeys(t, 4)
	usbKeys := newKeys(t, 400)
	pre, reqs := syncRunRequests(at, imported, usbKeys)

	var (
		dumps   [2][]string
		results [2][][]keystation.SyncResult
	)
	for i, on := range []bool{false, true} {
		store.SetSyncRuns(t, on)
		f := newFixture(t, store.Options{Now: func() time.Time { return at }})
		entries := make([]store.ImportEntry, len(imported))
		for j, k := range imported {
			entries[j] = store.ImportEntry{Line: j + 1, Key: k, Edition: "home", KeyID: keystation.KeyID(1_000_000_000_101 + j)}
		}
		if _, err := f.s.ImportKeys(ctx, entries, store.ImportOptions{Source: "test", Actor: "tester"}); err != nil {
			t.Fatal(err)
		}
		st := f.enrolStation("usb-line")
		f.sync(st, pre)
		runs := store.SyncRunReports()
		for _, req := range reqs {
			results[i] = append(results[i], f.sync(st, req).Results)
		}
		runs = store.SyncRunReports() - runs
		if on && runs < 300 {
			t.Fatalf("%d reports applied set-wise, want most of them", runs)
		}
		if !on && runs != 0 {
			t.Fatalf("%d reports applied set-wise with the runs off", runs)
		}
		f.checkHistory()
		dumps[i] = f.dumpSyncTables()
	}
	if !reflect.DeepEqual(results[0], results[1]) {
		t.Errorf("results differ:\none by one: %+v\nset-wise:   %+v", results[0], results[1])
	}
	if len(dumps[0]) != len(dumps[1]) {
		t.Fatalf("%d rows one by one, %d set-wise", len(dumps[0]), len(dumps[1]))
	}
	for i := range dumps[0] {
		if dumps[0][i] != dumps[1][i] {
			t.Fatalf("row %d differs:\none by one: %s\nset-wise:   %s", i, dumps[0][i], dumps[1][i])
		}
	}
	byStatus := map[string]int{}
	for _, r := range results[1] {
		for _, res := range r {
			byStatus[res.Status]++
		}
	}
	if byStatus[keystation.SyncApplied] < 300 || byStatus[keystation.SyncConflict] == 0 || byStatus[keystation.SyncDuplicate] == 0 ||
		byStatus[keystation.SyncRejected] == 0 {
		t.Fatalf("results by status: %v", byStatus)
	}
}

// syncRunRequests returns a request that leases two keys and records a USB
// key assigned to a machine, then the requests under test: reports of new
// machines with new USB keys (the run's path) in long runs, among reports
// that take every other path.
func syncRunRequests(at time.Time, imported, keys []keystation.ProductKey) (keystation.SyncRequest, []keystation.SyncRequest) {
	n := 0
	usb := func(sn string, success bool) keystation.SyncReport {
		n++
		r := keystation.SyncReport{Edition: "home", Key: keys[n].Plain(),
			Provenance: &keystation.Provenance{File: "keys.csv", SHA256: strings.Repeat("ef", 32), Line: n},
			Report: keystation.Report{ID: uuid.NewString(), KeyID: keystation.KeyID(5_000_000_000_000 + n), Machine: machine(sn),
				OSVersion: osHome, Success: success, Message: "Licensed", Operator: "op1", Simulated: n%2 == 0, At: at}}
		if success {
			r.Hardware = benchSyncHardware(sn)
		} else {
			r.Code, r.Message = "0xC004C003", "The activation server determined the specified product key is blocked"
		}
		if n%5 == 0 {
			r.Operator, r.Message = `op "1" \ ü`, "Licensed\n\t<ok> & \u2028 \x00 ✓" // escaped in JSON
		}
		if n%3 == 0 {
			r.Code, r.Message = "", "" // NULL history columns
		}
		return r
	}
	assigned := usb("SN-PRE", false)
	pre := keystation.SyncRequest{StationTime: at, Reports: []keystation.SyncReport{assigned}, Targets: map[string]int{"home": 2}}

	var rs []keystation.SyncReport
	fresh := func(tag string, count int) {
		for i := range count {
			rs = append(rs, usb(fmt.Sprintf("SN-%s-%d", tag, i), true))
		}
	}
	fresh("a", 3)
	dup := rs[1]
	rs = append(rs, dup) // the same report twice in a request
	fresh("b", 2)
	sameMachine := usb(rs[len(rs)-1].Machine.SN, true) // a second key on a machine of the run
	rs = append(rs, sameMachine)
	fresh("c", 1)
	sameKey := usb("SN-SAME-KEY", true) // a key of the run on another machine
	sameKey.Key, sameKey.KeyID = rs[len(rs)-1].Key, rs[len(rs)-1].KeyID
	rs = append(rs, sameKey)
	rs = append(rs, usb("SN-FAILED", false))
	fresh("d", 2)
	takenID := usb("SN-TAKEN-ID", true) // a keyId of the run, with another key
	takenID.KeyID = rs[len(rs)-1].KeyID
	rs = append(rs, takenID)
	activate := assigned // the key recorded assigned, now activated
	activate.ID, activate.Success, activate.Message, activate.Code = uuid.NewString(), true, "Licensed", ""
	rs = append(rs, activate)
	importedID := usb("SN-IMPORTED-ID", true) // the keyId of an imported key, with another key
	importedID.KeyID = keystation.KeyID(1_000_000_000_103)
	rs = append(rs, importedID)
	leased := syncReport(keystation.KeyID(1_000_000_000_101), "SN-LEASED", true, "Licensed") // a key granted by pre
	leased.At = at
	rs = append(rs, leased)
	unknown := usb("SN-UNKNOWN-EDITION", true)
	unknown.Edition = "nosuch"
	rs = append(rs, unknown)
	badText := usb("SN-BAD-TEXT", true)
	badText.Message = "Licensed \xff"
	rs = append(rs, badText)
	fresh("e", 300) // beyond a run's length and a chunk's
	rs = append(rs, usb(rs[len(rs)-1].Machine.SN, false))
	fresh("f", 5)
	return pre, []keystation.SyncRequest{{StationTime: at, Reports: rs}, {StationTime: at, Reports: rs[:50]}}
}

// dumpSyncTables renders every row of the tables a sync writes, with the
// sealed values opened (sealing is randomized) and keyIds drawn at random
// (for a key whose keyId was taken) masked.
func (f *fixture) dumpSyncTables() []string {
	f.t.Helper()
	var out []string
	for _, table := range []string{"machine_models", "machines", "product_keys", "key_history", "reports"} {
		f.eachRow(`SELECT * FROM `+table+` ORDER BY id`, func(cols []string, vals []any) {
			var b strings.Builder
			b.WriteString(table)
			for i, c := range cols {
				v := vals[i]
				switch c {
				case "model_enc", "identity_enc", "hardware_enc":
					v = f.open(v, "machine/"+strings.TrimSuffix(c, "_enc"))
				case "key_enc":
					v = f.open(v, "product_key/"+keystation.KeyID(vals[1].(int64)).String())
				}
				if c == "key_id" && table == "product_keys" && !requestKeyID(v.(int64)) {
					v = "drawn"
				}
				fmt.Fprintf(&b, " %s=%T:%v", c, v, v)
			}
			out = append(out, b.String())
		})
	}
	return out
}

// requestKeyID reports whether id is one syncRunRequests or the import
// before it gives a key.
func requestKeyID(id int64) bool {
	return id >= 1_000_000_000_101 && id <= 1_000_000_000_104 || id > 5_000_000_000_000 && id <= 5_000_000_001_000
}

// open opens a sealed column value; NULL stays nil.
func (f *fixture) open(v any, purpose string) any {
	f.t.Helper()
	if v == nil {
		return nil
	}
	plain, err := f.box.Open(v.([]byte), purpose)
	if err != nil {
		f.t.Fatalf("open %s: %v", purpose, err)
	}
	return "sealed:" + string(plain)
}
