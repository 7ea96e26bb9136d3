package main_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"keystation"
	"keystation/activation"
	"keystation/queue"
	"keystation/station"
	"keystation/store"
)

// stationCounts are the station's own figures, to compare with the
// server's reconciliation.
type stationCounts struct {
	reports   int
	activated map[keystation.KeyID]bool
	failed    map[keystation.KeyID]bool
	used      map[keystation.KeyID]bool
	leased    int // leased keys no report has used
}

func countStation(t *testing.T, a *app) stationCounts {
	t.Helper()
	ctx := context.Background()
	recs, err := a.a.Core.History(ctx, store.HistoryFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	c := stationCounts{activated: map[keystation.KeyID]bool{}, failed: map[keystation.KeyID]bool{}, used: map[keystation.KeyID]bool{}}
	for _, r := range recs {
		c.reports++
		c.used[r.KeyID] = true
		switch r.Outcome {
		case store.AttemptActivated:
			c.activated[r.KeyID] = true
		case store.AttemptKeyFault:
			c.failed[r.KeyID] = true
		}
		if r.Sync != store.SyncSynced {
			t.Errorf("report %s is %s after a full sync (%s)", r.ReportID, r.Sync, r.SyncNote)
		}
	}
	// The server counts as leased every key it leased that no report has
	// used yet: the buffer, and keys assigned to a PC whose activation never
	// finished (a crash, a cancel).
	keys, err := a.a.DB.LocalKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.Source == store.SourceLease && (k.State == store.LocalAvailable || k.State == store.LocalAssigned && !c.used[k.KeyID]) {
			c.leased++
		}
	}
	return c
}

// reconcile compares the station's figures with the server's.
func reconcile(t *testing.T, a *app, want stationCounts) keystation.Reconciliation {
	t.Helper()
	rec, err := a.a.Client.Reconciliation(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rec.Activated != len(want.activated) || rec.Failed != len(want.failed) || rec.Used != len(want.used) ||
		rec.Conflicting != 0 || rec.Leased != want.leased {
		t.Errorf("reconciliation %+v; the station counts activated %d, failed %d, used %d, leased %d",
			rec, len(want.activated), len(want.failed), len(want.used), want.leased)
	}
	return rec
}

func (a *app) activate(t *testing.T, sn, os, script string) station.Result {
	t.Helper()
	a.hw.set(sn, os)
	outcomes, err := activation.ParseScript(script)
	if err != nil {
		t.Fatal(err)
	}
	a.sim.SetScript(outcomes...)
	res, _ := a.a.Core.Activate(context.Background(), mustRead(t, a), nil)
	return res
}

func mustRead(t *testing.T, a *app) keystation.Hardware {
	t.Helper()
	h, err := a.a.Core.ReadHardware(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestEndToEndOfflineAndBack: online activations; the server stopped and
// activations go on offline from the buffer; the server back and everything
// reconciled exactly once, with equal counts on both sides.
func TestEndToEndOfflineAndBack(t *testing.T) {
	srv := startServer(t, map[string]int{"pro": 300, "home": 200})
	ctx := context.Background()
	a := openApp(t, t.TempDir(), queue.Config{HTTPTimeout: 5 * time.Second})
	if _, err := a.a.Client.Enrol(ctx, srv.url(), srv.enrolToken(1), "e2e line"); err != nil {
		t.Fatal(err)
	}
	for ed, n := range map[string]int{"pro": 40, "home": 25} {
		if err := a.a.DB.SetTarget(ctx, ed, store.BufferTarget{Target: n, LowWater: 5}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.a.Client.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}
	st, _ := a.a.Core.Status(ctx)
	if st.Buffer["pro"].Available != 40 || st.Buffer["home"].Available != 25 || !st.Online {
		t.Fatalf("after the first sync: %+v", st)
	}
	osOf := func(i int) string {
		if i%3 == 0 {
			return "Windows 11 Home"
		}
		return "Windows 11 Pro"
	}
	scriptOf := func(i int) string {
		switch i % 7 {
		case 2:
			return "key-fault,success"
		case 4:
			return "used-up,invalid-key,success"
		}
		return "success"
	}
	// Online: each activation is synced at once.
	for i := range 10 {
		if res := a.activate(t, fmt.Sprintf("ONLINE-%03d", i), osOf(i), scriptOf(i)); res.Outcome != station.OutcomeActivated {
			t.Fatalf("online activation %d: %+v", i, res)
		}
		if _, err := a.a.Client.SyncOnce(ctx); err != nil {
			t.Fatalf("online sync %d: %v", i, err)
		}
	}
	// A PC fault online: the key stays with the PC, the rerun uses it.
	pcf := a.activate(t, "ONLINE-PCF", "Windows 11 Pro", "no-internet")
	if pcf.Outcome != station.OutcomePCFault {
		t.Fatalf("PC fault: %+v", pcf)
	}
	if _, err := a.a.Client.SyncOnce(ctx); err != nil {
		t.Fatal(err)
	}

	srv.stop()
	const offline = 30
	for i := range offline {
		res := a.activate(t, fmt.Sprintf("OFFLINE-%03d", i), osOf(i), scriptOf(i))
		if res.Outcome != station.OutcomeActivated {
			t.Fatalf("offline activation %d: %+v", i, res)
		}
		if i%10 == 0 {
			if _, err := a.a.Client.SyncOnce(ctx); !queue.IsOffline(err) {
				t.Fatalf("sync with the server stopped: %v", err)
			}
		}
	}
	again := a.activate(t, "ONLINE-PCF", "Windows 11 Pro", "success")
	if again.Outcome != station.OutcomeActivated || again.KeyID != pcf.KeyID {
		t.Fatalf("rerun after the PC fault used key %s (%s), want %s", again.KeyID, again.Outcome, pcf.KeyID)
	}
	st, _ = a.a.Core.Status(ctx)
	if st.Online || st.Outbox < offline {
		t.Fatalf("offline status: online %v, outbox %d", st.Online, st.Outbox)
	}

	srv.start()
	sum, err := a.a.Client.SyncOnce(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Applied < offline || sum.Conflicts != 0 || sum.Rejected != 0 {
		t.Fatalf("sync after the server came back: %+v", sum)
	}
	st, _ = a.a.Core.Status(ctx)
	if st.Outbox != 0 || !st.Online || st.Buffer["pro"].Available != 40 || st.Buffer["home"].Available != 25 {
		t.Fatalf("status after reconciling: %+v", st)
	}
	// A second sync changes nothing.
	if sum, err := a.a.Client.SyncOnce(ctx); err != nil || sum.Sent != 0 || sum.Grants != 0 {
		t.Fatalf("idle sync: %+v, %v", sum, err)
	}
	counts := countStation(t, a)
	rec := reconcile(t, a, counts)
	serverChecks(t, srv.db(), rec.StationID, counts.reports)
	t.Logf("reconciled: %+v, %d reports", rec, counts.reports)
}
