package store_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"keystation"
	"keystation/store"
)

func TestAcquireSameMachineSameKey(t *testing.T) {
	f := newFixture(t, store.Options{})
	keys := f.importN("home", 3)
	a := f.mustAcquire("a234354564234", osHome)
	if a.Reused || a.Edition != "home" || !a.KeyID.Valid() || a.Key != keys[0] {
		t.Fatalf("first acquire: %+v (key %s), want the first home key", a, a.Key)
	}
	// Invariant 4: the same machine asking again gets the same key, whatever
	// the case and spacing of its serial number and model.
	for _, sn := range []string{"a234354564234", "A234354564234", "  a234354564234 "} {
		b := f.mustAcquire(sn, osHome)
		if !b.Reused || b.KeyID != a.KeyID || b.Key != a.Key {
			t.Fatalf("acquire again as %q: %+v, want the same key %s reused", sn, b, a.KeyID)
		}
	}
	if n := f.count(`SELECT COUNT(*) FROM machines`); n != 1 {
		t.Errorf("%d machines, want 1", n)
	}
	if n := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'assigned'`); n != 1 {
		t.Errorf("%d keys assigned, want 1", n)
	}
	ki := f.keyInfo(a.KeyID)
	if ki.State != keystation.StateAssigned || !slices.Equal(reasons(ki), []string{"Fulfilled", "Consumed"}) {
		t.Errorf("key: %s, history %v", ki.State, reasons(ki))
	}
	f.checkHistory()
}

func TestAcquireDifferentMachinesDifferentKeys(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 5)
	f.importN("pro", 5)
	seen := map[keystation.KeyID]string{}
	for i, tc := range []struct{ sn, model, os string }{
		{"SN1", "N151", osHome}, {"SN2", "N151", osHome}, {"SN1", "N152", osHome}, // same SN, another model: another PC
		{"SN3", "N151", osPro}, {"SN4", "N151", osPro},
	} {
		a, err := f.s.Acquire(ctx, store.AcquireRequest{Actor: operator, Machine: keystation.Machine{SN: tc.sn, Model: tc.model}, OSVersion: tc.os})
		if err != nil {
			t.Fatalf("acquire %d: %v", i, err)
		}
		if prev, ok := seen[a.KeyID]; ok {
			t.Fatalf("%s/%s got key %s already given to %s", tc.model, tc.sn, a.KeyID, prev)
		}
		seen[a.KeyID] = tc.model + "/" + tc.sn
		wantEd := "home"
		if tc.os == osPro {
			wantEd = "pro"
		}
		if a.Edition != wantEd {
			t.Errorf("%s/%s: edition %s, want %s", tc.model, tc.sn, a.Edition, wantEd)
		}
	}
	f.checkHistory()
}

func TestAcquireRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		sn    string
		os    string
		code  string
		msg   string
	}{
		{name: "edition unknown", sn: "SN1", os: "Windows 11 Enterprise", code: keystation.EUNKNOWNEDITION, msg: `"Windows 11 Enterprise"`},
		{name: "osVersion empty", sn: "SN1", os: "", code: keystation.EINVALID, msg: "osVersion"},
		{name: "pool empty", sn: "SN1", os: osPro, code: keystation.EPOOLEMPTY, msg: "Pro"},
		{name: "pool drained", sn: "SN9", os: osHome, code: keystation.EPOOLEMPTY,
			setup: func(f *fixture) {
				for _, sn := range []string{"SN1", "SN2", "SN3"} {
					f.mustAcquire(sn, osHome)
				}
			}},
		{name: "edition mismatch", sn: "SN1", os: osPro, code: keystation.EEDITIONMISMATCH, msg: "Home",
			setup: func(f *fixture) {
				f.importN("pro", 2)
				f.mustAcquire("SN1", osHome)
			}},
		{name: "blocked machine", sn: "SN1", os: osHome, code: keystation.EMACHINEBLOCKED,
			setup: func(f *fixture) {
				a := f.mustAcquire("SN1", osHome)
				f.exec(`UPDATE machines SET status = 'blocked', block_reason = 'test'
					WHERE id = (SELECT machine_id FROM product_keys WHERE key_id = ?)`, int64(a.KeyID))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 3)
			if tc.setup != nil {
				tc.setup(f)
			}
			before := f.snapshot()
			a, err := f.acquire(tc.sn, tc.os)
			wantCode(t, err, tc.code)
			if a.KeyID != 0 || a.Key != "" {
				t.Errorf("a key came with the error: %+v", a)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not mention %q", err, tc.msg)
			}
			f.assertUnchanged(before)
			f.checkHistory()
		})
	}
}

func TestAcquireAddedEditionMostSpecific(t *testing.T) {
	f := newFixture(t, store.Options{})
	if err := f.s.CreateEdition(ctx, keystation.Edition{Slug: "pro-workstations", Name: "Pro for Workstations",
		Patterns: []string{"Pro for Workstations"}, LowStock: 5}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.CreateEdition(ctx, keystation.Edition{Slug: "pro-workstations", Name: "x", Patterns: []string{"x"}}); keystation.ErrorCode(err) != keystation.ECONFLICT {
		t.Errorf("duplicate edition: %v", err)
	}
	if err := f.s.CreateEdition(ctx, keystation.Edition{Slug: "Bad Slug", Name: "x", Patterns: []string{"x"}}); keystation.ErrorCode(err) != keystation.EINVALID {
		t.Errorf("bad edition: %v", err)
	}
	f.importN("pro", 2)
	ws := f.importN("Pro for Workstations", 2)
	a := f.mustAcquire("SN1", "Windows 11 Pro for Workstations")
	if a.Edition != "pro-workstations" || a.Key != ws[0] {
		t.Fatalf("got %+v, want a pro-workstations key", a)
	}
	b := f.mustAcquire("SN2", "Windows 11 Pro")
	if b.Edition != "pro" {
		t.Fatalf("got %+v, want a pro key", b)
	}
	ed, err := f.s.MatchEdition(ctx, "WINDOWS 11 PRO FOR WORKSTATIONS")
	if err != nil || ed.Slug != "pro-workstations" {
		t.Fatalf("MatchEdition: %+v, %v", ed, err)
	}
}

// verbatimMessage has unicode, quotes, backslashes, tabs and line breaks:
// invariant 5 wants it stored byte for byte.
const verbatimMessage = "错误: 0xC004C003 激活服务器确定指定的产品密钥已被阻止。\r\n" +
	`"The activation server determined the specified product key is blocked." — it's 'blocked' \ %s %d ;DROP TABLE x;--` +
	"\tend\u00a0\u200b"

func TestReportKeyFaultBurnsKey(t *testing.T) {
	f := newFixture(t, store.Options{})
	keys := f.importN("home", 3)
	a := f.mustAcquire("SN1", osHome)
	code := "-1073430525" // 0xC004C003 as PowerShell prints it
	reportID := uuid.NewString()
	r := failure(a.KeyID, "SN1", osHome, code, verbatimMessage)
	r.ID = reportID
	res, err := f.report(r)
	if err != nil {
		t.Fatalf("Report: %v", err)
	}
	if res.Outcome != store.OutcomeReplaced || res.Failure == nil || res.Failure.Class != keystation.FaultKey || res.Failure.HRESULT != "0xC004C003" || res.Failure.Review {
		t.Fatalf("result: %+v (failure %+v)", res, res.Failure)
	}
	if res.Next == nil || res.Next.KeyID == a.KeyID || res.Next.Key != keys[1] || res.Next.Edition != "home" {
		t.Fatalf("next key: %+v, want a new home key", res.Next)
	}
	// The burnt key: failed, Defective, message and code verbatim.
	ki := f.keyInfo(a.KeyID)
	if ki.State != keystation.StateFailed || ki.Review {
		t.Errorf("burnt key: state %s review %v", ki.State, ki.Review)
	}
	if want := []string{"Fulfilled", "Consumed", "Defective"}; !slices.Equal(reasons(ki), want) {
		t.Fatalf("history %v, want %v", reasons(ki), want)
	}
	h := ki.History[2]
	if h.ResultMessage != verbatimMessage || h.ResultCode != code || h.HRESULT != "0xC004C003" || h.Actor != operator.Name {
		t.Errorf("history row: %+v", h)
	}
	var msg, gotCode, hres, class string
	if err := f.raw.QueryRow(`SELECT result_message, result_code, hresult, fault_class FROM reports WHERE uuid = ?`, reportID).
		Scan(&msg, &gotCode, &hres, &class); err != nil {
		t.Fatal(err)
	}
	if msg != verbatimMessage || gotCode != code || hres != "0xC004C003" || class != "key" {
		t.Errorf("reports row: message %q code %q hresult %q class %q", msg, gotCode, hres, class)
	}
	var histMsg []byte
	if err := f.raw.QueryRow(`SELECT result_message FROM key_history WHERE reason = 'Defective'`).Scan(&histMsg); err != nil {
		t.Fatal(err)
	}
	if string(histMsg) != verbatimMessage {
		t.Errorf("key_history message bytes %q, want %q", histMsg, verbatimMessage)
	}
	if n := f.count(`SELECT burnt FROM machines`); n != 1 {
		t.Errorf("burnt = %d, want 1", n)
	}
	// The machine now holds the new key.
	b := f.mustAcquire("SN1", osHome)
	if !b.Reused || b.KeyID != res.Next.KeyID {
		t.Errorf("acquire after the fault: %+v, want %s reused", b, res.Next.KeyID)
	}
	f.checkHistory()
}

func TestReportUnknownCodeFlagsReview(t *testing.T) {
	tests := []struct{ name, code, message string }{
		{"unknown code", "0xC004FFFF", "Unexpected error"},
		{"no code at all", "", "Something went wrong"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 2)
			a := f.mustAcquire("SN1", osHome)
			res, err := f.report(failure(a.KeyID, "SN1", osHome, tc.code, tc.message))
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != store.OutcomeReplaced || res.Failure == nil || !res.Failure.Review || res.Failure.Class != keystation.FaultKey || res.Next == nil {
				t.Fatalf("result %+v, failure %+v", res, res.Failure)
			}
			ki := f.keyInfo(a.KeyID)
			if ki.State != keystation.StateFailed || !ki.Review {
				t.Errorf("key: state %s review %v, want failed and flagged", ki.State, ki.Review)
			}
			last := ki.History[len(ki.History)-1]
			if last.Reason != keystation.ReasonReview || !last.Review || last.ResultMessage != tc.message || last.ResultCode != tc.code {
				t.Errorf("history: %+v", last)
			}
			f.checkHistory()
		})
	}
}

