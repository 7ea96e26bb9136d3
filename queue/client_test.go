package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"keystation"
	"keystation/queue"
	"keystation/seal"
	"keystation/store"
)

type queueFix struct {
	t      *testing.T
	db     *store.StationDB
	client *queue.Client
	srv    *fakeServer
	sn     int
}

func newQueueFix(t *testing.T, cfg queue.Config) *queueFix {
	t.Helper()
	box, err := seal.New(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenStationDB(context.Background(), filepath.Join(t.TempDir(), store.StationFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	srv := newFakeServer(t)
	if cfg.HTTPTimeout == 0 {
		cfg.HTTPTimeout = 5 * time.Second
	}
	c := queue.New(db, cfg, nil)
	return &queueFix{t: t, db: db, client: c, srv: srv}
}

func (q *queueFix) enrol() {
	q.t.Helper()
	if _, err := q.client.Enrol(context.Background(), q.srv.url(), "good-token", "line 1"); err != nil {
		q.t.Fatalf("Enrol: %v", err)
	}
}

// activations assigns and records n successful activations of pro keys.
func (q *queueFix) activations(n int) []string {
	q.t.Helper()
	var ids []string
	for range n {
		q.sn++
		m := keystation.Machine{SN: fmt.Sprintf("SN-%05d", q.sn), Model: "M-1"}
		a, err := q.db.AssignKey(context.Background(), store.KeyRequest{Machine: m, Edition: "pro"})
		if err != nil {
			q.t.Fatalf("AssignKey: %v", err)
		}
		id, err := q.db.RecordAttempt(context.Background(), store.Attempt{Assignment: a, Outcome: store.AttemptActivated,
			Report: keystation.Report{Machine: m, OSVersion: "Windows 11 Pro", Message: "Licensed",
				Hardware: &keystation.Hardware{SerialNumber: m.SN, Model: m.Model}}})
		if err != nil {
			q.t.Fatalf("RecordAttempt: %v", err)
		}
		ids = append(ids, id)
	}
	return ids
}

// syncUntilDone calls SyncOnce until it succeeds (as Run would), at most n
// times.
func (q *queueFix) syncUntilDone(n int) (queue.Summary, int) {
	q.t.Helper()
	var last error
	for i := 1; i <= n; i++ {
		sum, err := q.client.SyncOnce(context.Background())
		if err == nil {
			return sum, i
		}
		last = err
	}
	q.t.Fatalf("sync did not converge in %d attempts: %v", n, last)
	return queue.Summary{}, 0
}

func (q *queueFix) status() store.StationStatus {
	q.t.Helper()
	st, err := q.db.Status(context.Background())
	if err != nil {
		q.t.Fatal(err)
	}
	return st
}

func checkExactlyOnce(t *testing.T, srv *fakeServer, ids []string) {
	t.Helper()
	applied, order, _, _ := srv.snapshot()
	for _, id := range ids {
		if applied[id] != 1 {
			t.Fatalf("report %s applied %d times, want once", id, applied[id])
		}
	}
	pos := map[string]int{}
	for i, id := range order {
		pos[id] = i
	}
	for i := 1; i < len(ids); i++ {
		if pos[ids[i]] < pos[ids[i-1]] {
			t.Fatalf("report %d applied before report %d", i, i-1)
		}
	}
}

func TestEnrolAndTopUp(t *testing.T) {
	q := newQueueFix(t, queue.Config{})
	if _, err := q.client.Enrol(context.Background(), q.srv.url(), "wrong", "x"); keystation.ErrorCode(err) != keystation.EUNAUTHORIZED {
		t.Fatalf("enrol with a bad token: %v", err)
	}
	q.enrol()
	if _, err := q.client.Enrol(context.Background(), q.srv.url(), "good-token", "again"); keystation.ErrorCode(err) != keystation.ECONFLICT {
		t.Fatalf("second enrolment: %v", err)
	}
	q.srv.stock("pro", 1_000_000_000_001, 60, 1)
	q.srv.stock("home", 1_100_000_000_001, 30, 2)
	q.srv.set(func(f *fakeServer) { f.clockShift = time.Hour })
	sum, _ := q.syncUntilDone(1)
	if sum.Grants != 2*store.DefaultTarget {
		t.Fatalf("granted %d, want %d", sum.Grants, 2*store.DefaultTarget)
	}
	st := q.status()
	if st.Buffer["pro"].Available != store.DefaultTarget || st.Buffer["home"].Available != store.DefaultTarget {
		t.Fatalf("buffer %+v", st.Buffer)
	}
	if st.ClockSkew < 59*time.Minute || st.ClockSkew > 61*time.Minute {
		t.Fatalf("clock skew %s, want about 1h", st.ClockSkew)
	}
	if st.LastSync.IsZero() || !q.client.State().Online {
		t.Fatal("last sync not recorded")
	}
	keys, _ := q.db.LocalKeys(context.Background())
	for _, k := range keys {
		if !k.Acked {
			t.Fatalf("key %s not acknowledged after a completed sync", k.KeyID)
		}
	}
	// Using keys below the low-water mark and syncing tops up again.
	ids := q.activations(18)
	sum, _ = q.syncUntilDone(1)
	if sum.Applied != 18 || q.status().Buffer["pro"].Available != store.DefaultTarget {
		t.Fatalf("after 18 activations: %+v, buffer %+v", sum, q.status().Buffer["pro"])
	}
	checkExactlyOnce(t, q.srv, ids)
}

func TestSyncBatchesInOrder(t *testing.T) {
	q := newQueueFix(t, queue.Config{MaxReports: 10})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 100, 3)
	if err := q.db.SetTarget(context.Background(), "pro", store.BufferTarget{Target: 60, LowWater: 5}); err != nil {
		t.Fatal(err)
	}
	q.syncUntilDone(1)
	ids := q.activations(35)
	sum, _ := q.syncUntilDone(1)
	if sum.Applied != 35 || q.status().Outbox != 0 {
		t.Fatalf("summary %+v, outbox %d", sum, q.status().Outbox)
	}
	_, _, batches, _ := q.srv.snapshot()
	for _, n := range batches {
		if n > 10 {
			t.Fatalf("a batch of %d reports, want at most 10: %v", n, batches)
		}
	}
	checkExactlyOnce(t, q.srv, ids)
	// Each request announces its length (the server reads it into a buffer
	// of that size).
	q.srv.set(func(f *fakeServer) {
		if f.unsized > 0 {
			t.Errorf("%d sync requests without a Content-Length", f.unsized)
		}
	})
}

func TestSyncLostResponsesConverge(t *testing.T) {
	q := newQueueFix(t, queue.Config{MaxReports: 7})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 200, 4)
	q.srv.set(func(f *fakeServer) { f.dropEvery = 2 }) // every other answer is lost after applying
	q.syncUntilDone(20)
	ids := q.activations(15)
	ids = append(ids, q.activations(5)...)
	q.syncUntilDone(40)
	ids = append(ids, q.activations(12)...)
	sum, _ := q.syncUntilDone(40)
	checkExactlyOnce(t, q.srv, ids)
	if st := q.status(); st.Outbox != 0 || st.Delivered != len(ids) {
		t.Fatalf("outbox %d delivered %d, want 0 and %d", st.Outbox, st.Delivered, len(ids))
	}
	// The buffer matches what the server counts as leased and unused.
	_, _, _, leased := q.srv.snapshot()
	st := q.status()
	if st.Buffer["pro"].Available != leased-len(ids) {
		t.Fatalf("station holds %d pro keys, the server leased %d with %d used", st.Buffer["pro"].Available, leased, len(ids))
	}
	keys, _ := q.db.LocalKeys(context.Background())
	seen := map[keystation.KeyID]bool{}
	for _, k := range keys {
		if seen[k.KeyID] {
			t.Fatalf("key %s held twice", k.KeyID)
		}
		seen[k.KeyID] = true
	}
	_ = sum
}

func TestSyncRevokedKeysDropped(t *testing.T) {
	q := newQueueFix(t, queue.Config{})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 25, 5)
	q.syncUntilDone(1)
	q.srv.revoke(1_000_000_000_001)
	q.srv.revoke(1_000_000_000_002)
	sum, _ := q.syncUntilDone(1)
	if sum.Revoked != 2 {
		t.Fatalf("revoked %d, want 2", sum.Revoked)
	}
	keys, _ := q.db.LocalKeys(context.Background())
	for _, k := range keys {
		if (k.KeyID == 1_000_000_000_001 || k.KeyID == 1_000_000_000_002) && k.State != store.LocalRevoked {
			t.Fatalf("key %s is %s, want revoked", k.KeyID, k.State)
		}
	}
	for range 22 {
		a, err := q.db.AssignKey(context.Background(), store.KeyRequest{Machine: keystation.Machine{SN: fmt.Sprint(time.Now().UnixNano()), Model: "M"}, Edition: "pro"})
		if err != nil {
			break
		}
		if a.KeyID == 1_000_000_000_001 || a.KeyID == 1_000_000_000_002 {
			t.Fatalf("revoked key %s used", a.KeyID)
		}
	}
}

