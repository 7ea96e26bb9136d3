package api

import (
	"net/http"
	"strings"

	"keystation"
	"keystation/auth"
	"keystation/store"
)

// Audit log, users and tenants.
//
//	GET  /api/v1/admin/audit-log/                          audit entries, filtered and paginated
//	GET  /api/v1/admin/audit-log/verify/                   verify the hash chain (super-admin)
//	GET  /api/v1/admin/users/                              users (super-admin)
//	POST /api/v1/admin/users/                              add a user (super-admin)
//	POST /api/v1/admin/users/{username}/disable/           (super-admin)
//	POST /api/v1/admin/users/{username}/enable/            (super-admin)
//	POST /api/v1/admin/users/{username}/set-password/      (super-admin)
//	GET  /api/v1/admin/tenants/                            tenants (super-admin)
//	POST /api/v1/admin/tenants/                            add a tenant (super-admin)

func (s *Server) auditRoutes() {
	s.handle("GET", "/api/v1/admin/audit-log/{$}", s.admin(adminsOnly, s.handleAuditList))
	s.handle("GET", "/api/v1/admin/audit-log/verify/{$}", s.admin(superOnly, s.handleAuditVerify))
}

func (s *Server) userRoutes() {
	s.handle("GET", "/api/v1/admin/users/{$}", s.admin(superOnly, s.handleUserList))
	s.handle("POST", "/api/v1/admin/users/{$}", s.admin(superOnly, s.handleUserCreate))
	s.handle("POST", "/api/v1/admin/users/{username}/disable/{$}", s.admin(superOnly, s.handleUserDisable))
	s.handle("POST", "/api/v1/admin/users/{username}/enable/{$}", s.admin(superOnly, s.handleUserEnable))
	s.handle("POST", "/api/v1/admin/users/{username}/set-password/{$}", s.admin(superOnly, s.handleUserPassword))
	s.handle("GET", "/api/v1/admin/tenants/{$}", s.admin(superOnly, s.handleTenantList))
	s.handle("POST", "/api/v1/admin/tenants/{$}", s.admin(superOnly, s.handleTenantCreate))
}

