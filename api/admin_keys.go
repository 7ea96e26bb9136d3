package api

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"keystation"
	"keystation/keylist"
	"keystation/store"
)

// Pools and keys.
//
//	GET   /api/v1/admin/pools/                 pools with counts per state, low-stock warning
//	POST  /api/v1/admin/pools/                 add a pool (super-admin)
//	PATCH /api/v1/admin/pools/{slug}/          change a pool's low-stock threshold (super-admin)
//	POST  /api/v1/admin/key-imports/           import a CSV/TXT key list (upload)
//	GET   /api/v1/admin/keys/{keyId}/          a key with its history
//	POST  /api/v1/admin/keys/{keyId}/revoke/   revoke a key
//	POST  /api/v1/admin/keys/{keyId}/return/   return a failed key to its pool (reason required)

func (s *Server) poolRoutes() {
	s.handle("GET", "/api/v1/admin/pools/{$}", s.admin(adminsOnly, s.handlePoolList))
	s.handle("POST", "/api/v1/admin/pools/{$}", s.admin(superOnly, s.handlePoolCreate))
	s.handle("PATCH", "/api/v1/admin/pools/{slug}/{$}", s.admin(superOnly, s.handlePoolUpdate))
	s.handle("POST", "/api/v1/admin/key-imports/{$}", s.admin(adminsOnly, s.handleKeyImport))
	s.handle("GET", "/api/v1/admin/keys/{keyId}/{$}", s.admin(adminsOnly, s.handleKeyDetail))
	s.handle("POST", "/api/v1/admin/keys/{keyId}/revoke/{$}", s.admin(adminsOnly, s.handleKeyRevoke))
	s.handle("POST", "/api/v1/admin/keys/{keyId}/return/{$}", s.admin(adminsOnly, s.handleKeyReturn))
}

type poolJSON struct {
	Edition  string         `json:"edition"`
	Name     string         `json:"name"`
	Patterns []string       `json:"patterns"`
	States   map[string]int `json:"states"`
	Total    int            `json:"total"`
	LowStock int            `json:"low_stock"`
	Low      bool           `json:"low"`
	Warning  *string        `json:"warning"`
}

func (s *Server) handlePoolList(w http.ResponseWriter, r *http.Request, p *principal) {
	counts, err := s.Store.PoolCounts(r.Context(), p.Tenant)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	eds, err := s.Store.Editions(r.Context())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	pats := map[string][]string{}
	for _, e := range eds {
		pats[e.Slug] = e.Patterns
	}
	l := langOf(r)
	out := make([]poolJSON, len(counts))
	for i, c := range counts {
		pj := poolJSON{Edition: c.Edition, Name: c.Name, Patterns: pats[c.Edition], States: map[string]int{},
			LowStock: c.LowStock, Low: c.Low}
		if pj.Patterns == nil {
			pj.Patterns = []string{}
		}
		for st, n := range c.States {
			pj.States[string(st)] = n
			pj.Total += n
		}
		if c.Low {
			avail := c.States[keystation.StateAvailable]
			msg := fmt.Sprintf("%s 密钥池仅剩 %d 个可用密钥，低于阈值 %d。", c.Name, avail, c.LowStock)
			if l == langEN {
				msg = fmt.Sprintf("The %s pool has only %d available keys, below its threshold of %d.", c.Name, avail, c.LowStock)
			}
			pj.Warning = &msg
		}
		out[i] = pj
	}
	writeJSON(w, http.StatusOK, out)
}

type poolCreateRequest struct {
	Slug     string   `json:"slug"`
	Name     string   `json:"name"`
	Patterns []string `json:"patterns"`
	LowStock *int     `json:"low_stock"`
}

func (s *Server) handlePoolCreate(w http.ResponseWriter, r *http.Request, p *principal) {
	var req poolCreateRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	e := keystation.Edition{Slug: req.Slug, Name: req.Name, Patterns: req.Patterns, LowStock: 50}
	if req.LowStock != nil {
		e.LowStock = *req.LowStock
	}
	if err := s.Store.CreatePool(r.Context(), e, p.by()); err != nil {
		s.drfError(w, r, renameFields(err, map[string]string{"lowStock": "low_stock"}))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"edition": e.Slug, "name": e.Name, "patterns": e.Patterns, "low_stock": e.LowStock})
}

type poolUpdateRequest struct {
	LowStock *int `json:"low_stock"`
}

