package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"keystation"
)

// Where an audited change comes from.
const (
	ViaAPI      = "api"
	ViaCLI      = "cli"
	ViaDemo     = "demo"
	ViaInternal = "internal"
)

// Audit actions.
const (
	AuditSignIn        = "auth.sign_in"
	AuditSignInFailed  = "auth.sign_in_failed"
	AuditBindingBlock  = "machine_binding.block"
	AuditKeyImport     = "key.import"
	AuditKeyRevoke     = "key.revoke"
	AuditKeyReturn     = "key.return"
	AuditPoolCreate    = "pool.create"
	AuditPoolUpdate    = "pool.update"
	AuditUserCreate    = "user.create"
	AuditUserDisable   = "user.disable"
	AuditUserEnable    = "user.enable"
	AuditUserPassword  = "user.set_password"
	AuditTenantCreate  = "tenant.create"
	AuditStationRevoke = "station.revoke"
	AuditLeaseReclaim  = "station.reclaim"
	AuditEnrolToken    = "station.enrol_token"
	AuditStationEnrol  = "station.enrol"
)

// AuditBy is who makes an audited change, and from where.
type AuditBy struct {
	User string // user name, or "cli", "demo", "system"
	Role string
	IP   string
	Via  string // ViaAPI, ViaCLI, ViaDemo, ViaInternal
}

func (b AuditBy) orSystem() AuditBy {
	if b.User == "" {
		b.User = "system"
	}
	if b.Via == "" {
		b.Via = ViaInternal
	}
	return b
}

// AuditEvent is one change to record.
type AuditEvent struct {
	Tenant     int64 // the tenant the change concerns; 0 for global changes
	Action     string
	ObjectType string
	ObjectID   string
	// Detail is stored as canonical JSON. It must never hold a full product
	// key or a plain serial number.
	Detail map[string]any
}

