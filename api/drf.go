package api

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"keystation"
)

// The supervisors' admin API answers the way the seed-001 service (Django
// REST framework) does: {"detail": ...} for 401, 403, 404 and the like, and
// {"field": ["message", ...]} for 400, in Simplified Chinese unless the
// request's Accept-Language prefers English. HTTP statuses still come from
// the one map in json.go (StatusOf).

// lang is the language of an answer.
type lang int

const (
	langZH lang = iota
	langEN
)

// langOf picks the answer's language from Accept-Language: English when the
// most preferred language is English, Chinese otherwise (the seed's).
func langOf(r *http.Request) lang {
	best, bestQ := "", -1.0
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if tag != "" && q > bestQ {
			best, bestQ = strings.ToLower(tag), q
		}
	}
	if best == "en" || strings.HasPrefix(best, "en-") {
		return langEN
	}
	return langZH
}

// Message ids of DRF-style answers.
const (
	msgNotAuthenticated = "not_authenticated"
	msgTokenNotValid    = "token_not_valid"
	msgBadCredentials   = "no_active_account"
	msgPermissionDenied = "permission_denied"
	msgNotFound         = "not_found"
	msgInvalidPage      = "invalid_page"
	msgInvalidChoice    = "invalid_choice"
	msgMinValue         = "min_value"
	msgMaxValue         = "max_value"
	msgInvalidInt       = "invalid_int"
	msgMaxLength        = "max_length"
	msgRequired         = "required"
	msgBlank            = "blank"
	msgUnknownField     = "unknown_field"
	msgInvalidString    = "invalid_string"
	msgInvalidDateTime  = "invalid_datetime"
	msgParseError       = "parse_error"
	msgUnsupportedMedia = "unsupported_media_type"
	msgThrottled        = "throttled"
	msgServerError      = "server_error"
	msgConflict         = "conflict"
	msgTooLarge         = "too_large"
	msgUnavailable      = "unavailable"
	msgMinLength        = "min_length"
)

// drfMessages are the texts of DRF-style answers: Chinese as seed 001 has
// them (or as Django REST framework translates them), and English.
var drfMessages = map[string][2]string{
	msgNotAuthenticated: {"未提供认证凭据。", "Authentication credentials were not provided."},
	msgTokenNotValid:    {"认证令牌无效或已过期。", "Given token not valid for any token type."},
	msgBadCredentials:   {"找不到指定凭据对应的有效用户。", "No active account found with the given credentials."},
	msgPermissionDenied: {"您没有执行该操作的权限。", "You do not have permission to perform this action."},
	msgNotFound:         {"未找到。", "Not found."},
	msgInvalidPage:      {"无效页面。", "Invalid page."},
	msgInvalidChoice:    {"选择一个有效的选项。%v 不在可用选项中。", "Select a valid choice. %v is not one of the available choices."},
	msgMinValue:         {"确保该值大于或等于 %v。", "Ensure this value is greater than or equal to %v."},
	msgMaxValue:         {"确保该值小于或等于 %v。", "Ensure this value is less than or equal to %v."},
	msgInvalidInt:       {"请填写合法的整数值。", "A valid integer is required."},
	msgMaxLength:        {"该字段不能超过%v个字符。", "Ensure this field has no more than %v characters."},
	msgMinLength:        {"该字段至少需要%v个字符。", "Ensure this field has at least %v characters."},
	msgRequired:         {"该字段是必填项。", "This field is required."},
	msgBlank:            {"该字段不能为空。", "This field may not be blank."},
	msgUnknownField:     {"未知字段。", "Unknown field."},
	msgInvalidString:    {"不是有效的字符串。", "Not a valid string."},
	msgInvalidDateTime:  {"日期时间格式错误。请从这些格式中选择：YYYY-MM-DDThh:mm[:ss][Z|+HH:MM]。", "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss][Z|+HH:MM]."},
	msgParseError:       {"JSON 解析错误。", "JSON parse error."},
	msgUnsupportedMedia: {"不支持请求中的媒体类型 “%v”。", "Unsupported media type \"%v\" in request."},
	msgThrottled:        {"请求超过了限速。", "Request was throttled."},
	msgServerError:      {"服务器内部错误。", "A server error occurred."},
	msgConflict:         {"该操作与当前状态冲突。", "The request conflicts with the current state."},
	msgTooLarge:         {"请求体过大。", "Request body too large."},
	msgUnavailable:      {"服务暂时不可用。", "Service temporarily unavailable."},
}

// text returns a message in l, formatted with args.
func (l lang) text(id string, args ...any) string {
	m, ok := drfMessages[id]
	if !ok {
		return id
	}
	s := m[0]
	if l == langEN {
		s = m[1]
	}
	if len(args) > 0 {
		s = fmt.Sprintf(s, args...)
	}
	return s
}

// fieldErrors collects DRF-style validation errors: field → messages.
type fieldErrors map[string][]string

func (fe fieldErrors) add(field, msg string) { fe[field] = append(fe[field], msg) }

// detail is a DRF {"detail": ...} body.
type detail struct {
	Detail string `json:"detail"`
}

