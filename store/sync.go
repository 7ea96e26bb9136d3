package store

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"database/sql"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"keystation"
	"keystation/syncfile"
)

// Station is an enrolled station as the server knows it.
type Station struct {
	ID          int64          `json:"id"`
	Name        string         `json:"name"`
	Hostname    string         `json:"hostname"`
	TenantID    int64          `json:"tenantId"`
	Revoked     bool           `json:"revoked"`
	Demo        bool           `json:"demo"`
	CreatedAt   string         `json:"createdAt"`
	LastSyncAt  string         `json:"lastSyncAt,omitempty"`
	LastIP      string         `json:"lastIp,omitempty"`
	ClockSkewMS *int64         `json:"clockSkewMs,omitempty"`
	Backlog     int            `json:"backlog"`
	Buffer      map[string]int `json:"buffer"`
	Targets     map[string]int `json:"targets"`
	// Leased is how many keys the station holds leased and unused now.
	Leased int `json:"leased"`
}

// EnrolTokenOptions describe a new enrolment token.
type EnrolTokenOptions struct {
	Name   string // station name given to stations enrolled with it (they may send their own)
	Tenant int64
	Uses   int           // how many stations may enrol with it; 1 when 0
	TTL    time.Duration // 24 h when 0
	Actor  string
	Demo   bool
	By     AuditBy // who creates it, for the audit log (Actor when empty)
}

// CreateEnrolToken creates a token a station enrols with; only its keyed
// hash is kept, so the token is shown once.
func (s *Server) CreateEnrolToken(ctx context.Context, opt EnrolTokenOptions) (string, error) {
	if opt.Uses <= 0 {
		opt.Uses = 1
	}
	if opt.TTL <= 0 {
		opt.TTL = 24 * time.Hour
	}
	if opt.Tenant == 0 {
		opt.Tenant = 1
	}
	raw := make([]byte, 20)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	token := "ks-enrol-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(raw))
	now := s.now()
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	if opt.By.User == "" {
		opt.By.User = opt.Actor
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO enrol_tokens (token_hash, name, tenant_id, uses_left, expires_at, demo, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.box.Hash("enrol-token", token), opt.Name, opt.Tenant, opt.Uses,
		fmtTime(now.Add(opt.TTL)), boolInt(opt.Demo), opt.By.User, fmtTime(now))
	if err != nil {
		return "", err
	}
	id, _ := res.LastInsertId()
	if err := s.appendAudit(ctx, tx, opt.By, AuditEvent{Tenant: opt.Tenant, Action: AuditEnrolToken, ObjectType: "enrol_token",
		ObjectID: strconv.FormatInt(id, 10), Detail: map[string]any{"name": opt.Name, "uses": opt.Uses,
			"expires_at": fmtTime(now.Add(opt.TTL)), "demo": opt.Demo}}); err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", err
	}
	s.log.Info("enrolment token created", "uses", opt.Uses, "expires", now.Add(opt.TTL).UTC().Format(time.RFC3339), "actor", opt.Actor)
	return token, nil
}

