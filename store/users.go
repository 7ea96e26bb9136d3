package store

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"sync"
	"time"

	"keystation"
)

// Roles.
const (
	RoleSuperAdmin  = "super-admin"
	RoleTenantAdmin = "tenant-admin"
	RoleOperator    = "operator"
)

// User is a person who signs in to the server.
type User struct {
	ID           int64  `json:"id"`
	Username     string `json:"username"`
	PasswordHash string `json:"-"`
	Role         string `json:"role"`
	TenantID     int64  `json:"tenantId"`
	Disabled     bool   `json:"disabled"`
	Demo         bool   `json:"demo"`
	CreatedAt    string `json:"createdAt"`
}

var usernameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$`)

// ValidRole reports whether r is a role users can have.
func ValidRole(r string) bool {
	return r == RoleSuperAdmin || r == RoleTenantAdmin || r == RoleOperator
}

// CreateUser adds a user; PasswordHash must already be a password hash. The
// audit log records it as a system change; callers that know who asks use
// CreateUserBy.
func (s *Server) CreateUser(ctx context.Context, u User) (User, error) {
	return s.CreateUserBy(ctx, u, AuditBy{})
}

// CreateUserBy adds a user and records who did it in the audit log, in the
// same transaction.
func (s *Server) CreateUserBy(ctx context.Context, u User, by AuditBy) (User, error) {
	f := map[string]string{}
	if !usernameRE.MatchString(u.Username) {
		f["username"] = "1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
	}
	if !ValidRole(u.Role) {
		f["role"] = "one of super-admin, tenant-admin, operator"
	}
	if u.PasswordHash == "" {
		f["password"] = "required"
	}
	if len(f) > 0 {
		return u, keystation.FieldError(f)
	}
	if u.TenantID == 0 {
		u.TenantID = 1
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return u, err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE username = ?`, u.Username).Scan(&n); err != nil {
		return u, err
	}
	if n > 0 {
		return u, keystation.Errorf(keystation.ECONFLICT, "user %q already exists", u.Username)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM tenants WHERE id = ?`, u.TenantID).Scan(&n); err != nil {
		return u, err
	}
	if n == 0 {
		return u, keystation.Errorf(keystation.ENOTFOUND, "no tenant with id %d", u.TenantID)
	}
	u.CreatedAt = fmtTime(s.now())
	res, err := tx.ExecContext(ctx, `INSERT INTO users (username, password_hash, role, tenant_id, disabled, demo, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, u.Username, u.PasswordHash, u.Role, u.TenantID, boolInt(u.Disabled), boolInt(u.Demo), u.CreatedAt, u.CreatedAt)
	if err != nil {
		return u, err
	}
	u.ID, _ = res.LastInsertId()
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: u.TenantID, Action: AuditUserCreate, ObjectType: "user",
		ObjectID: u.Username, Detail: map[string]any{"role": u.Role, "tenant": u.TenantID, "demo": u.Demo}}); err != nil {
		return u, err
	}
	if err := tx.Commit(); err != nil {
		return u, err
	}
	s.log.Info("user created", "username", u.Username, "role", u.Role, "tenant", u.TenantID)
	return u, nil
}

const qUserByName = `SELECT id, username, password_hash, role, tenant_id, disabled, demo, created_at
		FROM users WHERE username = ?`

// userFresh is how long a user read from the database is used without
// reading it again. Changes made through this Server end it at once; it only
// bounds how late a change made by another process (the CLI while the server
// runs) is seen.
const userFresh = time.Second

// userCache keeps recently read users: every request of the station key API
// names its user, and a line of stations asks many times a second.
type userCache struct {
	mu  sync.Mutex
	m   map[string]cachedUser
	gen uint64 // counts changes, so a read that raced one is not kept
}

type cachedUser struct {
	u  User
	at time.Time
}

func (c *userCache) get(name string, now time.Time) (User, uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[name]
	if !ok || now.Sub(e.at) >= userFresh || now.Before(e.at) {
		return User{}, c.gen, false
	}
	return e.u, c.gen, true
}

