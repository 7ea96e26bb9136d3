package api

import (
	"encoding/csv"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"keystation/store"
)

// Reports and stats.
//
//	GET /api/v1/admin/reports/          activation reports, filtered and paginated
//	GET /api/v1/admin/reports/export/   CSV of the activations, with hardware
//	GET /api/v1/admin/stats/            dashboard figures

func (s *Server) reportRoutes() {
	s.handle("GET", "/api/v1/admin/reports/{$}", s.admin(adminsOnly, s.handleReportList))
	s.handle("GET", "/api/v1/admin/reports/export/{$}", s.admin(adminsOnly, s.handleReportExport))
	s.handle("GET", "/api/v1/admin/stats/{$}", s.admin(adminsOnly, s.handleStats))
}

// reportFilter reads the report filters: since, until (RFC 3339 or a date),
// status (success, failure), edition, station, operator, machine (a whole
// machine id or serial number).
func reportFilter(q url.Values, l lang, fe fieldErrors, p *principal) store.ReportFilter {
	f := store.ReportFilter{Tenant: p.Tenant, Edition: q.Get("edition"), Operator: q.Get("operator"), Machine: q.Get("machine")}
	f.Since = timeParam(q, "since", l, fe)
	f.Until = timeParam(q, "until", l, fe)
	f.Status = q.Get("status")
	choice(fe, l, "status", f.Status, "success", "failure")
	if v := q.Get("station"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			fe.add("station", l.text(msgInvalidInt))
		} else if n < 1 {
			fe.add("station", l.text(msgMinValue, 1))
		}
		f.Station = n
	}
	for _, name := range []string{"edition", "operator", "machine"} {
		if len(q.Get(name)) > maxSearchLen {
			fe.add(name, l.text(msgMaxLength, maxSearchLen))
		}
	}
	return f
}

func (s *Server) handleReportList(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	l := langOf(r)
	fe := fieldErrors{}
	pg := parsePage(q, l, fe)
	f := reportFilter(q, l, fe, p)
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	f.Limit, f.Offset = pg.size, pg.offset()
	rows, n, err := s.Store.AdminReports(r.Context(), f)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writePage(w, r, pg, n, rows)
}

// handleReportExport streams the activations matching the filters as CSV
// (store.ActivationsHeader): what the supervisor reports to the key
// distributor. Keys appear only as their preview.
func (s *Server) handleReportExport(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	l := langOf(r)
	fe := fieldErrors{}
	f := reportFilter(q, l, fe, p)
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	started := false
	cw := csv.NewWriter(w)
	err := s.Store.ExportActivations(r.Context(), f, func(a store.ActivationRow) error {
		if !started {
			started = true
			s.startCSV(w)
			if err := cw.Write(store.ActivationsHeader); err != nil {
				return err
			}
		}
		return cw.Write(a.Record())
	})
	if err != nil {
		if !started {
			s.drfError(w, r, err)
			return
		}
		// Too late for a status: log it; the truncated file lacks its end.
		s.Logger.Error("activations export", "path", r.URL.Path, "err", err)
		return
	}
	if !started {
		s.startCSV(w)
		cw.Write(store.ActivationsHeader)
	}
	cw.Flush()
}

func (s *Server) startCSV(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="activations-`+s.Now().UTC().Format("20060102-150405")+`.csv"`)
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// handleStats answers the dashboard figures for reports received in
// [since, until): by default the last 24 hours.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, p *principal) {
	q := r.URL.Query()
	l := langOf(r)
	fe := fieldErrors{}
	since := timeParam(q, "since", l, fe)
	until := timeParam(q, "until", l, fe)
	if len(fe) > 0 {
		drfFields(w, fe)
		return
	}
	if until.IsZero() {
		until = s.Now()
	}
	if since.IsZero() {
		since = until.Add(-24 * time.Hour)
	}
	st, err := s.Store.AdminStats(r.Context(), p.Tenant, since, until)
	if err != nil {
		s.drfError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, st)
}
