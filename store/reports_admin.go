package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"strings"
	"time"

	"keystation"
)

// ReportFilter selects activation reports for supervisors.
type ReportFilter struct {
	Tenant   int64     // 0: every tenant
	Since    time.Time // received at or after; zero: no bound
	Until    time.Time // received before; zero: no bound
	Status   string    // "", "success", "failure"
	Edition  string    // pool slug
	Station  int64     // station id; 0: any
	Operator string
	Machine  string // whole machine id ("model/serial") or whole serial number
	Limit    int
	Offset   int
}

// ReportRow is one report as supervisors list it.
type ReportRow struct {
	ID            int64  `json:"id"`
	UUID          string `json:"uuid"`
	KeyID         int64  `json:"key_id"`
	Edition       string `json:"edition"`
	MachineID     string `json:"machine_id"`
	MachineRef    int64  `json:"machine_binding,omitempty"`
	Station       int64  `json:"station,omitempty"`
	Operator      string `json:"operator"`
	OSVersion     string `json:"os_version"`
	Success       bool   `json:"success"`
	ResultMessage string `json:"result_message"`
	ResultCode    string `json:"result_code"`
	FaultClass    string `json:"fault_class"`
	HRESULT       string `json:"hresult"`
	Outcome       string `json:"outcome"`
	Simulated     bool   `json:"simulated"`
	ReportedAt    string `json:"reported_at"`
	ReceivedAt    string `json:"received_at"`
}

func (s *Server) reportWhere(f ReportFilter) (string, []any, error) {
	where := []string{"1 = 1"}
	var args []any
	add := func(c string, v ...any) { where = append(where, c); args = append(args, v...) }
	if f.Tenant != 0 {
		add("m.tenant_id = ?", f.Tenant)
	}
	if !f.Since.IsZero() {
		add("r.received_at >= ?", fmtTime(f.Since))
	}
	if !f.Until.IsZero() {
		add("r.received_at < ?", fmtTime(f.Until))
	}
	switch f.Status {
	case "":
	case "success":
		add("r.success = 1")
	case "failure":
		add("r.success = 0")
	default:
		return "", nil, keystation.FieldError(map[string]string{"status": "success or failure"})
	}
	if f.Edition != "" {
		add("r.edition = ?", f.Edition)
	}
	if f.Station != 0 {
		add("r.station_id = ?", f.Station)
	}
	if f.Operator != "" {
		add("r.operator = ?", f.Operator)
	}
	if t := strings.TrimSpace(f.Machine); t != "" {
		fps := []any{}
		for i := 0; i < len(t); i++ {
			if t[i] == '/' {
				fps = append(fps, s.machineFingerprint(keystation.Machine{Model: t[:i], SN: t[i+1:]}))
			}
		}
		lo, hi := s.snRange(t)
		c := "((m.fingerprint >= ? AND m.fingerprint < ?)"
		a := []any{lo, hi}
		if len(fps) > 0 {
			c += " OR m.fingerprint IN (" + placeholders(len(fps)) + ")"
			a = append(a, fps...)
		}
		add(c+")", a...)
	}
	return " FROM reports r LEFT JOIN machines m ON m.id = r.machine_id WHERE " + strings.Join(where, " AND "), args, nil
}

