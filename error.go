package keystation

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Error codes. Each adapter maps them to its own representation (the api
// package to HTTP statuses, the ui to the worker's words); internal error text
// never reaches a client.
const (
	EOK              = "OK"
	EINVALID         = "INVALID_INPUT"        // malformed or missing input
	EUNAUTHORIZED    = "UNAUTHORIZED"         // no or wrong credentials
	EFORBIDDEN       = "FORBIDDEN"            // authenticated, not allowed
	ENOTFOUND        = "NOT_FOUND"            // no such object
	ERATELIMIT       = "TOO_MANY_ATTEMPTS"    // too many failed sign-ins
	ETOOLARGE        = "BODY_TOO_LARGE"       // request body over the limit
	EPOOLEMPTY       = "POOL_EMPTY"           // no available key in the edition's pool
	EUNKNOWNEDITION  = "EDITION_UNKNOWN"      // osVersion matches no pool
	EBURNLIMIT       = "BURN_LIMIT_REACHED"   // the machine burnt its cap of keys
	ENOTASSIGNED     = "KEY_NOT_ASSIGNED"     // report for a key not assigned to that machine
	EMACHINEBLOCKED  = "MACHINE_BLOCKED"      // a supervisor blocked the machine
	EEDITIONMISMATCH = "EDITION_MISMATCH"     // machine already holds a key of another edition
	EILLEGALSTATE    = "ILLEGAL_TRANSITION"   // key state change not allowed
	ECONFLICT        = "CONFLICT"             // state conflict (duplicate, flagged report, ...)
	EUNAVAILABLE     = "UNAVAILABLE"          // server shutting down, offline, ...
	EINTERNAL        = "INTERNAL"             // anything else; details only in the logs
	EFIRMWAREKEY     = "FIRMWARE_KEY_PRESENT" // the PC has an OA3 firmware key: no pool key used
	ESTATIONREVOKED  = "STATION_REVOKED"      // the station's credential was revoked
	EDEMOONNETWORK   = "DEMO_ON_NETWORK"      // refusing to serve demo accounts off loopback
)

// Error is a domain error: a code, a message safe to show to the user, and for
// input errors the offending fields.
type Error struct {
	Code    string
	Message string
	// Fields maps a field name to what is wrong with it.
	Fields map[string]string
	// RetryAfter, when set, says how long the caller should wait.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	names := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + ": " + e.Fields[k]
	}
	return e.Message + " (" + strings.Join(parts, "; ") + ")"
}

// Errorf returns an *Error with code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns an EINVALID error naming the fields that are wrong.
func FieldError(fields map[string]string) *Error {
	return &Error{Code: EINVALID, Message: "invalid request", Fields: fields}
}

// ErrorCode returns the code of err, EINTERNAL for anything not an *Error and
// "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the user-safe message of err.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrorRetryAfter returns how long the caller of a refused request should
// wait, or 0.
func ErrorRetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ErrorFields returns the field errors of err, if any.
func ErrorFields(err error) map[string]string {
	var e *Error
	if errors.As(err, &e) {
		return e.Fields
	}
	return nil
}
