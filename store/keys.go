package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"math/big"
	"strings"

	"keystation"
)

// ImportEntry is one key to import, from a key list line.
type ImportEntry struct {
	Line    int
	Key     keystation.ProductKey
	KeyID   keystation.KeyID // 0: the server assigns one
	Edition string           // slug or name
}

// ImportOptions describe where imported keys come from.
type ImportOptions struct {
	Source string // e.g. "import:keys.csv sha256:…" or "demo"
	Tenant int64  // 0: the default tenant
	Actor  string // who imports (user name, "cli", "demo")
	Demo   bool
	// By is who imports, for the audit log (written in the import's
	// transaction); Actor is used when By.User is empty.
	By AuditBy
	// Progress, when set, is called every few thousand lines with how many
	// of the entries were handled.
	Progress func(done, total int)
}

// LineNote is a line of an import that was skipped or rejected, and why.
type LineNote struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

// ImportResult counts what an import did.
type ImportResult struct {
	Imported  int            `json:"imported"`
	ByEdition map[string]int `json:"byEdition"`
	Skipped   []LineNote     `json:"skipped"`  // keys already present
	Rejected  []LineNote     `json:"rejected"` // lines that could not be imported
}

// ImportKeys imports keys into their pools in one transaction. Keys already
// present are skipped, so importing the same file twice changes nothing.
func (s *Server) ImportKeys(ctx context.Context, entries []ImportEntry, opt ImportOptions) (ImportResult, error) {
	if opt.Tenant == 0 {
		opt.Tenant = 1
	}
	if opt.Actor == "" {
		opt.Actor = "import"
	}
	res := ImportResult{ByEdition: map[string]int{}}
	// Resolve editions before taking the write lock.
	eds := map[string]editionRow{}
	for _, e := range entries {
		k := strings.ToLower(strings.TrimSpace(e.Edition))
		if _, ok := eds[k]; ok || k == "" {
			continue
		}
		if ed, err := s.resolveEdition(ctx, e.Edition); err == nil {
			eds[k] = ed
		}
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	now := fmtTime(s.now())
	ins, err := tx.PrepareContext(ctx, `INSERT INTO product_keys
		(key_id, key_hash, key_enc, edition_id, tenant_id, state, source, demo, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'available', ?, ?, ?, ?)`)
	if err != nil {
		return res, err
	}
	defer ins.Close()
	hist, err := tx.PrepareContext(ctx, `INSERT INTO key_history (key_ref, from_state, to_state, reason, actor, at)
		VALUES (?, '', 'available', ?, ?, ?)`)
	if err != nil {
		return res, err
	}
	defer hist.Close()
	byHash, err := tx.PrepareContext(ctx, `SELECT key_id FROM product_keys WHERE key_hash = ?`)
	if err != nil {
		return res, err
	}
	defer byHash.Close()
	byID, err := tx.PrepareContext(ctx, `SELECT COUNT(*) FROM product_keys WHERE key_id = ?`)
	if err != nil {
		return res, err
	}
	defer byID.Close()

	for i, e := range entries {
		if opt.Progress != nil && i > 0 && i%5000 == 0 {
			opt.Progress(i, len(entries))
		}
		ed, ok := eds[strings.ToLower(strings.TrimSpace(e.Edition))]
		if !ok {
			reason := "no edition: give --edition or an edition column"
			if strings.TrimSpace(e.Edition) != "" {
				reason = fmt.Sprintf("no key pool named %q", e.Edition)
			}
			res.Rejected = append(res.Rejected, LineNote{e.Line, reason})
			continue
		}
		hash := s.box.Hash("key", e.Key.Plain())
		var have int64
		err := byHash.QueryRowContext(ctx, hash).Scan(&have)
		if err == nil {
			reason := "key already present"
			if e.KeyID != 0 && keystation.KeyID(have) != e.KeyID {
				reason = fmt.Sprintf("key already present with keyId %s", keystation.KeyID(have))
			}
			res.Skipped = append(res.Skipped, LineNote{e.Line, reason})
			continue
		} else if !isNoRows(err) {
			return res, err
		}
		if e.KeyID != 0 && !e.KeyID.Valid() {
			res.Rejected = append(res.Rejected, LineNote{e.Line, fmt.Sprintf("keyId %d is not 13 digits", int64(e.KeyID))})
			continue
		}
		id := e.KeyID
		if id == 0 {
			if id, err = newKeyID(ctx, byID); err != nil {
				return res, err
			}
		} else {
			var n int
			if err := byID.QueryRowContext(ctx, int64(id)).Scan(&n); err != nil {
				return res, err
			}
			if n > 0 {
				res.Rejected = append(res.Rejected, LineNote{e.Line, fmt.Sprintf("keyId %s already belongs to another key", id)})
				continue
			}
		}
		r, err := ins.ExecContext(ctx, int64(id), hash, s.box.SealString(e.Key.Plain(), keyPurpose(id)),
			ed.id, opt.Tenant, opt.Source, boolInt(opt.Demo), now, now)
		if err != nil {
			return res, fmt.Errorf("insert key on line %d: %w", e.Line, err)
		}
		ref, _ := r.LastInsertId()
		if _, err := hist.ExecContext(ctx, ref, keystation.ReasonFulfilled, opt.Actor, now); err != nil {
			return res, err
		}
		res.Imported++
		res.ByEdition[ed.Slug]++
	}
	by := opt.By
	if by.User == "" {
		by.User = opt.Actor
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: opt.Tenant, Action: AuditKeyImport, ObjectType: "pool",
		Detail: map[string]any{"source": opt.Source, "imported": res.Imported, "by_edition": res.ByEdition,
			"skipped": len(res.Skipped), "rejected": len(res.Rejected), "demo": opt.Demo}}); err != nil {
		return res, err
	}
	if err := tx.Commit(); err != nil {
		return res, err
	}
	s.log.Info("keys imported", "imported", res.Imported, "skipped", len(res.Skipped),
		"rejected", len(res.Rejected), "source", opt.Source, "actor", opt.Actor)
	return res, nil
}

