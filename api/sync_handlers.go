package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	SyncStream(ctx context.Context, st store.Station, ip string, decode store.SyncDecoder) (keystation.SyncResponse, error)
	Reconcile(ctx context.Context, station int64) (keystation.Reconciliation, error)
	SyncFile(ctx context.Context, file []byte, source string) ([]byte, error)
}

// MaxSyncBodyBytes bounds a sync request: up to store.MaxSyncRequestReports
// reports with their hardware.
const MaxSyncBodyBytes = 32 << 20

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
// The body is read whole, then decoded as the store applies it: the store
// prepares and applies the first reports while the rest are decoded.
func (s *Server) handleSync(w http.ResponseWriter, r *http.Request) {
	st, err := s.station(r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		s.error(w, r, keystation.FieldError(map[string]string{"Content-Type": "must be application/json"}))
		return
	}
	body, err := readSyncBody(w, r)
	if err != nil {
		s.error(w, r, jsonError(err))
		return
	}
	resp, err := s.Store.SyncStream(r.Context(), st, clientIP(r), func(emit func([]keystation.SyncReport) error) (keystation.SyncRequest, error) {
		req, err := DecodeSyncRequest(body, emit)
		if err != nil {
			return req, err
		}
		return req, checkSyncRequest(&req)
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	respond(w, keystation.EOK, "synced", resp)
}

// readSyncBody reads a sync request's body, at most MaxSyncBodyBytes, into
// a buffer the size its Content-Length announces (io.ReadAll would grow one
// by doubling, holding up to twice the body and copying it several times).
func readSyncBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	in := http.MaxBytesReader(w, r.Body, MaxSyncBodyBytes)
	if r.ContentLength <= 0 || r.ContentLength > MaxSyncBodyBytes {
		return io.ReadAll(in)
	}
	// bytes.Buffer.ReadFrom keeps bytes.MinRead free before each read.
	buf := bytes.NewBuffer(make([]byte, 0, r.ContentLength+bytes.MinRead))
	_, err := buf.ReadFrom(in)
	return buf.Bytes(), err
}

// checkSyncRequest checks what a sync request carries beyond its reports
// (each report is checked on its own, and refused alone).
func checkSyncRequest(req *keystation.SyncRequest) error {
	f := map[string]string{}
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
		return keystation.FieldError(f)
	}
	return nil
}

// DecodeSyncRequest decodes a sync request body as strictly as any other
// body (DecodeStrict), passing its reports to emit in order, a few at a
// time (store.SyncChunk), as it goes; the request it returns has no
// Reports. It refuses more than store.MaxSyncRequestReports reports, and a
// body that names "reports" twice.
func DecodeSyncRequest(body []byte, emit func([]keystation.SyncReport) error) (keystation.SyncRequest, error) {
	var req keystation.SyncRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		// Not an object: decoded whole, for the same answer as any body.
		if err := DecodeStrict(body, &req); err != nil {
			return req, err
		}
		reports := req.Reports
		req.Reports = nil
		return req, emitAll(reports, emit)
	}
	rest := []byte{'{'}
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return req, jsonError(err)
		}
		key, _ := tok.(string)
		if !strings.EqualFold(key, "reports") {
			var v json.RawMessage
			if err := dec.Decode(&v); err != nil {
				return req, jsonError(err)
			}
			if len(rest) > 1 {
				rest = append(rest, ',')
			}
			k, _ := json.Marshal(key)
			rest = append(append(append(rest, k...), ':'), v...)
			continue
		}
		if seen {
			return req, keystation.FieldError(map[string]string{"reports": "given twice"})
		}
		seen = true
		if err := decodeReports(dec, emit); err != nil {
			return req, err
		}
	}
	if _, err := dec.Token(); err != nil {
		return req, jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return req, keystation.FieldError(map[string]string{"body": "unexpected data after the JSON object"})
	}
	if err := DecodeStrict(append(rest, '}'), &req); err != nil {
		return req, err
	}
	req.Reports = nil
	return req, nil
}

// decodeReports decodes the value of "reports" (an array, or null) from
// dec, passing the reports to emit.
func decodeReports(dec *json.Decoder, emit func([]keystation.SyncReport) error) error {
	tok, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if tok == nil {
		return nil // null: no reports
	}
	if tok != json.Delim('[') {
		return keystation.FieldError(map[string]string{"reports": "must be an array"})
	}
	chunk := make([]keystation.SyncReport, 0, store.SyncChunk)
	n := 0
	for dec.More() {
		if n++; n > store.MaxSyncRequestReports {
			return keystation.FieldError(map[string]string{"reports": fmt.Sprintf("at most %d reports per request", store.MaxSyncRequestReports)})
		}
		chunk = append(chunk, keystation.SyncReport{})
		if err := dec.Decode(&chunk[len(chunk)-1]); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) {
				typ.Field = strings.TrimSuffix("reports."+typ.Field, ".")
			}
			return jsonError(err)
		}
		if len(chunk) == cap(chunk) {
			if err := emit(chunk); err != nil {
				return err
			}
			chunk = make([]keystation.SyncReport, 0, store.SyncChunk)
		}
	}
	if _, err := dec.Token(); err != nil { // ]
		return jsonError(err)
	}
	if len(chunk) > 0 {
		return emit(chunk)
	}
	return nil
}

func emitAll(reports []keystation.SyncReport, emit func([]keystation.SyncReport) error) error {
	if len(reports) > store.MaxSyncRequestReports {
		return keystation.FieldError(map[string]string{"reports": fmt.Sprintf("at most %d reports per request", store.MaxSyncRequestReports)})
	}
	for i := 0; i < len(reports); i += store.SyncChunk {
		if err := emit(reports[i:min(len(reports), i+store.SyncChunk)]); err != nil {
			return err
		}
	}
	return nil
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
