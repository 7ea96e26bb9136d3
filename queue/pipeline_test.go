package queue_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/internal/testutil"
	"keystation/queue"
	"keystation/seal"
	"keystation/store"
)

// failingOutbox is the station's outbox, failing to record the failAt-th
// answer (a full disk, say).
type failingOutbox struct {
	queue.Outbox
	calls  atomic.Int32
	failAt int32
}

func (o *failingOutbox) ApplySync(ctx context.Context, req *keystation.SyncRequest, resp *keystation.SyncResponse, skew time.Duration) error {
	if o.calls.Add(1) == o.failAt {
		return errors.New("disk full")
	}
	return o.Outbox.ApplySync(ctx, req, resp, skew)
}

// The station reads its next request and records the last answer while a
// request is on its way. Whatever fails in the middle of that, no report is
// lost, none is applied twice, and they are applied in order.
func TestSyncPipelineFaults(t *testing.T) {
	tests := []struct {
		name  string
		fault func(q *queueFix) // set up before the first sync of the reports
		// client, when set, makes the first sync's client (with the fault).
		client func(q *queueFix) *queue.Client
		ctx    func() (context.Context, context.CancelFunc, func(queue.Summary))
		// wantErr: the first sync fails (else it recovers on its own).
		wantErr bool
	}{
		{name: "server unavailable mid-pipeline", fault: func(q *queueFix) {
			q.srv.set(func(f *fakeServer) { f.fail503At = f.requests + 4 })
		}, wantErr: true},
		{name: "answers lost mid-pipeline", fault: func(q *queueFix) {
			q.srv.set(func(f *fakeServer) { f.dropEvery = 3 })
		}, wantErr: true},
		{name: "requests refused as too large mid-pipeline", fault: func(q *queueFix) {
			q.srv.set(func(f *fakeServer) { f.maxReports = 3 })
		}},
		{name: "recording an answer fails", client: func(q *queueFix) *queue.Client {
			return queue.New(&failingOutbox{Outbox: q.db, failAt: 3}, queue.Config{MaxReports: 5, HTTPTimeout: 5 * time.Second}, nil)
		}, wantErr: true},
		{name: "sync cancelled mid-pipeline", ctx: func() (context.Context, context.CancelFunc, func(queue.Summary)) {
			ctx, cancel := context.WithCancel(context.Background())
			return ctx, cancel, func(s queue.Summary) {
				if s.Rounds == 3 {
					cancel()
				}
			}
		}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newQueueFix(t, queue.Config{MaxReports: 5})
			q.enrol()
			q.srv.stock("pro", 1_000_000_000_001, 100, 11)
			if err := q.db.SetTarget(context.Background(), "pro", store.BufferTarget{Target: 60, LowWater: 5}); err != nil {
				t.Fatal(err)
			}
			q.syncUntilDone(1)
			ids := q.activations(41)
			if tt.fault != nil {
				tt.fault(q)
			}
			c := queue.New(q.db, queue.Config{MaxReports: 5, HTTPTimeout: 5 * time.Second}, nil)
			if tt.client != nil {
				c = tt.client(q)
			}
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tt.ctx != nil {
				var progress func(queue.Summary)
				ctx, cancel, progress = tt.ctx()
				c = queue.New(q.db, queue.Config{MaxReports: 5, HTTPTimeout: 5 * time.Second, Progress: progress}, nil)
			}
			defer cancel()
			first, err := c.SyncOnce(ctx)
			if (err != nil) != tt.wantErr {
				t.Fatalf("first sync: %v (%+v), want an error: %v", err, first, tt.wantErr)
			}
			// Whatever happened, every answer received is recorded once the
			// sync has returned: the station's outbox says what the server
			// holds, or sends it again.
			if st := q.status(); st.Delivered+st.Outbox != len(ids) {
				t.Fatalf("after the first sync (%+v, %v): %d delivered + %d waiting, want %d", first, err, st.Delivered, st.Outbox, len(ids))
			}
			q.srv.set(func(f *fakeServer) { f.dropEvery, f.maxReports = 0, 0 })
			q.syncUntilDone(10)
			checkExactlyOnce(t, q.srv, ids)
			if st := q.status(); st.Outbox != 0 || st.Delivered != len(ids) {
				t.Fatalf("outbox %d delivered %d, want 0 and %d", st.Outbox, st.Delivered, len(ids))
			}
			// Each request carries consecutive reports and never begins
			// beyond the first report not sent yet: nothing is skipped.
			pos := map[string]int{}
			for i, id := range ids {
				pos[id] = i
			}
			next := 0
			for _, req := range q.srv.requestsSent() {
				for j, id := range req {
					p, ok := pos[id]
					if !ok {
						continue
					}
					if j == 0 && p > next {
						t.Fatalf("a request began with report %d while report %d had not been sent", p, next)
					}
					if j > 0 && p != pos[req[j-1]]+1 {
						t.Fatalf("a request carries report %d after report %d", p, pos[req[j-1]])
					}
					next = max(next, p+1)
				}
			}
		})
	}
}

