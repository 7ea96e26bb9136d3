package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"keystation"
)

// Machine bindings (seed 001): every machine with an activated key. The
// "license" of a binding is its key's 13-digit keyId.
//
// Status is stored only for blocks (machines.status 'blocked', which
// Acquire refuses); "inactive" is computed when reading: a binding not seen
// for InactiveAfter is inactive. Nothing has to run to age bindings, and a
// machine seen again is active at once.
//
// Search never needs the plain serial number: a term matches a binding when
// it is its whole machine id ("model/serial", through the keyed fingerprint),
// its whole serial number (through the fingerprint's first half, the serial
// number's keyed hash), or part of its model (models are few; they are kept
// sealed in machine_models and matched in memory, giving model ids to look
// up). Parts of serial numbers are not searchable: anything that could find
// them would reveal them.

// Binding statuses.
const (
	BindingActive   = "active"
	BindingInactive = "inactive"
	BindingBlocked  = "blocked"
)

// DefaultInactiveAfter is how long a binding may go unseen and still count
// as active.
const DefaultInactiveAfter = 30 * 24 * time.Hour

// Binding orderings the seed allows.
var BindingOrderings = []string{"first_seen_at", "last_seen_at", "-first_seen_at", "-last_seen_at"}

// BindingFilter selects machine bindings.
type BindingFilter struct {
	Tenant        int64  // 0: every tenant
	License       int64  // keyId; 0: any
	Status        string // "", active, inactive, blocked
	Search        string
	Ordering      string // one of BindingOrderings; "" is -last_seen_at
	Limit, Offset int
	InactiveAfter time.Duration // DefaultInactiveAfter when 0
}

// Binding is a machine binding as supervisors see it.
type Binding struct {
	ID          int64
	Tenant      int64
	License     keystation.KeyID
	KeyPreview  string
	MachineID   string
	Summary     keystation.Summary
	OS          keystation.OSInfo
	LastIP      string
	Status      string
	BlockReason string
	FirstSeen   time.Time
	LastSeen    time.Time
}

func (f *BindingFilter) cutoff(now time.Time) string {
	d := f.InactiveAfter
	if d <= 0 {
		d = DefaultInactiveAfter
	}
	return fmtTime(now.Add(-d))
}

// bindingWhere builds the FROM and WHERE of a binding query. A search is a
// UNION of one arm per way of matching (fingerprint, its serial-number prefix, model ids),
// each arm carrying the filters and reading its index only; the few hits
// then are counted, ordered and paged without a scan of every binding.
func (s *Server) bindingWhere(ctx context.Context, f BindingFilter) (from string, where []string, args []any, err error) {
	filters := []string{"m.key_ref IS NOT NULL"}
	var fargs []any
	if f.Tenant != 0 {
		filters = append(filters, "m.tenant_id = ?")
		fargs = append(fargs, f.Tenant)
	}
	switch f.Status {
	case BindingBlocked:
		filters = append(filters, "m.status = 'blocked'")
	case BindingActive:
		filters = append(filters, "m.status <> 'blocked'", "m.last_seen_at >= ?")
		fargs = append(fargs, f.cutoff(s.now()))
	case BindingInactive:
		filters = append(filters, "m.status <> 'blocked'", "m.last_seen_at < ?")
		fargs = append(fargs, f.cutoff(s.now()))
	case "":
	default:
		return "", nil, nil, keystation.FieldError(map[string]string{"status": "one of active, inactive, blocked"})
	}
	if f.License != 0 {
		// Through product_keys' keyId index: the key names its machine.
		filters = append(filters, "m.id IN (SELECT machine_id FROM product_keys WHERE key_id = ?)",
			"m.key_ref IN (SELECT id FROM product_keys WHERE key_id = ?)")
		fargs = append(fargs, f.License, f.License)
	}
	if strings.TrimSpace(f.Search) == "" {
		return "machines m", filters, fargs, nil
	}
	arms, err := s.searchArms(ctx, f.Search)
	if err != nil {
		return "", nil, nil, err
	}
	var parts []string
	for _, a := range arms {
		parts = append(parts, "SELECT m.id, m.last_seen_at, m.first_seen_at FROM machines m WHERE "+a.cond+" AND "+
			strings.Join(filters, " AND "))
		args = append(append(args, a.args...), fargs...)
	}
	return "(" + strings.Join(parts, " UNION ") + ") m", []string{"1 = 1"}, args, nil
}

