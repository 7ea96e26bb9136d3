// Package auth checks the passwords of server users: bcrypt hashes, a cache of
// recently verified credentials (bcrypt is deliberately slow; a line of
// stations asking for keys must not pay it on every request), and a limiter
// that slows down repeated failures.
package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"hash"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/store"
)

// Cost is the bcrypt cost of new password hashes.
var Cost = bcrypt.DefaultCost

// MinPasswordLen is the shortest password accepted for a new user.
const MinPasswordLen = 8

// HashPassword returns the bcrypt hash of a password.
func HashPassword(password string) (string, error) {
	if len(password) < MinPasswordLen {
		return "", keystation.FieldError(map[string]string{"password": "at least 8 characters"})
	}
	if len(password) > 72 {
		return "", keystation.FieldError(map[string]string{"password": "at most 72 bytes"})
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), Cost)
	return string(h), err
}

// UserSource looks users up.
type UserSource interface {
	UserByName(ctx context.Context, name string) (store.User, error)
}

// Authenticator verifies usernames and passwords.
type Authenticator struct {
	Users   UserSource
	Now     func() time.Time
	Limiter *Limiter
	// CacheTTL is how long a verified password is trusted without bcrypt;
	// a changed password hash or a disabled user ends it at once.
	CacheTTL time.Duration

	mu     sync.Mutex
	pepper []byte
	macs   sync.Pool // keyed HMAC states, reused (see mac)
	cache  map[string]cached
	dummy  []byte
}

type cached struct {
	hash    string
	mac     [32]byte
	expires time.Time
}

// NewAuthenticator returns an Authenticator over users.
func NewAuthenticator(users UserSource) *Authenticator {
	p := make([]byte, 32)
	rand.Read(p)
	dummy, _ := bcrypt.GenerateFromPassword([]byte("dummy password for timing"), Cost)
	a := &Authenticator{Users: users, Now: time.Now, Limiter: NewLimiter(), CacheTTL: 5 * time.Minute,
		pepper: p, cache: map[string]cached{}, dummy: dummy}
	a.macs.New = func() any { return hmac.New(sha256.New, a.pepper) }
	return a
}

// Authenticate returns the user for a username and password. A wrong
// password, an unknown user and a disabled user get the same EUNAUTHORIZED
// error; repeated failures from one client or for one name get ERATELIMIT.
func (a *Authenticator) Authenticate(ctx context.Context, username, password, client string) (store.User, error) {
	// The store matches names trimmed: so must the limiter, or " name" would
	// be a fresh set of guesses at a locked-out name.
	username = strings.TrimSpace(username)
	now := a.Now()
	if wait := a.Limiter.Blocked(now, username, client); wait > 0 {
		return store.User{}, &keystation.Error{Code: keystation.ERATELIMIT, RetryAfter: wait,
			Message: "too many failed sign-ins; try again in " + wait.Round(time.Second).String()}
	}
	u, err := a.Users.UserByName(ctx, username)
	if err != nil && keystation.ErrorCode(err) != keystation.ENOTFOUND {
		return store.User{}, err
	}
	if err != nil || u.Disabled {
		// Spend the same time as a real check, then fail the same way.
		bcrypt.CompareHashAndPassword(a.dummy, []byte(password))
		a.Limiter.Fail(now, username, client)
		return store.User{}, errBadCredentials
	}
	if a.cachedOK(u, password, now) {
		a.Limiter.Succeed(username, client)
		return u, nil
	}
	if bcrypt.CompareHashAndPassword([]byte(u.PasswordHash), []byte(password)) != nil {
		a.Limiter.Fail(now, username, client)
		return store.User{}, errBadCredentials
	}
	a.Limiter.Succeed(username, client)
	a.remember(u, password, now)
	return u, nil
}

var errBadCredentials = keystation.Errorf(keystation.EUNAUTHORIZED, "wrong username or password")

func (a *Authenticator) mac(username, password string) [32]byte {
	h := a.macs.Get().(hash.Hash)
	h.Reset()
	h.Write([]byte(username))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [32]byte
	h.Sum(out[:0])
	a.macs.Put(h)
	return out
}

func (a *Authenticator) cachedOK(u store.User, password string, now time.Time) bool {
	a.mu.Lock()
	c, ok := a.cache[u.Username]
	a.mu.Unlock()
	if !ok || c.hash != u.PasswordHash || now.After(c.expires) {
		return false
	}
	m := a.mac(u.Username, password)
	return hmac.Equal(m[:], c.mac[:])
}

func (a *Authenticator) remember(u store.User, password string, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) > 10000 {
		a.cache = map[string]cached{}
	}
	a.cache[u.Username] = cached{hash: u.PasswordHash, mac: a.mac(u.Username, password), expires: now.Add(a.CacheTTL)}
}