func TestReportPCFaultKeepsKey(t *testing.T) {
	codes := []string{"0xC004F074", "0x8007232B", "0xC004B011", "0x80070005", "0x80072EE7", "-2147024891"}
	for _, code := range codes {
		t.Run(code, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 2)
			a := f.mustAcquire("SN1", osHome)
			msg := "Windows could not activate: " + code
			res, err := f.report(failure(a.KeyID, "SN1", osHome, code, msg))
			if err != nil {
				t.Fatal(err)
			}
			if res.Outcome != store.OutcomeKept || res.Failure == nil || res.Failure.Class != keystation.FaultPC || res.Failure.Fix == "" {
				t.Fatalf("result %+v failure %+v", res, res.Failure)
			}
			if res.Next == nil || res.Next.KeyID != a.KeyID || res.Next.Key != a.Key {
				t.Fatalf("next %+v, want the same key %s", res.Next, a.KeyID)
			}
			ki := f.keyInfo(a.KeyID)
			if want := []string{"Fulfilled", "Consumed", "PCFault", "Returned", "Consumed"}; !slices.Equal(reasons(ki), want) {
				t.Fatalf("history %v, want %v", reasons(ki), want)
			}
			if ki.State != keystation.StateAssigned {
				t.Errorf("state %s, want assigned", ki.State)
			}
			if h := ki.History[2]; h.ResultMessage != msg || h.ResultCode != code {
				t.Errorf("PCFault row: %+v", h)
			}
			if n := f.count(`SELECT burnt FROM machines`); n != 0 {
				t.Errorf("burnt = %d after a PC fault", n)
			}
			b := f.mustAcquire("SN1", osHome)
			if !b.Reused || b.KeyID != a.KeyID {
				t.Errorf("acquire after the PC fault: %+v", b)
			}
			// Another machine does not get the kept key.
			c := f.mustAcquire("SN2", osHome)
			if c.KeyID == a.KeyID {
				t.Errorf("the kept key went to another machine")
			}
			f.checkHistory()
		})
	}
}