// AuditEntry is a recorded audit entry.
type AuditEntry struct {
	ID         int64           `json:"id"`
	At         string          `json:"at"`
	Actor      string          `json:"actor"`
	ActorRole  string          `json:"actor_role"`
	Via        string          `json:"via"`
	IP         string          `json:"ip"`
	Tenant     int64           `json:"tenant"`
	Action     string          `json:"action"`
	ObjectType string          `json:"object_type"`
	ObjectID   string          `json:"object_id"`
	Detail     json.RawMessage `json:"detail"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

// genesisHash is the prev_hash of the first entry.
var genesisHash = strings.Repeat("0", 64)

// auditHash chains an entry to the previous one: sha256 over the previous
// hash, a newline and the canonical entry (a JSON array of its columns in a
// fixed order; the detail is the stored canonical JSON string).
func auditHash(prev string, e AuditEntry) string {
	canon, _ := json.Marshal([]any{e.ID, e.At, e.Actor, e.ActorRole, e.Via, e.IP, e.Tenant, e.Action,
		e.ObjectType, e.ObjectID, string(e.Detail)})
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(canon)
	return hex.EncodeToString(h.Sum(nil))
}

// appendAudit writes an audit entry in tx, the transaction of the change it
// records. The single writer connection serialises appends, so the chain
// has no forks.
func (s *Server) appendAudit(ctx context.Context, tx *sql.Tx, by AuditBy, ev AuditEvent) error {
	by = by.orSystem()
	detail := []byte("{}")
	if len(ev.Detail) > 0 {
		var err error
		if detail, err = json.Marshal(ev.Detail); err != nil { // map keys sorted: canonical
			return fmt.Errorf("audit detail: %w", err)
		}
	}
	var prevID int64
	prev := genesisHash
	err := tx.QueryRowContext(ctx, `SELECT id, hash FROM audit_log ORDER BY id DESC LIMIT 1`).Scan(&prevID, &prev)
	if err != nil && !isNoRows(err) {
		return err
	}
	e := AuditEntry{ID: prevID + 1, At: fmtTime(s.now()), Actor: by.User, ActorRole: by.Role, Via: by.Via, IP: by.IP,
		Tenant: ev.Tenant, Action: ev.Action, ObjectType: ev.ObjectType, ObjectID: ev.ObjectID, Detail: detail, PrevHash: prev}
	e.Hash = auditHash(prev, e)
	if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log (id, at, actor, actor_role, via, ip, tenant_id, action,
		object_type, object_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.ID, e.At, e.Actor, e.ActorRole, e.Via, e.IP, e.Tenant, e.Action, e.ObjectType, e.ObjectID, string(e.Detail),
		e.PrevHash, e.Hash); err != nil {
		return fmt.Errorf("append audit entry: %w", err)
	}
	// The head is kept in meta too, so that a truncated log is noticed.
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('audit_head', ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, strconv.FormatInt(e.ID, 10)+" "+e.Hash); err != nil {
		return err
	}
	return nil
}

// Audit records one event in its own transaction (for events that change
// nothing else, like a sign-in).
func (s *Server) Audit(ctx context.Context, by AuditBy, ev AuditEvent) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := s.appendAudit(ctx, tx, by, ev); err != nil {
		return err
	}
	return tx.Commit()
}

// AuditCheck is the result of verifying the audit chain.
type AuditCheck struct {
	Entries  int    `json:"entries"`
	OK       bool   `json:"ok"`
	BrokenAt int64  `json:"broken_at,omitempty"` // id of the first entry that does not verify
	Problem  string `json:"problem,omitempty"`
	Head     string `json:"head,omitempty"` // hash of the last entry
}

// VerifyAudit walks the whole audit log and checks that every entry follows
// the previous one (no gaps), names its hash as prev_hash and hashes to its
// own hash, and that the last entry is the recorded head.
func (s *Server) VerifyAudit(ctx context.Context) (AuditCheck, error) {
	var c AuditCheck
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, at, actor, actor_role, via, ip, tenant_id, action, object_type,
		object_id, detail, prev_hash, hash FROM audit_log ORDER BY id`)
	if err != nil {
		return c, err
	}
	defer rows.Close()
	prev, prevID := genesisHash, int64(0)
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return c, err
		}
		c.Entries++
		switch {
		case e.ID != prevID+1:
			c.BrokenAt, c.Problem = e.ID, fmt.Sprintf("entry %d follows entry %d: entries are missing", e.ID, prevID)
		case e.PrevHash != prev:
			c.BrokenAt, c.Problem = e.ID, fmt.Sprintf("entry %d does not name the hash of entry %d as its previous hash", e.ID, prevID)
		case auditHash(prev, e) != e.Hash:
			c.BrokenAt, c.Problem = e.ID, fmt.Sprintf("entry %d was changed: its content does not match its hash", e.ID)
		}
		if c.Problem != "" {
			return c, nil
		}
		prev, prevID = e.Hash, e.ID
	}
	if err := rows.Err(); err != nil {
		return c, err
	}
	var head string
	if err := s.c.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'audit_head'`).Scan(&head); err != nil && !isNoRows(err) {
		return c, err
	}
	if want := strconv.FormatInt(prevID, 10) + " " + prev; head != "" && head != want {
		c.BrokenAt = prevID + 1
		c.Problem = fmt.Sprintf("the log ends at entry %d but the recorded head is entry %s: entries were removed", prevID, strings.SplitN(head, " ", 2)[0])
		return c, nil
	} else if head == "" && prevID > 0 {
		c.BrokenAt, c.Problem = 1, "the recorded head of the log is missing"
		return c, nil
	}
	c.OK, c.Head = true, prev
	if prevID == 0 {
		c.Head = ""
	}
	return c, nil
}

type auditRowScanner interface{ Scan(dest ...any) error }

func scanAudit(r auditRowScanner) (AuditEntry, error) {
	var e AuditEntry
	var detail string
	err := r.Scan(&e.ID, &e.At, &e.Actor, &e.ActorRole, &e.Via, &e.IP, &e.Tenant, &e.Action, &e.ObjectType,
		&e.ObjectID, &detail, &e.PrevHash, &e.Hash)
	e.Detail = json.RawMessage(detail)
	return e, err
}

// AuditFilter selects audit entries.
type AuditFilter struct {
	Tenant     int64 // 0: every tenant (and global entries)
	Action     string
	Actor      string
	ObjectType string
	ObjectID   string
	Since      string // inclusive, store time format or RFC 3339
	Until      string // exclusive
	Limit      int
	Offset     int
}

// AuditEntries lists audit entries, newest first, and how many match.
func (s *Server) AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, int, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Tenant != 0 {
		add("tenant_id = ?", f.Tenant)
	}
	if f.Action != "" {
		add("action = ?", f.Action)
	}
	if f.Actor != "" {
		add("actor = ?", f.Actor)
	}
	if f.ObjectType != "" {
		add("object_type = ?", f.ObjectType)
	}
	if f.ObjectID != "" {
		add("object_id = ?", f.ObjectID)
	}
	if f.Since != "" {
		add("at >= ?", f.Since)
	}
	if f.Until != "" {
		add("at < ?", f.Until)
	}
	q := " FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var n int
	if err := s.c.r.QueryRowContext(ctx, "SELECT COUNT(*)"+q, args...).Scan(&n); err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, at, actor, actor_role, via, ip, tenant_id, action, object_type,
		object_id, detail, prev_hash, hash`+q+" ORDER BY id DESC LIMIT ? OFFSET ?", append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, e)
	}
	return out, n, rows.Err()
}

// errNotFound is the answer for an object outside the caller's tenant too,
// so that its existence is not revealed.
func adminNotFound(what string, id any) error {
	return keystation.Errorf(keystation.ENOTFOUND, "no %s %v", what, id)
}
