package queue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"keystation"
)

// Limits on what a server answer may hold; anything beyond is refused.
const (
	MaxResponseBytes = 32 << 20
	maxGrants        = 20_000
	maxRevoked       = 100_000
	maxEditions      = 200
	maxText          = keystation.MaxMessageLen
)

// envelope is the server's answer to every API call (api/json.go).
type envelope struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Data    json.RawMessage     `json:"data"`
	Fields  map[string]string   `json:"fields"`
	Failure *keystation.Failure `json:"failure"`
}

// ServerError is an error answer of the server: its HTTP status and the
// envelope's code, message and fields. It unwraps to a *keystation.Error.
type ServerError struct {
	Status  int
	Code    string
	Message string
	Fields  map[string]string
}

func (e *ServerError) Error() string {
	msg := (&keystation.Error{Code: e.Code, Message: e.Message, Fields: e.Fields}).Error()
	return fmt.Sprintf("server answered HTTP %d %s: %s", e.Status, e.Code, msg)
}

// Unwrap lets errors.As find the domain error (and keystation.ErrorCode its
// code).
func (e *ServerError) Unwrap() error {
	return &keystation.Error{Code: e.Code, Message: e.Message, Fields: e.Fields}
}

// ErrMalformed is wrapped by every error about an answer that is not what the
// protocol allows.
var ErrMalformed = errors.New("malformed server answer")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// decodeOne decodes exactly one JSON value from data into v.
func decodeOne(data []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return malformed("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return malformed("unexpected data after the JSON value")
	}
	return nil
}

// DecodeEnvelope decodes a server answer of HTTP status into data (which may
// be nil): a *ServerError for an error answer, an error wrapping ErrMalformed
// for anything that is not an envelope.
func DecodeEnvelope(status int, body []byte, data any) error {
	if len(body) > MaxResponseBytes {
		return malformed("answer larger than %d bytes", MaxResponseBytes)
	}
	var env envelope
	if err := decodeOne(body, &env, false); err != nil {
		if status >= 300 {
			return &ServerError{Status: status, Code: codeForStatus(status), Message: fmt.Sprintf("HTTP %d with no KeyStation answer (a proxy or another server?)", status)}
		}
		return err
	}
	if len(env.Code) > 64 || len(env.Message) > maxText {
		return malformed("code or message too long")
	}
	if status >= 300 || env.Code != keystation.EOK {
		code := env.Code
		if code == "" || code == keystation.EOK {
			code = codeForStatus(status)
		}
		return &ServerError{Status: status, Code: code, Message: env.Message, Fields: env.Fields}
	}
	if data == nil {
		return nil
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return malformed("no data in the answer")
	}
	return decodeOne(env.Data, data, false)
}

