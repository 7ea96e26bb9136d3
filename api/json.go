package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"keystation"
)

// MaxBodyBytes bounds every request body of the JSON API.
const MaxBodyBytes = 64 << 10

// envelope wraps every answer of KeyStation's own API: a machine-readable
// code, a message for people, and the data (seed 000's {keyId, key}).
type envelope struct {
	Code    string              `json:"code"`
	Message string              `json:"message"`
	Data    any                 `json:"data,omitempty"`
	Fields  map[string]string   `json:"fields,omitempty"`
	Failure *keystation.Failure `json:"failure,omitempty"`
}

// statusOf maps error codes to HTTP statuses, in one place.
var statusOf = map[string]int{
	keystation.EOK:              http.StatusOK,
	keystation.EINVALID:         http.StatusBadRequest,
	keystation.EUNAUTHORIZED:    http.StatusUnauthorized,
	keystation.EFORBIDDEN:       http.StatusForbidden,
	keystation.EMACHINEBLOCKED:  http.StatusForbidden,
	keystation.ESTATIONREVOKED:  http.StatusForbidden,
	keystation.ENOTFOUND:        http.StatusNotFound,
	keystation.ETOOLARGE:        http.StatusRequestEntityTooLarge,
	keystation.EUNKNOWNEDITION:  http.StatusUnprocessableEntity,
	keystation.ERATELIMIT:       http.StatusTooManyRequests,
	keystation.EPOOLEMPTY:       http.StatusConflict,
	keystation.EBURNLIMIT:       http.StatusConflict,
	keystation.ENOTASSIGNED:     http.StatusConflict,
	keystation.EEDITIONMISMATCH: http.StatusConflict,
	keystation.EILLEGALSTATE:    http.StatusConflict,
	keystation.ECONFLICT:        http.StatusConflict,
	keystation.EFIRMWAREKEY:     http.StatusConflict,
	keystation.EUNAVAILABLE:     http.StatusServiceUnavailable,
	keystation.EINTERNAL:        http.StatusInternalServerError,
}

// StatusOf returns the HTTP status for an error code.
func StatusOf(code string) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// respond writes a successful envelope.
func respond(w http.ResponseWriter, code, message string, data any) {
	writeJSON(w, http.StatusOK, envelope{Code: code, Message: message, Data: data})
}

// decodeJSON reads exactly one JSON object of at most limit bytes into v,
// refusing unknown fields. Errors name the offending field.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return keystation.FieldError(map[string]string{"Content-Type": "must be application/json"})
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	return decodeOne(r.Body, v)
}

// DecodeStrict decodes one JSON object from data the same way request bodies
// are decoded; fuzz tests and other adapters use it.
func DecodeStrict(data []byte, v any) error {
	return decodeOne(bytes.NewReader(data), v)
}

// decodeOne reads exactly one JSON object from r into v, refusing unknown
// fields and trailing data.
func decodeOne(r io.Reader, v any) error {
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return keystation.FieldError(map[string]string{"body": "unexpected data after the JSON object"})
	}
	return nil
}

func jsonError(err error) error {
	var (
		mbe  *http.MaxBytesError
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		kerr *keystation.Error
	)
	switch {
	case errors.As(err, &mbe):
		return keystation.Errorf(keystation.ETOOLARGE, "request body is larger than %d bytes", mbe.Limit)
	case errors.Is(err, io.EOF):
		return keystation.FieldError(map[string]string{"body": "empty; a JSON object is required"})
	case errors.Is(err, io.ErrUnexpectedEOF):
		return keystation.FieldError(map[string]string{"body": "truncated JSON"})
	case errors.As(err, &syn):
		return keystation.FieldError(map[string]string{"body": fmt.Sprintf("malformed JSON at byte %d", syn.Offset)})
	case errors.As(err, &typ):
		// Embedded structs show up in the path ("credentials.username").
		field := strings.TrimPrefix(typ.Field, "credentials.")
		if field == "" {
			field = "body"
		}
		return keystation.FieldError(map[string]string{field: "must be " + typeName(typ.Type)})
	case errors.As(err, &kerr):
		return kerr
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name, _ := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		return keystation.FieldError(map[string]string{name: "unknown field"})
	}
	return keystation.FieldError(map[string]string{"body": "not a valid JSON object"})
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return "of another type"
}

// flexKeyID accepts a keyId as a JSON number or a string of 13 digits.
type flexKeyID keystation.KeyID

func (k *flexKeyID) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "null" {
		return nil
	}
	id, err := keystation.ParseKeyID(s)
	if err != nil {
		return keystation.FieldError(map[string]string{"keyId": "must be the 13-digit keyId"})
	}
	*k = flexKeyID(id)
	return nil
}

// flexString accepts a string or a number (memory speed: "3200 MHz" or 3200).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	if string(b) == "null" {
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return keystation.FieldError(map[string]string{"speed": "must be a string or a number"})
	}
	*f = flexString(n.String())
	return nil
}
