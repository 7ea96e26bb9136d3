package store

import (
	"context"
	"strings"
	"time"

	"keystation"
)

// OperatorVerifier is what the station keeps of an operator's last online
// sign-in: a bcrypt verifier of the password (never the password) and when
// it stops being accepted offline.
type OperatorVerifier struct {
	Username   string    `json:"username"`
	Verifier   string    `json:"-"` // bcrypt hash
	Role       string    `json:"role"`
	TenantID   int64     `json:"tenantId"`
	SignedInAt time.Time `json:"signedInAt"`
	Expires    time.Time `json:"expires"`
}

func normUser(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// SaveOperatorVerifier records (or replaces) an operator's verifier after an
// online sign-in the server accepted.
func (s *StationDB) SaveOperatorVerifier(ctx context.Context, v OperatorVerifier) error {
	if normUser(v.Username) == "" || v.Verifier == "" {
		return keystation.FieldError(map[string]string{"username": "required"})
	}
	_, err := s.c.w.ExecContext(ctx, `INSERT INTO operator_verifiers (username, verifier, role, tenant_id, signed_in_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (username) DO UPDATE SET verifier = excluded.verifier, role = excluded.role,
		tenant_id = excluded.tenant_id, signed_in_at = excluded.signed_in_at, expires_at = excluded.expires_at`,
		normUser(v.Username), v.Verifier, v.Role, v.TenantID, fmtTime(v.SignedInAt), fmtTime(v.Expires))
	return err
}

// OperatorVerifier returns an operator's cached verifier (ENOTFOUND when the
// operator never signed in online here).
func (s *StationDB) OperatorVerifier(ctx context.Context, username string) (OperatorVerifier, error) {
	v := OperatorVerifier{}
	var signed, expires string
	err := s.c.r.QueryRowContext(ctx, `SELECT username, verifier, role, tenant_id, signed_in_at, expires_at
		FROM operator_verifiers WHERE username = ?`, normUser(username)).Scan(&v.Username, &v.Verifier, &v.Role, &v.TenantID, &signed, &expires)
	if isNoRows(err) {
		return v, keystation.Errorf(keystation.ENOTFOUND, "operator %q has not signed in online at this station", strings.TrimSpace(username))
	}
	if err != nil {
		return v, err
	}
	v.SignedInAt, v.Expires = parseTime(signed), parseTime(expires)
	return v, nil
}

// DeleteOperatorVerifier forgets an operator's verifier (the server refused
// the password: an old one must not keep working offline).
func (s *StationDB) DeleteOperatorVerifier(ctx context.Context, username string) error {
	_, err := s.c.w.ExecContext(ctx, `DELETE FROM operator_verifiers WHERE username = ?`, normUser(username))
	return err
}

// SetServerURL changes the address of the server the station is enrolled
// with (the same server moved); the credential is kept.
func (s *StationDB) SetServerURL(ctx context.Context, url string) error {
	url = strings.TrimRight(strings.TrimSpace(url), "/")
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		return keystation.FieldError(map[string]string{"server": "must start with http:// or https://"})
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := setMeta(ctx, tx, metaServerURL, url); err != nil {
		return err
	}
	return tx.Commit()
}

// RevealKey returns the full product key of a key assigned to or activated
// on a PC, for the worker who asks to see it. It is never logged.
func (s *StationDB) RevealKey(ctx context.Context, id keystation.KeyID) (keystation.ProductKey, error) {
	var enc []byte
	var state string
	err := s.c.r.QueryRowContext(ctx, `SELECT key_enc, state FROM keys WHERE key_id = ?`, int64(id)).Scan(&enc, &state)
	if isNoRows(err) {
		return "", keystation.Errorf(keystation.ENOTFOUND, "no key %s on this station", id)
	}
	if err != nil {
		return "", err
	}
	if state == LocalAvailable {
		return "", keystation.Errorf(keystation.EFORBIDDEN, "key %s is not assigned to a PC", id)
	}
	k, err := s.box.OpenString(enc, stationKeyPurpose(id))
	if err != nil {
		return "", err
	}
	return keystation.ParseProductKey(k)
}