func TestSyncConflictAndRejected(t *testing.T) {
	q := newQueueFix(t, queue.Config{MaxReports: 4})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 40, 6)
	q.syncUntilDone(1)
	ids := q.activations(10)
	q.srv.set(func(f *fakeServer) {
		f.rejectID = ids[2] // answered "rejected"
		f.poison = ids[5]   // the whole request refused with 400
		f.conflictIDs[ids[7]] = true
	})
	sum, _ := q.syncUntilDone(1)
	st := q.status()
	if st.Outbox != 0 || st.Attention != 2 || st.Conflicts != 1 {
		t.Fatalf("outbox %d attention %d conflicts %d (summary %+v)", st.Outbox, st.Attention, st.Conflicts, sum)
	}
	applied, _, _, _ := q.srv.snapshot()
	for i, id := range ids {
		want := 1
		if i == 2 || i == 5 {
			want = 0
		}
		if applied[id] != want {
			t.Fatalf("report %d applied %d times, want %d", i, applied[id], want)
		}
	}
	// The rejected ones are not re-sent forever.
	sum, _ = q.syncUntilDone(1)
	if sum.Sent != 0 {
		t.Fatalf("rejected reports sent again: %+v", sum)
	}
}

func TestSyncTooLargeHalvesBatch(t *testing.T) {
	q := newQueueFix(t, queue.Config{})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 40, 7)
	q.syncUntilDone(1)
	ids := q.activations(17)
	q.srv.set(func(f *fakeServer) { f.maxReports = 3 })
	q.syncUntilDone(1)
	checkExactlyOnce(t, q.srv, ids)
	if q.status().Outbox != 0 {
		t.Fatal("reports left")
	}
}

