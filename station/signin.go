package station

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/queue"
	"keystation/store"
)

// Sign-in errors the GUI tells apart.
var (
	// ErrSignInRefused: the server (or the cached verifier) refused the
	// username or password.
	ErrSignInRefused = errors.New("wrong username or password")
	// ErrNoCachedSignIn: the server cannot be reached and this operator
	// never signed in online at this station.
	ErrNoCachedSignIn = errors.New("the server cannot be reached and this operator has not signed in online at this station before")
	// ErrCachedSignInExpired: the server cannot be reached and the
	// operator's last online sign-in is too old.
	ErrCachedSignInExpired = errors.New("the server cannot be reached and this operator's last online sign-in has expired")
	// ErrNotEnrolled: the station is not enrolled, so nobody can be checked.
	ErrNotEnrolled = errors.New("the station is not enrolled with a server")
)

// VerifierCost is the bcrypt cost of cached sign-in verifiers (tests lower
// it).
var VerifierCost = bcrypt.DefaultCost

// DefaultSignInTTL is how long an online sign-in lets the same operator sign
// in offline.
const DefaultSignInTTL = 7 * 24 * time.Hour

// VerifierStore keeps operators' cached verifiers (store.StationDB).
type VerifierStore interface {
	Enrolment(ctx context.Context) (store.Enrolment, error)
	SaveOperatorVerifier(ctx context.Context, v store.OperatorVerifier) error
	OperatorVerifier(ctx context.Context, username string) (store.OperatorVerifier, error)
	DeleteOperatorVerifier(ctx context.Context, username string) error
}

// OperatorChecker asks the server about an operator (queue.Client).
type OperatorChecker interface {
	CheckOperator(ctx context.Context, username, password string) (queue.Operator, error)
}

// SignIn checks operators: against the server when it answers, else against
// the verifier cached from the operator's last online sign-in here.
type SignIn struct {
	Store   VerifierStore
	Server  OperatorChecker
	Now     func() time.Time
	TTL     time.Duration // DefaultSignInTTL when 0
	Timeout time.Duration // of the server check; 8 s when 0
}

// Operator is a signed-in operator.
type Operator struct {
	Username string    `json:"username"`
	Role     string    `json:"role"`
	TenantID int64     `json:"tenantId"`
	Offline  bool      `json:"offline"` // checked against the cached verifier
	Expires  time.Time `json:"expires"` // of the cached verifier
	// ServerError is why the server could not be asked (Offline only).
	ServerError string `json:"serverError,omitempty"`
}

func (s *SignIn) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// SignIn checks username and password.
func (s *SignIn) SignIn(ctx context.Context, username, password string) (Operator, error) {
	username = strings.TrimSpace(username)
	if username == "" || password == "" {
		return Operator{}, ErrSignInRefused
	}
	e, err := s.Store.Enrolment(ctx)
	if err != nil {
		return Operator{}, err
	}
	if !e.Enrolled() {
		return Operator{}, ErrNotEnrolled
	}
	ttl := durationOr(s.TTL, DefaultSignInTTL)
	cctx, cancel := context.WithTimeout(ctx, durationOr(s.Timeout, 8*time.Second))
	op, err := s.Server.CheckOperator(cctx, username, password)
	cancel()
	if err == nil {
		h, herr := bcrypt.GenerateFromPassword([]byte(password), VerifierCost)
		if herr != nil {
			return Operator{}, herr
		}
		now := s.now()
		v := store.OperatorVerifier{Username: op.Username, Verifier: string(h), Role: op.Role, TenantID: op.TenantID, SignedInAt: now, Expires: now.Add(ttl)}
		if serr := s.Store.SaveOperatorVerifier(ctx, v); serr != nil {
			return Operator{}, serr
		}
		return Operator{Username: op.Username, Role: op.Role, TenantID: op.TenantID, Expires: v.Expires}, nil
	}
	if ctx.Err() != nil {
		return Operator{}, ctx.Err()
	}
	if queue.IsRefused(err) {
		if keystation.ErrorCode(err) == keystation.EUNAUTHORIZED || keystation.ErrorCode(err) == keystation.EFORBIDDEN {
			_ = s.Store.DeleteOperatorVerifier(ctx, username)
		}
		return Operator{}, errors.Join(ErrSignInRefused, err)
	}
	if !queue.IsOffline(err) && !errors.Is(err, context.DeadlineExceeded) {
		return Operator{}, err
	}
	// Offline: the verifier of the last online sign-in.
	v, verr := s.Store.OperatorVerifier(ctx, username)
	if keystation.ErrorCode(verr) == keystation.ENOTFOUND {
		return Operator{}, errors.Join(ErrNoCachedSignIn, err)
	}
	if verr != nil {
		return Operator{}, verr
	}
	if bcrypt.CompareHashAndPassword([]byte(v.Verifier), []byte(password)) != nil {
		return Operator{}, ErrSignInRefused
	}
	if !s.now().Before(v.Expires) {
		return Operator{}, errors.Join(ErrCachedSignInExpired, err)
	}
	return Operator{Username: v.Username, Role: v.Role, TenantID: v.TenantID, Offline: true, Expires: v.Expires, ServerError: err.Error()}, nil
}