func (c *userCache) put(u User, now time.Time, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if c.m == nil || len(c.m) >= 10000 {
		c.m = map[string]cachedUser{}
	}
	c.m[u.Username] = cachedUser{u: u, at: now}
}

func (c *userCache) forget(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, name)
	c.gen++
}

// UserByName returns a user by name.
func (s *Server) UserByName(ctx context.Context, name string) (User, error) {
	name = strings.TrimSpace(name)
	now := time.Now()
	u, gen, ok := s.users.get(name, now)
	if ok {
		return u, nil
	}
	var disabled, demo int
	q := s.readUser
	if q == nil {
		return u, errors.New("store: the server is closed")
	}
	err := q.QueryRowContext(ctx, name).Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &u.TenantID, &disabled, &demo, &u.CreatedAt)
	if isNoRows(err) {
		return u, keystation.Errorf(keystation.ENOTFOUND, "no user %q", name)
	}
	if err != nil {
		return u, err
	}
	u.Disabled, u.Demo = disabled == 1, demo == 1
	s.users.put(u, now, gen)
	return u, nil
}

// SetPassword replaces a user's password hash (audited as a system change).
func (s *Server) SetPassword(ctx context.Context, name, hash string) error {
	return s.SetPasswordBy(ctx, name, hash, AuditBy{})
}

// SetPasswordBy replaces a user's password hash, audited.
func (s *Server) SetPasswordBy(ctx context.Context, name, hash string, by AuditBy) error {
	return s.updateUser(ctx, name, `UPDATE users SET password_hash = ?, updated_at = ? WHERE username = ?`, hash, by, AuditUserPassword)
}

// SetDisabled disables or enables a user (audited as a system change).
func (s *Server) SetDisabled(ctx context.Context, name string, disabled bool) error {
	return s.SetDisabledBy(ctx, name, disabled, AuditBy{})
}

// SetDisabledBy disables or enables a user, audited.
func (s *Server) SetDisabledBy(ctx context.Context, name string, disabled bool, by AuditBy) error {
	action := AuditUserEnable
	if disabled {
		action = AuditUserDisable
	}
	return s.updateUser(ctx, name, `UPDATE users SET disabled = ?, updated_at = ? WHERE username = ?`, boolInt(disabled), by, action)
}

func (s *Server) updateUser(ctx context.Context, name, q string, v any, by AuditBy, action string) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var tenant int64
	if err := tx.QueryRowContext(ctx, `SELECT tenant_id FROM users WHERE username = ?`, name).Scan(&tenant); isNoRows(err) {
		return keystation.Errorf(keystation.ENOTFOUND, "no user %q", name)
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, q, v, fmtTime(s.now()), name); err != nil {
		return err
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: tenant, Action: action, ObjectType: "user", ObjectID: name}); err != nil {
		return err
	}
	defer s.users.forget(name)
	return tx.Commit()
}

// Users lists users.
func (s *Server) Users(ctx context.Context) ([]User, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, username, role, tenant_id, disabled, demo, created_at FROM users ORDER BY username`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var disabled, demo int
		if err := rows.Scan(&u.ID, &u.Username, &u.Role, &u.TenantID, &disabled, &demo, &u.CreatedAt); err != nil {
			return nil, err
		}
		u.Disabled, u.Demo = disabled == 1, demo == 1
		out = append(out, u)
	}
	return out, rows.Err()
}

// HasDemoUsers reports whether demo accounts exist (the server then refuses
// to listen off loopback unless told explicitly).
func (s *Server) HasDemoUsers(ctx context.Context) (bool, error) {
	var n int
	err := s.c.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE demo = 1 AND disabled = 0`).Scan(&n)
	return n > 0, err
}

// Meta reads a value of the meta table ("" when absent).
func (s *Server) Meta(ctx context.Context, name string) (string, error) {
	var v string
	err := s.c.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, name).Scan(&v)
	if isNoRows(err) {
		return "", nil
	}
	return v, err
}

// SetMeta writes a value of the meta table.
func (s *Server) SetMeta(ctx context.Context, name, value string) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value); err != nil {
		return err
	}
	return tx.Commit()
}
