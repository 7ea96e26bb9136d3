package api

import (
	"net/http"
	"strconv"
	"unicode/utf8"

	"keystation"
	"keystation/store"
)

// Seed 001: machine bindings.
//
//	GET  /api/v1/licenses/admin/machine-bindings/             list
//	GET  /api/v1/licenses/admin/machine-bindings/{id}/        detail
//	POST /api/v1/licenses/admin/machine-bindings/{id}/block/  block

func (s *Server) bindingRoutes() {
	const base = "/api/v1/licenses/admin/machine-bindings/"
	s.handle("GET", base+"{$}", s.admin(adminsOnly, s.handleBindingList))
	s.handle("GET", base+"{id}/{$}", s.admin(adminsOnly, s.handleBindingDetail))
	s.handle("POST", base+"{id}/block/{$}", s.admin(adminsOnly, s.handleBindingBlock))
}

// maxSearchLen bounds the search term (machine_id has at most 100
// characters in the seed's model; model and serial at most 128 each here).
const maxSearchLen = 260

// bindingStatuses are seed 001's status values.
var bindingStatuses = []string{store.BindingActive, store.BindingInactive, store.BindingBlocked}

type hardwareSummaryJSON struct {
	CPU         string `json:"cpu"`
	Memory      string `json:"memory"`
	Disk        string `json:"disk"`
	Motherboard string `json:"motherboard"`
}

type hardwareDetailJSON struct {
	hardwareSummaryJSON
	Graphics        *string  `json:"graphics"`
	BIOS            *string  `json:"bios"`
	NetworkAdapters []string `json:"network_adapters"`
}

type osInfoJSON struct {
	Name         string `json:"name"`
	Version      string `json:"version"`
	Build        string `json:"build,omitempty"`  // Windows
	Kernel       string `json:"kernel,omitempty"` // Linux
	Architecture string `json:"architecture"`
}

// osDetailJSON adds the seed's extended fields; the stations do not read
// them yet, so they are null.
type osDetailJSON struct {
	osInfoJSON
	InstallDate  *string `json:"install_date"`
	LastBootTime *string `json:"last_boot_time"`
	Timezone     *string `json:"timezone"`
	Language     *string `json:"language"`
	Domain       *string `json:"domain"`
}