// drfDetail answers status with {"detail": message id in the request's language}.
func drfDetail(w http.ResponseWriter, r *http.Request, status int, id string, args ...any) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="api"`)
	}
	writeJSON(w, status, detail{Detail: langOf(r).text(id, args...)})
}

// drfFields answers 400 with field → messages.
func drfFields(w http.ResponseWriter, fe fieldErrors) {
	writeJSON(w, http.StatusBadRequest, fe)
}

// detailOf is the DRF message id for an error code's status.
var detailOf = map[int]string{
	http.StatusUnauthorized:          msgNotAuthenticated,
	http.StatusForbidden:             msgPermissionDenied,
	http.StatusNotFound:              msgNotFound,
	http.StatusTooManyRequests:       msgThrottled,
	http.StatusRequestEntityTooLarge: msgTooLarge,
	http.StatusServiceUnavailable:    msgUnavailable,
	http.StatusInternalServerError:   msgServerError,
}

// drfError answers a domain error DRF-style. Input errors name their fields;
// conflicts keep their (user-safe) message; internal errors are logged with
// the request ID and never shown.
func (s *Server) drfError(w http.ResponseWriter, r *http.Request, err error) {
	code := keystation.ErrorCode(err)
	status := StatusOf(code)
	l := langOf(r)
	switch {
	case code == keystation.EINVALID || code == keystation.EUNKNOWNEDITION:
		fe := fieldErrors{}
		for k, v := range keystation.ErrorFields(err) {
			fe.add(k, localizeField(l, v))
		}
		if len(fe) == 0 {
			fe.add("non_field_errors", keystation.ErrorMessage(err))
		}
		drfFields(w, fe)
		return
	case code == keystation.EINTERNAL:
		id, _ := r.Context().Value(requestIDKey).(string)
		s.Logger.Error("internal error", "request", id, "path", r.URL.Path, "err", err)
	case code == keystation.ERATELIMIT:
		w.Header().Set("Retry-After", "30")
	case status == http.StatusConflict:
		// The message says what conflicts (e.g. a key's state); it is safe.
		writeJSON(w, status, map[string]string{"detail": keystation.ErrorMessage(err), "code": code})
		return
	}
	id, ok := detailOf[status]
	if !ok {
		id = msgServerError
	}
	drfDetail(w, r, status, id)
}

// localizeField turns the store's English field messages that have a DRF
// equivalent into the request's language.
func localizeField(l lang, v string) string {
	switch {
	case v == "required":
		return l.text(msgRequired)
	case v == "unknown field":
		return l.text(msgUnknownField)
	case v == "must be a string":
		return l.text(msgInvalidString)
	case v == "must be an integer" || v == "must be a non-negative integer":
		return l.text(msgInvalidInt)
	case strings.HasPrefix(v, "at most ") && strings.HasSuffix(v, " characters"):
		return l.text(msgMaxLength, strings.TrimSuffix(strings.TrimPrefix(v, "at most "), " characters"))
	}
	return v
}

// decodeBody reads an optional JSON object body (empty means {}) strictly:
// unknown fields are refused, naming them. It answers the error itself and
// returns false when the body is not acceptable.
func (s *Server) decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			drfDetail(w, r, http.StatusUnsupportedMediaType, msgUnsupportedMedia, ct)
			return false
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		drfDetail(w, r, http.StatusRequestEntityTooLarge, msgTooLarge)
		return false
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return true
	}
	if err := DecodeStrict(body, v); err != nil {
		fields := keystation.ErrorFields(err)
		if _, bad := fields["body"]; bad || len(fields) == 0 {
			drfDetail(w, r, http.StatusBadRequest, msgParseError)
			return false
		}
		fe := fieldErrors{}
		for k, m := range fields {
			fe.add(k, localizeField(langOf(r), m))
		}
		drfFields(w, fe)
		return false
	}
	return true
}

// Pagination (DRF PageNumberPagination, page_size default 20, at most 100).
const (
	defaultPageSize = 20
	maxPageSize     = 100
)

type pageReq struct {
	page, size int
}

func (p pageReq) offset() int { return (p.page - 1) * p.size }

// parsePage reads page and page_size. page must be an integer >= 1;
// page_size must be an integer >= 1 and is capped at 100.
func parsePage(q url.Values, l lang, fe fieldErrors) pageReq {
	p := pageReq{page: 1, size: defaultPageSize}
	if v := q.Get("page"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			fe.add("page", l.text(msgInvalidInt))
		case n < 1:
			fe.add("page", l.text(msgMinValue, 1))
		default:
			p.page = n
		}
	}
	if v := q.Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			fe.add("page_size", l.text(msgInvalidInt))
		case n < 1:
			fe.add("page_size", l.text(msgMinValue, 1))
		default:
			p.size = min(n, maxPageSize)
		}
	}
	return p
}

// page is a DRF paginated answer.
type page struct {
	Count    int     `json:"count"`
	Next     *string `json:"next"`
	Previous *string `json:"previous"`
	Results  any     `json:"results"`
}

// writePage answers a page of results with absolute next and previous URLs,
// or 404 "invalid page" past the last page (as DRF does).
func writePage(w http.ResponseWriter, r *http.Request, p pageReq, count int, results any) {
	if p.page > 1 && p.offset() >= count {
		drfDetail(w, r, http.StatusNotFound, msgInvalidPage)
		return
	}
	out := page{Count: count, Results: results}
	if p.offset()+p.size < count {
		u := pageURL(r, p.page+1)
		out.Next = &u
	}
	if p.page > 1 {
		u := pageURL(r, p.page-1)
		out.Previous = &u
	}
	writeJSON(w, http.StatusOK, out)
}

// pageURL is the request's absolute URL for another page; page 1 has no
// page parameter (as DRF does).
func pageURL(r *http.Request, n int) string {
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	q := r.URL.Query()
	if n <= 1 {
		q.Del("page")
	} else {
		q.Set("page", strconv.Itoa(n))
	}
	u := url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: q.Encode()}
	return u.String()
}

// choice checks that v is one of choices, adding the seed's "invalid choice"
// message for field when it is not.
func choice(fe fieldErrors, l lang, field, v string, choices ...string) {
	if v == "" {
		return
	}
	for _, c := range choices {
		if v == c {
			return
		}
	}
	fe.add(field, l.text(msgInvalidChoice, v))
}

// sortedKeys returns a map's keys in order (for stable answers).
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
