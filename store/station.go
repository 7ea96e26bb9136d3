package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"keystation"
	"keystation/seal"
)

// StationFile is the station's database file name in its data directory.
const StationFile = "station.db"

// Buffer levels a station asks the server for, per edition, unless
// configured otherwise.
const (
	DefaultTarget   = 20
	DefaultLowWater = 5
)

// StationDB is a station's own database: its offline key buffer (leased keys
// and keys from USB lists), the assignment of keys to machines, the outbox of
// reports waiting for the server, sync state and an event log. Keys, machine
// identities, report bodies and the station's credential are sealed.
//
// Every exported method runs in its own transaction. The station is one
// process with few writers, so writes go through one connection in
// immediate-mode transactions; reads use a pool of read-only connections.
type StationDB struct {
	c       conns
	box     *seal.Box
	now     func() time.Time
	log     *slog.Logger
	burnCap int
}

// OpenStationDB opens (creating and migrating as needed) the station database
// at path.
func OpenStationDB(ctx context.Context, path string, opt Options) (*StationDB, error) {
	opt.defaults()
	if opt.Box == nil {
		return nil, errors.New("store: a seal.Box is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	c, err := openConnsWith(path, stationConns)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, c.w, "station", opt.Now(), opt.Logger); err != nil {
		c.close()
		return nil, err
	}
	if err := checkDataKey(ctx, c.w, opt.Box.Check()); err != nil {
		c.close()
		return nil, err
	}
	return &StationDB{c: c, box: opt.Box, now: opt.Now, log: opt.Logger, burnCap: opt.BurnCap}, nil
}

// Close closes the database.
func (s *StationDB) Close() error { return s.c.close() }

// BurnCap is the number of keys one machine may burn on this station.
func (s *StationDB) BurnCap() int { return s.burnCap }

// Meta names.
const (
	metaStationID  = "station_id"
	metaName       = "station_name"
	metaServerURL  = "server_url"
	metaCredential = "credential_enc"
	metaEnrolledAt = "enrolled_at"
	metaEditions   = "editions"
	metaTargets    = "targets"
	metaLastSync   = "last_sync_at"
	metaLastTry    = "last_sync_attempt_at"
	metaLastError  = "last_sync_error"
	metaSkew       = "clock_skew_ms"
	metaLevels     = "server_levels"
)

const purposeCredential = "station/credential"

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func getMeta(ctx context.Context, q querier, name string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = ?`, name).Scan(&v)
	if isNoRows(err) {
		return "", nil
	}
	return v, err
}

func setMeta(ctx context.Context, tx *sql.Tx, name, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES (?, ?)
		ON CONFLICT (name) DO UPDATE SET value = excluded.value`, name, value)
	return err
}

// metaMap reads every meta value (a handful of rows).
func metaMap(ctx context.Context, db *sql.DB) (map[string]string, error) {
	rows, err := db.QueryContext(ctx, `SELECT name, value FROM meta`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	m := map[string]string{}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			return nil, err
		}
		m[n] = v
	}
	return m, rows.Err()
}

// Enrolment is who the station is on the server.
type Enrolment struct {
	StationID  int64     `json:"stationId"`
	Name       string    `json:"name"`
	ServerURL  string    `json:"serverUrl"`
	Credential string    `json:"-"`
	EnrolledAt time.Time `json:"enrolledAt"`
}

// Enrolled reports whether the station has enrolled with a server.
func (e Enrolment) Enrolled() bool { return e.StationID != 0 && e.Credential != "" }

// Enrolment returns the station's enrolment; a zero Enrolment when it has not
// enrolled yet.
func (s *StationDB) Enrolment(ctx context.Context) (Enrolment, error) {
	m, err := metaMap(ctx, s.c.r)
	if err != nil {
		return Enrolment{}, err
	}
	return s.enrolment(m)
}

func (s *StationDB) enrolment(m map[string]string) (Enrolment, error) {
	var e Enrolment
	if m[metaStationID] == "" {
		return e, nil
	}
	id, err := strconv.ParseInt(m[metaStationID], 10, 64)
	if err != nil {
		return e, fmt.Errorf("station id in the database is damaged: %w", err)
	}
	e.StationID, e.Name, e.ServerURL = id, m[metaName], m[metaServerURL]
	e.EnrolledAt = parseTime(m[metaEnrolledAt])
	if enc := m[metaCredential]; enc != "" {
		raw, err := base64.StdEncoding.DecodeString(enc)
		if err != nil {
			return e, fmt.Errorf("station credential in the database is damaged: %w", err)
		}
		if e.Credential, err = s.box.OpenString(raw, purposeCredential); err != nil {
			return e, err
		}
	}
	return e, nil
}

