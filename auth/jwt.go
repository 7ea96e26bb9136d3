package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"keystation"
	"keystation/store"
)

// Token types.
const (
	TokenAccess  = "access"
	TokenRefresh = "refresh"
)

// Default token lifetimes: access tokens are short-lived; a refresh token
// gets new access tokens for a working day.
const (
	DefaultAccessTTL  = 15 * time.Minute
	DefaultRefreshTTL = 12 * time.Hour
)

// Claims are what the admin API's tokens carry. The user is looked up again
// on every request, so a disabled user or a changed role takes effect at
// once; PasswordVer ends every token of a user whose password changed.
type Claims struct {
	jwt.RegisteredClaims
	Type        string `json:"token_type"`
	UserID      int64  `json:"user_id"`
	Role        string `json:"role"`
	Tenant      int64  `json:"tenant_id"`
	PasswordVer string `json:"pwv"`
}

// Tokens issues and checks the admin API's JSON Web Tokens (HS256).
type Tokens struct {
	key        []byte
	Issuer     string
	AccessTTL  time.Duration
	RefreshTTL time.Duration
	Now        func() time.Time
}

// NewTokens returns a token issuer for a secret of at least 32 bytes.
func NewTokens(secret []byte) (*Tokens, error) {
	if len(secret) < 32 {
		return nil, errors.New("auth: the token secret must have at least 32 bytes")
	}
	return &Tokens{key: append([]byte(nil), secret...), Issuer: "keystation", AccessTTL: DefaultAccessTTL,
		RefreshTTL: DefaultRefreshTTL, Now: time.Now}, nil
}

// PasswordVersion is a short keyed digest of a password hash: it changes
// when the password does, without putting the hash in the token.
func (t *Tokens) PasswordVersion(passwordHash string) string {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte("pwv\x00" + passwordHash))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Pair is an access and a refresh token.
type Pair struct {
	Access  string `json:"access"`
	Refresh string `json:"refresh"`
}

// Issue returns a new access and refresh token for u.
func (t *Tokens) Issue(u store.User) (Pair, error) {
	a, err := t.sign(u, TokenAccess, t.AccessTTL)
	if err != nil {
		return Pair{}, err
	}
	r, err := t.sign(u, TokenRefresh, t.RefreshTTL)
	return Pair{Access: a, Refresh: r}, err
}

// Access returns a new access token for u.
func (t *Tokens) Access(u store.User) (string, error) { return t.sign(u, TokenAccess, t.AccessTTL) }

func (t *Tokens) sign(u store.User, typ string, ttl time.Duration) (string, error) {
	now := t.Now()
	var jti [12]byte
	rand.Read(jti[:])
	c := Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.Issuer,
			Subject:   u.Username,
			IssuedAt:  jwt.NewNumericDate(now),
			NotBefore: jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			ID:        hex.EncodeToString(jti[:]),
		},
		Type: typ, UserID: u.ID, Role: u.Role, Tenant: u.TenantID, PasswordVer: t.PasswordVersion(u.PasswordHash),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(t.key)
}

// ErrBadToken is the answer for any token that does not verify: malformed,
// tampered, signed with another algorithm (alg "none" included), expired,
// of the wrong type or from another issuer.
var ErrBadToken = keystation.Errorf(keystation.EUNAUTHORIZED, "token is invalid or expired")

// Parse verifies a token of type typ and returns its claims.
func (t *Tokens) Parse(token, typ string) (*Claims, error) {
	var c Claims
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(t.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(5*time.Second),
		jwt.WithTimeFunc(t.Now),
	)
	tok, err := p.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return t.key, nil })
	if err != nil || !tok.Valid || c.Type != typ || c.Subject == "" {
		return nil, ErrBadToken
	}
	return &c, nil
}

// CheckUser verifies that the claims still describe u: the same user, not
// disabled, the same password.
func (t *Tokens) CheckUser(c *Claims, u store.User) error {
	if u.Disabled || u.ID != c.UserID || !hmac.Equal([]byte(t.PasswordVersion(u.PasswordHash)), []byte(c.PasswordVer)) {
		return ErrBadToken
	}
	return nil
}

func (c *Claims) String() string {
	return c.Subject + "/" + c.Role + "/" + strconv.FormatInt(c.Tenant, 10)
}