func (s *Server) handlePoolUpdate(w http.ResponseWriter, r *http.Request, p *principal) {
	var req poolUpdateRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	if req.LowStock == nil {
		drfFields(w, fieldErrors{"low_stock": {langOf(r).text(msgRequired)}})
		return
	}
	if *req.LowStock < 0 {
		drfFields(w, fieldErrors{"low_stock": {langOf(r).text(msgMinValue, 0)}})
		return
	}
	slug := r.PathValue("slug")
	if err := s.Store.SetLowStock(r.Context(), slug, *req.LowStock, p.by()); err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"edition": slug, "low_stock": *req.LowStock})
}

// renameFields renames the fields of an input error.
func renameFields(err error, names map[string]string) error {
	f := keystation.ErrorFields(err)
	if len(f) == 0 {
		return err
	}
	out := map[string]string{}
	for k, v := range f {
		if n, ok := names[k]; ok {
			k = n
		}
		out[k] = v
	}
	return keystation.FieldError(out)
}

// MaxImportBytes bounds an uploaded key list.
const MaxImportBytes = 16 << 20

type lineNoteJSON struct {
	Line   int    `json:"line"`
	Reason string `json:"reason"`
}

type importJSON struct {
	File           string         `json:"file"`
	Format         string         `json:"format"`
	SHA256         string         `json:"sha256"`
	Lines          int            `json:"lines"`
	Imported       int            `json:"imported"`
	ByEdition      map[string]int `json:"by_edition"`
	AlreadyPresent int            `json:"already_present"`
	Rejected       []lineNoteJSON `json:"rejected"`
}

// handleKeyImport imports an uploaded key list (multipart/form-data with a
// "file" part, or the list itself as a text/plain or text/csv body) with the
// rules of "syncserver keys import": ?edition= (or an "edition" form field)
// for lines without one, every valid line in one transaction, keys already
// present skipped, every rejected line named with its number and reason.
func (s *Server) handleKeyImport(w http.ResponseWriter, r *http.Request, p *principal) {
	l := langOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, MaxImportBytes)
	edition := r.URL.Query().Get("edition")
	var (
		body io.Reader
		name = "upload"
	)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(1 << 20); err != nil {
			s.importBodyError(w, r, err)
			return
		}
		if v := r.FormValue("edition"); v != "" {
			edition = v
		}
		f, hdr, err := r.FormFile("file")
		if err != nil {
			drfFields(w, fieldErrors{"file": {l.text(msgRequired)}})
			return
		}
		defer f.Close()
		body, name = f, filepath.Base(hdr.Filename)
	case "text/plain", "text/csv", "application/octet-stream":
		body = r.Body
	default:
		drfDetail(w, r, http.StatusUnsupportedMediaType, msgUnsupportedMedia, r.Header.Get("Content-Type"))
		return
	}
	if edition != "" {
		eds, err := s.Store.Editions(r.Context())
		if err != nil {
			s.drfError(w, r, err)
			return
		}
		found := false
		for _, e := range eds {
			if e.Slug == keylist.NormalizeEdition(edition) || keylist.NormalizeEdition(e.Name) == keylist.NormalizeEdition(edition) {
				found = true
			}
		}
		if !found {
			drfFields(w, fieldErrors{"edition": {l.text(msgInvalidChoice, edition)}})
			return
		}
	}
	list, err := keylist.Read(body, keylist.Options{DefaultEdition: edition, MaxBytes: MaxImportBytes})
	if err != nil {
		s.importBodyError(w, r, err)
		return
	}
	entries := make([]store.ImportEntry, len(list.Entries))
	for i, e := range list.Entries {
		entries[i] = store.ImportEntry{Line: e.Line, Key: e.Key, KeyID: e.KeyID, Edition: e.Edition}
	}
	res, err := s.Store.ImportKeys(r.Context(), entries, store.ImportOptions{
		Source: fmt.Sprintf("upload:%s sha256:%s", name, list.SHA256), Tenant: p.writeTenant(),
		Actor: p.User.Username, By: p.by()})
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	out := importJSON{File: name, Format: list.Format, SHA256: list.SHA256, Lines: list.Lines, Imported: res.Imported,
		ByEdition: res.ByEdition, AlreadyPresent: len(res.Skipped), Rejected: []lineNoteJSON{}}
	for _, rj := range list.Rejected {
		out.Rejected = append(out.Rejected, lineNoteJSON{rj.Line, rj.Reason})
	}
	for _, rj := range res.Rejected {
		out.Rejected = append(out.Rejected, lineNoteJSON{rj.Line, rj.Reason})
	}
	sort.Slice(out.Rejected, func(i, j int) bool { return out.Rejected[i].Line < out.Rejected[j].Line })
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) importBodyError(w http.ResponseWriter, r *http.Request, err error) {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) || strings.Contains(err.Error(), "too large") {
		drfDetail(w, r, http.StatusRequestEntityTooLarge, msgTooLarge)
		return
	}
	s.drfError(w, r, err)
}