// SaveEnrolment records the answer of the server to an enrolment: the
// station's id, name and sealed credential, the server's URL and editions.
// A station enrols once: enrolling an enrolled station is a CONFLICT.
func (s *StationDB) SaveEnrolment(ctx context.Context, serverURL string, r keystation.EnrolResponse) error {
	if r.StationID <= 0 || strings.TrimSpace(r.Credential) == "" {
		return keystation.Errorf(keystation.EINVALID, "the server's enrolment answer has no station id or credential")
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	have, err := getMeta(ctx, tx, metaStationID)
	if err != nil {
		return err
	}
	if have != "" {
		url, _ := getMeta(ctx, tx, metaServerURL)
		return keystation.Errorf(keystation.ECONFLICT, "this station is already enrolled as station %s with %s; use another data directory to enrol again", have, url)
	}
	now := s.now()
	sets := [][2]string{
		{metaStationID, strconv.FormatInt(r.StationID, 10)},
		{metaName, r.Name},
		{metaServerURL, serverURL},
		{metaCredential, base64.StdEncoding.EncodeToString(s.box.SealString(r.Credential, purposeCredential))},
		{metaEnrolledAt, fmtTime(now)},
	}
	if !r.ServerTime.IsZero() {
		sets = append(sets, [2]string{metaSkew, strconv.FormatInt(r.ServerTime.Sub(now).Milliseconds(), 10)})
	}
	if len(r.Editions) > 0 {
		b, _ := json.Marshal(r.Editions)
		sets = append(sets, [2]string{metaEditions, string(b)})
	}
	for _, kv := range sets {
		if err := setMeta(ctx, tx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	if err := logEvent(ctx, tx, now, "enrol", fmt.Sprintf("enrolled as station %d (%s) with %s", r.StationID, r.Name, serverURL), nil); err != nil {
		return err
	}
	return tx.Commit()
}

// Editions returns the edition rules the station matches PCs with: the
// server's, as of the last sync, or keystation.DefaultEditions before the
// first one.
func (s *StationDB) Editions(ctx context.Context) ([]keystation.Edition, error) {
	v, err := getMeta(ctx, s.c.r, metaEditions)
	if err != nil {
		return nil, err
	}
	return decodeEditions(v)
}

func decodeEditions(v string) ([]keystation.Edition, error) {
	if v == "" {
		return keystation.DefaultEditions(), nil
	}
	var eds []keystation.Edition
	if err := json.Unmarshal([]byte(v), &eds); err != nil {
		return nil, fmt.Errorf("edition rules in the database are damaged: %w", err)
	}
	if len(eds) == 0 {
		return keystation.DefaultEditions(), nil
	}
	return eds, nil
}

// BufferTarget is the buffer level a station keeps for one edition: it asks
// the server for Target keys and syncs as soon as fewer than LowWater are
// left.
type BufferTarget struct {
	Target   int `json:"target"`
	LowWater int `json:"lowWater"`
}

// Targets returns the buffer target of every known edition (defaults for the
// ones not configured).
func (s *StationDB) Targets(ctx context.Context) (map[string]BufferTarget, error) {
	m, err := metaMap(ctx, s.c.r)
	if err != nil {
		return nil, err
	}
	return targetsOf(m)
}

func targetsOf(m map[string]string) (map[string]BufferTarget, error) {
	eds, err := decodeEditions(m[metaEditions])
	if err != nil {
		return nil, err
	}
	conf := map[string]BufferTarget{}
	if v := m[metaTargets]; v != "" {
		if err := json.Unmarshal([]byte(v), &conf); err != nil {
			return nil, fmt.Errorf("buffer targets in the database are damaged: %w", err)
		}
	}
	out := make(map[string]BufferTarget, len(eds))
	for _, e := range eds {
		t, ok := conf[e.Slug]
		if !ok {
			t = BufferTarget{Target: DefaultTarget, LowWater: DefaultLowWater}
		}
		out[e.Slug] = t
	}
	return out, nil
}

// SetTarget configures the buffer level of an edition.
func (s *StationDB) SetTarget(ctx context.Context, edition string, t BufferTarget) error {
	f := map[string]string{}
	if t.Target < 0 || t.Target > keystation.MaxBufferTarget {
		f["target"] = fmt.Sprintf("between 0 and %d", keystation.MaxBufferTarget)
	}
	if t.LowWater < 0 || t.LowWater > t.Target {
		f["lowWater"] = "between 0 and the target"
	}
	if strings.TrimSpace(edition) == "" {
		f["edition"] = "required"
	}
	if len(f) > 0 {
		return keystation.FieldError(f)
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	v, err := getMeta(ctx, tx, metaTargets)
	if err != nil {
		return err
	}
	conf := map[string]BufferTarget{}
	if v != "" {
		if err := json.Unmarshal([]byte(v), &conf); err != nil {
			return fmt.Errorf("buffer targets in the database are damaged: %w", err)
		}
	}
	conf[edition] = t
	b, _ := json.Marshal(conf)
	if err := setMeta(ctx, tx, metaTargets, string(b)); err != nil {
		return err
	}
	if err := logEvent(ctx, tx, s.now(), "config", fmt.Sprintf("buffer target of %s set to %d (low water %d)", edition, t.Target, t.LowWater), nil); err != nil {
		return err
	}
	return tx.Commit()
}

// StationEvent is an entry of the station's event log.
type StationEvent struct {
	ID      int64           `json:"id"`
	At      time.Time       `json:"at"`
	Kind    string          `json:"kind"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// LogEvent appends to the event log. data must never hold a full key.
func (s *StationDB) LogEvent(ctx context.Context, kind, message string, data map[string]any) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := logEvent(ctx, tx, s.now(), kind, message, data); err != nil {
		return err
	}
	return tx.Commit()
}

func logEvent(ctx context.Context, tx *sql.Tx, at time.Time, kind, message string, data map[string]any) error {
	d := "{}"
	if len(data) > 0 {
		b, err := json.Marshal(data)
		if err != nil {
			return err
		}
		d = string(b)
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO events (at, kind, message, data) VALUES (?, ?, ?, ?)`, fmtTime(at), kind, message, d)
	return err
}

// Events returns the latest events, newest first (limit <= 0: 100).
func (s *StationDB) Events(ctx context.Context, limit int) ([]StationEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, at, kind, message, data FROM events ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []StationEvent
	for rows.Next() {
		var e StationEvent
		var at, data string
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Message, &data); err != nil {
			return nil, err
		}
		e.At, e.Data = parseTime(at), json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}