// AdminReports lists reports, newest first, and counts all that match.
func (s *Server) AdminReports(ctx context.Context, f ReportFilter) ([]ReportRow, int, error) {
	q, args, err := s.reportWhere(f)
	if err != nil {
		return nil, 0, err
	}
	var n int
	if err := s.c.r.QueryRowContext(ctx, "SELECT COUNT(*)"+q, args...).Scan(&n); err != nil {
		return nil, 0, err
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT r.id, r.uuid, r.key_id, r.edition, r.machine_id, m.identity_enc, r.station_id,
		r.operator, r.os_version, r.success, r.result_message, r.result_code, r.fault_class, r.hresult, r.outcome,
		r.simulated, r.reported_at, r.received_at`+q+" ORDER BY r.received_at DESC, r.id DESC LIMIT ? OFFSET ?",
		append(args, f.Limit, f.Offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	out := []ReportRow{}
	for rows.Next() {
		var (
			r                  ReportRow
			machine, station   sql.NullInt64
			identity           []byte
			success, simulated int
		)
		if err := rows.Scan(&r.ID, &r.UUID, &r.KeyID, &r.Edition, &machine, &identity, &station, &r.Operator, &r.OSVersion,
			&success, &r.ResultMessage, &r.ResultCode, &r.FaultClass, &r.HRESULT, &r.Outcome, &simulated,
			&r.ReportedAt, &r.ReceivedAt); err != nil {
			return nil, 0, err
		}
		r.MachineRef, r.Station, r.Success, r.Simulated = machine.Int64, station.Int64, success == 1, simulated == 1
		if identity != nil {
			m, err := s.openIdentity(identity)
			if err != nil {
				return nil, 0, err
			}
			r.MachineID = m.ID()
		}
		out = append(out, r)
	}
	return out, n, rows.Err()
}

// ActivationRow is one line of the activations export: what a supervisor
// sends the key distributor (modelled on OEM Activation 3.0's Computer Build
// Report), never the full key.
type ActivationRow struct {
	KeyID        keystation.KeyID
	KeyPreview   string
	Edition      string
	SerialNumber string
	Model        string
	Manufacturer string
	CPU          string
	Memory       string
	Disk         string
	Motherboard  string
	OSVersion    string
	Operator     string
	Station      int64
	ReportUUID   string
	ActivatedAt  string
	ReceivedAt   string
}

// ActivationsHeader is the header of the activations CSV export.
var ActivationsHeader = []string{"ProductKeyID", "KeyPreview", "Edition", "SerialNumber", "Model", "Manufacturer", "CPU",
	"Memory", "Disk", "Motherboard", "OSVersion", "Operator", "Station", "ReportUUID", "ActivatedAt", "ReceivedAt"}

// Record is the row as CSV fields in ActivationsHeader order.
func (a ActivationRow) Record() []string {
	st := ""
	if a.Station != 0 {
		st = itoa(a.Station)
	}
	return []string{a.KeyID.String(), a.KeyPreview, a.Edition, a.SerialNumber, a.Model, a.Manufacturer, a.CPU, a.Memory,
		a.Disk, a.Motherboard, a.OSVersion, a.Operator, st, a.ReportUUID, a.ActivatedAt, a.ReceivedAt}
}

// ExportActivations calls fn for every successful activation matching f
// (its Status is ignored), oldest first, with the machine's hardware.
func (s *Server) ExportActivations(ctx context.Context, f ReportFilter, fn func(ActivationRow) error) error {
	f.Status = "success"
	q, args, err := s.reportWhere(f)
	if err != nil {
		return err
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT r.key_id, k.key_enc, r.edition, m.identity_enc, m.hardware_enc, r.os_version,
		r.operator, r.station_id, r.uuid, r.reported_at, r.received_at`+strings.Replace(q, " WHERE ",
		" LEFT JOIN product_keys k ON k.id = r.key_ref WHERE ", 1)+" ORDER BY r.received_at, r.id", args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			a                ActivationRow
			keyEnc, identity []byte
			hwEnc            []byte
			station          sql.NullInt64
			keyID            int64
		)
		if err := rows.Scan(&keyID, &keyEnc, &a.Edition, &identity, &hwEnc, &a.OSVersion, &a.Operator, &station,
			&a.ReportUUID, &a.ActivatedAt, &a.ReceivedAt); err != nil {
			return err
		}
		a.KeyID, a.Station = keystation.KeyID(keyID), station.Int64
		if keyEnc != nil {
			k, err := s.openKey(a.KeyID, keyEnc)
			if err != nil {
				return err
			}
			a.KeyPreview = k.Preview()
		}
		if identity != nil {
			m, err := s.openIdentity(identity)
			if err != nil {
				return err
			}
			a.SerialNumber, a.Model = m.SN, m.Model
		}
		if hwEnc != nil {
			raw, err := s.box.Open(hwEnc, "machine/hardware")
			if err != nil {
				return err
			}
			var hw keystation.Hardware
			if err := json.Unmarshal(raw, &hw); err != nil {
				return err
			}
			sum := hw.Summary()
			a.Manufacturer, a.CPU, a.Memory, a.Disk, a.Motherboard = hw.Manufacturer, sum.CPU, sum.Memory, sum.Disk, sum.Motherboard
		}
		if err := fn(a); err != nil {
			return err
		}
	}
	return rows.Err()
}

