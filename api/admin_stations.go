package api

import (
	"context"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"keystation"
	"keystation/store"
)

// Stations for supervisors (issue 5): list with sync state, detail with
// reconciliation, enrolment tokens, credential revocation and lease reclaim.

// StationAdminStore is what the station admin endpoints need.
type StationAdminStore interface {
	Stations(ctx context.Context, tenant int64) ([]store.Station, error)
	TenantStation(ctx context.Context, tenant, id int64) (store.Station, error)
	Reconcile(ctx context.Context, station int64) (keystation.Reconciliation, error)
	CreateEnrolToken(ctx context.Context, opt store.EnrolTokenOptions) (string, error)
	RevokeStation(ctx context.Context, tenant, id int64, by store.AuditBy) error
	ReclaimStation(ctx context.Context, tenant, id int64, by store.AuditBy) (int, error)
}

func (s *Server) stationAdminRoutes() {
	const base = "/api/v1/admin/stations/"
	s.handle("GET", base+"{$}", s.admin(adminsOnly, s.handleStationList))
	s.handle("GET", base+"{id}/{$}", s.admin(adminsOnly, s.handleStationDetail))
	s.handle("POST", base+"{id}/revoke/{$}", s.admin(adminsOnly, s.handleStationRevoke))
	s.handle("POST", base+"{id}/reclaim/{$}", s.admin(adminsOnly, s.handleStationReclaim))
	s.handle("POST", "/api/v1/admin/enrol-tokens/{$}", s.admin(adminsOnly, s.handleEnrolTokenCreate))
}

type stationJSON struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Hostname    string         `json:"hostname"`
	Tenant      int64          `json:"tenant"`
	Status      string         `json:"status"` // active | revoked
	CreatedAt   string         `json:"created_at"`
	LastSyncAt  *string        `json:"last_sync_at"`
	LastIP      string         `json:"last_ip_address"`
	ClockSkewMS *int64         `json:"clock_skew_ms"`
	Backlog     int            `json:"outbox_backlog"`
	Buffer      map[string]int `json:"buffer"`
	Targets     map[string]int `json:"targets"`
	KeysLeased  int            `json:"keys_leased"`
	Demo        bool           `json:"demo"`
	// Reconciliation is in the detail answer only.
	Reconciliation *keystation.Reconciliation `json:"reconciliation,omitempty"`
}

func toStationJSON(st store.Station) stationJSON {
	out := stationJSON{ID: st.ID, Name: st.Name, Hostname: st.Hostname, Tenant: st.TenantID, Status: "active",
		CreatedAt: isoTime(st.CreatedAt), LastIP: st.LastIP, ClockSkewMS: st.ClockSkewMS, Backlog: st.Backlog,
		Buffer: st.Buffer, Targets: st.Targets, KeysLeased: st.Leased, Demo: st.Demo}
	if st.Revoked {
		out.Status = "revoked"
	}
	if st.LastSyncAt != "" {
		t := isoTime(st.LastSyncAt)
		out.LastSyncAt = &t
	}
	if out.Buffer == nil {
		out.Buffer = map[string]int{}
	}
	if out.Targets == nil {
		out.Targets = map[string]int{}
	}
	return out
}

// isoTime turns a stored time into RFC 3339 seconds.
func isoTime(v string) string {
	t, err := time.Parse("2006-01-02T15:04:05.000000Z", v)
	if err != nil {
		return v
	}
	return rfc3339(t)
}

func (s *Server) handleStationList(w http.ResponseWriter, r *http.Request, p *principal) {
	l := langOf(r)
	fe := fieldErrors{}
	pg := parsePage(r.URL.Query(), l, fe)
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	sts, err := s.Store.Stations(r.Context(), p.Tenant)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	results := []stationJSON{}
	for i := pg.offset(); i < len(sts) && i < pg.offset()+pg.size; i++ {
		results = append(results, toStationJSON(sts[i]))
	}
	writePage(w, r, pg, len(sts), results)
}

