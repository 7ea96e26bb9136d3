package auth_test

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"keystation"
	"keystation/auth"
	"keystation/store"
)

func newTokens(t *testing.T, now time.Time) *auth.Tokens {
	t.Helper()
	tk, err := auth.NewTokens(bytes.Repeat([]byte{5}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tk.Now = func() time.Time { return now }
	return tk
}

func TestTokens(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	u := store.User{ID: 7, Username: "root", Role: store.RoleSuperAdmin, TenantID: 1, PasswordHash: "$2a$hash-1"}
	tk := newTokens(t, now)
	pair, err := tk.Issue(u)
	if err != nil {
		t.Fatal(err)
	}
	later := func(d time.Duration) *auth.Tokens { return newTokens(t, now.Add(d)) }
	other, _ := auth.NewTokens(bytes.Repeat([]byte{6}, 32))
	signed := func(m jwt.SigningMethod, key any, c jwt.Claims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims := func(edit func(*auth.Claims)) *auth.Claims {
		c := &auth.Claims{RegisteredClaims: jwt.RegisteredClaims{Issuer: "keystation", Subject: "root",
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Minute))},
			Type: auth.TokenAccess, UserID: 7, Role: store.RoleSuperAdmin, Tenant: 1, PasswordVer: tk.PasswordVersion(u.PasswordHash)}
		edit(c)
		return c
	}
	key := bytes.Repeat([]byte{5}, 32)
	cases := []struct {
		name  string
		tk    *auth.Tokens
		token string
		typ   string
		ok    bool
	}{
		{"access", tk, pair.Access, auth.TokenAccess, true},
		{"refresh", tk, pair.Refresh, auth.TokenRefresh, true},
		{"refresh used as access", tk, pair.Refresh, auth.TokenAccess, false},
		{"access used as refresh", tk, pair.Access, auth.TokenRefresh, false},
		{"access after 14 minutes", later(14 * time.Minute), pair.Access, auth.TokenAccess, true},
		{"access expired after 15 minutes", later(16 * time.Minute), pair.Access, auth.TokenAccess, false},
		{"refresh after 11 hours", later(11 * time.Hour), pair.Refresh, auth.TokenRefresh, true},
		{"refresh expired", later(13 * time.Hour), pair.Refresh, auth.TokenRefresh, false},
		{"issued in the future", later(-time.Hour), pair.Access, auth.TokenAccess, false},
		{"signed with another secret", tk, func() string { s, _ := other.Access(u); return s }(), auth.TokenAccess, false},
		{"payload tampered", tk, tamper(pair.Access), auth.TokenAccess, false},
		{"alg none", tk, signed(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(func(*auth.Claims) {})), auth.TokenAccess, false},
		{"HS512 with the same secret", tk, signed(jwt.SigningMethodHS512, key, claims(func(*auth.Claims) {})), auth.TokenAccess, false},
		{"HS256 hand-made with the same secret", tk, signed(jwt.SigningMethodHS256, key, claims(func(*auth.Claims) {})), auth.TokenAccess, true},
		{"no expiry", tk, signed(jwt.SigningMethodHS256, key, claims(func(c *auth.Claims) { c.ExpiresAt = nil })), auth.TokenAccess, false},
		{"other issuer", tk, signed(jwt.SigningMethodHS256, key, claims(func(c *auth.Claims) { c.Issuer = "evil" })), auth.TokenAccess, false},
		{"no subject", tk, signed(jwt.SigningMethodHS256, key, claims(func(c *auth.Claims) { c.Subject = "" })), auth.TokenAccess, false},
		{"garbage", tk, "not.a.token", auth.TokenAccess, false},
		{"empty", tk, "", auth.TokenAccess, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.tk.Parse(c.token, c.typ)
			if c.ok != (err == nil) {
				t.Fatalf("Parse: %v, want ok %v", err, c.ok)
			}
			if err != nil {
				if keystation.ErrorCode(err) != keystation.EUNAUTHORIZED {
					t.Errorf("code %s", keystation.ErrorCode(err))
				}
				return
			}
			if got.Subject != "root" || got.Role != store.RoleSuperAdmin || got.Tenant != 1 || got.UserID != 7 {
				t.Errorf("claims %+v", got)
			}
		})
	}

	t.Run("user checks", func(t *testing.T) {
		c, err := tk.Parse(pair.Access, auth.TokenAccess)
		if err != nil {
			t.Fatal(err)
		}
		checks := []struct {
			name string
			u    store.User
			ok   bool
		}{
			{"same user", u, true},
			{"disabled", func() store.User { v := u; v.Disabled = true; return v }(), false},
			{"password changed", func() store.User { v := u; v.PasswordHash = "$2a$hash-2"; return v }(), false},
			{"user recreated with another id", func() store.User { v := u; v.ID = 8; return v }(), false},
		}
		for _, ch := range checks {
			if err := tk.CheckUser(c, ch.u); (err == nil) != ch.ok {
				t.Errorf("%s: %v", ch.name, err)
			}
		}
	})
	t.Run("short secret refused", func(t *testing.T) {
		if _, err := auth.NewTokens(make([]byte, 16)); err == nil {
			t.Fatal("accepted a 16-byte secret")
		}
	})
}

// tamper flips the role in a token's payload, keeping the signature.
func tamper(tok string) string {
	p := strings.Split(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(p[1])
	raw = bytes.Replace(raw, []byte(`"super-admin"`), []byte(`"tenant-admin"`), 1)
	p[1] = base64.RawURLEncoding.EncodeToString(raw)
	return strings.Join(p, ".")
}
