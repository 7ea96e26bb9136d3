package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"keystation"
	"keystation/store"
	"keystation/syncfile"
)

// SyncStore is what station enrolment and the sync protocol need.
type SyncStore interface {
	Enrol(ctx context.Context, req keystation.EnrolRequest, ip string) (keystation.EnrolResponse, error)
	StationByCredential(ctx context.Context, cred string) (store.Station, error)
	Sync(ctx context.Context, st store.Station, req keystation.SyncRequest, ip string) (keystation.SyncResponse, error)
	Reconcile(ctx context.Context, station int64) (keystation.Reconciliation, error)
	SyncFile(ctx context.Context, file []byte, source string) ([]byte, error)
}

// MaxSyncBodyBytes bounds a sync request: up to MaxSyncReports reports with
// their hardware.
const MaxSyncBodyBytes = 16 << 20

func (s *Server) syncRoutes() {
	s.handle("POST", "/api/v1/stations/enrol", s.handleEnrol)
	s.handle("POST", "/api/v1/sync", s.handleSync)
	s.handle("GET", "/api/v1/sync/reconciliation", s.handleReconciliation)
	s.handle("POST", "/api/v1/sync/file", s.handleSyncFile)
	s.handle("POST", "/api/v1/sync/signin", s.handleStationSignIn)
}

// Operator is who signed in at a station.
type Operator struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	TenantID int64  `json:"tenantId"`
}

// handleStationSignIn answers POST /api/v1/sync/signin: a station checks an
// operator's username and password (the station then caches a verifier of
// its own for signing in while offline).
func (s *Server) handleStationSignIn(w http.ResponseWriter, r *http.Request) {
	st, err := s.station(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var c credentials
	if err := decodeJSON(w, r, &c, MaxBodyBytes); err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.authenticate(r, c)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if u.TenantID != st.TenantID && u.Role != store.RoleSuperAdmin {
		s.error(w, r, keystation.Errorf(keystation.EFORBIDDEN, "this operator belongs to another tenant than the station"))
		return
	}
	respond(w, keystation.EOK, "signed in", Operator{Username: u.Username, Role: u.Role, TenantID: u.TenantID})
}

// handleSyncFile answers POST /api/v1/sync/file: the body is an air-gapped
// station's request file (it authenticates itself), the answer the response
// file to carry back on the USB stick.
func (s *Server) handleSyncFile(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, syncfile.MaxFileBytes))
	if err != nil {
		s.error(w, r, keystation.Errorf(keystation.ETOOLARGE, "the sync file is larger than %d bytes", syncfile.MaxFileBytes))
		return
	}
	out, err := s.Store.SyncFile(r.Context(), body, clientIP(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="keystation-sync-response.json"`)
	w.Write(out)
}

// handleEnrol answers POST /api/v1/stations/enrol: a station trades a
// supervisor's enrolment token for its own credential.
func (s *Server) handleEnrol(w http.ResponseWriter, r *http.Request) {
	var req keystation.EnrolRequest
	if err := decodeJSON(w, r, &req, MaxBodyBytes); err != nil {
		s.error(w, r, err)
		return
	}
	f := map[string]string{}
	keystation.CheckText(f, "token", req.Token, 128, true)
	keystation.CheckText(f, "name", req.Name, 64, false)
	keystation.CheckText(f, "hostname", req.Hostname, 128, false)
	if strings.TrimSpace(req.Name) == "" && strings.TrimSpace(req.Hostname) == "" {
		f["name"] = "required (or a hostname)"
	}
	if len(f) > 0 {
		s.error(w, r, keystation.FieldError(f))
		return
	}
	ip := clientIP(r)
	now := s.Now()
	if wait := s.Auth.Limiter.Blocked(now, "enrol:"+ip, ""); wait > 0 {
		s.error(w, r, &keystation.Error{Code: keystation.ERATELIMIT, RetryAfter: wait,
			Message: "too many failed enrolments; try again in " + wait.Round(time.Second).String()})
		return
	}
	resp, err := s.Store.Enrol(r.Context(), req, ip)
	if err != nil {
		if keystation.ErrorCode(err) == keystation.EUNAUTHORIZED {
			s.Auth.Limiter.Fail(now, "enrol:"+ip, "")
		}
		s.error(w, r, err)
		return
	}
	respond(w, keystation.EOK, "station enrolled; keep this credential, it is shown once", resp)
}

// station authenticates a station by its Bearer credential.
func (s *Server) station(r *http.Request) (store.Station, error) {
	h := r.Header.Get("Authorization")
	cred, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(cred) == "" {
		return store.Station{}, keystation.Errorf(keystation.EUNAUTHORIZED, "a station credential is required (Authorization: Bearer …)")
	}
	return s.Store.StationByCredential(r.Context(), cred)
}

// handleSync answers POST /api/v1/sync: one round trip of the sync protocol.
func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	st, err := s.station(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	var req keystation.SyncRequest
	if err := decodeJSON(w, r, &req, MaxSyncBodyBytes); err != nil {
		s.error(w, r, err)
		return
	}
	f := map[string]string{}
	if len(req.Reports) > keystation.MaxSyncReports {
		f["reports"] = "at most 1000 reports per request"
	}
	for _, l := range []struct {
		name string
		ids  []keystation.KeyID
	}{{"holding", req.Holding}, {"acks", req.Acks}, {"release", req.Release}} {
		if len(l.ids) > 10*keystation.MaxBufferTarget {
			f[l.name] = "too many entries"
		}
	}
	if len(req.Targets) > 64 {
		f["targets"] = "too many editions"
	}
	for ed, n := range req.Targets {
		if n < 0 || n > keystation.MaxBufferTarget {
			f["targets."+ed] = "must be between 0 and 1000"
		}
	}
	if req.Backlog < 0 {
		f["backlog"] = "must not be negative"
	}
	if len(f) > 0 {
		s.error(w, r, keystation.FieldError(f))
		return
	}
	resp, err := s.Store.Sync(r.Context(), st, req, clientIP(r))
	if err != nil {
		s.error(w, r, err)
		return
	}
	respond(w, keystation.EOK, "synced", resp)
}

// handleReconciliation answers GET /api/v1/sync/reconciliation with the
// station's key counts on the server.
func (s *Server) handleReconciliation(w http.ResponseWriter, r *http.Request) {
	st, err := s.station(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	rec, err := s.Store.Reconcile(r.Context(), st.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	respond(w, keystation.EOK, "reconciliation", rec)
}