// handleAuditList lists audit entries, newest first: a tenant-admin sees
// only entries about their tenant. Filters: action, actor, object_type,
// object_id, since, until.
func (s *Server) handleAuditList(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	l := langOf(r)
	fe := fieldErrors{}
	pg := parsePage(q, l, fe)
	since := timeParam(q, "since", l, fe)
	until := timeParam(q, "until", l, fe)
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	f := store.AuditFilter{Tenant: p.Tenant, Action: q.Get("action"), Actor: q.Get("actor"),
		ObjectType: q.Get("object_type"), ObjectID: q.Get("object_id"), Limit: pg.size, Offset: pg.offset()}
	if !since.IsZero() {
		f.Since = since.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	if !until.IsZero() {
		f.Until = until.UTC().Format("2006-01-02T15:04:05.000000Z")
	}
	list, n, err := s.Store.AuditEntries(r.Context(), f)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writePage(w, r, pg, n, list)
}

func (s *Server) handleAuditVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	c, err := s.Store.VerifyAudit(r.Context())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

type userJSON struct {
	ID        int64  `json:"id"`
	Username  string `json:"username"`
	Role      string `json:"role"`
	TenantID  int64  `json:"tenant_id"`
	Disabled  bool   `json:"disabled"`
	Demo      bool   `json:"demo"`
	CreatedAt string `json:"created_at"`
}

func toUserJSON(u store.User) userJSON {
	return userJSON{ID: u.ID, Username: u.Username, Role: u.Role, TenantID: u.TenantID, Disabled: u.Disabled, Demo: u.Demo, CreatedAt: u.CreatedAt}
}

// handleUserList lists the users (of the tenant in scope, when one is).
func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request, p *principal) {
	us, err := s.Store.Users(r.Context())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	out := []userJSON{}
	for _, u := range us {
		if p.Tenant == 0 || u.TenantID == p.Tenant {
			out = append(out, toUserJSON(u))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type userCreateRequest struct {
	Username string  `json:"username"`
	Password *string `json:"password"`
	Role     string  `json:"role"`
	TenantID int64   `json:"tenant_id"`
}

func (s *Server) handleUserCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	var req userCreateRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	fe := fieldErrors{}
	if strings.TrimSpace(req.Username) == "" {
		fe.add("username", l.text(msgRequired))
	}
	if req.Password == nil {
		fe.add("password", l.text(msgRequired))
	} else if len(*req.Password) < auth.MinPasswordLen {
		fe.add("password", l.text(msgMinLength, auth.MinPasswordLen))
	} else if len(*req.Password) > 72 {
		fe.add("password", l.text(msgMaxLength, 72))
	}
	choice(fe, l, "role", req.Role, store.RoleSuperAdmin, store.RoleTenantAdmin, store.RoleOperator)
	if req.Role == "" {
		fe.add("role", l.text(msgRequired))
	}
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	if req.TenantID == 0 {
		req.TenantID = p.writeTenant()
	}
	if _, err := s.Store.TenantByID(r.Context(), req.TenantID); err != nil {
		if keystation.ErrorCode(err) == keystation.ENOTFOUND {
			drfFields(w, fieldErrors{"tenant_id": {l.text(msgInvalidChoice, req.TenantID)}})
			return
		}
		s.drfError(w, r, err)
		return
	}
	hash, err := auth.HashPassword(*req.Password)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	u, err := s.Store.CreateUserBy(r.Context(), store.User{Username: req.Username, PasswordHash: hash, Role: req.Role,
		TenantID: req.TenantID}, p.by())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, toUserJSON(u))
}

func (s *Server) handleUserDisable(w http.ResponseWriter, r *http.Request, p *principal) {
	s.setDisabled(w, r, p, true)
}

func (s *Server) handleUserEnable(w http.ResponseWriter, r *http.Request, p *principal) {
	s.setDisabled(w, r, p, false)
}

func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, p *principal, disabled bool) {
	name := r.PathValue("username")
	if disabled && name == p.User.Username {
		drfFields(w, fieldErrors{"username": {map[lang]string{langZH: "不能停用自己的账户。", langEN: "You cannot disable your own account."}[langOf(r)]}})
		return
	}
	if err := s.Store.SetDisabledBy(r.Context(), name, disabled, p.by()); err != nil {
		s.drfError(w, r, err)
		return
	}
	if disabled {
		writeSuccess(w, r, "用户已停用", "User disabled")
	} else {
		writeSuccess(w, r, "用户已启用", "User enabled")
	}
}

type passwordRequest struct {
	Password *string `json:"password"`
}

func (s *Server) handleUserPassword(w http.ResponseWriter, r *http.Request, p *principal) {
	var req passwordRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	if req.Password == nil {
		drfFields(w, fieldErrors{"password": {l.text(msgRequired)}})
		return
	}
	if len(*req.Password) < auth.MinPasswordLen {
		drfFields(w, fieldErrors{"password": {l.text(msgMinLength, auth.MinPasswordLen)}})
		return
	}
	hash, err := auth.HashPassword(*req.Password)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	if err := s.Store.SetPasswordBy(r.Context(), r.PathValue("username"), hash, p.by()); err != nil {
		s.drfError(w, r, err)
		return
	}
	writeSuccess(w, r, "密码已修改", "Password changed")
}

func (s *Server) handleTenantList(w http.ResponseWriter, r *http.Request, p *principal) {
	ts, err := s.Store.Tenants(r.Context())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

type tenantRequest struct {
	Name string `json:"name"`
}

func (s *Server) handleTenantCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	var req tenantRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		drfFields(w, fieldErrors{"name": {langOf(r).text(msgRequired)}})
		return
	}
	t, err := s.Store.CreateTenant(r.Context(), req.Name, p.by())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, t)
}
