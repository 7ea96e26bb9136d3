package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"keystation"
	"keystation/auth"
	"keystation/store"
)

// The supervisors' admin API (issue 5): JWT sign-in, machine bindings (seed
// 001), pools and keys, reports and stats, the audit log, users and tenants.
// Every admin endpoint is wrapped by s.admin(who, handler), which checks the
// token, the role and the tenant in scope and hands the handler a
// *principal; answers are DRF-style (drf.go). Each resource registers its
// routes in its own admin_*.go file from adminRoutes below. Adding one (the
// station endpoints of issue 3, say) is: declare what it needs of the store
// in AdminStore (or its own interface embedded in Store), write
// admin_stations.go with a stationAdminRoutes() that registers
// s.handle("GET", "/api/v1/admin/stations/{$}", s.admin(adminsOnly, s.handleStationList))
// and friends, scope every query to p.Tenant (0: all tenants), write changes
// with p.by() for the audit log, and call it from adminRoutes.

// AdminStore is what the supervisors' admin API needs.
type AdminStore interface {
	TenantByID(ctx context.Context, id int64) (store.Tenant, error)
	Tenants(ctx context.Context) ([]store.Tenant, error)
	CreateTenant(ctx context.Context, name string, by store.AuditBy) (store.Tenant, error)
	Users(ctx context.Context) ([]store.User, error)
	CreateUserBy(ctx context.Context, u store.User, by store.AuditBy) (store.User, error)
	SetPasswordBy(ctx context.Context, name, hash string, by store.AuditBy) error
	SetDisabledBy(ctx context.Context, name string, disabled bool, by store.AuditBy) error
	RecordSignIn(ctx context.Context, username string, tenant int64, ok bool, by store.AuditBy) error

	MachineBindings(ctx context.Context, f store.BindingFilter) ([]store.Binding, int, error)
	MachineBinding(ctx context.Context, tenant, id int64, inactiveAfter time.Duration) (store.Binding, error)
	BlockMachineBinding(ctx context.Context, tenant, id int64, reason string, by store.AuditBy) error

	PoolCounts(ctx context.Context, tenant int64) ([]store.PoolCount, error)
	Editions(ctx context.Context) ([]keystation.Edition, error)
	CreatePool(ctx context.Context, e keystation.Edition, by store.AuditBy) error
	SetLowStock(ctx context.Context, slug string, lowStock int, by store.AuditBy) error
	ImportKeys(ctx context.Context, entries []store.ImportEntry, opt store.ImportOptions) (store.ImportResult, error)
	KeyDetail(ctx context.Context, tenant int64, id keystation.KeyID) (store.KeyInfo, error)
	RevokeKey(ctx context.Context, tenant int64, id keystation.KeyID, note string, by store.AuditBy) error
	ReturnKey(ctx context.Context, tenant int64, id keystation.KeyID, note string, by store.AuditBy) error

	AdminReports(ctx context.Context, f store.ReportFilter) ([]store.ReportRow, int, error)
	ExportActivations(ctx context.Context, f store.ReportFilter, fn func(store.ActivationRow) error) error
	AdminStats(ctx context.Context, tenant int64, since, until time.Time) (store.Stats, error)

	StationAdminStore

	AuditEntries(ctx context.Context, f store.AuditFilter) ([]store.AuditEntry, int, error)
	VerifyAudit(ctx context.Context) (store.AuditCheck, error)
}

// adminState is the admin API's configuration.
type adminState struct {
	tokens        *auth.Tokens
	inactiveAfter time.Duration
}

// SetTokens sets the issuer of the admin API's tokens; without one, every
// admin endpoint answers 401.
func (s *Server) SetTokens(t *auth.Tokens) { s.adm.tokens = t }

// Tokens returns the admin API's token issuer.
func (s *Server) Tokens() *auth.Tokens { return s.adm.tokens }

// SetInactiveAfter sets how long a machine binding may go unseen and still
// be active (store.DefaultInactiveAfter by default).
func (s *Server) SetInactiveAfter(d time.Duration) { s.adm.inactiveAfter = d }

func (s *Server) inactiveAfter() time.Duration {
	if s.adm.inactiveAfter <= 0 {
		return store.DefaultInactiveAfter
	}
	return s.adm.inactiveAfter
}

func (s *Server) adminRoutes() {
	s.authRoutes()
	s.bindingRoutes()
	s.poolRoutes()
	s.reportRoutes()
	s.auditRoutes()
	s.userRoutes()
	s.stationAdminRoutes()
	s.openAPIRoutes()
}

// success is the {"success": true, "message": ...} answer of actions.
type success struct {
	Success bool   `json:"success"`
	Message string `json:"message"`
}

func writeSuccess(w http.ResponseWriter, r *http.Request, zh, en string) {
	msg := zh
	if langOf(r) == langEN {
		msg = en
	}
	writeJSON(w, http.StatusOK, success{Success: true, Message: msg})
}

// pathID parses an integer path value; anything else is not found.
func pathID(r *http.Request, name string) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	return id, err == nil && id > 0
}

// timeParam parses an optional time query parameter: RFC 3339 or a date.
func timeParam(q map[string][]string, name string, l lang, fe fieldErrors) time.Time {
	vs := q[name]
	if len(vs) == 0 || vs[0] == "" {
		return time.Time{}
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, vs[0]); err == nil {
			return t
		}
	}
	fe.add(name, l.text(msgInvalidDateTime))
	return time.Time{}
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }
