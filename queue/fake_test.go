package queue_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"keystation"
	"keystation/internal/testutil"
)

// fakeServer is a hand-written sync server with the real one's semantics:
// reports applied in order, exactly once by ID; grants up to the target,
// re-sent until acknowledged; revoked keys listed when held.
type fakeServer struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	credential string
	pool       map[string][]keystation.SyncGrant // edition → available keys
	leased     map[keystation.KeyID]keystation.SyncGrant
	acked      map[keystation.KeyID]bool
	used       map[keystation.KeyID]bool
	revoked    map[keystation.KeyID]bool // no longer the station's
	applied    map[string]int            // report ID → times applied (must stay 1)
	order      []string                  // report IDs in the order applied
	batches    []int                     // reports per request
	requests   int
	clockShift time.Duration

	// Faults.
	dropEvery   int    // drop the answer of every n-th sync request (after applying it)
	fail503     int    // answer the next n sync requests with 503
	maxReports  int    // 413 above this many reports in a request
	poison      string // 400 for any request holding this report ID
	rejectID    string // answer "rejected" for this report ID
	conflictIDs map[string]bool
	unanswered  map[string]bool // left out of the answer (and not applied), once each
	fail503At   int             // answer the n-th sync request with 503
	sent        [][]string      // report IDs of each request, in order
	unsized     int             // sync requests sent without a Content-Length
}