func TestSyncErrors(t *testing.T) {
	q := newQueueFix(t, queue.Config{HTTPTimeout: time.Second})
	if _, err := q.client.SyncOnce(context.Background()); keystation.ErrorCode(err) != keystation.EUNAUTHORIZED {
		t.Fatalf("sync before enrolling: %v", err)
	}
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 30, 8)
	q.syncUntilDone(1)
	ids := q.activations(3)

	q.srv.set(func(f *fakeServer) { f.fail503 = 1 })
	_, err := q.client.SyncOnce(context.Background())
	if !queue.IsOffline(err) || keystation.ErrorCode(err) != keystation.EUNAVAILABLE {
		t.Fatalf("503: %v (offline %v)", err, queue.IsOffline(err))
	}
	hist, _ := q.db.History(context.Background(), store.HistoryFilter{})
	for _, h := range hist {
		if h.Attempts != 1 || h.Sync != store.SyncWaiting || h.SyncNote == "" {
			t.Fatalf("after a failed attempt: %+v", h)
		}
	}

	q.srv.set(func(f *fakeServer) { f.credential = "changed" })
	_, err = q.client.SyncOnce(context.Background())
	if keystation.ErrorCode(err) != keystation.EUNAUTHORIZED || queue.IsOffline(err) {
		t.Fatalf("bad credential: %v", err)
	}
	q.srv.set(func(f *fakeServer) { f.credential = "ks1.fake-credential" })

	// The server goes away.
	q.srv.srv.Close()
	_, err = q.client.SyncOnce(context.Background())
	if !queue.IsOffline(err) || q.client.State().Online {
		t.Fatalf("server down: %v", err)
	}
	if st := q.status(); st.Outbox != 3 || st.LastSyncError == "" {
		t.Fatalf("status after failures: %+v", st)
	}
	_ = ids
}

func TestBackoff(t *testing.T) {
	lo, hi := 100*time.Millisecond, 2*time.Second
	tests := []struct {
		n        int
		min, max time.Duration
	}{
		{0, 0, 0},
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{10, time.Second, 2 * time.Second},
		{1000, time.Second, 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.n), func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 50 {
				d := queue.Backoff(tc.n, lo, hi)
				if d < tc.min || d > tc.max {
					t.Fatalf("Backoff(%d) = %s, want in [%s, %s]", tc.n, d, tc.min, tc.max)
				}
				seen[d] = true
			}
			if tc.n > 0 && len(seen) < 5 {
				t.Fatalf("no jitter: %d distinct waits", len(seen))
			}
		})
	}
}

func TestRunRetriesAndTrigger(t *testing.T) {
	q := newQueueFix(t, queue.Config{BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond, Interval: time.Hour})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 60, 9)
	q.srv.set(func(f *fakeServer) { f.fail503 = 3 })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { q.client.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitFor(t, "the first successful sync", func() bool {
		st := q.client.State()
		return st.Online && st.Failures == 0 && !st.Syncing && q.status().Buffer["pro"].Available == store.DefaultTarget
	})
	if st := q.client.State(); st.LastSuccess.IsZero() || st.LastError != "" {
		t.Fatalf("state after recovering: %+v", st)
	}
	ids := q.activations(4)
	q.client.Trigger()
	waitFor(t, "the triggered sync", func() bool { return q.status().Outbox == 0 })
	checkExactlyOnce(t, q.srv, ids)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestOfflineErrorKeepsCredentialOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	q := newQueueFix(t, queue.Config{HTTPTimeout: time.Second})
	if err := q.db.SaveEnrolment(context.Background(), "http://"+addr, keystation.EnrolResponse{StationID: 1, Name: "x", Credential: "ks1.very-secret"}); err != nil {
		t.Fatal(err)
	}
	_, err = q.client.SyncOnce(context.Background())
	var oe *queue.OfflineError
	if !errors.As(err, &oe) {
		t.Fatalf("connection refused: %v", err)
	}
	if bytes.Contains([]byte(err.Error()), []byte("very-secret")) {
		t.Fatal("the credential is in the error text")
	}
	if err := q.client.Ping(context.Background()); err == nil {
		t.Fatal("ping of a closed port succeeded")
	}
}