type historyJSON struct {
	From          string  `json:"from"`
	To            string  `json:"to"`
	Reason        string  `json:"reason"`
	Actor         string  `json:"actor"`
	ResultMessage *string `json:"result_message"`
	ResultCode    *string `json:"result_code"`
	HRESULT       *string `json:"hresult"`
	Review        bool    `json:"review"`
	At            string  `json:"at"`
}

type keyJSON struct {
	KeyID          string        `json:"key_id"`
	Preview        string        `json:"preview"`
	Edition        string        `json:"edition"`
	State          string        `json:"state"`
	MachineBinding *int64        `json:"machine_binding"`
	Station        *int64        `json:"station"`
	Source         string        `json:"source"`
	Demo           bool          `json:"demo"`
	Review         bool          `json:"review"`
	History        []historyJSON `json:"history"`
}

func nullableID(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

// keyParam parses the {keyId} path value; anything but 13 digits is not found.
func keyParam(r *http.Request) (keystation.KeyID, bool) {
	id, err := keystation.ParseKeyID(r.PathValue("keyId"))
	return id, err == nil
}

func (s *Server) handleKeyDetail(w http.ResponseWriter, r *http.Request, p *principal) {
	id, ok := keyParam(r)
	if !ok {
		drfDetail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	k, err := s.Store.KeyDetail(r.Context(), p.Tenant, id)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	out := keyJSON{KeyID: k.KeyID.String(), Preview: k.Preview, Edition: k.Edition, State: string(k.State),
		MachineBinding: nullableID(k.MachineID), Station: nullableID(k.StationID), Source: k.Source, Demo: k.Demo,
		Review: k.Review, History: make([]historyJSON, len(k.History))}
	for i, h := range k.History {
		out.History[i] = historyJSON{From: string(h.From), To: string(h.To), Reason: h.Reason, Actor: h.Actor,
			ResultMessage: nullable(h.ResultMessage), ResultCode: nullable(h.ResultCode), HRESULT: nullable(h.HRESULT),
			Review: h.Review, At: h.At}
	}
	writeJSON(w, http.StatusOK, out)
}

type keyActionRequest struct {
	Reason *string `json:"reason"`
}

func (s *Server) handleKeyRevoke(w http.ResponseWriter, r *http.Request, p *principal) {
	s.keyAction(w, r, p, false)
}

func (s *Server) handleKeyReturn(w http.ResponseWriter, r *http.Request, p *principal) {
	s.keyAction(w, r, p, true)
}

func (s *Server) keyAction(w http.ResponseWriter, r *http.Request, p *principal, ret bool) {
	id, ok := keyParam(r)
	if !ok {
		drfDetail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if _, err := s.Store.KeyDetail(r.Context(), p.Tenant, id); err != nil {
		s.drfError(w, r, err)
		return
	}
	var req keyActionRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	l := langOf(r)
	reason := ""
	if req.Reason != nil {
		reason = strings.TrimSpace(*req.Reason)
	}
	switch {
	case ret && req.Reason == nil:
		drfFields(w, fieldErrors{"reason": {l.text(msgRequired)}})
		return
	case ret && reason == "":
		drfFields(w, fieldErrors{"reason": {l.text(msgBlank)}})
		return
	case utf8.RuneCountInString(reason) > store.MaxNoteLen:
		drfFields(w, fieldErrors{"reason": {l.text(msgMaxLength, store.MaxNoteLen)}})
		return
	}
	if ret {
		if err := s.Store.ReturnKey(r.Context(), p.Tenant, id, reason, p.by()); err != nil {
			s.drfError(w, r, err)
			return
		}
		writeSuccess(w, r, "密钥已退回密钥池", "Key returned to its pool")
		return
	}
	if err := s.Store.RevokeKey(r.Context(), p.Tenant, id, reason, p.by()); err != nil {
		s.drfError(w, r, err)
		return
	}
	writeSuccess(w, r, "密钥已吊销", "Key revoked")
}