// Stats are the figures of the supervisors' dashboard.
type Stats struct {
	Since              string         `json:"since"`
	Until              string         `json:"until"`
	Keys               []PoolCount    `json:"keys"`
	ActivationsPerHour []HourCount    `json:"activations_per_hour"`
	PerStation         []StationCount `json:"per_station"`
	Reports            int            `json:"reports"`
	Successes          int            `json:"successes"`
	SuccessRate        float64        `json:"success_rate"` // successes / reports in the range; 0 when none
	TopFailureCodes    []FailureCount `json:"top_failure_codes"`
}

// HourCount counts the reports received in one hour (UTC).
type HourCount struct {
	Hour    string `json:"hour"` // 2006-01-02T15:00:00Z
	Success int    `json:"success"`
	Failure int    `json:"failure"`
}

// StationCount counts a station's reports (station 0: online operators).
type StationCount struct {
	Station int64 `json:"station"`
	Success int   `json:"success"`
	Failure int   `json:"failure"`
}

// FailureCount is how often a failure code was reported.
type FailureCount struct {
	Code  string `json:"code"` // HRESULT, or the raw code when none was found
	Count int    `json:"count"`
}

// AdminStats computes the dashboard figures for reports received in
// [since, until) of tenant (0: all).
func (s *Server) AdminStats(ctx context.Context, tenant int64, since, until time.Time) (Stats, error) {
	st := Stats{Since: since.UTC().Format(time.RFC3339), Until: until.UTC().Format(time.RFC3339),
		ActivationsPerHour: []HourCount{}, PerStation: []StationCount{}, TopFailureCodes: []FailureCount{}}
	var err error
	if st.Keys, err = s.PoolCounts(ctx, tenant); err != nil {
		return st, err
	}
	q, args, err := s.reportWhere(ReportFilter{Tenant: tenant, Since: since, Until: until})
	if err != nil {
		return st, err
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT SUBSTR(r.received_at, 1, 13), r.success, COUNT(*)`+q+
		` GROUP BY SUBSTR(r.received_at, 1, 13), r.success ORDER BY 1`, args...)
	if err != nil {
		return st, err
	}
	hours := map[string]int{}
	for rows.Next() {
		var h string
		var ok, n int
		if err := rows.Scan(&h, &ok, &n); err != nil {
			rows.Close()
			return st, err
		}
		i, seen := hours[h]
		if !seen {
			i = len(st.ActivationsPerHour)
			hours[h] = i
			st.ActivationsPerHour = append(st.ActivationsPerHour, HourCount{Hour: h + ":00:00Z"})
		}
		if ok == 1 {
			st.ActivationsPerHour[i].Success += n
			st.Successes += n
		} else {
			st.ActivationsPerHour[i].Failure += n
		}
		st.Reports += n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	if st.Reports > 0 {
		st.SuccessRate = float64(st.Successes) / float64(st.Reports)
	}
	rows, err = s.c.r.QueryContext(ctx, `SELECT COALESCE(r.station_id, 0), r.success, COUNT(*)`+q+
		` GROUP BY COALESCE(r.station_id, 0), r.success ORDER BY 1`, args...)
	if err != nil {
		return st, err
	}
	stations := map[int64]int{}
	for rows.Next() {
		var id int64
		var ok, n int
		if err := rows.Scan(&id, &ok, &n); err != nil {
			rows.Close()
			return st, err
		}
		i, seen := stations[id]
		if !seen {
			i = len(st.PerStation)
			stations[id] = i
			st.PerStation = append(st.PerStation, StationCount{Station: id})
		}
		if ok == 1 {
			st.PerStation[i].Success += n
		} else {
			st.PerStation[i].Failure += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return st, err
	}
	rows, err = s.c.r.QueryContext(ctx, `SELECT CASE WHEN r.hresult <> '' THEN r.hresult WHEN r.result_code <> '' THEN r.result_code
		ELSE '(none)' END AS code, COUNT(*)`+q+` AND r.success = 0 GROUP BY code ORDER BY 2 DESC, 1 LIMIT 10`, args...)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	for rows.Next() {
		var c FailureCount
		if err := rows.Scan(&c.Code, &c.Count); err != nil {
			return st, err
		}
		st.TopFailureCodes = append(st.TopFailureCodes, c)
	}
	return st, rows.Err()
}