func (s *Server) stationParam(w http.ResponseWriter, r *http.Request, p *principal) (store.Station, bool) {
	id, ok := pathID(r, "id")
	if !ok {
		drfDetail(w, r, http.StatusNotFound, msgNotFound)
		return store.Station{}, false
	}
	st, err := s.Store.TenantStation(r.Context(), p.Tenant, id)
	if err != nil {
		s.drfError(w, r, err)
		return store.Station{}, false
	}
	return st, true
}

func (s *Server) handleStationDetail(w http.ResponseWriter, r *http.Request, p *principal) {
	st, ok := s.stationParam(w, r, p)
	if !ok {
		return
	}
	rec, err := s.Store.Reconcile(r.Context(), st.ID)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	out := toStationJSON(st)
	out.Reconciliation = &rec
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleStationRevoke(w http.ResponseWriter, r *http.Request, p *principal) {
	st, ok := s.stationParam(w, r, p)
	if !ok {
		return
	}
	if err := s.Store.RevokeStation(r.Context(), p.Tenant, st.ID, p.by()); err != nil {
		s.drfError(w, r, err)
		return
	}
	writeSuccess(w, r, "工作站凭据已撤销", "station credential revoked")
}

type reclaimAnswer struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
	Keys    int    `json:"keys"`
}

func (s *Server) handleStationReclaim(w http.ResponseWriter, r *http.Request, p *principal) {
	st, ok := s.stationParam(w, r, p)
	if !ok {
		return
	}
	n, err := s.Store.ReclaimStation(r.Context(), p.Tenant, st.ID, p.by())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	msg := "工作站的租用密钥已收回"
	if langOf(r) == langEN {
		msg = "the station's leased keys were returned to the pool"
	}
	writeJSON(w, http.StatusOK, reclaimAnswer{Success: true, Message: msg, Keys: n})
}

// Bounds of an enrolment token.
const (
	maxEnrolTokenUses = 10000
	minEnrolTokenTTL  = 60              // seconds
	maxEnrolTokenTTL  = 366 * 24 * 3600 // seconds
)

type enrolTokenRequest struct {
	Name       *string `json:"name"`
	Uses       *int    `json:"uses"`
	TTLSeconds *int    `json:"ttl_seconds"`
}

type enrolTokenAnswer struct {
	Token     string `json:"token"`
	Uses      int    `json:"uses"`
	ExpiresAt string `json:"expires_at"`
	Tenant    int64  `json:"tenant"`
}

func (s *Server) handleEnrolTokenCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	var req enrolTokenRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	fe := fieldErrors{}
	name, uses, ttl := "", 1, 24*time.Hour
	if req.Name != nil {
		name = strings.TrimSpace(*req.Name)
		if utf8.RuneCountInString(name) > 64 {
			fe.add("name", l.text(msgMaxLength, 64))
		}
	}
	if req.Uses != nil {
		uses = *req.Uses
		switch {
		case uses < 1:
			fe.add("uses", l.text(msgMinValue, 1))
		case uses > maxEnrolTokenUses:
			fe.add("uses", l.text(msgMaxValue, maxEnrolTokenUses))
		}
	}
	if req.TTLSeconds != nil {
		ttl = time.Duration(*req.TTLSeconds) * time.Second
		switch {
		case *req.TTLSeconds < minEnrolTokenTTL:
			fe.add("ttl_seconds", l.text(msgMinValue, minEnrolTokenTTL))
		case *req.TTLSeconds > maxEnrolTokenTTL:
			fe.add("ttl_seconds", l.text(msgMaxValue, maxEnrolTokenTTL))
		}
	}
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	tenant := p.writeTenant()
	tok, err := s.Store.CreateEnrolToken(r.Context(), store.EnrolTokenOptions{Name: name, Tenant: tenant, Uses: uses, TTL: ttl, By: p.by()})
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, enrolTokenAnswer{Token: tok, Uses: uses, ExpiresAt: rfc3339(s.Now().Add(ttl)), Tenant: tenant})
}