// newKeyID picks an unused 13-digit keyId for a key imported without one.
func newKeyID(ctx context.Context, byID *sql.Stmt) (keystation.KeyID, error) {
	for range 100 {
		id, err := randomKeyID()
		if err != nil {
			return 0, err
		}
		var c int
		if err := byID.QueryRowContext(ctx, int64(id)).Scan(&c); err != nil {
			return 0, err
		}
		if c == 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("could not find a free keyId")
}

// randomKeyID returns a random 13-digit keyId.
func randomKeyID() (keystation.KeyID, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(8_999_999_999_999))
	if err != nil {
		return 0, err
	}
	return keystation.KeyID(n.Int64() + 1_000_000_000_000), nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// PoolCount is how many keys of an edition are in each state.
type PoolCount struct {
	Edition  string                      `json:"edition"`
	Name     string                      `json:"name"`
	States   map[keystation.KeyState]int `json:"states"`
	LowStock int                         `json:"lowStock"`
	Low      bool                        `json:"low"`
}

// PoolCounts counts the keys of every pool by state.
func (s *Server) PoolCounts(ctx context.Context, tenant int64) ([]PoolCount, error) {
	eds, err := s.Editions(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]PoolCount, len(eds))
	idx := map[string]int{}
	for i, e := range eds {
		out[i] = PoolCount{Edition: e.Slug, Name: e.Name, States: map[keystation.KeyState]int{}, LowStock: e.LowStock}
		for _, st := range keystation.KeyStates {
			out[i].States[st] = 0
		}
		idx[e.Slug] = i
	}
	q := `SELECT e.slug, k.state, COUNT(*) FROM product_keys k JOIN editions e ON e.id = k.edition_id`
	args := []any{}
	if tenant != 0 {
		q += ` WHERE k.tenant_id = ?`
		args = append(args, tenant)
	}
	rows, err := s.c.r.QueryContext(ctx, q+` GROUP BY e.slug, k.state`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var slug, state string
		var n int
		if err := rows.Scan(&slug, &state, &n); err != nil {
			return nil, err
		}
		if i, ok := idx[slug]; ok {
			out[i].States[keystation.KeyState(state)] = n
		}
	}
	for i := range out {
		out[i].Low = out[i].States[keystation.StateAvailable] < out[i].LowStock
	}
	return out, rows.Err()
}

// HistoryEntry is one recorded state change of a key.
type HistoryEntry struct {
	From          keystation.KeyState `json:"from"`
	To            keystation.KeyState `json:"to"`
	Reason        string              `json:"reason"`
	Actor         string              `json:"actor"`
	ResultMessage string              `json:"resultMessage,omitempty"`
	ResultCode    string              `json:"resultCode,omitempty"`
	HRESULT       string              `json:"hresult,omitempty"`
	Review        bool                `json:"review,omitempty"`
	At            string              `json:"at"`
}

// KeyInfo is a key as supervisors see it: never the full key.
type KeyInfo struct {
	KeyID     keystation.KeyID    `json:"keyId"`
	Preview   string              `json:"preview"`
	Edition   string              `json:"edition"`
	State     keystation.KeyState `json:"state"`
	MachineID int64               `json:"machine,omitempty"`
	StationID int64               `json:"station,omitempty"`
	Source    string              `json:"source"`
	Demo      bool                `json:"demo"`
	Review    bool                `json:"review"`
	History   []HistoryEntry      `json:"history"`
}

// KeyByID returns a key with its full history.
func (s *Server) KeyByID(ctx context.Context, id keystation.KeyID) (KeyInfo, error) {
	var (
		ki              KeyInfo
		ref, edition    int64
		enc             []byte
		machine, statio sql.NullInt64
		demo, review    int
		state           string
	)
	err := s.c.r.QueryRowContext(ctx, `SELECT id, key_id, key_enc, edition_id, state, machine_id, station_id, source, demo, review
		FROM product_keys WHERE key_id = ?`, int64(id)).Scan(&ref, &ki.KeyID, &enc, &edition, &state, &machine, &statio, &ki.Source, &demo, &review)
	if isNoRows(err) {
		return ki, keystation.Errorf(keystation.ENOTFOUND, "no key with keyId %s", id)
	}
	if err != nil {
		return ki, err
	}
	k, err := s.openKey(ki.KeyID, enc)
	if err != nil {
		return ki, err
	}
	ki.Preview, ki.State, ki.Edition = k.Preview(), keystation.KeyState(state), s.editionByID(edition).Slug
	ki.MachineID, ki.StationID, ki.Demo, ki.Review = machine.Int64, statio.Int64, demo == 1, review == 1
	rows, err := s.c.r.QueryContext(ctx, `SELECT from_state, to_state, reason, actor, COALESCE(result_message, ''),
		COALESCE(result_code, ''), COALESCE(hresult, ''), review, at FROM key_history WHERE key_ref = ? ORDER BY id`, ref)
	if err != nil {
		return ki, err
	}
	defer rows.Close()
	for rows.Next() {
		var h HistoryEntry
		var rv int
		if err := rows.Scan(&h.From, &h.To, &h.Reason, &h.Actor, &h.ResultMessage, &h.ResultCode, &h.HRESULT, &rv, &h.At); err != nil {
			return ki, err
		}
		h.Review = rv == 1
		ki.History = append(ki.History, h)
	}
	return ki, rows.Err()
}