func TestBurnCap(t *testing.T) {
	tests := []struct {
		name string
		cap  int
		want int
	}{
		{"default", 0, 3},
		{"one", 1, 1},
		{"custom", 5, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{BurnCap: tc.cap})
			f.importN("home", tc.want+3)
			a := f.mustAcquire("SN1", osHome)
			id := a.KeyID
			for i := 1; i <= tc.want; i++ {
				res, err := f.report(failure(id, "SN1", osHome, "0xC004C008", "used up"))
				if i < tc.want {
					if err != nil || res.Next == nil {
						t.Fatalf("burn %d: %+v, %v", i, res, err)
					}
					id = res.Next.KeyID
					continue
				}
				// The cap: the failure is recorded, no key comes back.
				wantCode(t, err, keystation.EBURNLIMIT)
				if res.Next != nil || res.Failure == nil || res.Failure.HRESULT != "0xC004C008" || res.Outcome != store.OutcomeReplaced {
					t.Fatalf("at the cap: %+v (failure %+v)", res, res.Failure)
				}
				if ki := f.keyInfo(id); ki.State != keystation.StateFailed || ki.History[len(ki.History)-1].Reason != keystation.ReasonDefective {
					t.Fatalf("the last burnt key is %s (%v)", ki.State, reasons(ki))
				}
			}
			if n := f.count(`SELECT burnt FROM machines`); n != tc.want {
				t.Errorf("burnt = %d, want %d", n, tc.want)
			}
			if n := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'failed'`); n != tc.want {
				t.Errorf("%d failed keys, want %d", n, tc.want)
			}
			before := f.snapshot()
			_, err := f.acquire("SN1", osHome)
			wantCode(t, err, keystation.EBURNLIMIT)
			f.assertUnchanged(before)
			// Other machines are not affected.
			f.mustAcquire("SN2", osHome)
			f.checkHistory()
		})
	}
}

func TestReportSuccessBindsMachine(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 2)
	a := f.mustAcquire("SN1", osHome)
	hw := &keystation.Hardware{CPU: "amd 6600h",
		Memory: []keystation.MemoryModule{{ID: 0, Size: 16 << 30, Speed: "3200", Manufacturer: "Samsung"}},
		Disks:  []keystation.Disk{{ID: 0, Size: 1 << 40, InterfaceType: "SCSI", Model: "NVMe KINGSTON SNV2S1000G"}}}
	res, err := f.report(success(a.KeyID, "SN1", osHome, hw))
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != store.OutcomeActivated || res.Failure != nil || res.Next == nil || res.Next.KeyID != a.KeyID {
		t.Fatalf("result %+v", res)
	}
	ki := f.keyInfo(a.KeyID)
	if ki.State != keystation.StateActivated || ki.History[len(ki.History)-1].Reason != keystation.ReasonBound {
		t.Fatalf("key %s, history %v", ki.State, reasons(ki))
	}
	var keyRef int64
	var summary string
	if err := f.raw.QueryRow(`SELECT key_ref, hardware_summary FROM machines`).Scan(&keyRef, &summary); err != nil {
		t.Fatal(err)
	}
	if n := f.count(`SELECT COUNT(*) FROM product_keys WHERE id = ? AND key_id = ?`, keyRef, int64(a.KeyID)); n != 1 {
		t.Errorf("machine bound to key row %d, not to keyId %s", keyRef, a.KeyID)
	}
	if !strings.Contains(summary, "amd 6600h") || !strings.Contains(summary, "16 GB") {
		t.Errorf("hardware summary %q", summary)
	}
	// Duplicate success (a retry without a report ID): idempotent.
	before := f.snapshot()
	res2, err := f.report(success(a.KeyID, "SN1", osHome, hw))
	if err != nil || res2.Outcome != store.OutcomeDuplicate || res2.Next == nil || res2.Next.KeyID != a.KeyID {
		t.Fatalf("duplicate success: %+v, %v", res2, err)
	}
	f.assertUnchanged(before)
	// The activated key stays the machine's (invariant 4) and no one else's.
	if b := f.mustAcquire("SN1", osHome); !b.Reused || b.KeyID != a.KeyID {
		t.Errorf("acquire after activation: %+v", b)
	}
	if c := f.mustAcquire("SN2", osHome); c.KeyID == a.KeyID {
		t.Errorf("activated key given to another machine")
	}
	// A failure cannot be reported for an activated key.
	before = f.snapshot()
	_, err = f.report(failure(a.KeyID, "SN1", osHome, "0xC004C003", "blocked"))
	wantCode(t, err, keystation.EILLEGALSTATE)
	f.assertUnchanged(before)
	f.checkHistory()
}

func TestReportSameIDAppliesOnce(t *testing.T) {
	tests := []struct {
		name    string
		report  func(id keystation.KeyID) keystation.Report
		outcome string
	}{
		{"key fault", func(id keystation.KeyID) keystation.Report {
			return failure(id, "SN1", osHome, "0xC004C003", "blocked")
		}, store.OutcomeReplaced},
		{"pc fault", func(id keystation.KeyID) keystation.Report {
			return failure(id, "SN1", osHome, "0xC004F074", "no KMS")
		}, store.OutcomeKept},
		{"unknown fault", func(id keystation.KeyID) keystation.Report {
			return failure(id, "SN1", osHome, "0x12345678", "?")
		}, store.OutcomeReplaced},
		{"success", func(id keystation.KeyID) keystation.Report {
			return success(id, "SN1", osHome, nil)
		}, store.OutcomeActivated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", 4)
			a := f.mustAcquire("SN1", osHome)
			r := tc.report(a.KeyID)
			r.ID = uuid.NewString()
			first, err := f.report(r)
			if err != nil || first.Outcome != tc.outcome || first.Next == nil {
				t.Fatalf("first: %+v, %v", first, err)
			}
			before := f.snapshot()
			for range 3 {
				again, err := f.report(r)
				if err != nil || again.Outcome != store.OutcomeDuplicate {
					t.Fatalf("again: %+v, %v", again, err)
				}
				if again.Next == nil || again.Next.KeyID != first.Next.KeyID {
					t.Fatalf("again: next %+v, want the machine's key %s", again.Next, first.Next.KeyID)
				}
			}
			f.assertUnchanged(before)
			if n := f.count(`SELECT COUNT(*) FROM reports WHERE uuid = ?`, r.ID); n != 1 {
				t.Errorf("%d report rows for one ID", n)
			}
			if n := f.count(`SELECT COUNT(*) FROM reports`); n != 1 {
				t.Errorf("%d report rows, want 1", n)
			}
			f.checkHistory()
		})
	}
}

// TestReportIDReusedForAnotherKey: a report ID already applied for one key,
// sent again with another key's content, must not be acknowledged as a
// duplicate of it (invariant 3 is exactly-once by ID; reusing an ID for
// different content is a conflict).
func TestReportIDReusedForAnotherKey(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 4)
	a := f.mustAcquire("SN1", osHome)
	b := f.mustAcquire("SN2", osHome)
	id := uuid.NewString()
	r := failure(a.KeyID, "SN1", osHome, "0xC004C003", "blocked")
	r.ID = id
	if _, err := f.report(r); err != nil {
		t.Fatal(err)
	}
	before := f.snapshot()
	other := success(b.KeyID, "SN2", osHome, nil)
	other.ID = id
	res, err := f.report(other)
	f.assertUnchanged(before)
	if err == nil {
		t.Fatal("regression: store.Report treats a report whose ID was applied for another key/machine as a duplicate " +
			"(outcome " + res.Outcome + "): alloc.go reads prevSuccess/prevKey/prevMachine from qReportByUUID but never compares them; " +
			"the success of keyId " + b.KeyID.String() + " is silently dropped. Return ECONFLICT when they differ.")
	}
	wantCode(t, err, keystation.ECONFLICT)
}

func TestReportNotAssigned(t *testing.T) {
	tests := []struct {
		name   string
		report func(f *fixture, mine, other, free keystation.KeyID) keystation.Report
	}{
		{"key of another machine, failure", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			return failure(other, "SN1", osHome, "0xC004C003", "blocked")
		}},
		{"key of another machine, success", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			return success(other, "SN1", osHome, nil)
		}},
		{"key never assigned", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			return failure(free, "SN1", osHome, "0xC004C003", "blocked")
		}},
		{"unknown keyId", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			return success(1234567890123, "SN1", osHome, nil)
		}},
		{"unknown machine", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			return failure(mine, "SN-UNKNOWN", osHome, "0xC004C003", "blocked")
		}},
		{"same SN, other model", func(f *fixture, mine, other, free keystation.KeyID) keystation.Report {
			r := failure(mine, "SN1", osHome, "0xC004C003", "blocked")
			r.Machine.Model = "N152"
			return r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			keys := f.importN("home", 3)
			mine := f.mustAcquire("SN1", osHome)
			other := f.mustAcquire("SN2", osHome)
			var free keystation.KeyID
			if err := f.raw.QueryRow(`SELECT key_id FROM product_keys WHERE state = 'available'`).Scan(&free); err != nil {
				t.Fatal(err)
			}
			_ = keys
			before := f.snapshot()
			r := tc.report(f, mine.KeyID, other.KeyID, free)
			r.ID = uuid.NewString()
			res, err := f.report(r)
			wantCode(t, err, keystation.ENOTASSIGNED)
			if res.Next != nil {
				t.Errorf("a key came with the refusal: %+v", res.Next)
			}
			f.assertUnchanged(before)
		})
	}
}

func TestKeyHistoryAppendOnly(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 1)
	f.mustAcquire("SN1", osHome)
	before := f.snapshot()
	for _, q := range []string{
		`UPDATE key_history SET reason = 'Tampered'`,
		`UPDATE key_history SET to_state = 'available' WHERE reason = 'Consumed'`,
		`DELETE FROM key_history`,
		`DELETE FROM key_history WHERE reason = 'Consumed'`,
	} {
		_, err := f.raw.Exec(q)
		if err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	f.assertUnchanged(before)
}

// TestHistoryRowPerTransition counts the state changes of a scenario and the
// history rows they wrote (invariant 8).
func TestHistoryRowPerTransition(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 6)
	f.importN("pro", 2)
	transitions := 8 // imports
	a := f.mustAcquire("SN1", osHome)
	transitions++
	f.mustAcquire("SN1", osHome) // reused: no change
	res, err := f.report(failure(a.KeyID, "SN1", osHome, "0xC004C001", "invalid"))
	if err != nil {
		t.Fatal(err)
	}
	transitions += 2 // failed, and the next key assigned
	res, err = f.report(failure(res.Next.KeyID, "SN1", osHome, "0xC004F074", "no KMS"))
	if err != nil {
		t.Fatal(err)
	}
	transitions += 3 // failed, available, assigned
	if _, err := f.report(success(res.Next.KeyID, "SN1", osHome, nil)); err != nil {
		t.Fatal(err)
	}
	transitions++
	b := f.mustAcquire("SN2", osPro)
	transitions++
	if _, err := f.report(failure(b.KeyID, "SN2", osPro, "", "no code")); err != nil {
		t.Fatal(err)
	}
	transitions += 2
	f.acquire("SN3", "Windows 11 Enterprise") // refused: no change
	f.acquire("SN2", osHome)                  // edition mismatch: no change
	if n := f.count(`SELECT COUNT(*) FROM key_history`); n != transitions {
		t.Errorf("%d history rows, want %d (one per state change)", n, transitions)
	}
	f.checkHistory()
	// Every change of product_keys.updated_at has a history row at the same time.
	if n := f.count(`SELECT COUNT(*) FROM product_keys k WHERE NOT EXISTS
		(SELECT 1 FROM key_history h WHERE h.key_ref = k.id AND h.at = k.updated_at AND h.to_state = k.state)`); n != 0 {
		t.Errorf("%d keys whose last change has no history row", n)
	}
}