type bindingJSON struct {
	ID                int64   `json:"id"`
	License           int64   `json:"license"`
	LicenseKeyPreview string  `json:"license_key_preview"`
	MachineID         string  `json:"machine_id"`
	HardwareSummary   any     `json:"hardware_summary"`
	OSInfo            any     `json:"os_info"`
	LastIPAddress     *string `json:"last_ip_address"`
	Status            string  `json:"status"`
	FirstSeenAt       string  `json:"first_seen_at"`
	LastSeenAt        string  `json:"last_seen_at"`
	DaysSinceLastSeen int     `json:"days_since_last_seen"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (s *Server) bindingJSON(b store.Binding, detail bool) bindingJSON {
	sum := hardwareSummaryJSON{CPU: b.Summary.CPU, Memory: b.Summary.Memory, Disk: b.Summary.Disk, Motherboard: b.Summary.Motherboard}
	osi := osInfoJSON{Name: b.OS.Caption, Version: b.OS.Version, Build: b.OS.Build, Kernel: b.OS.Kernel, Architecture: b.OS.Architecture}
	out := bindingJSON{ID: b.ID, License: int64(b.License), LicenseKeyPreview: b.KeyPreview, MachineID: b.MachineID,
		HardwareSummary: sum, OSInfo: osi, LastIPAddress: nullable(b.LastIP), Status: b.Status,
		FirstSeenAt: rfc3339(b.FirstSeen), LastSeenAt: rfc3339(b.LastSeen),
		DaysSinceLastSeen: max(0, int(s.Now().Sub(b.LastSeen).Hours()/24))}
	if detail {
		nics := b.Summary.NetworkAdapters
		if nics == nil {
			nics = []string{}
		}
		out.HardwareSummary = hardwareDetailJSON{hardwareSummaryJSON: sum, Graphics: nullable(b.Summary.Graphics),
			BIOS: nullable(b.Summary.BIOS), NetworkAdapters: nics}
		out.OSInfo = osDetailJSON{osInfoJSON: osi}
	}
	return out
}

// handleBindingList answers the seed's list with its filters, search,
// ordering and pagination; every bad parameter is named in one 400.
func (s *Server) handleBindingList(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	l := langOf(r)
	fe := fieldErrors{}
	pg := parsePage(q, l, fe)
	f := store.BindingFilter{Tenant: p.Tenant, InactiveAfter: s.inactiveAfter()}
	if v := q.Get("license"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fe.add("license", l.text(msgInvalidInt))
		} else if n < 1 {
			fe.add("license", l.text(msgMinValue, 1))
		}
		f.License = n
	}
	f.Status = q.Get("status")
	choice(fe, l, "status", f.Status, bindingStatuses...)
	f.Ordering = q.Get("ordering")
	choice(fe, l, "ordering", f.Ordering, store.BindingOrderings...)
	f.Search = q.Get("search")
	if utf8.RuneCountInString(f.Search) > maxSearchLen {
		fe.add("search", l.text(msgMaxLength, maxSearchLen))
	}
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	f.Limit, f.Offset = pg.size, pg.offset()
	list, n, err := s.Store.MachineBindings(r.Context(), f)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	results := make([]bindingJSON, len(list))
	for i, b := range list {
		results[i] = s.bindingJSON(b, false)
	}
	writePage(w, r, pg, n, results)
}

// handleBindingDetail answers one binding with the extended fields; a
// binding outside the caller's tenant is not found.
func (s *Server) handleBindingDetail(w http.ResponseWriter, r *http.Request, p *principal) {
	id, ok := pathID(r, "id")
	if !ok {
		drfDetail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	b, err := s.Store.MachineBinding(r.Context(), p.Tenant, id, s.inactiveAfter())
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.bindingJSON(b, true))
}

type blockRequest struct {
	Reason *string `json:"reason"`
}

// handleBindingBlock blocks a binding: 404 first for an unknown binding (as
// DRF looks the object up before validating), then the reason's length.
func (s *Server) handleBindingBlock(w http.ResponseWriter, r *http.Request, p *principal) {
	id, ok := pathID(r, "id")
	if !ok {
		drfDetail(w, r, http.StatusNotFound, msgNotFound)
		return
	}
	if _, err := s.Store.MachineBinding(r.Context(), p.Tenant, id, s.inactiveAfter()); err != nil {
		s.blockError(w, r, err)
		return
	}
	var req blockRequest
	if !s.decodeBody(w, r, &req) {
		return
	}
	reason := store.DefaultBlockReason
	if req.Reason != nil && *req.Reason != "" {
		reason = *req.Reason
	}
	if utf8.RuneCountInString(reason) > store.MaxBlockReason {
		drfFields(w, fieldErrors{"reason": {langOf(r).text(msgMaxLength, store.MaxBlockReason)}})
		return
	}
	if err := s.Store.BlockMachineBinding(r.Context(), p.Tenant, id, reason, p.by()); err != nil {
		s.blockError(w, r, err)
		return
	}
	writeSuccess(w, r, "机器绑定已阻止", "Machine binding blocked")
}

// blockError answers the seed's 500 shape for internal errors of the block
// action ({"success": false, "error": ...}), never with the internal text.
func (s *Server) blockError(w http.ResponseWriter, r *http.Request, err error) {
	if keystation.ErrorCode(err) != keystation.EINTERNAL {
		s.drfError(w, r, err)
		return
	}
	id, _ := r.Context().Value(requestIDKey).(string)
	s.Logger.Error("internal error", "request", id, "path", r.URL.Path, "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]any{"success": false, "error": langOf(r).text(msgServerError)})
}
