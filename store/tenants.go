package store

import (
	"context"
	"strings"
	"unicode/utf8"

	"keystation"
)

// Tenant is a customer or site whose keys, machines and users are kept apart
// from the others'. Tenant 1, "default", exists from the start.
type Tenant struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	CreatedAt string `json:"created_at"`
}

// Tenants lists the tenants.
func (s *Server) Tenants(ctx context.Context) ([]Tenant, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, name, created_at FROM tenants ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Tenant{}
	for rows.Next() {
		var t Tenant
		if err := rows.Scan(&t.ID, &t.Name, &t.CreatedAt); err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TenantByID returns a tenant.
func (s *Server) TenantByID(ctx context.Context, id int64) (Tenant, error) {
	var t Tenant
	err := s.c.r.QueryRowContext(ctx, `SELECT id, name, created_at FROM tenants WHERE id = ?`, id).Scan(&t.ID, &t.Name, &t.CreatedAt)
	if isNoRows(err) {
		return t, adminNotFound("tenant", id)
	}
	return t, err
}

// TenantByName returns a tenant by its name.
func (s *Server) TenantByName(ctx context.Context, name string) (Tenant, error) {
	var t Tenant
	err := s.c.r.QueryRowContext(ctx, `SELECT id, name, created_at FROM tenants WHERE name = ?`, strings.TrimSpace(name)).Scan(&t.ID, &t.Name, &t.CreatedAt)
	if isNoRows(err) {
		return t, adminNotFound("tenant", name)
	}
	return t, err
}

// CreateTenant adds a tenant, audited in the same transaction.
func (s *Server) CreateTenant(ctx context.Context, name string, by AuditBy) (Tenant, error) {
	name = strings.TrimSpace(name)
	f := map[string]string{}
	switch {
	case name == "":
		f["name"] = "required"
	case utf8.RuneCountInString(name) > 64:
		f["name"] = "at most 64 characters"
	case !utf8.ValidString(name) || strings.ContainsAny(name, "\x00\r\n\t"):
		f["name"] = "contains control characters"
	}
	if len(f) > 0 {
		return Tenant{}, keystation.FieldError(f)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return Tenant{}, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE name = ?`, name).Scan(&n); err != nil {
		return Tenant{}, err
	}
	if n > 0 {
		return Tenant{}, keystation.Errorf(keystation.ECONFLICT, "tenant %q already exists", name)
	}
	t := Tenant{Name: name, CreatedAt: fmtTime(s.now())}
	res, err := tx.ExecContext(ctx, `INSERT INTO tenants (name, created_at) VALUES (?, ?)`, t.Name, t.CreatedAt)
	if err != nil {
		return Tenant{}, err
	}
	t.ID, _ = res.LastInsertId()
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: t.ID, Action: AuditTenantCreate, ObjectType: "tenant",
		ObjectID: itoa(t.ID), Detail: map[string]any{"name": t.Name}}); err != nil {
		return Tenant{}, err
	}
	if err := tx.Commit(); err != nil {
		return Tenant{}, err
	}
	s.log.Info("tenant created", "tenant", t.ID, "name", t.Name, "by", by.User)
	return t, nil
}