// A report the server leaves unanswered goes again, before any report after
// it, even though the station had read the request after it already.
func TestSyncPipelineUnansweredGoesFirst(t *testing.T) {
	q := newQueueFix(t, queue.Config{MaxReports: 4})
	q.enrol()
	q.srv.stock("pro", 1_000_000_000_001, 60, 12)
	if err := q.db.SetTarget(context.Background(), "pro", store.BufferTarget{Target: 40, LowWater: 5}); err != nil {
		t.Fatal(err)
	}
	q.syncUntilDone(1)
	ids := q.activations(17)
	before := len(q.srv.requestsSent())
	q.srv.set(func(f *fakeServer) { f.unanswered[ids[5]] = true })
	q.syncUntilDone(1)
	reqs := q.srv.requestsSent()[before:]
	first := -1
	for i, req := range reqs {
		for _, id := range req {
			if id == ids[5] && first < 0 {
				first = i
			}
		}
	}
	if first < 0 || first+1 >= len(reqs) || len(reqs[first+1]) == 0 || reqs[first+1][0] != ids[5] {
		t.Fatalf("report 5 went unanswered in request %d; the next one does not begin with it: %v", first, reqs)
	}
	applied, _, _, _ := q.srv.snapshot()
	for i, id := range ids {
		if applied[id] != 1 {
			t.Fatalf("report %d applied %d times", i, applied[id])
		}
	}
	if st := q.status(); st.Outbox != 0 || st.Delivered != len(ids) {
		t.Fatalf("outbox %d delivered %d", st.Outbox, st.Delivered)
	}
}

func testBox(t *testing.T) *seal.Box {
	box, err := seal.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return box
}

// realSyncEnv is the real sync server (store and HTTP handlers) on loopback
// behind fault, and a station enrolled with it holding n reports of
// activations with keys from a USB key list.
type realSyncEnv struct {
	st  *store.Server
	db  *store.StationDB
	ids []string
}

func newRealSyncEnv(t *testing.T, n int, fault func(next http.Handler) http.Handler) *realSyncEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	box := testBox(t)
	st, err := store.OpenServer(ctx, filepath.Join(dir, store.ServerFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv := httptest.NewServer(fault(api.NewServer(st, auth.NewAuthenticator(st), nil)))
	t.Cleanup(srv.Close)
	tok, err := st.CreateEnrolToken(ctx, store.EnrolTokenOptions{Name: "line"})
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenStationDB(ctx, filepath.Join(dir, store.StationFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := queue.New(db, queue.Config{}, nil).Enrol(ctx, srv.URL, tok, "line"); err != nil {
		t.Fatal(err)
	}
	in := store.KeyListImport{File: "keys.txt", SHA256: fmt.Sprintf("%064x", n), Lines: n}
	for i, k := range testutil.GenerateKeys(n, 31) {
		in.Entries = append(in.Entries, store.ImportEntry{Line: i + 1, Key: keystation.ProductKey(k), Edition: "home"})
	}
	res, err := db.ImportKeyList(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	e := &realSyncEnv{st: st, db: db}
	for i := range n {
		m := keystation.Machine{SN: "SN-" + strconv.Itoa(i), Model: "M-1"}
		a, err := db.AssignKey(ctx, store.KeyRequest{Machine: m, Edition: "home", PreferSource: res.SourceID})
		if err != nil {
			t.Fatal(err)
		}
		id, err := db.RecordAttempt(ctx, store.Attempt{Assignment: a, Outcome: store.AttemptActivated, Report: keystation.Report{
			Machine: m, OSVersion: "Windows 11 Home", Message: "Licensed", Hardware: &keystation.Hardware{SerialNumber: m.SN, Model: m.Model}}})
		if err != nil {
			t.Fatal(err)
		}
		e.ids = append(e.ids, id)
	}
	return e
}

// The real server failing in the middle of a pipelined sync (an answer lost
// after the reports were applied, the server unavailable): once the station
// has synced again, the server holds every report once, in the station's
// order, and the station knows it.
func TestSyncPipelineRealServerFaults(t *testing.T) {
	tests := []struct {
		name string
		// fault acts on the n-th sync request (from 1): true when it
		// answered in place of the server.
		fault func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool
	}{
		{"answers lost after applying", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			if n%3 != 2 {
				return false
			}
			next.ServeHTTP(httptest.NewRecorder(), r) // applied, answer dropped
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close()
			}
			return true
		}},
		{"server unavailable", func(n int, w http.ResponseWriter, r *http.Request, next http.Handler) bool {
			if n != 3 && n != 4 {
				return false
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"code":"UNAVAILABLE","message":"restarting"}`))
			return true
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			requests := 0
			e := newRealSyncEnv(t, 300, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == queue.PathSync {
						mu.Lock()
						requests++
						n := requests
						mu.Unlock()
						if tt.fault(n, w, r, next) {
							return
						}
					}
					next.ServeHTTP(w, r)
				})
			})
			c := queue.New(e.db, queue.Config{MaxReports: 40, HTTPTimeout: 10 * time.Second}, nil)
			var err error
			for i := 0; i < 10; i++ {
				if _, err = c.SyncOnce(context.Background()); err == nil {
					break
				}
			}
			if err != nil {
				t.Fatalf("sync did not converge: %v", err)
			}
			got, _, err := e.st.AdminReports(context.Background(), store.ReportFilter{Limit: 1000})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(e.ids) {
				t.Fatalf("the server holds %d reports, want %d", len(got), len(e.ids))
			}
			// Newest first: the server applied them in the station's order.
			for i, r := range got {
				if want := e.ids[len(e.ids)-1-i]; r.UUID != want {
					t.Fatalf("report %d on the server is %s, want %s", len(got)-1-i, r.UUID, want)
				}
			}
			if st, err := e.db.Status(context.Background()); err != nil || st.Outbox != 0 || st.Delivered != len(e.ids) {
				t.Fatalf("station status %+v %v", st, err)
			}
		})
	}
}