// EnrolTokenUsable reports whether a token can still enrol a station.
func (s *Server) EnrolTokenUsable(ctx context.Context, token string) (bool, error) {
	var n int
	err := s.c.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM enrol_tokens WHERE token_hash = ? AND uses_left > 0 AND expires_at > ?`,
		s.box.Hash("enrol-token", token), fmtTime(s.now())).Scan(&n)
	return n > 0, err
}

const credentialPrefix = "ks1"

// Enrol turns an enrolment token into a station and its own credential.
func (s *Server) Enrol(ctx context.Context, req keystation.EnrolRequest, ip string) (keystation.EnrolResponse, error) {
	var resp keystation.EnrolResponse
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return resp, err
	}
	sec := base64.RawURLEncoding.EncodeToString(secret)
	now := s.now()
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return resp, err
	}
	defer tx.Rollback()
	var (
		tokID        int64
		name         string
		tenant, demo int64
	)
	err = tx.QueryRowContext(ctx, `SELECT id, name, tenant_id, demo FROM enrol_tokens WHERE token_hash = ? AND uses_left > 0 AND expires_at > ?`,
		s.box.Hash("enrol-token", strings.TrimSpace(req.Token)), fmtTime(now)).Scan(&tokID, &name, &tenant, &demo)
	if isNoRows(err) {
		return resp, keystation.Errorf(keystation.EUNAUTHORIZED, "the enrolment token is unknown, used up or expired; ask a supervisor for a new one")
	}
	if err != nil {
		return resp, err
	}
	if strings.TrimSpace(req.Name) != "" {
		name = strings.TrimSpace(req.Name)
	}
	if name == "" {
		name = req.Hostname
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO stations (name, tenant_id, created_at, credential_hash, hostname, last_ip, demo, file_key_enc)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, name, tenant, fmtTime(now), s.box.Hash("station-credential", sec), req.Hostname, ip, demo,
		s.box.Seal(syncfile.DeriveKeyFromSecret(sec), "station/file-key"))
	if err != nil {
		return resp, err
	}
	id, _ := res.LastInsertId()
	if _, err := tx.ExecContext(ctx, `UPDATE enrol_tokens SET uses_left = uses_left - 1 WHERE id = ?`, tokID); err != nil {
		return resp, err
	}
	if err := s.appendAudit(ctx, tx, AuditBy{User: fmt.Sprintf("station:%d", id), IP: ip, Via: ViaAPI}, AuditEvent{Tenant: tenant,
		Action: AuditStationEnrol, ObjectType: "station", ObjectID: strconv.FormatInt(id, 10),
		Detail: map[string]any{"name": name, "hostname": req.Hostname, "token": tokID}}); err != nil {
		return resp, err
	}
	if err := tx.Commit(); err != nil {
		return resp, err
	}
	eds, err := s.Editions(ctx)
	if err != nil {
		return resp, err
	}
	s.log.Info("station enrolled", "station", id, "name", name, "ip", ip)
	return keystation.EnrolResponse{StationID: id, Name: name, Credential: fmt.Sprintf("%s.%d.%s", credentialPrefix, id, sec),
		ServerTime: now.UTC(), Editions: eds}, nil
}

var errBadStation = keystation.Errorf(keystation.EUNAUTHORIZED, "unknown or wrong station credential")

// StationByCredential authenticates a station by its credential.
func (s *Server) StationByCredential(ctx context.Context, cred string) (Station, error) {
	parts := strings.SplitN(strings.TrimSpace(cred), ".", 3)
	if len(parts) != 3 || parts[0] != credentialPrefix {
		return Station{}, errBadStation
	}
	id, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return Station{}, errBadStation
	}
	st, hash, err := s.station(ctx, id)
	if keystation.ErrorCode(err) == keystation.ENOTFOUND {
		return Station{}, errBadStation
	}
	if err != nil {
		return Station{}, err
	}
	if !hmac.Equal([]byte(hash), []byte(s.box.Hash("station-credential", parts[2]))) {
		return Station{}, errBadStation
	}
	if st.Revoked {
		return Station{}, keystation.Errorf(keystation.ESTATIONREVOKED, "this station's credential was revoked by a supervisor; enrol it again")
	}
	return st, nil
}

const stationCols = `id, name, hostname, tenant_id, revoked_at IS NOT NULL, demo, created_at, COALESCE(last_sync_at, ''),
	COALESCE(last_ip, ''), clock_skew_ms, backlog, buffer, targets, COALESCE(credential_hash, ''),
	(SELECT COUNT(*) FROM product_keys k WHERE k.station_id = stations.id AND k.state = 'leased')`

func scanStation(sc interface{ Scan(...any) error }) (Station, string, error) {
	var (
		st            Station
		revoked, demo bool
		skew          sql.NullInt64
		buf, tgt      string
		hash          string
	)
	err := sc.Scan(&st.ID, &st.Name, &st.Hostname, &st.TenantID, &revoked, &demo, &st.CreatedAt, &st.LastSyncAt, &st.LastIP,
		&skew, &st.Backlog, &buf, &tgt, &hash, &st.Leased)
	if err != nil {
		return st, "", err
	}
	st.Revoked, st.Demo = revoked, demo
	if skew.Valid {
		st.ClockSkewMS = &skew.Int64
	}
	_ = json.Unmarshal([]byte(buf), &st.Buffer)
	_ = json.Unmarshal([]byte(tgt), &st.Targets)
	return st, hash, nil
}

func (s *Server) station(ctx context.Context, id int64) (Station, string, error) {
	st, hash, err := scanStation(s.c.r.QueryRowContext(ctx, `SELECT `+stationCols+` FROM stations WHERE id = ?`, id))
	if isNoRows(err) {
		return st, "", keystation.Errorf(keystation.ENOTFOUND, "no station %d", id)
	}
	return st, hash, err
}

// StationFileKey returns the key of a station's USB sync files, refusing a
// revoked station.
func (s *Server) StationFileKey(ctx context.Context, id int64) (Station, syncfile.Key, error) {
	st, _, err := s.station(ctx, id)
	if keystation.ErrorCode(err) == keystation.ENOTFOUND {
		return st, nil, errBadStation
	}
	if err != nil {
		return st, nil, err
	}
	if st.Revoked {
		return st, nil, keystation.Errorf(keystation.ESTATIONREVOKED, "station %d was revoked by a supervisor", id)
	}
	var enc []byte
	if err := s.c.r.QueryRowContext(ctx, `SELECT file_key_enc FROM stations WHERE id = ?`, id).Scan(&enc); err != nil {
		return st, nil, err
	}
	k, err := s.box.Open(enc, "station/file-key")
	if err != nil {
		return st, nil, err
	}
	return st, k, nil
}

// StationByID returns a station.
func (s *Server) StationByID(ctx context.Context, id int64) (Station, error) {
	st, _, err := s.station(ctx, id)
	return st, err
}

// Stations lists the stations (tenant 0: all).
func (s *Server) Stations(ctx context.Context, tenant int64) ([]Station, error) {
	q := `SELECT ` + stationCols + ` FROM stations`
	var args []any
	if tenant != 0 {
		q += ` WHERE tenant_id = ?`
		args = append(args, tenant)
	}
	rows, err := s.c.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Station
	for rows.Next() {
		st, _, err := scanStation(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, rows.Err()
}

// TenantStation returns a station of tenant (0: any tenant); another
// tenant's station is not found.
func (s *Server) TenantStation(ctx context.Context, tenant, id int64) (Station, error) {
	st, _, err := s.station(ctx, id)
	if err == nil && tenant != 0 && st.TenantID != tenant {
		return Station{}, keystation.Errorf(keystation.ENOTFOUND, "no station %d", id)
	}
	return st, err
}

// RevokeStation revokes the credential of a station of tenant (0: any): it
// can no longer sync. The audit log records it in the same transaction.
func (s *Server) RevokeStation(ctx context.Context, tenant, id int64, by AuditBy) error {
	st, err := s.TenantStation(ctx, tenant, id)
	if err != nil {
		return err
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if st.Revoked {
		return nil // already revoked: nothing changes, nothing to audit
	}
	if _, err := tx.ExecContext(ctx, `UPDATE stations SET revoked_at = ? WHERE id = ?`, fmtTime(s.now()), id); err != nil {
		return err
	}
	if err := s.appendAudit(ctx, tx, by, AuditEvent{Tenant: st.TenantID, Action: AuditStationRevoke, ObjectType: "station",
		ObjectID: strconv.FormatInt(id, 10), Detail: map[string]any{"name": st.Name}}); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	s.log.Info("station credential revoked", "station", id, "actor", by.User)
	return nil
}

// ReclaimStation returns every key leased to a (lost) station to the pool.
// If the station used one of them offline, its report is flagged as a
// conflict when it arrives (invariant 6); once it syncs, it drops the rest.
//
// The audit log records the reclaim in the same transaction.
func (s *Server) ReclaimStation(ctx context.Context, tenant, id int64, by AuditBy) (int, error) {
	st, err := s.TenantStation(ctx, tenant, id)
	if err != nil {
		return 0, err
	}
	by = by.orSystem()
	n := 0
	err = s.g.do(ctx, func(t *txn) error {
		n = 0
		keys, err := s.leasedKeys(t, id, 0, -1)
		if err != nil {
			return err
		}
		for _, k := range keys {
			prev := k.station
			k.station = sql.NullInt64{}
			if err := s.transition(t, &k, keystation.StateAvailable, hist{reason: keystation.ReasonReclaimed, actor: by.User, station: prev}); err != nil {
				return err
			}
			n++
		}
		return s.appendAudit(t.ctx, t.Tx, by, AuditEvent{Tenant: st.TenantID, Action: AuditLeaseReclaim, ObjectType: "station",
			ObjectID: strconv.FormatInt(id, 10), Detail: map[string]any{"name": st.Name, "keys": n}})
	})
	if err == nil {
		s.log.Info("station lease reclaimed", "station", id, "keys", n, "actor", by.User)
	}
	return n, err
}

const qLeasedKeys = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
	WHERE station_id = ? AND state = 'leased' AND (? = 0 OR edition_id = ?) ORDER BY id LIMIT ?`

func (s *Server) leasedKeys(t *txn, station, edition int64, limit int) ([]keyRow, error) {
	rows, err := t.query(qLeasedKeys, station, edition, edition, limit)
	if err != nil {
		return nil, err
	}
	return collectKeys(rows)
}

func collectKeys(rows *sql.Rows) ([]keyRow, error) {
	defer rows.Close()
	var out []keyRow
	for rows.Next() {
		var k keyRow
		var state string
		if err := rows.Scan(&k.id, &k.keyID, &k.enc, &k.edition, &k.tenant, &state, &k.station, &k.machine); err != nil {
			return nil, err
		}
		k.state = keystation.KeyState(state)
		out = append(out, k)
	}
	return out, rows.Err()
}

// Reconcile counts a station's keys on the server.
func (s *Server) Reconcile(ctx context.Context, id int64) (keystation.Reconciliation, error) {
	r := keystation.Reconciliation{StationID: id}
	err := s.c.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM product_keys WHERE station_id = ? AND state = 'leased'),
		(SELECT COUNT(DISTINCT key_ref) FROM key_history WHERE station_id = ? AND reason = 'Consumed'),
		(SELECT COUNT(DISTINCT key_ref) FROM key_history WHERE station_id = ? AND reason = 'Bound'),
		(SELECT COUNT(DISTINCT key_ref) FROM key_history WHERE station_id = ? AND reason IN ('Defective', 'DefectiveReview')),
		(SELECT COUNT(*) FROM key_history WHERE station_id = ? AND reason IN ('Released', 'Reclaimed')),
		(SELECT COUNT(*) FROM reports WHERE station_id = ? AND outcome = 'conflict')`,
		id, id, id, id, id, id).Scan(&r.Leased, &r.Used, &r.Activated, &r.Failed, &r.Returned, &r.Conflicting)
	return r, err
}

// syncPrepared is a report with everything computed outside the write
// transaction.
type syncPrepared struct {
	r        keystation.SyncReport
	invalid  error
	ed       editionRow
	mk       machineKeys
	hw       sealedHardware
	keyHash  string
	keyPlain keystation.ProductKey
	prov     string
	// For a key from a USB key list: its value sealed under the report's
	// keyId, and its provenance as the key records it.
	keyEnc []byte
	source string
}

// Sync runs one round trip of the sync protocol for a station.
func (s *Server) Sync(ctx context.Context, st Station, req keystation.SyncRequest, ip string) (keystation.SyncResponse, error) {
	return s.SyncStream(ctx, st, ip, func(emit func([]keystation.SyncReport) error) (keystation.SyncRequest, error) {
		for i := 0; i < len(req.Reports); i += SyncChunk {
			if err := emit(req.Reports[i:min(len(req.Reports), i+SyncChunk)]); err != nil {
				return req, err
			}
		}
		return req, nil
	})
}

// SyncChunk is how many reports a sync prepares and looks up at a time.
const SyncChunk = 128

// MaxSyncRequestReports is the most reports one online sync request may
// carry. It is larger than keystation.MaxSyncReports (the limit of a request
// file carried on a USB stick): a station with a long backlog sends few
// large requests, each applied in few durable commits. A station that sends
// more than a server accepts is refused (400) and halves its batches.
const MaxSyncRequestReports = 10000

// SyncDecoder delivers a sync request: it passes the reports to emit in
// order, a few at a time, as it decodes them, then returns the rest of the
// request (its Reports are ignored), or why the request is refused. emit
// fails once the round trip has failed; the decoder then returns at once.
type SyncDecoder func(emit func([]keystation.SyncReport) error) (keystation.SyncRequest, error)

// syncYieldAfter is how many reports one write operation of a sync applies
// at least before it makes way for other writers waiting (the reports
// applied so far are then committed, and the sync goes on in the next
// operation): a long sync never holds the writer for much longer than
// that takes.
const syncYieldAfter = 512

// syncChunksAhead is how many chunks of decoded, prepared reports may wait
// for the writer: enough to keep it busy (tens of milliseconds of its
// work), few enough that a large request is never held decoded whole (a
// decoded report with its sealed hardware takes a few times the bytes of
// its JSON). The decoder then ends about when the writer reaches the last
// chunks, and only then may a long sync make way for other writers
// (syncYieldAfter): about as soon as when the decoder ran ahead of the
// writer, for the requests of a few thousand reports stations send.
const syncChunksAhead = 8

// syncChunk is a chunk of reports on their way from the decoder to the
// writer; ready is closed once they are prepared.
type syncChunk struct {
	prep  []syncPrepared
	ready chan struct{}
}

// SyncStream is Sync for a request still being decoded (see SyncDecoder):
// its reports are prepared (sealed, hashed) on other goroutines and applied,
// in order, while the rest is decoded, so that the writer starts before the
// request is decoded. A refused request (decode fails) changes nothing.
//
// A sync with many reports may be applied in several write operations
// (making way for other writers between them, once the request is decoded);
// should a later one fail, the reports of the earlier ones are applied, and
// the station, which gets an error, sends them again (duplicates).
func (s *Server) SyncStream(ctx context.Context, st Station, ip string, decode SyncDecoder) (keystation.SyncResponse, error) {
	now := s.now()
	a := Actor{Name: fmt.Sprintf("station:%d", st.ID), Tenant: st.TenantID, Station: st.ID, IP: ip}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The decoder and the preparation run alongside the writer.
	chunks := make(chan *syncChunk, syncChunksAhead)
	var (
		decoded  = make(chan struct{}) // closed once the decoder returned
		req      keystation.SyncRequest
		reqErr   error
		nReports int
	)
	workers := make(chan struct{}, max(1, runtime.GOMAXPROCS(0)))
	go func() {
		defer close(decoded)
		defer close(chunks)
		req, reqErr = decode(func(reports []keystation.SyncReport) error {
			if len(reports) == 0 {
				return nil
			}
			c := &syncChunk{prep: make([]syncPrepared, len(reports)), ready: make(chan struct{})}
			for i := range reports {
				c.prep[i].r = reports[i]
			}
			select {
			case workers <- struct{}{}:
			case <-ctx.Done():
				return ctx.Err()
			}
			go func() {
				defer func() { <-workers }()
				defer close(c.ready)
				for i := range c.prep {
					s.prepareSyncReport(ctx, st.ID, &c.prep[i])
				}
			}()
			select {
			case chunks <- c:
				nReports += len(reports)
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if reqErr == nil && ctx.Err() != nil {
			reqErr = ctx.Err()
		}
	}()
	// decodeDone reports whether the whole request is decoded and accepted:
	// only then may the sync commit part of its reports.
	decodeDone := func() bool {
		select {
		case <-decoded:
			return reqErr == nil
		default:
			return false
		}
	}

	decodeFailed := func() bool {
		select {
		case <-decoded:
			return reqErr != nil
		default:
			return false
		}
	}

	var (
		results []keystation.SyncResult
		head    syncHeadResult
		// What the sync knows is present (see syncBatch). An operation
		// that fails ends the sync, so what it learnt is never used.
		b = &syncBatch{uuids: map[string]bool{}, fps: map[string]bool{}, keyHash: map[string]bool{}, keyIDs: map[int64]bool{},
			modelRef: map[string]int64{}}
		pending *syncChunk // taken from chunks, not all applied yet
		pendAt  int        // how many of pending's reports are applied
	)
	for done := false; !done; {
		err := s.g.do(ctx, func(t *txn) error {
			// Absence is only known from lookups of this operation: other
			// writers may have run since the last one.
			b.nextKeyRef, b.nextMachineRef = 0, 0
			if pending != nil {
				if err := b.lookup(t, pending.prep[pendAt:]); err != nil {
					return err
				}
			}
			applied := 0
			for {
				if pending == nil {
					var c *syncChunk
					select {
					case c = <-chunks:
					case <-ctx.Done():
						return ctx.Err()
					}
					if c == nil {
						break // all reports applied
					}
					if decodeFailed() {
						return reqErr
					}
					select {
					case <-c.ready:
					case <-ctx.Done():
						return ctx.Err()
					}
					// The lookup sees nothing of a run not flushed yet,
					// but b already holds the run's rows as present.
					if err := b.lookup(t, c.prep); err != nil {
						return err
					}
					pending, pendAt = c, 0
				}
				for ; pendAt < len(pending.prep); pendAt++ {
					if applied >= syncYieldAfter && len(s.g.queue) > 0 && decodeDone() {
						// Commit these, make way, go on.
						return s.flushSyncRun(t, b, st, a)
					}
					res, err := s.applySyncReport(t, b, st, &pending.prep[pendAt], a)
					if err != nil {
						return err
					}
					results = append(results, res)
					applied++
				}
				pending = nil
			}
			<-decoded
			if reqErr != nil {
				return reqErr
			}
			if err := s.flushSyncRun(t, b, st, a); err != nil {
				return err
			}
			var err error
			if head, err = s.syncHead(t, st, &req, a, now, ip); err != nil {
				return err
			}
			done = true
			return nil
		})
		if err != nil {
			cancel()
			for range chunks {
			}
			<-decoded
			if reqErr != nil && !errors.Is(reqErr, context.Canceled) {
				err = reqErr
			}
			return keystation.SyncResponse{}, err
		}
	}
	resp := keystation.SyncResponse{ServerTime: now.UTC(), Results: results, Revoked: head.revoked, Levels: head.levels,
		Grants: make([]keystation.SyncGrant, 0, len(head.grants))}
	for _, k := range head.grants {
		pk, err := s.openKey(k.keyID, k.enc)
		if err != nil {
			return keystation.SyncResponse{}, err
		}
		resp.Grants = append(resp.Grants, keystation.SyncGrant{KeyID: k.keyID, Key: pk.Plain(), Edition: s.editionByID(k.edition).Slug})
	}
	var err error
	if resp.Editions, err = s.Editions(ctx); err != nil {
		return keystation.SyncResponse{}, err
	}
	if resp.Results == nil {
		resp.Results = []keystation.SyncResult{}
	}
	if resp.Revoked == nil {
		resp.Revoked = []keystation.KeyID{}
	}
	s.log.Info("station synced", "station", st.ID, "reports", nReports, "grants", len(resp.Grants),
		"revoked", len(resp.Revoked), "backlog", req.Backlog)
	return resp, nil
}

// syncHeadResult is what a sync answers beyond the reports' results.
type syncHeadResult struct {
	grants  []keyRow
	revoked []keystation.KeyID
	levels  map[string]int
}

// syncHead applies the rest of a sync request once its reports are applied:
// acknowledgements, releases, the keys held, grants up to the targets, and
// the station's record.
func (s *Server) syncHead(t *txn, st Station, req *keystation.SyncRequest, a Actor, now time.Time, ip string) (syncHeadResult, error) {
	var (
		grants  []keyRow
		revoked []keystation.KeyID
		levels  = map[string]int{}
	)
	err := s.syncHeadTx(t, st, req, a, now, ip, &grants, &revoked, levels)
	return syncHeadResult{grants: grants, revoked: revoked, levels: levels}, err
}

func (s *Server) syncHeadTx(t *txn, st Station, req *keystation.SyncRequest, a Actor, now time.Time, ip string,
	grantsOut *[]keyRow, revokedOut *[]keystation.KeyID, levels map[string]int) error {
	var (
		grants  []keyRow
		revoked []keystation.KeyID
	)
	defer func() { *grantsOut, *revokedOut = grants, revoked }()
	targets := map[int64]int{}
	var order []int64
	for slug, n := range req.Targets {
		ed, ok := s.edition(slug)
		if !ok || n <= 0 {
			continue
		}
		targets[ed.id] = min(n, keystation.MaxBufferTarget)
		order = append(order, ed.id)
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	stID := sql.NullInt64{Int64: st.ID, Valid: true}
	for _, id := range dedupe(append(append([]keystation.KeyID{}, req.Acks...), req.Holding...)) {
		if _, err := t.exec(`UPDATE product_keys SET lease_acked = 1 WHERE key_id = ? AND station_id = ? AND state = 'leased' AND lease_acked = 0`,
			int64(id), st.ID); err != nil {
			return err
		}
	}
	for _, id := range dedupe(req.Release) {
		k, err := scanKey(t.queryRow(qKeyByKeyID, int64(id)))
		if isNoRows(err) {
			continue
		}
		if err != nil {
			return err
		}
		if k.state != keystation.StateLeased || k.station != stID {
			continue
		}
		k.station = sql.NullInt64{}
		if err := s.transition(t, &k, keystation.StateAvailable, hist{reason: keystation.ReasonReleased, actor: a.Name, station: stID}); err != nil {
			return err
		}
	}
	for _, id := range dedupe(req.Holding) {
		k, err := scanKey(t.queryRow(qKeyByKeyID, int64(id)))
		if err != nil && !isNoRows(err) {
			return err
		}
		if isNoRows(err) || k.state != keystation.StateLeased || k.station != stID {
			revoked = append(revoked, id)
		}
	}
	granted := 0
	for _, edID := range order {
		var have int
		if err := t.queryRow(`SELECT COUNT(*) FROM product_keys WHERE station_id = ? AND state = 'leased' AND edition_id = ?`,
			st.ID, edID).Scan(&have); err != nil {
			return err
		}
		need := min(targets[edID]-have, maxGrantsPerSync-granted)
		if need <= 0 {
			continue
		}
		rows, err := t.query(qPickKeys, st.TenantID, edID, need)
		if err != nil {
			return err
		}
		keys, err := collectKeys(rows)
		if err != nil {
			return err
		}
		for _, k := range keys {
			k.station = stID
			if err := s.transition(t, &k, keystation.StateLeased, hist{reason: keystation.ReasonLeased, actor: a.Name}); err != nil {
				return err
			}
			if _, err := t.exec(`UPDATE product_keys SET lease_acked = 0 WHERE id = ?`, k.id); err != nil {
				return err
			}
			granted++
		}
	}
	rows, err := t.query(`SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
		WHERE station_id = ? AND state = 'leased' AND lease_acked = 0 ORDER BY id LIMIT ?`, st.ID, maxGrantsPerSync)
	if err != nil {
		return err
	}
	if grants, err = collectKeys(rows); err != nil {
		return err
	}
	lrows, err := t.query(`SELECT edition_id, COUNT(*) FROM product_keys WHERE station_id = ? AND state = 'leased' GROUP BY edition_id`, st.ID)
	if err != nil {
		return err
	}
	defer lrows.Close()
	for lrows.Next() {
		var ed int64
		var n int
		if err := lrows.Scan(&ed, &n); err != nil {
			return err
		}
		levels[s.editionByID(ed).Slug] = n
	}
	if err := lrows.Err(); err != nil {
		return err
	}
	lrows.Close()
	buf, _ := json.Marshal(levels)
	tg, _ := json.Marshal(req.Targets)
	var skew any
	if !req.StationTime.IsZero() {
		skew = now.Sub(req.StationTime).Milliseconds()
	}
	_, err = t.exec(`UPDATE stations SET last_sync_at = ?, last_ip = ?, clock_skew_ms = ?, backlog = ?, buffer = ?, targets = ? WHERE id = ?`,
		fmtTime(now), ip, skew, req.Backlog, string(buf), string(tg), st.ID)
	return err
}

const maxGrantsPerSync = 2000

const qPickKeys = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
	WHERE tenant_id = ? AND edition_id = ? AND state = 'available' ORDER BY id LIMIT ?`

func dedupe(ids []keystation.KeyID) []keystation.KeyID {
	seen := make(map[keystation.KeyID]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// prepareSyncReport computes, outside the write transaction, what applying
// report p.r needs.
func (s *Server) prepareSyncReport(ctx context.Context, station int64, p *syncPrepared) {
	r := p.r
	if err := r.Validate(); err != nil {
		p.invalid = err
		return
	}
	var err error
	if r.Edition != "" {
		var ok bool
		if p.ed, ok = s.edition(r.Edition); !ok {
			err = keystation.Errorf(keystation.EUNKNOWNEDITION, "no key pool %q", r.Edition)
		}
	} else {
		var ed keystation.Edition
		if ed, err = s.MatchEdition(ctx, r.OSVersion); err == nil {
			p.ed, _ = s.edition(ed.Slug)
		}
	}
	if err != nil {
		p.invalid = err
		return
	}
	p.mk = s.newMachineKeys(r.Machine, s.machineFingerprint(r.Machine))
	if r.Success {
		p.hw = s.sealHardware(r.Hardware, r.Machine, r.OSVersion)
	}
	if r.Key != "" {
		p.keyPlain, _ = keystation.ParseProductKey(r.Key)
		p.keyHash = s.box.Hash("key", p.keyPlain.Plain())
		b, _ := json.Marshal(r.Provenance)
		p.prov = string(b)
		p.keyEnc = s.box.SealString(p.keyPlain.Plain(), keyPurpose(r.KeyID))
		p.source = fmt.Sprintf("usb:%s sha256:%s station:%d", r.Provenance.File, r.Provenance.SHA256, station)
	}
}

// syncBatch is what one Sync operation knows about the rows its reports
// look up, read in a few batched queries at the start of the operation
// instead of one query per report. It only ever proves absence: a report
// UUID, machine fingerprint, key hash or keyId that was not in the database
// when the operation started, and that the operation has not inserted since,
// is not there (the operation runs alone on the writer, so nothing else
// inserts meanwhile). Anything present is still read with the per-report
// query, so later reports see what earlier ones of the same request did.
type syncBatch struct {
	uuids    map[string]bool // reports present (before, or applied by this operation)
	fps      map[string]bool // machines present
	keyHash  map[string]bool // product keys present, by hash
	keyIDs   map[int64]bool  // product keys present, by keyId
	modelRef map[string]int64
	// nextKeyRef is the row id the next product key this operation records
	// gets (0 until read): SQLite's own choice, max(id)+1, made known before
	// the insert so that a new machine can be inserted already bound to it.
	nextKeyRef int64
	// nextMachineRef is the row id the next machine of run gets (0 until
	// read, and again once run is flushed).
	nextMachineRef int64
	run            syncRun // reports buffered to be applied set-wise
}

// keyRef returns the row id of the next product key this operation inserts.
func (b *syncBatch) keyRef(t *txn) (int64, error) { return reserveRef(t, qMaxKeyRef, &b.nextKeyRef) }

// reserveRef returns *next and moves it on; a zero *next is first read as
// maxQuery's result plus one (SQLite's own choice of the next row id).
func reserveRef(t *txn, maxQuery string, next *int64) (int64, error) {
	if *next == 0 {
		if err := t.queryRow(maxQuery).Scan(next); err != nil {
			return 0, err
		}
		*next++
	}
	id := *next
	*next++
	return id, nil
}

const (
	qReportsByUUIDs  = `SELECT uuid FROM reports WHERE uuid IN (SELECT value FROM json_each(?))`
	qMachinesByFPs   = `SELECT fingerprint FROM machines WHERE fingerprint IN (SELECT value FROM json_each(?))`
	qKeysByHashes    = `SELECT key_hash FROM product_keys WHERE key_hash IN (SELECT value FROM json_each(?))`
	qKeysByKeyIDs    = `SELECT key_id FROM product_keys WHERE key_id IN (SELECT value FROM json_each(?))`
	qCountKeyID      = `SELECT COUNT(*) FROM product_keys WHERE key_id = ?`
	qInsertStationKy = `INSERT INTO product_keys (id, key_id, key_hash, key_enc, edition_id, tenant_id, state, station_id, machine_id,
		source, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qMaxKeyRef = `SELECT COALESCE(MAX(id), 0) FROM product_keys`
	// A new machine recorded with the key a report activated on it: the
	// machine insert and qBindMachine in one statement.
	qInsertBoundMachine = `INSERT INTO machines (tenant_id, fingerprint, sn_hash, identity_enc, last_ip, status, burnt, first_seen_at, last_seen_at, model_ref,
		hardware_enc, hardware_summary, os_info, key_ref, activated_at)
		VALUES (?, ?, ?, ?, ?, 'active', 0, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// lookup adds to b those of the UUIDs, machines and keys of prep that are
// present, in a few queries.
func (b *syncBatch) lookup(t *txn, prep []syncPrepared) error {
	var uuids, fps, hashes []string
	var ids []int64
	for i := range prep {
		p := &prep[i]
		if p.invalid != nil {
			continue
		}
		uuids = append(uuids, p.r.ID)
		fps = append(fps, p.mk.fp)
		if p.keyHash != "" {
			hashes = append(hashes, p.keyHash)
			ids = append(ids, int64(p.r.KeyID))
		}
	}
	if err := presentStrings(t, qReportsByUUIDs, uuids, b.uuids); err != nil {
		return err
	}
	if err := presentStrings(t, qMachinesByFPs, fps, b.fps); err != nil {
		return err
	}
	if err := presentStrings(t, qKeysByHashes, hashes, b.keyHash); err != nil {
		return err
	}
	if len(ids) > 0 {
		list, _ := json.Marshal(ids)
		rows, err := t.query(qKeysByKeyIDs, string(list))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				return err
			}
			b.keyIDs[id] = true
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// presentStrings adds to present those of values that query (one JSON array
// parameter) returns.
func presentStrings(t *txn, query string, values []string, present map[string]bool) error {
	if len(values) == 0 {
		return nil
	}
	list, _ := json.Marshal(values)
	rows, err := t.query(query, string(list))
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return err
		}
		present[v] = true
	}
	return rows.Err()
}

// syncMachine is ensureMachine for a sync report: a machine this operation
// knows to be absent is inserted without looking it up first, and a known
// machine is not touched here (touch says whether the caller must still
// record it as seen).
func (s *Server) syncMachine(t *txn, b *syncBatch, mk machineKeys, a Actor) (m machineRow, touch bool, err error) {
	return s.syncMachineBound(t, b, mk, a, nil, 0)
}

// syncMachineBound is syncMachine; a machine it inserts is recorded already
// bound to key row keyRef with hardware hw when hw is not nil.
func (s *Server) syncMachineBound(t *txn, b *syncBatch, mk machineKeys, a Actor, hw *sealedHardware, keyRef int64) (m machineRow, touch bool, err error) {
	if b.fps[mk.fp] {
		m, err = s.findMachine(t, mk.fp)
		if err != nil {
			return m, false, err
		}
		if m.tenant != a.tenant() {
			return m, false, keystation.Errorf(keystation.EFORBIDDEN, "this machine belongs to another tenant")
		}
		return m, true, nil
	}
	now := fmtTime(s.now())
	ref, err := s.syncModelRef(t, b, mk)
	if err != nil {
		return m, false, err
	}
	var res sql.Result
	if hw != nil {
		res, err = t.exec(qInsertBoundMachine, a.tenant(), mk.fp, mk.snHash, mk.identity, nullStr(a.IP), now, now, ref,
			nullBytes(hw.enc), nullStr(hw.summary), nullStr(hw.osInfo), keyRef, now)
	} else {
		res, err = t.exec(qInsertMachine, a.tenant(), mk.fp, mk.snHash, mk.identity, nullStr(a.IP), now, now, ref)
	}
	if err != nil {
		return m, false, err
	}
	id, _ := res.LastInsertId()
	b.fps[mk.fp] = true
	return machineRow{id: id, tenant: a.tenant(), status: "active", fresh: true}, false, nil
}

// syncModelRef returns the row id of a machine's model, recording the model
// if it is new.
func (s *Server) syncModelRef(t *txn, b *syncBatch, mk machineKeys) (int64, error) {
	if ref, ok := b.modelRef[mk.modelHash]; ok {
		return ref, nil
	}
	ref, err := s.modelRefHashed(t.ctx, txnQuerier{t}, mk.model, mk.modelHash)
	if err != nil {
		return 0, err
	}
	b.modelRef[mk.modelHash] = ref
	return ref, nil
}

// applySyncReport applies one station report exactly once, or keeps it as a
// conflict when the station had no right to the key (invariant 6).
func (s *Server) applySyncReport(t *txn, b *syncBatch, st Station, p *syncPrepared, a Actor) (res keystation.SyncResult, err error) {
	r := p.r
	res = keystation.SyncResult{ID: r.ID}
	if p.invalid != nil {
		res.Status, res.Code, res.Message = keystation.SyncRejected, keystation.ErrorCode(p.invalid), p.invalid.Error()
		return res, nil
	}
	if b.uuids[r.ID] {
		res.Status, res.Message = keystation.SyncDuplicate, "already applied"
		return res, nil
	}
	// Every way on from here either records the report under its UUID or
	// fails the whole operation.
	b.uuids[r.ID] = true
	now := fmtTime(s.now())
	// The common case of a station that worked from a USB key list: a new
	// machine activated with a key the server has never seen.
	usbList := r.Success && p.keyHash != "" && !b.fps[p.mk.fp] && !b.keyHash[p.keyHash]
	if usbList && b.runnable(p) {
		res.Status = keystation.SyncApplied
		return res, s.bufferSyncReport(t, b, st, p, a, now)
	}
	// Anything else runs its statements one by one, after the run
	// buffered so far.
	if err := s.flushSyncRun(t, b, st, a); err != nil {
		return res, err
	}
	if usbList {
		// What the general path below does (insert the machine, record
		// the key, bind it to the machine) in one insert per row.
		ref, err := b.keyRef(t)
		if err != nil {
			return res, err
		}
		m, _, err := s.syncMachineBound(t, b, p.mk, a, &p.hw, ref)
		if err != nil {
			return res, err
		}
		k, err := s.insertStationKey(t, b, p, m, st, a, keystation.StateActivated, ref)
		if err != nil {
			return res, err
		}
		res.Status = keystation.SyncApplied
		return res, s.insertSyncReport(t, p, k, m.id, a, "applied", "", "", "", now)
	}
	m, touch, err := s.syncMachine(t, b, p.mk, a)
	if err != nil {
		if keystation.ErrorCode(err) == keystation.EINTERNAL {
			return res, err
		}
		return s.conflict(t, p, keyRow{}, 0, a, keystation.ErrorMessage(err), now)
	}
	if touch {
		// A known machine is seen now; binding a key to it below records
		// that too, so it is touched here only when it is not bound.
		defer func() {
			if touch && err == nil {
				_, err = t.exec(qTouchMachine, now, nullStr(a.IP), m.id)
			}
		}()
	}
	return s.applySyncKey(t, b, st, p, a, m, now, &touch)
}

// applySyncKey is applySyncReport once the report is new and its machine
// known; *touch is cleared when the machine is bound (which touches it).
func (s *Server) applySyncKey(t *txn, b *syncBatch, st Station, p *syncPrepared, a Actor, m machineRow, now string, touch *bool) (keystation.SyncResult, error) {
	r := p.r
	res := keystation.SyncResult{ID: r.ID}
	if m.status == "blocked" {
		return s.conflict(t, p, keyRow{}, m.id, a, "a supervisor blocked this machine", now)
	}
	stID := sql.NullInt64{Int64: st.ID, Valid: true}
	var (
		k   keyRow
		err error
	)
	if p.keyHash != "" {
		// A key from a list on a USB stick: known by its value, not its id.
		err = sql.ErrNoRows
		if b.keyHash[p.keyHash] {
			k, err = scanKey(t.queryRow(qKeyByHash, p.keyHash))
		}
		if isNoRows(err) {
			// Recorded straight in the state this report leaves it in, with
			// the history of both steps.
			to := keystation.StateAssigned
			if r.Success {
				to = keystation.StateActivated
			}
			if k, err = s.insertStationKey(t, b, p, m, st, a, to, 0); err != nil {
				return res, err
			}
			if r.Success {
				return s.bindSync(t, p, k, m, a, now, touch)
			}
		} else if err != nil {
			return res, err
		}
	} else {
		k, err = scanKey(t.queryRow(qKeyByKeyID, int64(r.KeyID)))
		if isNoRows(err) {
			return s.conflict(t, p, keyRow{}, m.id, a, "the server does not know this keyId", now)
		}
		if err != nil {
			return res, err
		}
	}
	mine := k.station == stID
	onThisMachine := k.machine.Valid && k.machine.Int64 == m.id
	switch {
	case k.state == keystation.StateLeased && mine:
	case k.state == keystation.StateAssigned && onThisMachine && (mine || p.keyHash != ""):
	case k.state == keystation.StateAvailable && p.keyHash != "":
	case k.state == keystation.StateActivated && onThisMachine && r.Success,
		k.state == keystation.StateFailed && onThisMachine && !r.Success:
		res.Status, res.Message = keystation.SyncDuplicate, "this machine's result for this key was already recorded"
		return res, s.insertSyncReport(t, p, k, m.id, a, "duplicate", "", "", "", now)
	default:
		return s.conflict(t, p, k, m.id, a, conflictReason(k, stID, onThisMachine), now)
	}
	if k.state != keystation.StateAssigned {
		k.machine = sql.NullInt64{Int64: m.id, Valid: true}
		k.station = stID
		if err := s.transition(t, &k, keystation.StateAssigned, hist{reason: keystation.ReasonConsumed, actor: a.Name, report: r.ID}); err != nil {
			return res, err
		}
	}
	if r.Success {
		if err := s.transition(t, &k, keystation.StateActivated, boundHist(p, a)); err != nil {
			return res, err
		}
		return s.bindSync(t, p, k, m, a, now, touch)
	}
	f := keystation.ClassifyFailure(r.Code, r.Message)
	h := hist{actor: a.Name, report: r.ID, message: r.Message, code: r.Code, hres: f.HRESULT}
	if f.Class == keystation.FaultPC {
		h.reason = keystation.ReasonPCFault
		if err := s.transition(t, &k, keystation.StateFailed, h); err != nil {
			return res, err
		}
		k.machine = sql.NullInt64{}
		if err := s.transition(t, &k, keystation.StateAvailable, hist{reason: keystation.ReasonReturned, actor: a.Name, report: r.ID}); err != nil {
			return res, err
		}
		k.machine = sql.NullInt64{Int64: m.id, Valid: true}
		if err := s.transition(t, &k, keystation.StateAssigned, hist{reason: keystation.ReasonConsumed, actor: a.Name, report: r.ID}); err != nil {
			return res, err
		}
	} else {
		h.reason, h.review = keystation.ReasonDefective, f.Review
		if f.Review {
			h.reason = keystation.ReasonReview
		}
		if err := s.transition(t, &k, keystation.StateFailed, h); err != nil {
			return res, err
		}
		if _, err := t.exec(qBurn, m.id); err != nil {
			return res, err
		}
	}
	res.Status = keystation.SyncApplied
	return res, s.insertSyncReport(t, p, k, m.id, a, "applied", string(f.Class), f.HRESULT, "", now)
}

func boundHist(p *syncPrepared, a Actor) hist {
	return hist{reason: keystation.ReasonBound, actor: a.Name, report: p.r.ID, message: p.r.Message, code: p.r.Code}
}

// bindSync binds an activated key to its machine and records the report.
func (s *Server) bindSync(t *txn, p *syncPrepared, k keyRow, m machineRow, a Actor, now string, touch *bool) (keystation.SyncResult, error) {
	res := keystation.SyncResult{ID: p.r.ID}
	if _, err := t.exec(qBindMachine, nullBytes(p.hw.enc), nullStr(p.hw.summary), nullStr(p.hw.osInfo), k.id, now, now, nullStr(a.IP), m.id); err != nil {
		return res, err
	}
	*touch = false
	res.Status = keystation.SyncApplied
	return res, s.insertSyncReport(t, p, k, m.id, a, "applied", "", "", "", now)
}

func conflictReason(k keyRow, st sql.NullInt64, onThisMachine bool) string {
	switch {
	case k.state == keystation.StateRevoked:
		return "the key was revoked by a supervisor"
	case k.state == keystation.StateLeased:
		return "the key is leased to another station"
	case k.state == keystation.StateAvailable:
		return "the key is no longer leased to this station (reclaimed or released)"
	case !onThisMachine && (k.state == keystation.StateAssigned || k.state == keystation.StateActivated || k.state == keystation.StateFailed):
		return "the key is bound to another machine"
	case k.station != st:
		return "the key was used through another station or online"
	}
	return fmt.Sprintf("the key is %s on this machine", k.state)
}

const qKeyByHash = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys WHERE key_hash = ?`

// conflict keeps a report that may not be applied, flagged for a supervisor.
func (s *Server) conflict(t *txn, p *syncPrepared, k keyRow, machine int64, a Actor, reason, now string) (keystation.SyncResult, error) {
	s.log.Warn("sync conflict", "station", a.Station, "report", p.r.ID, "keyId", p.r.KeyID, "reason", reason)
	err := s.insertSyncReport(t, p, k, machine, a, "conflict", "", "", reason, now)
	return keystation.SyncResult{ID: p.r.ID, Status: keystation.SyncConflict, Code: keystation.ECONFLICT, Message: reason}, err
}

// insertStationKey records a key the server did not issue (from a key list on
// a USB stick), assigned to the machine that used it, with its provenance.
// With to = activated it is recorded activated at once, and its history
// holds both steps (consumed, then bound), as if it had been inserted
// assigned and then moved on. ref is the row id reserved for it with
// syncBatch.keyRef, or 0 to take the next one.
func (s *Server) insertStationKey(t *txn, b *syncBatch, p *syncPrepared, m machineRow, st Station, a Actor, to keystation.KeyState, ref int64) (keyRow, error) {
	if to != keystation.StateAssigned {
		if err := keystation.CheckTransition(keystation.StateAssigned, to); err != nil {
			return keyRow{}, err
		}
	}
	id := p.r.KeyID
	taken := func(id keystation.KeyID) (bool, error) {
		if !b.keyIDs[int64(id)] {
			return false, nil
		}
		var n int
		err := t.queryRow(qCountKeyID, int64(id)).Scan(&n)
		return n > 0, err
	}
	for {
		used, err := taken(id)
		if err != nil {
			return keyRow{}, err
		}
		if !used {
			break
		}
		if id, err = randomKeyID(); err != nil {
			return keyRow{}, err
		}
		// An id drawn at random was not looked up in the batch: look it up.
		b.keyIDs[int64(id)] = true
	}
	if ref == 0 {
		var err error
		if ref, err = b.keyRef(t); err != nil {
			return keyRow{}, err
		}
	}
	now := fmtTime(s.now())
	source, enc := p.source, p.keyEnc
	if id != p.r.KeyID || source == "" {
		source = fmt.Sprintf("usb:%s sha256:%s station:%d", p.r.Provenance.File, p.r.Provenance.SHA256, st.ID)
		enc = s.box.SealString(p.keyPlain.Plain(), keyPurpose(id))
	}
	if _, err := t.exec(qInsertStationKy, ref, int64(id), p.keyHash, enc, p.ed.id, st.TenantID, string(to), st.ID, m.id, source, now, now); err != nil {
		return keyRow{}, err
	}
	b.keyIDs[int64(id)] = true
	b.keyHash[p.keyHash] = true
	k := keyRow{id: ref, keyID: id, edition: p.ed.id, tenant: st.TenantID, state: to,
		station: sql.NullInt64{Int64: st.ID, Valid: true}, machine: sql.NullInt64{Int64: m.id, Valid: true}}
	if _, err := t.exec(qInsertHistory, ref, "", string(keystation.StateAssigned), keystation.ReasonConsumed, a.Name, k.machine, k.station,
		p.r.ID, "recorded from "+source, nil, nil, 0, now); err != nil {
		return keyRow{}, err
	}
	if to != keystation.StateAssigned {
		h := boundHist(p, a)
		if _, err := t.exec(qInsertHistory, ref, string(keystation.StateAssigned), string(to), h.reason, h.actor, k.machine, k.station,
			nullStr(h.report), nullStr(h.message), nullStr(h.code), nullStr(h.hres), boolInt(h.review), now); err != nil {
			return keyRow{}, err
		}
	}
	return k, nil
}

func (s *Server) insertSyncReport(t *txn, p *syncPrepared, k keyRow, machine int64, a Actor, outcome, class, hres, conflict, now string) error {
	r := p.r
	var keyRef, mach any
	if k.id != 0 {
		keyRef = k.id
	}
	if machine != 0 {
		mach = machine
	}
	_, err := t.exec(qInsertSyncReport, r.ID, keyRef, int64(r.KeyID), mach, a.Station, r.Operator, p.ed.Slug, r.OSVersion,
		boolInt(r.Success), r.Message, r.Code, class, hres, outcome, boolInt(r.Simulated), fmtTime(r.At), now, conflict, p.prov)
	if err != nil {
		return fmt.Errorf("insert report: %w", err)
	}
	return nil
}

const qInsertSyncReport = `INSERT INTO reports (uuid, key_ref, key_id, machine_id, station_id, operator, edition, os_version,
	success, result_message, result_code, fault_class, hresult, outcome, simulated, reported_at, received_at, conflict_reason, provenance)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

func nullBytes(b []byte) any {
	if b == nil {
		return nil
	}
	return b
}

// SyncFile applies a station's USB request file and returns the response
// file to carry back: the same round trip as Sync, for air-gapped stations.
func (s *Server) SyncFile(ctx context.Context, file []byte, source string) ([]byte, error) {
	format, id, err := syncfile.Peek(file)
	if err != nil {
		return nil, err
	}
	if format != syncfile.RequestFormat {
		return nil, keystation.Errorf(keystation.EINVALID, "this is a response file; bring the station's request file")
	}
	st, k, err := s.StationFileKey(ctx, id)
	if err != nil {
		return nil, err
	}
	req, err := syncfile.ReadRequest(file, k)
	if err != nil {
		return nil, err
	}
	if len(req.Reports) > keystation.MaxSyncReports {
		return nil, keystation.Errorf(keystation.EINVALID, "the request file carries more than %d reports", keystation.MaxSyncReports)
	}
	resp, err := s.Sync(ctx, st, req, source)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := syncfile.WriteResponse(&out, k, st.ID, file, resp); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
