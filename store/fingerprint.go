package store

import (
	"context"
	"database/sql"
	"fmt"
)

// fingerprintScheme names the machine fingerprint format in use (see
// machineFingerprint); the meta table records the one a database holds.
const (
	metaFingerprint   = "machine_fingerprint"
	fingerprintScheme = "sn-prefix-v2"
)

// upgradeFingerprints rewrites the fingerprints of machines recorded before
// the current scheme, in one transaction, and records the scheme. It reads
// each machine's sealed identity, so it runs where the data key is known:
// at OpenServer, after the migrations.
func (s *Server) upgradeFingerprints(ctx context.Context) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v string
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, metaFingerprint).Scan(&v)
	if err == nil && v == fingerprintScheme {
		return nil
	}
	if err != nil && !isNoRows(err) {
		return err
	}
	upd, err := tx.PrepareContext(ctx, `UPDATE machines SET fingerprint = ? WHERE id = ?`)
	if err != nil {
		return err
	}
	defer upd.Close()
	var last, n int64
	for {
		ids, fps, err := s.nextFingerprints(ctx, tx, last, 10000)
		if err != nil {
			return err
		}
		if len(ids) == 0 {
			break
		}
		for i, id := range ids {
			if _, err := upd.ExecContext(ctx, fps[i], id); err != nil {
				return fmt.Errorf("machine %d: %w", id, err)
			}
		}
		last = ids[len(ids)-1]
		n += int64(len(ids))
		if n%100000 == 0 {
			s.log.Info("rewriting machine fingerprints", "done", n)
		}
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, metaFingerprint, fingerprintScheme); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("machine fingerprints rewritten", "machines", n, "scheme", fingerprintScheme)
	}
	return nil
}

// nextFingerprints reads up to limit machines after id last and computes
// their fingerprints in the current scheme.
func (s *Server) nextFingerprints(ctx context.Context, tx *sql.Tx, last int64, limit int) ([]int64, []string, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, identity_enc FROM machines WHERE id > ? ORDER BY id LIMIT ?`, last, limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids []int64
	var fps []string
	for rows.Next() {
		var id int64
		var enc []byte
		if err := rows.Scan(&id, &enc); err != nil {
			return nil, nil, err
		}
		m, err := s.openIdentity(enc)
		if err != nil {
			return nil, nil, fmt.Errorf("machine %d: open its identity: %w", id, err)
		}
		ids = append(ids, id)
		fps = append(fps, s.machineFingerprint(m))
	}
	return ids, fps, rows.Err()
}