type searchArm struct {
	cond string
	args []any
}

// searchArms returns the conditions by which a search term matches a
// machine (see the comment at the top of this file).
func (s *Server) searchArms(ctx context.Context, term string) ([]searchArm, error) {
	if err := s.indexModels(ctx); err != nil {
		return nil, err
	}
	t := strings.TrimSpace(term)
	var arms []searchArm
	// Whole machine id: try every '/' as the model/serial separator.
	var fps []any
	for i := 0; i < len(t); i++ {
		if t[i] == '/' {
			fps = append(fps, s.machineFingerprint(keystation.Machine{Model: t[:i], SN: t[i+1:]}))
		}
	}
	if len(fps) > 0 {
		arms = append(arms, searchArm{"m.fingerprint IN (" + placeholders(len(fps)) + ")", fps})
	}
	lo, hi := s.snRange(t)
	arms = append(arms, searchArm{"m.fingerprint >= ? AND m.fingerprint < ?", []any{lo, hi}})
	models, err := s.matchModels(ctx, normID(t))
	if err != nil {
		return nil, err
	}
	if len(models) > 0 {
		a := searchArm{cond: "m.model_ref IN (" + placeholders(len(models)) + ")"}
		for _, m := range models {
			a.args = append(a.args, m)
		}
		arms = append(arms, a)
	}
	return arms, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// matchModels returns the ids of the models whose normalised name contains
// the normalised term.
func (s *Server) matchModels(ctx context.Context, term string) ([]int64, error) {
	if term == "" {
		return nil, nil
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, model_enc FROM machine_models`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id int64
		var enc []byte
		if err := rows.Scan(&id, &enc); err != nil {
			return nil, err
		}
		m, err := s.box.OpenString(enc, "machine/model")
		if err != nil {
			return nil, fmt.Errorf("model %d: %w", id, err)
		}
		if strings.Contains(m, term) {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// indexModels gives every machine without one its model_ref: the model is
// read from the sealed identity, kept sealed once in machine_models, and
// referred to by id. Machines are inserted by the allocation path; this
// catches up with them before a search.
func (s *Server) indexModels(ctx context.Context) error {
	for {
		rows, err := s.c.r.QueryContext(ctx, `SELECT id, identity_enc FROM machines WHERE model_ref IS NULL LIMIT 2000`)
		if err != nil {
			return err
		}
		type pending struct {
			id    int64
			model string
		}
		var ps []pending
		for rows.Next() {
			var id int64
			var enc []byte
			if err := rows.Scan(&id, &enc); err != nil {
				rows.Close()
				return err
			}
			m, err := s.openIdentity(enc)
			if err != nil {
				rows.Close()
				return fmt.Errorf("machine %d: %w", id, err)
			}
			ps = append(ps, pending{id, normID(m.Model)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(ps) == 0 {
			return nil
		}
		tx, err := s.c.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		ids := map[string]int64{}
		for _, p := range ps {
			ref, ok := ids[p.model]
			if !ok {
				if ref, err = s.modelRef(ctx, tx, p.model); err != nil {
					tx.Rollback()
					return err
				}
				ids[p.model] = ref
			}
			if _, err := tx.ExecContext(ctx, `UPDATE machines SET model_ref = ? WHERE id = ? AND model_ref IS NULL`, ref, p.id); err != nil {
				tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
}

// execQuerier is a transaction: a *sql.Tx, or a group-commit txn's prepared
// statements (txnQuerier).
type execQuerier interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

const (
	qModelByHash = `SELECT id FROM machine_models WHERE model_hash = ?`
	qInsertModel = `INSERT INTO machine_models (model_hash, model_enc) VALUES (?, ?)`
)

// modelRef returns the id of a normalised model, adding it when new.
func (s *Server) modelRef(ctx context.Context, tx execQuerier, model string) (int64, error) {
	return s.modelRefHashed(ctx, tx, model, s.box.Hash("model", model))
}

// modelRefHashed is modelRef with the model's keyed hash computed by the
// caller (outside the write transaction).
func (s *Server) modelRefHashed(ctx context.Context, tx execQuerier, model, h string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, qModelByHash, h).Scan(&id)
	if err == nil || !isNoRows(err) {
		return id, err
	}
	res, err := tx.ExecContext(ctx, qInsertModel, h, s.box.SealString(model, "machine/model"))
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

func (s *Server) openIdentity(enc []byte) (keystation.Machine, error) {
	var m keystation.Machine
	raw, err := s.box.Open(enc, "machine/identity")
	if err != nil {
		return m, err
	}
	err = json.Unmarshal(raw, &m)
	return m, err
}

func bindingOrder(o string) (string, error) {
	switch o {
	case "", "-last_seen_at":
		return "m.last_seen_at DESC, m.id DESC", nil
	case "last_seen_at":
		return "m.last_seen_at, m.id", nil
	case "-first_seen_at":
		return "m.first_seen_at DESC, m.id DESC", nil
	case "first_seen_at":
		return "m.first_seen_at, m.id", nil
	}
	return "", keystation.FieldError(map[string]string{"ordering": "one of " + strings.Join(BindingOrderings, ", ")})
}

// MachineBindings lists a page of machine bindings and counts all that
// match.
func (s *Server) MachineBindings(ctx context.Context, f BindingFilter) ([]Binding, int, error) {
	order, err := bindingOrder(f.Ordering)
	if err != nil {
		return nil, 0, err
	}
	from, where, args, err := s.bindingWhere(ctx, f)
	if err != nil {
		return nil, 0, err
	}
	q := " FROM " + from + " WHERE " + strings.Join(where, " AND ")
	n, err := s.countBindings(ctx, f, q, args)
	if err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	if n == 0 || f.Offset >= n {
		return []Binding{}, n, nil
	}
	// The page's ids come from the index alone; only they are then read.
	rows, err := s.c.r.QueryContext(ctx, "SELECT m.id"+q+" ORDER BY "+order+" LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, 0, err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	out, err := s.bindingsByID(ctx, ids, f.InactiveAfter)
	return out, n, err
}

const bindingColumns = `SELECT m.id, m.tenant_id, m.identity_enc, m.hardware_summary, m.os_info, m.last_ip, m.status,
	m.block_reason, m.first_seen_at, m.last_seen_at, k.key_id, k.key_enc FROM machines m
	JOIN product_keys k ON k.id = m.key_ref`

func (s *Server) bindingsByID(ctx context.Context, ids []int64, inactiveAfter time.Duration) ([]Binding, error) {
	out := make([]Binding, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.c.r.QueryContext(ctx, bindingColumns+" WHERE m.id IN ("+placeholders(len(ids))+")", args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	byID := map[int64]Binding{}
	for rows.Next() {
		b, err := s.scanBinding(rows, inactiveAfter)
		if err != nil {
			return nil, err
		}
		byID[b.ID] = b
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if b, ok := byID[id]; ok {
			out = append(out, b)
		}
	}
	return out, nil
}

func (s *Server) scanBinding(r auditRowScanner, inactiveAfter time.Duration) (Binding, error) {
	var (
		b                   Binding
		identity, keyEnc    []byte
		summary, osInfo, ip sql.NullString
		status, reason      sql.NullString
		firstSeen, lastSeen string
		keyID               int64
	)
	if err := r.Scan(&b.ID, &b.Tenant, &identity, &summary, &osInfo, &ip, &status, &reason, &firstSeen, &lastSeen,
		&keyID, &keyEnc); err != nil {
		return b, err
	}
	m, err := s.openIdentity(identity)
	if err != nil {
		return b, fmt.Errorf("machine %d: %w", b.ID, err)
	}
	b.MachineID = m.ID()
	b.License = keystation.KeyID(keyID)
	k, err := s.openKey(b.License, keyEnc)
	if err != nil {
		return b, err
	}
	b.KeyPreview = k.Preview()
	if summary.Valid && summary.String != "" {
		if err := json.Unmarshal([]byte(summary.String), &b.Summary); err != nil {
			return b, fmt.Errorf("machine %d summary: %w", b.ID, err)
		}
	}
	if osInfo.Valid && osInfo.String != "" {
		if err := json.Unmarshal([]byte(osInfo.String), &b.OS); err != nil {
			return b, fmt.Errorf("machine %d os_info: %w", b.ID, err)
		}
	}
	b.LastIP, b.BlockReason = ip.String, reason.String
	b.FirstSeen, b.LastSeen = parseTime(firstSeen), parseTime(lastSeen)
	b.Status = BindingActive
	if inactiveAfter <= 0 {
		inactiveAfter = DefaultInactiveAfter
	}
	switch {
	case status.String == BindingBlocked:
		b.Status = BindingBlocked
	case s.now().Sub(b.LastSeen) > inactiveAfter:
		b.Status = BindingInactive
	}
	return b, nil
}

// MachineBinding returns one binding of tenant (0: any tenant). A binding of
// another tenant is not found.
func (s *Server) MachineBinding(ctx context.Context, tenant, id int64, inactiveAfter time.Duration) (Binding, error) {
	q := bindingColumns + " WHERE m.id = ? AND m.key_ref IS NOT NULL"
	args := []any{id}
	if tenant != 0 {
		q += " AND m.tenant_id = ?"
		args = append(args, tenant)
	}
	b, err := s.scanBinding(s.c.r.QueryRowContext(ctx, q, args...), inactiveAfter)
	if isNoRows(err) {
		return b, adminNotFound("machine binding", id)
	}
	return b, err
}

// MaxBlockReason is the longest block reason, in characters (seed 001).
const MaxBlockReason = 500

// DefaultBlockReason is seed 001's default reason.
const DefaultBlockReason = "管理员阻止"

// BlockMachineBinding blocks a binding of tenant (0: any tenant): its machine
// gets no key any more (Acquire refuses blocked machines) and the audit log
// records who, when, from where, which machine and why, in the same
// transaction.
func (s *Server) BlockMachineBinding(ctx context.Context, tenant, id int64, reason string, by AuditBy) error {
	if reason == "" {
		reason = DefaultBlockReason
	}
	if utf8.RuneCountInString(reason) > MaxBlockReason {
		return keystation.FieldError(map[string]string{"reason": fmt.Sprintf("at most %d characters", MaxBlockReason)})
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var (
		mt         int64
		status, fp string
		keyID      int64
	)
	err = tx.QueryRowContext(ctx, `SELECT m.tenant_id, m.status, m.fingerprint, k.key_id FROM machines m
		JOIN product_keys k ON k.id = m.key_ref WHERE m.id = ?`, id).Scan(&mt, &status, &fp, &keyID)
	if isNoRows(err) || (err == nil && tenant != 0 && mt != tenant) {
		return adminNotFound("machine binding", id)
	}
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE machines SET status = 'blocked', block_reason = ? WHERE id = ?`, reason, id); err != nil {
		return err
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: mt, Action: AuditBindingBlock, ObjectType: "machine_binding",
		ObjectID: itoa(id), Detail: map[string]any{"machine_fingerprint": fp, "license": keyID,
			"previous_status": status, "reason": reason}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("machine binding blocked", "binding", id, "tenant", mt, "by", by.User)
	return nil
}

// SetMachineSeen sets when a machine was first and last seen. It is for
// demo data and tests (bindings of different ages); the server itself only
// moves last_seen_at forward as machines ask for keys.
func (s *Server) SetMachineSeen(ctx context.Context, id int64, first, last time.Time) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, `UPDATE machines SET first_seen_at = ?, last_seen_at = ? WHERE id = ?`, fmtTime(first), fmtTime(last), id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return adminNotFound("machine", id)
	}
	countCaches.Delete(s)
	return tx.Commit()
}