func codeForStatus(status int) string {
	switch {
	case status == 401:
		return keystation.EUNAUTHORIZED
	case status == 403:
		return keystation.EFORBIDDEN
	case status == 413:
		return keystation.ETOOLARGE
	case status == 400:
		return keystation.EINVALID
	case status == 503, status == 502, status == 504:
		return keystation.EUNAVAILABLE
	}
	return keystation.EINTERNAL
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

var syncStatuses = map[string]bool{
	keystation.SyncApplied: true, keystation.SyncDuplicate: true, keystation.SyncConflict: true, keystation.SyncRejected: true,
}

// DecodeSyncResponse decodes and checks the answer to POST /api/v1/sync.
// Every grant must carry a valid keyId, a well-formed key and an edition
// slug; every result a report ID and a known status; the server time must be
// set. Unknown fields are tolerated (a newer server), malformed values are
// not.
func DecodeSyncResponse(status int, body []byte) (keystation.SyncResponse, error) {
	var r keystation.SyncResponse
	if err := DecodeEnvelope(status, body, &r); err != nil {
		return keystation.SyncResponse{}, err
	}
	if err := CheckSyncResponse(&r); err != nil {
		return keystation.SyncResponse{}, err
	}
	return r, nil
}

// CheckSyncResponse checks a decoded sync answer (see DecodeSyncResponse).
func CheckSyncResponse(r *keystation.SyncResponse) error {
	if r.ServerTime.IsZero() {
		return malformed("serverTime is missing")
	}
	if len(r.Results) > MaxSyncReports {
		return malformed("%d results, at most %d", len(r.Results), MaxSyncReports)
	}
	seen := map[string]bool{}
	for i, res := range r.Results {
		if res.ID == "" || len(res.ID) > 64 {
			return malformed("result %d has no report id", i)
		}
		if seen[res.ID] {
			return malformed("result %d repeats report %s", i, res.ID)
		}
		seen[res.ID] = true
		if !syncStatuses[res.Status] {
			return malformed("result %d has unknown status %q", i, trunc(res.Status))
		}
		if len(res.Code) > 64 || len(res.Message) > maxText {
			return malformed("result %d: code or message too long", i)
		}
	}
	if len(r.Grants) > maxGrants {
		return malformed("%d grants, at most %d", len(r.Grants), maxGrants)
	}
	ids := map[keystation.KeyID]bool{}
	for i, g := range r.Grants {
		if !g.KeyID.Valid() {
			return malformed("grant %d has no valid keyId", i)
		}
		if ids[g.KeyID] {
			return malformed("grant %d repeats keyId %s", i, g.KeyID)
		}
		ids[g.KeyID] = true
		k, err := keystation.ParseProductKey(g.Key)
		if err != nil {
			return malformed("grant %d (keyId %s): %s", i, g.KeyID, keystation.ErrorMessage(err))
		}
		r.Grants[i].Key = k.Plain()
		if !slugRE.MatchString(g.Edition) {
			return malformed("grant %d (keyId %s) has no valid edition", i, g.KeyID)
		}
	}
	if len(r.Revoked) > maxRevoked {
		return malformed("%d revoked keys, at most %d", len(r.Revoked), maxRevoked)
	}
	for i, id := range r.Revoked {
		if !id.Valid() {
			return malformed("revoked entry %d is not a valid keyId", i)
		}
	}
	if err := checkEditions(r.Editions); err != nil {
		return err
	}
	if len(r.Levels) > maxEditions {
		return malformed("too many levels")
	}
	for ed, n := range r.Levels {
		if n < 0 || !slugRE.MatchString(ed) {
			return malformed("level of %q is not valid", trunc(ed))
		}
	}
	return nil
}

func checkEditions(eds []keystation.Edition) error {
	if len(eds) > maxEditions {
		return malformed("%d editions, at most %d", len(eds), maxEditions)
	}
	seen := map[string]bool{}
	for i, e := range eds {
		if err := e.Validate(); err != nil {
			return malformed("edition %d: %s", i, keystation.ErrorMessage(err)+fieldList(err))
		}
		if seen[e.Slug] {
			return malformed("edition %q listed twice", e.Slug)
		}
		seen[e.Slug] = true
		for _, p := range e.Patterns {
			if len(p) > 256 {
				return malformed("edition %q: pattern too long", e.Slug)
			}
		}
	}
	return nil
}

func fieldList(err error) string {
	f := keystation.ErrorFields(err)
	if len(f) == 0 {
		return ""
	}
	var parts []string
	for k, v := range f {
		parts = append(parts, k+": "+v)
	}
	return " (" + strings.Join(parts, "; ") + ")"
}

// DecodeEnrolResponse decodes and checks the answer to POST
// /api/v1/stations/enrol.
func DecodeEnrolResponse(status int, body []byte) (keystation.EnrolResponse, error) {
	var r keystation.EnrolResponse
	if err := DecodeEnvelope(status, body, &r); err != nil {
		return keystation.EnrolResponse{}, err
	}
	switch {
	case r.StationID <= 0:
		return keystation.EnrolResponse{}, malformed("no station id")
	case strings.TrimSpace(r.Credential) == "" || len(r.Credential) > 1024 || strings.ContainsAny(r.Credential, " \r\n\t"):
		return keystation.EnrolResponse{}, malformed("no usable credential")
	case len(r.Name) > 256:
		return keystation.EnrolResponse{}, malformed("station name too long")
	}
	if err := checkEditions(r.Editions); err != nil {
		return keystation.EnrolResponse{}, err
	}
	return r, nil
}

// DecodeReconciliation decodes the answer to GET
// /api/v1/sync/reconciliation.
func DecodeReconciliation(status int, body []byte) (keystation.Reconciliation, error) {
	var r keystation.Reconciliation
	if err := DecodeEnvelope(status, body, &r); err != nil {
		return r, err
	}
	if r.Leased < 0 || r.Used < 0 || r.Activated < 0 || r.Failed < 0 || r.Returned < 0 || r.Conflicting < 0 {
		return keystation.Reconciliation{}, malformed("negative count")
	}
	return r, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// clockSkew estimates server time minus station time from one round trip.
func clockSkew(server, sent, received time.Time) time.Duration {
	mid := sent.Add(received.Sub(sent) / 2)
	return server.Sub(mid)
}
