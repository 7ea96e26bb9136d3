package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"unicode/utf8"

	"keystation"
)

// MaxNoteLen is the longest reason a supervisor gives for a key change.
const MaxNoteLen = 500

// KeyTenant returns the tenant of a key; ENOTFOUND when there is none.
func (s *Server) KeyTenant(ctx context.Context, id keystation.KeyID) (int64, error) {
	var t int64
	err := s.c.r.QueryRowContext(ctx, `SELECT tenant_id FROM product_keys WHERE key_id = ?`, int64(id)).Scan(&t)
	if isNoRows(err) {
		return 0, adminNotFound("key", id)
	}
	return t, err
}

// KeyDetail returns a key of tenant (0: any) with its history; a key of
// another tenant is not found.
func (s *Server) KeyDetail(ctx context.Context, tenant int64, id keystation.KeyID) (KeyInfo, error) {
	t, err := s.KeyTenant(ctx, id)
	if err != nil {
		return KeyInfo{}, err
	}
	if tenant != 0 && t != tenant {
		return KeyInfo{}, adminNotFound("key", id)
	}
	return s.KeyByID(ctx, id)
}

// RevokeKey revokes a key of tenant (0: any) from any state: it is never
// handed out or accepted again. The change, its history and the audit entry
// share one transaction.
func (s *Server) RevokeKey(ctx context.Context, tenant int64, id keystation.KeyID, note string, by AuditBy) error {
	return s.supervisorTransition(ctx, tenant, id, keystation.StateRevoked, keystation.ReasonRevoked, AuditKeyRevoke, note, by, false)
}

// ReturnKey puts a failed (or assigned but unused) key of tenant back into
// its pool; the reason is required. The key leaves its machine.
func (s *Server) ReturnKey(ctx context.Context, tenant int64, id keystation.KeyID, note string, by AuditBy) error {
	if strings.TrimSpace(note) == "" {
		return keystation.FieldError(map[string]string{"reason": "required"})
	}
	return s.supervisorTransition(ctx, tenant, id, keystation.StateAvailable, keystation.ReasonReturned, AuditKeyReturn, note, by, true)
}

func (s *Server) supervisorTransition(ctx context.Context, tenant int64, id keystation.KeyID, to keystation.KeyState,
	reason, action, note string, by AuditBy, detach bool) error {
	if utf8.RuneCountInString(note) > MaxNoteLen {
		return keystation.FieldError(map[string]string{"reason": "at most 500 characters"})
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var (
		ref, kt          int64
		state            string
		machine, station sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, `SELECT id, tenant_id, state, machine_id, station_id FROM product_keys WHERE key_id = ?`,
		int64(id)).Scan(&ref, &kt, &state, &machine, &station)
	if isNoRows(err) || (err == nil && tenant != 0 && kt != tenant) {
		return adminNotFound("key", id)
	}
	if err != nil {
		return err
	}
	from := keystation.KeyState(state)
	if to == keystation.StateAvailable && from != keystation.StateFailed && from != keystation.StateAssigned {
		return keystation.Errorf(keystation.EILLEGALSTATE, "only a failed or an unused assigned key can be returned to the pool; this key is %s", from)
	}
	if err := keystation.CheckTransition(from, to); err != nil {
		return err
	}
	now := fmtTime(s.now())
	newMachine, newStation := machine, station
	if detach {
		newMachine, newStation = sql.NullInt64{}, sql.NullInt64{}
	}
	res, err := tx.ExecContext(ctx, `UPDATE product_keys SET state = ?, machine_id = ?, station_id = ?, updated_at = ?
		WHERE id = ? AND state = ?`, string(to), newMachine, newStation, now, ref, state)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return keystation.Errorf(keystation.ECONFLICT, "key %s changed state concurrently", id)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO key_history (key_ref, from_state, to_state, reason, actor, machine_id,
		station_id, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, ref, state, string(to), reason, by.orSystem().User, machine, station, now); err != nil {
		return err
	}
	detail := map[string]any{"from": state, "to": string(to), "reason": note}
	if machine.Valid {
		detail["machine_binding"] = machine.Int64
	}
	if station.Valid {
		detail["station"] = station.Int64
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: kt, Action: action, ObjectType: "key", ObjectID: id.String(),
		Detail: detail}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("key changed by a supervisor", "keyId", id, "from", state, "to", to, "by", by.User)
	return nil
}

// CreatePool adds an edition pool, audited in the same transaction.
func (s *Server) CreatePool(ctx context.Context, e keystation.Edition, by AuditBy) error {
	for i, p := range e.Patterns {
		e.Patterns[i] = strings.ToLower(strings.TrimSpace(p))
	}
	if err := e.Validate(); err != nil {
		return err
	}
	pats, _ := json.Marshal(e.Patterns)
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM editions WHERE slug = ?`, e.Slug).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return keystation.Errorf(keystation.ECONFLICT, "edition %q already exists", e.Slug)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO editions (slug, name, patterns, low_stock, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.Slug, e.Name, string(pats), e.LowStock, fmtTime(s.now())); err != nil {
		return err
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Action: AuditPoolCreate, ObjectType: "pool", ObjectID: e.Slug,
		Detail: map[string]any{"name": e.Name, "patterns": e.Patterns, "low_stock": e.LowStock}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.loadEditions(ctx)
}

// SetLowStock changes a pool's low-stock threshold, audited.
func (s *Server) SetLowStock(ctx context.Context, slug string, lowStock int, by AuditBy) error {
	if lowStock < 0 {
		return keystation.FieldError(map[string]string{"low_stock": "must not be negative"})
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var old int
	if err := tx.QueryRowContext(ctx, `SELECT low_stock FROM editions WHERE slug = ?`, slug).Scan(&old); isNoRows(err) {
		return adminNotFound("pool", slug)
	} else if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE editions SET low_stock = ? WHERE slug = ?`, lowStock, slug); err != nil {
		return err
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Action: AuditPoolUpdate, ObjectType: "pool", ObjectID: slug,
		Detail: map[string]any{"low_stock": lowStock, "previous_low_stock": old}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return s.loadEditions(ctx)
}

// RecordSignIn writes a sign-in (or a failed one) to the audit log.
func (s *Server) RecordSignIn(ctx context.Context, username string, tenant int64, ok bool, by AuditBy) error {
	action := AuditSignIn
	if !ok {
		action = AuditSignInFailed
	}
	if by.User == "" {
		by.User = username
	}
	return s.Audit(ctx, by, AuditEvent{Tenant: tenant, Action: action, ObjectType: "user", ObjectID: username})
}