func newFakeServer(t *testing.T) *fakeServer {
	f := &fakeServer{t: t, credential: "ks1.fake-credential", pool: map[string][]keystation.SyncGrant{},
		leased: map[keystation.KeyID]keystation.SyncGrant{}, acked: map[keystation.KeyID]bool{}, used: map[keystation.KeyID]bool{},
		revoked: map[keystation.KeyID]bool{}, applied: map[string]int{}, conflictIDs: map[string]bool{}, unanswered: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/stations/enrol", f.enrol)
	mux.HandleFunc("POST /api/v1/sync", f.sync)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"status":"ok"}`)) })
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// stock adds n keys of edition to the pool, keyIds from first.
func (f *fakeServer) stock(edition string, first keystation.KeyID, n int, seed uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, k := range testutil.GenerateKeys(n, seed) {
		f.pool[edition] = append(f.pool[edition], keystation.SyncGrant{KeyID: first + keystation.KeyID(i), Key: k, Edition: edition})
	}
}

func writeEnv(w http.ResponseWriter, status int, code, msg string, data any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"code": code, "message": msg, "data": data})
}

func (f *fakeServer) enrol(w http.ResponseWriter, r *http.Request) {
	var req keystation.EnrolRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Token != "good-token" {
		writeEnv(w, 401, keystation.EUNAUTHORIZED, "the enrolment token is unknown", nil)
		return
	}
	writeEnv(w, 200, "OK", "enrolled", keystation.EnrolResponse{StationID: 7, Name: req.Name, Credential: f.credential,
		ServerTime: time.Now(), Editions: keystation.DefaultEditions()})
}

func (f *fakeServer) sync(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+f.credential {
		writeEnv(w, 401, keystation.EUNAUTHORIZED, "bad credential", nil)
		return
	}
	if r.ContentLength <= 0 {
		f.mu.Lock()
		f.unsized++
		f.mu.Unlock()
	}
	var req keystation.SyncRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeEnv(w, 400, keystation.EINVALID, "bad request: "+err.Error(), nil)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	ids := make([]string, len(req.Reports))
	for i, r := range req.Reports {
		ids[i] = r.ID
	}
	f.sent = append(f.sent, ids)
	if f.fail503 > 0 || n == f.fail503At {
		if f.fail503 > 0 {
			f.fail503--
		}
		f.mu.Unlock()
		writeEnv(w, 503, keystation.EUNAVAILABLE, "shutting down", nil)
		return
	}
	if f.maxReports > 0 && len(req.Reports) > f.maxReports {
		f.mu.Unlock()
		writeEnv(w, 413, keystation.ETOOLARGE, "request body too large", nil)
		return
	}
	for _, rep := range req.Reports {
		if rep.ID == f.poison {
			f.mu.Unlock()
			writeEnv(w, 400, keystation.EINVALID, "invalid request", nil)
			return
		}
	}
	resp := f.apply(&req)
	f.mu.Unlock()
	if f.dropEvery > 0 && n%f.dropEvery == 0 {
		// Applied, but the answer is lost: the connection dies.
		hj, ok := w.(http.Hijacker)
		if !ok {
			f.t.Error("cannot hijack")
			return
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	writeEnv(w, 200, "OK", "synced", resp)
}

// apply runs one round trip; f.mu is held.
func (f *fakeServer) apply(req *keystation.SyncRequest) keystation.SyncResponse {
	resp := keystation.SyncResponse{ServerTime: time.Now().Add(f.clockShift), Results: []keystation.SyncResult{}, Grants: []keystation.SyncGrant{},
		Revoked: []keystation.KeyID{}, Editions: keystation.DefaultEditions(), Levels: map[string]int{}}
	f.batches = append(f.batches, len(req.Reports))
	for _, rep := range req.Reports {
		if f.unanswered[rep.ID] {
			delete(f.unanswered, rep.ID)
			continue
		}
		res := keystation.SyncResult{ID: rep.ID}
		switch {
		case f.applied[rep.ID] > 0:
			res.Status = keystation.SyncDuplicate
		case rep.ID == f.rejectID:
			res.Status, res.Code, res.Message = keystation.SyncRejected, keystation.EINVALID, "machine: required"
		case f.conflictIDs[rep.ID] || f.revoked[rep.KeyID]:
			res.Status, res.Code, res.Message = keystation.SyncConflict, keystation.ECONFLICT, "the key was reclaimed"
			f.applied[rep.ID]++
		default:
			res.Status = keystation.SyncApplied
			f.applied[rep.ID]++
			f.order = append(f.order, rep.ID)
			if _, ok := f.leased[rep.KeyID]; ok && rep.Key == "" {
				f.used[rep.KeyID] = true
			}
		}
		resp.Results = append(resp.Results, res)
	}
	for _, id := range req.Acks {
		f.acked[id] = true
	}
	for _, id := range req.Holding {
		if g, ok := f.leased[id]; !ok || f.revoked[id] || f.used[id] {
			resp.Revoked = append(resp.Revoked, id)
			_ = g
		}
	}
	for ed, target := range req.Targets {
		have := 0
		for id, g := range f.leased {
			if g.Edition == ed && !f.used[id] && !f.revoked[id] {
				have++
			}
		}
		for ; have < target && len(f.pool[ed]) > 0; have++ {
			g := f.pool[ed][0]
			f.pool[ed] = f.pool[ed][1:]
			f.leased[g.KeyID] = g
		}
		resp.Levels[ed] = have
	}
	var ids []keystation.KeyID
	for id := range f.leased {
		if !f.acked[id] && !f.revoked[id] {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		resp.Grants = append(resp.Grants, f.leased[id])
	}
	return resp
}

// revoke takes a leased key back from the station.
func (f *fakeServer) revoke(id keystation.KeyID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.revoked[id] = true
}

func (f *fakeServer) snapshot() (applied map[string]int, order []string, batches []int, leased int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	applied = map[string]int{}
	for k, v := range f.applied {
		applied[k] = v
	}
	for id := range f.leased {
		if !f.revoked[id] {
			leased++
		}
	}
	return applied, append([]string(nil), f.order...), append([]int(nil), f.batches...), leased
}

// requestsSent returns the report IDs of each sync request received.
func (f *fakeServer) requestsSent() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.sent...)
}

func (f *fakeServer) set(fn func(f *fakeServer)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeServer) url() string { return strings.TrimRight(f.srv.URL, "/") }
