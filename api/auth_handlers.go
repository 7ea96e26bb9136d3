package api

import (
	"net/http"
	"strconv"
	"strings"

	"keystation"
	"keystation/auth"
	"keystation/store"
)

// JWT sign-in for the supervisors' admin API:
//
//	POST /api/v1/auth/token/          {username, password} → {access, refresh}
//	POST /api/v1/auth/token/refresh/  {refresh}            → {access}

func (s *Server) authRoutes() {
	s.handle("POST", "/api/v1/auth/token/{$}", s.handleToken)
	s.handle("POST", "/api/v1/auth/token/refresh/{$}", s.handleTokenRefresh)
}

type tokenRequest struct {
	Username *string `json:"username"`
	Password *string `json:"password"`
}

// handleToken signs a user in: a wrong password, an unknown or a disabled
// user get the same 401; every attempt is written to the audit log.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	var req tokenRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	fe := fieldErrors{}
	for name, v := range map[string]*string{"username": req.Username, "password": req.Password} {
		switch {
		case v == nil:
			fe.add(name, l.text(msgRequired))
		case *v == "":
			fe.add(name, l.text(msgBlank))
		case len(*v) > 1024:
			fe.add(name, l.text(msgMaxLength, 1024))
		}
	}
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	if s.adm.tokens == nil {
		drfDetail(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	name := strings.TrimSpace(*req.Username)
	by := store.AuditBy{User: name, IP: clientIP(r), Via: store.ViaAPI}
	u, err := s.Auth.Authenticate(r.Context(), name, *req.Password, clientIP(r))
	switch keystation.ErrorCode(err) {
	case "":
	case keystation.EUNAUTHORIZED:
		if len(name) <= keystation.MaxUsernameLen {
			if aerr := s.Store.RecordSignIn(r.Context(), name, 0, false, by); aerr != nil {
				s.drfError(w, r, aerr)
				return
			}
		}
		drfDetail(w, r, http.StatusUnauthorized, msgBadCredentials)
		return
	default:
		s.drfError(w, r, err)
		return
	}
	pair, err := s.adm.tokens.Issue(u)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	by.Role = u.Role
	if err := s.Store.RecordSignIn(r.Context(), u.Username, u.TenantID, true, by); err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pair)
}

type refreshRequest struct {
	Refresh *string `json:"refresh"`
}

// handleTokenRefresh returns a new access token for a valid refresh token
// of a user who is still enabled and has not changed password.
func (s *Server) handleTokenRefresh(w http.ResponseWriter, r *http.Request) {
	var req refreshRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	if req.Refresh == nil || *req.Refresh == "" {
		fe := fieldErrors{}
		if req.Refresh == nil {
			fe.add("refresh", l.text(msgRequired))
		} else {
			fe.add("refresh", l.text(msgBlank))
		}
		drfFields(w, fe)
		return
	}
	if s.adm.tokens == nil {
		drfDetail(w, r, http.StatusServiceUnavailable, msgUnavailable)
		return
	}
	c, err := s.adm.tokens.Parse(*req.Refresh, auth.TokenRefresh)
	if err != nil {
		drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		return
	}
	u, err := s.Store.UserByName(r.Context(), c.Subject)
	if err != nil || s.adm.tokens.CheckUser(c, u) != nil {
		if err != nil && keystation.ErrorCode(err) == keystation.EINTERNAL {
			s.drfError(w, r, err)
			return
		}
		drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		return
	}
	access, err := s.adm.tokens.Access(u)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"access": access})
}

// principal is who calls an admin endpoint, and which tenant's data the call
// is about.
type principal struct {
	User store.User
	// Tenant is the tenant in scope: the tenant-admin's own, or the one a
	// super-admin chose with X-Tenant-ID; 0 for a super-admin who chose none
	// (every tenant).
	Tenant int64
	IP     string
}

func (p *principal) by() store.AuditBy {
	return store.AuditBy{User: p.User.Username, Role: p.User.Role, IP: p.IP, Via: store.ViaAPI}
}

// writeTenant is the tenant new objects go to: the one in scope, else the
// default tenant.
func (p *principal) writeTenant() int64 {
	if p.Tenant == 0 {
		return 1
	}
	return p.Tenant
}

// Who may call an admin endpoint.
type access int

const (
	adminsOnly access = iota // super-admins and tenant-admins
	superOnly                // super-admins
)

type adminHandler func(w http.ResponseWriter, r *http.Request, p *principal)

// admin wraps an admin endpoint: a valid access token (401 otherwise), an
// enabled user of a role allowed here (403 otherwise: operators never get
// in; a station credential is no access token, so stations get 401), and
// the tenant in scope. A tenant-admin naming
// another tenant in X-Tenant-ID gets 403; a super-admin naming an unknown
// tenant gets 404.
func (s *Server) admin(who access, h adminHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := s.principal(w, r, who)
		if ok {
			h(w, r, p)
		}
	}
}

func (s *Server) principal(w http.ResponseWriter, r *http.Request, who access) (*principal, bool) {
	scheme, tok, _ := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	tok = strings.TrimSpace(tok)
	if (!strings.EqualFold(scheme, "Bearer") && !strings.EqualFold(scheme, "JWT")) || tok == "" {
		drfDetail(w, r, http.StatusUnauthorized, msgNotAuthenticated)
		return nil, false
	}
	if s.adm.tokens == nil {
		drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		return nil, false
	}
	c, err := s.adm.tokens.Parse(tok, auth.TokenAccess)
	if err != nil {
		drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		return nil, false
	}
	u, err := s.Store.UserByName(r.Context(), c.Subject)
	if err != nil {
		if keystation.ErrorCode(err) == keystation.EINTERNAL {
			s.drfError(w, r, err)
		} else {
			drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		}
		return nil, false
	}
	if s.adm.tokens.CheckUser(c, u) != nil {
		drfDetail(w, r, http.StatusUnauthorized, msgTokenNotValid)
		return nil, false
	}
	switch {
	case u.Role == store.RoleSuperAdmin:
	case u.Role == store.RoleTenantAdmin && who == adminsOnly:
	default:
		drfDetail(w, r, http.StatusForbidden, msgPermissionDenied)
		return nil, false
	}
	p := &principal{User: u, IP: clientIP(r)}
	if u.Role == store.RoleTenantAdmin {
		p.Tenant = u.TenantID
	}
	if v := strings.TrimSpace(r.Header.Get("X-Tenant-ID")); v != "" {
		id, err := strconv.ParseInt(v, 10, 64)
		if err != nil || id < 1 {
			drfFields(w, fieldErrors{"X-Tenant-ID": {langOf(r).text(msgInvalidInt)}})
			return nil, false
		}
		switch u.Role {
		case store.RoleTenantAdmin:
			if id != u.TenantID {
				drfDetail(w, r, http.StatusForbidden, msgPermissionDenied)
				return nil, false
			}
		default:
			if _, err := s.Store.TenantByID(r.Context(), id); err != nil {
				s.drfError(w, r, err)
				return nil, false
			}
			p.Tenant = id
		}
	}
	return p, true
}
