package queue

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"keystation"
)

// PathSignIn is where a station checks an operator's password.
const PathSignIn = "/api/v1/sync/signin"

// Operator is an operator the server accepted at this station.
type Operator struct {
	Username string `json:"username"`
	Role     string `json:"role"`
	TenantID int64  `json:"tenantId"`
}

// CheckOperator asks the server whether username and password are an
// operator's who may work at this station. A refusal is a *ServerError
// (401 UNAUTHORIZED, 403 FORBIDDEN, 429 TOO_MANY_ATTEMPTS); a server that
// cannot be reached is an *OfflineError. It updates State like Ping.
func (c *Client) CheckOperator(ctx context.Context, username, password string) (Operator, error) {
	base, cred, err := c.out.SyncEndpoint(ctx)
	if err != nil {
		return Operator{}, err
	}
	url, err := joinURL(base, PathSignIn)
	if err != nil {
		return Operator{}, err
	}
	body, _ := json.Marshal(map[string]string{"username": strings.TrimSpace(username), "password": password})
	status, raw, err := c.do(ctx, http.MethodPost, url, cred, body)
	c.mu.Lock()
	c.state.Checked, c.state.Online = true, err == nil
	if err != nil {
		c.state.LastError = err.Error()
	}
	c.mu.Unlock()
	if err != nil {
		return Operator{}, err
	}
	var op Operator
	if err := DecodeEnvelope(status, raw, &op); err != nil {
		return Operator{}, err
	}
	if op.Username == "" {
		return Operator{}, malformed("no operator in the answer")
	}
	return op, nil
}

// IsRefused reports whether err is the server refusing a request's
// credentials or rights (as opposed to being unreachable).
func IsRefused(err error) bool {
	var se *ServerError
	if !errors.As(err, &se) {
		return false
	}
	switch se.Code {
	case keystation.EUNAUTHORIZED, keystation.EFORBIDDEN, keystation.ERATELIMIT, keystation.EINVALID:
		return true
	}
	return se.Status == http.StatusUnauthorized || se.Status == http.StatusForbidden
}
