package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
)

const tokenSecretPurpose = "auth/jwt-secret"

// TokenSecret returns the secret that signs the admin API's JSON Web
// Tokens, creating it on first use: 32 random bytes, kept in the meta table
// sealed with the data key, so a copied database file cannot mint tokens.
func (s *Server) TokenSecret(ctx context.Context) ([]byte, error) {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	var v string
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'jwt_secret'`).Scan(&v)
	if err == nil {
		raw, err := base64.StdEncoding.DecodeString(v)
		if err != nil {
			return nil, fmt.Errorf("jwt secret: %w", err)
		}
		return s.box.Open(raw, tokenSecretPurpose)
	}
	if !isNoRows(err) {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	sealed := base64.StdEncoding.EncodeToString(s.box.Seal(secret, tokenSecretPurpose))
	if _, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('jwt_secret', ?)`, sealed); err != nil {
		return nil, err
	}
	return secret, tx.Commit()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