// MachineIDByKey returns the id of the machine a key is bound to (demo data
// and tests use it to find the binding of an activation).
func (s *Server) MachineIDByKey(ctx context.Context, id keystation.KeyID) (int64, error) {
	var m sql.NullInt64
	err := s.c.r.QueryRowContext(ctx, `SELECT machine_id FROM product_keys WHERE key_id = ?`, int64(id)).Scan(&m)
	if isNoRows(err) || (err == nil && !m.Valid) {
		return 0, adminNotFound("binding of key", id)
	}
	return m.Int64, err
}

// Counting a million bindings means reading a million index entries (some
// 30 ms here), on every page a supervisor turns. The count of a filter is
// therefore kept for up to bindingCountTTL, and only while the bindings'
// version is unchanged: the newest key-history entry (every activation
// writes one), audit entry (every block writes one) and machine. A machine
// seen again moves between active and inactive without changing the
// version; its count catches up within the TTL.
const bindingCountTTL = 10 * time.Second

type bindingCountKey struct {
	tenant, license int64
	status, search  string
	inactiveAfter   time.Duration
}

type bindingCount struct {
	version [3]int64
	n       int
	at      time.Time
}

type bindingCounts struct {
	mu sync.Mutex
	m  map[bindingCountKey]bindingCount
}

// countCaches holds each open Server's cache (Server's fields belong to
// server.go).
var countCaches sync.Map // *Server → *bindingCounts

func (s *Server) bindingsVersion(ctx context.Context) ([3]int64, error) {
	var v [3]int64
	err := s.c.r.QueryRowContext(ctx, `SELECT (SELECT COALESCE(MAX(id), 0) FROM key_history),
		(SELECT COALESCE(MAX(id), 0) FROM audit_log), (SELECT COALESCE(MAX(id), 0) FROM machines)`).Scan(&v[0], &v[1], &v[2])
	return v, err
}

func (s *Server) countBindings(ctx context.Context, f BindingFilter, q string, args []any) (int, error) {
	v, err := s.bindingsVersion(ctx)
	if err != nil {
		return 0, err
	}
	c, _ := countCaches.LoadOrStore(s, &bindingCounts{m: map[bindingCountKey]bindingCount{}})
	cache := c.(*bindingCounts)
	key := bindingCountKey{tenant: f.Tenant, license: f.License, status: f.Status, search: strings.TrimSpace(f.Search), inactiveAfter: f.InactiveAfter}
	now := s.now()
	cache.mu.Lock()
	e, ok := cache.m[key]
	cache.mu.Unlock()
	if ok && e.version == v && now.Sub(e.at) < bindingCountTTL && !now.Before(e.at) {
		return e.n, nil
	}
	var n int
	if err := s.c.r.QueryRowContext(ctx, "SELECT COUNT(*)"+q, args...).Scan(&n); err != nil {
		return 0, err
	}
	cache.mu.Lock()
	if len(cache.m) > 1000 {
		clear(cache.m)
	}
	cache.m[key] = bindingCount{version: v, n: n, at: now}
	cache.mu.Unlock()
	return n, nil
}
