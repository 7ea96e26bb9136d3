package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"keystation"
)

// SyncEndpoint returns where and how the station syncs: the server's URL and
// the station's credential. EUNAUTHORIZED when it has not enrolled.
func (s *StationDB) SyncEndpoint(ctx context.Context) (serverURL, credential string, err error) {
	e, err := s.Enrolment(ctx)
	if err != nil {
		return "", "", err
	}
	if !e.Enrolled() {
		return "", "", keystation.Errorf(keystation.EUNAUTHORIZED, "this station is not enrolled: run station enrol --server URL --token TOKEN")
	}
	return e.ServerURL, e.Credential, nil
}

// NextSync builds the next sync request: the oldest waiting reports, in
// order, at most maxReports of them and (beyond the first) at most maxBytes
// of report JSON; the unused leased keys held; the grants to acknowledge; the
// buffer targets; and the backlog beyond this batch.
func (s *StationDB) NextSync(ctx context.Context, maxReports, maxBytes int) (keystation.SyncRequest, error) {
	req, _, _, err := s.nextSync(ctx, 0, maxReports, maxBytes, false)
	return req, err
}

// NextSyncRaw is NextSync for the reports after outbox position after (0:
// from the oldest waiting), with the reports as they are stored: bodies
// holds each report's JSON, ready to send, and req.Reports only their ID
// and KeyID (for ApplySync). last is the outbox position of the last report
// (after when there is none), where the next request may begin while this
// one is on its way.
func (s *StationDB) NextSyncRaw(ctx context.Context, after int64, maxReports, maxBytes int) (req keystation.SyncRequest, bodies []json.RawMessage, last int64, err error) {
	return s.nextSync(ctx, after, maxReports, maxBytes, true)
}

func (s *StationDB) nextSync(ctx context.Context, after int64, maxReports, maxBytes int, raw bool) (keystation.SyncRequest, []json.RawMessage, int64, error) {
	if maxReports <= 0 || maxReports > MaxSyncRequestReports {
		maxReports = MaxSyncRequestReports
	}
	req := keystation.SyncRequest{StationTime: s.now().UTC(), Reports: []keystation.SyncReport{}, Holding: []keystation.KeyID{}, Acks: []keystation.KeyID{}}
	var bodies []json.RawMessage
	last := after
	// One read transaction: a consistent snapshot.
	tx, err := s.c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return req, nil, last, err
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT seq, uuid, key_id, body_enc, body_size FROM outbox
		WHERE sent_at IS NULL AND result_status <> 'rejected' AND seq > ? ORDER BY seq LIMIT ?`, after, maxReports)
	if err != nil {
		return req, nil, last, err
	}
	size := 0
	for rows.Next() {
		var (
			seq, keyID int64
			id         string
			body       []byte
			n          int
		)
		if err := rows.Scan(&seq, &id, &keyID, &body, &n); err != nil {
			rows.Close()
			return req, nil, last, err
		}
		if len(req.Reports) > 0 && maxBytes > 0 && size+n > maxBytes {
			break
		}
		if raw {
			b, err := s.box.Open(body, outboxPurpose(id))
			if err != nil {
				rows.Close()
				return req, nil, last, fmt.Errorf("report %s: %w", id, err)
			}
			bodies = append(bodies, b)
			req.Reports = append(req.Reports, keystation.SyncReport{Report: keystation.Report{ID: id, KeyID: keystation.KeyID(keyID)}})
		} else {
			sr, err := s.openReport(id, body)
			if err != nil {
				rows.Close()
				return req, nil, last, err
			}
			req.Reports = append(req.Reports, sr)
		}
		size += n
		last = seq
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return req, nil, last, err
	}
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND result_status <> 'rejected' AND seq > ?`,
		after).Scan(&pending); err != nil {
		return req, nil, last, err
	}
	req.Backlog = max(0, pending-len(req.Reports))
	if req.Holding, err = keyIDs(ctx, tx, `SELECT key_id FROM keys WHERE source = 'lease' AND state = 'available' ORDER BY id`); err != nil {
		return req, nil, last, err
	}
	if req.Acks, err = keyIDs(ctx, tx, `SELECT key_id FROM keys WHERE acked = 0 ORDER BY id`); err != nil {
		return req, nil, last, err
	}
	// A key granted again after this station dropped it (revoked) or gave it
	// back is never taken back (a stale answer, e.g. an old response file,
	// must not bring back a revoked key): it is released, so the server does
	// not count it as leased here.
	if req.Release, err = keyIDs(ctx, tx, `SELECT key_id FROM keys
		WHERE source = 'lease' AND state IN ('revoked', 'released') AND acked = 0 ORDER BY id`); err != nil {
		return req, nil, last, err
	}
	m := map[string]string{}
	for _, n := range []string{metaEditions, metaTargets} {
		if m[n], err = getMeta(ctx, tx, n); err != nil {
			return req, nil, last, err
		}
	}
	t, err := targetsOf(m)
	if err != nil {
		return req, nil, last, err
	}
	req.Targets = make(map[string]int, len(t))
	for ed, v := range t {
		req.Targets[ed] = v.Target
	}
	return req, bodies, last, nil
}

func keyIDs(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]keystation.KeyID, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []keystation.KeyID{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, keystation.KeyID(id))
	}
	return out, rows.Err()
}

// syncApplied counts what ApplySync did, for the event log.
type syncApplied struct {
	Delivered  int `json:"delivered"` // reports applied, duplicate or conflicting: done
	Conflicts  int `json:"conflicts"`
	Rejected   int `json:"rejected"`
	Unanswered int `json:"unanswered"` // reports the server gave no result for
	Granted    int `json:"granted"`    // new keys
	Regranted  int `json:"regranted"`  // grants of keys already held (acknowledged again)
	Revoked    int `json:"revoked"`
}

// ApplySync records the server's answer to req in one transaction: report
// results (applied, duplicate and conflict are delivered; rejected ones stay
// in the outbox, needing attention), acknowledgements, new grants (stored,
// to be acknowledged in the next request; grants of keys already known are
// only acknowledged again), revoked keys (never used again, invariant 6),
// the server's editions, levels and the clock skew.
func (s *StationDB) ApplySync(ctx context.Context, req *keystation.SyncRequest, resp *keystation.SyncResponse, skew time.Duration) error {
	var out syncApplied
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.now()
	ts := fmtTime(now)

	results := make(map[string]keystation.SyncResult, len(resp.Results))
	for _, r := range resp.Results {
		results[r.ID] = r
	}
	// Reports delivered with the same answer are recorded together, in one
	// statement per answer (usually one: "applied").
	type answer struct{ status, code, message string }
	var (
		delivered = map[answer][]string{}
		order     []answer
	)
	upd, err := tx.PrepareContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?,
		sent_at = ?, result_status = ?, result_code = ?, result_message = ? WHERE uuid = ? AND sent_at IS NULL`)
	if err != nil {
		return err
	}
	defer upd.Close()
	for _, rep := range req.Reports {
		r, ok := results[rep.ID]
		switch {
		case !ok:
			out.Unanswered++
			if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? WHERE uuid = ? AND sent_at IS NULL`,
				ts, "the server gave no result for this report", rep.ID); err != nil {
				return err
			}
			continue
		case r.Status == keystation.SyncApplied || r.Status == keystation.SyncDuplicate:
			out.Delivered++
			a := answer{r.Status, r.Code, r.Message}
			if _, seen := delivered[a]; !seen {
				order = append(order, a)
			}
			delivered[a] = append(delivered[a], rep.ID)
			continue
		case r.Status == keystation.SyncConflict:
			out.Delivered++
			out.Conflicts++
			if err := logEvent(ctx, tx, now, "sync.conflict", fmt.Sprintf("report %s (key %s) was kept by the server as a conflict: %s", rep.ID, rep.KeyID, r.Message),
				map[string]any{"report": rep.ID, "keyId": rep.KeyID.String(), "code": r.Code}); err != nil {
				return err
			}
			if _, err := upd.ExecContext(ctx, ts, nil, ts, r.Status, r.Code, r.Message, rep.ID); err != nil {
				return err
			}
		default: // rejected, or a status this station does not know
			out.Rejected++
			if err := logEvent(ctx, tx, now, "sync.rejected", fmt.Sprintf("report %s (key %s) was rejected by the server and needs attention: %s", rep.ID, rep.KeyID, r.Message),
				map[string]any{"report": rep.ID, "keyId": rep.KeyID.String(), "code": r.Code}); err != nil {
				return err
			}
			if _, err := upd.ExecContext(ctx, ts, r.Message, nil, keystation.SyncRejected, r.Code, r.Message, rep.ID); err != nil {
				return err
			}
		}
	}
	for _, a := range order {
		ids, _ := json.Marshal(delivered[a])
		if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = NULL,
			sent_at = ?, result_status = ?, result_code = ?, result_message = ?
			WHERE uuid IN (SELECT value FROM json_each(?)) AND sent_at IS NULL`, ts, ts, a.status, a.code, a.message, string(ids)); err != nil {
			return err
		}
	}
	// The server has our acknowledgements: stop sending them. A grant the
	// server re-sends below is acknowledged again.
	for _, id := range req.Acks {
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET acked = 1 WHERE key_id = ? AND acked = 0`, int64(id)); err != nil {
			return err
		}
	}
	revoked := make(map[keystation.KeyID]bool, len(resp.Revoked))
	for _, id := range resp.Revoked {
		revoked[id] = true
	}
	if len(resp.Grants) > 0 {
		ins, err := tx.PrepareContext(ctx, `INSERT INTO keys (key_id, key_hash, key_enc, edition, source, state, acked, received_at, updated_at)
			VALUES (?, ?, ?, ?, 'lease', 'available', 0, ?, ?)`)
		if err != nil {
			return err
		}
		defer ins.Close()
		for _, g := range resp.Grants {
			pk, err := keystation.ParseProductKey(g.Key)
			if err != nil || !g.KeyID.Valid() {
				continue // the decoder refuses these; never store a bad key
			}
			hash := s.box.Hash("key", pk.Plain())
			var ref int64
			var have int64
			err = tx.QueryRowContext(ctx, `SELECT id, key_id FROM keys WHERE key_id = ? OR key_hash = ? LIMIT 1`, int64(g.KeyID), hash).Scan(&ref, &have)
			switch {
			case err == nil && keystation.KeyID(have) == g.KeyID:
				out.Regranted++
				if _, err := tx.ExecContext(ctx, `UPDATE keys SET acked = 0 WHERE id = ?`, ref); err != nil {
					return err
				}
				continue
			case err == nil:
				// Same key under another keyId (e.g. it came from a USB list):
				// hold it once; acknowledge the grant so it is not re-sent.
				if err := logEvent(ctx, tx, now, "sync.grant-duplicate", fmt.Sprintf("the server granted keyId %s, a key this station holds as keyId %s", g.KeyID, keystation.KeyID(have)),
					map[string]any{"keyId": g.KeyID.String()}); err != nil {
					return err
				}
				continue
			case !isNoRows(err):
				return err
			}
			if revoked[g.KeyID] {
				continue
			}
			if _, err := ins.ExecContext(ctx, int64(g.KeyID), hash, s.box.SealString(pk.Plain(), stationKeyPurpose(g.KeyID)), g.Edition, ts, ts); err != nil {
				return err
			}
			out.Granted++
		}
	}
	for _, id := range resp.Revoked {
		var state, source string
		err := tx.QueryRowContext(ctx, `SELECT state, source FROM keys WHERE key_id = ?`, int64(id)).Scan(&state, &source)
		if isNoRows(err) {
			continue
		}
		if err != nil {
			return err
		}
		switch state {
		case LocalAvailable, LocalAssigned:
			if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = 'revoked', acked = 1, updated_at = ? WHERE key_id = ?`, ts, int64(id)); err != nil {
				return err
			}
			out.Revoked++
			if err := logEvent(ctx, tx, now, "key.revoked", fmt.Sprintf("key %s is no longer this station's (revoked or reclaimed): it will never be used", id),
				map[string]any{"keyId": id.String(), "was": state}); err != nil {
				return err
			}
		case LocalActivated, LocalFailed:
			if err := logEvent(ctx, tx, now, "key.revoked-after-use", fmt.Sprintf("key %s was revoked after this station used it; the server flags its report", id),
				map[string]any{"keyId": id.String(), "was": state}); err != nil {
				return err
			}
		}
	}
	if len(resp.Editions) > 0 {
		b, _ := json.Marshal(resp.Editions)
		if err := setMeta(ctx, tx, metaEditions, string(b)); err != nil {
			return err
		}
	}
	if resp.Levels != nil {
		b, _ := json.Marshal(resp.Levels)
		if err := setMeta(ctx, tx, metaLevels, string(b)); err != nil {
			return err
		}
	}
	for _, kv := range [][2]string{{metaLastSync, ts}, {metaLastTry, ts}, {metaLastError, ""}, {metaSkew, strconv.FormatInt(skew.Milliseconds(), 10)}} {
		if err := setMeta(ctx, tx, kv[0], kv[1]); err != nil {
			return err
		}
	}
	if out.Granted+out.Revoked+out.Conflicts+out.Rejected > 0 || len(req.Reports) > 0 {
		if err := logEvent(ctx, tx, now, "sync", fmt.Sprintf("synced: %d reports delivered, %d conflicts, %d rejected, %d keys granted, %d revoked",
			out.Delivered, out.Conflicts, out.Rejected, out.Granted, out.Revoked), nil); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// SyncFailed records a failed round trip: each report of the batch counts an
// attempt with the error.
func (s *StationDB) SyncFailed(ctx context.Context, ids []string, message string) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ts := fmtTime(s.now())
	if len(ids) > 0 {
		st, err := tx.PrepareContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ? WHERE uuid = ? AND sent_at IS NULL`)
		if err != nil {
			return err
		}
		defer st.Close()
		for _, id := range ids {
			if _, err := st.ExecContext(ctx, ts, message, id); err != nil {
				return err
			}
		}
	}
	if err := setMeta(ctx, tx, metaLastTry, ts); err != nil {
		return err
	}
	if err := setMeta(ctx, tx, metaLastError, message); err != nil {
		return err
	}
	return tx.Commit()
}

// RejectLocally marks a report the server refused as a whole (for example
// too large) as needing attention, so that it no longer blocks the others.
func (s *StationDB) RejectLocally(ctx context.Context, id, code, message string) error {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	now := s.now()
	if _, err := tx.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, last_attempt_at = ?, last_error = ?, result_status = 'rejected',
		result_code = ?, result_message = ? WHERE uuid = ? AND sent_at IS NULL`, fmtTime(now), message, code, message, id); err != nil {
		return err
	}
	if err := logEvent(ctx, tx, now, "sync.rejected", fmt.Sprintf("report %s was refused by the server and needs attention: %s", id, message),
		map[string]any{"report": id, "code": code}); err != nil {
		return err
	}
	return tx.Commit()
}

// RetryRejected puts reports that needed attention back in the queue (after
// a fix on the server side, for example).
func (s *StationDB) RetryRejected(ctx context.Context) (int, error) {
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	r, err := tx.ExecContext(ctx, `UPDATE outbox SET result_status = '', result_code = '', result_message = '' WHERE sent_at IS NULL AND result_status = 'rejected'`)
	if err != nil {
		return 0, err
	}
	n, _ := r.RowsAffected()
	if err := logEvent(ctx, tx, s.now(), "sync.retry", fmt.Sprintf("%d rejected reports queued again", n), nil); err != nil {
		return 0, err
	}
	return int(n), tx.Commit()
}

// BufferLevel is the station's stock of keys of one edition.
type BufferLevel struct {
	Available int  `json:"available"` // keys left (leased + USB)
	Leased    int  `json:"leased"`    // of which leased from the server
	USB       int  `json:"usb"`       // of which from key lists
	Assigned  int  `json:"assigned"`  // held by PCs that are not activated yet
	Target    int  `json:"target"`
	LowWater  int  `json:"lowWater"`
	Low       bool `json:"low"` // below the low-water mark
}

// StationStatus is a snapshot of the station's local state.
type StationStatus struct {
	Enrolment     Enrolment              `json:"enrolment"`
	LastSync      time.Time              `json:"lastSync"`
	LastAttempt   time.Time              `json:"lastAttempt"`
	LastSyncError string                 `json:"lastSyncError,omitempty"`
	ClockSkew     time.Duration          `json:"clockSkew"`
	Outbox        int                    `json:"outbox"`    // reports waiting for the server
	Attention     int                    `json:"attention"` // reports rejected, needing attention
	Conflicts     int                    `json:"conflicts"` // reports the server flagged
	Delivered     int                    `json:"delivered"`
	Buffer        map[string]BufferLevel `json:"buffer"`
	Editions      []keystation.Edition   `json:"editions"`
}

// Status returns a snapshot of the station's local state.
func (s *StationDB) Status(ctx context.Context) (StationStatus, error) {
	var st StationStatus
	tx, err := s.c.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, err
	}
	defer tx.Rollback()
	m := map[string]string{}
	rows, err := tx.QueryContext(ctx, `SELECT name, value FROM meta`)
	if err != nil {
		return st, err
	}
	for rows.Next() {
		var n, v string
		if err := rows.Scan(&n, &v); err != nil {
			rows.Close()
			return st, err
		}
		m[n] = v
	}
	rows.Close()
	if st.Enrolment, err = s.enrolment(m); err != nil {
		return st, err
	}
	st.LastSync, st.LastAttempt, st.LastSyncError = parseTime(m[metaLastSync]), parseTime(m[metaLastTry]), m[metaLastError]
	if ms, err := strconv.ParseInt(m[metaSkew], 10, 64); err == nil {
		st.ClockSkew = time.Duration(ms) * time.Millisecond
	}
	if st.Editions, err = decodeEditions(m[metaEditions]); err != nil {
		return st, err
	}
	targets, err := targetsOf(m)
	if err != nil {
		return st, err
	}
	if err := tx.QueryRowContext(ctx, `SELECT
		COALESCE(SUM(CASE WHEN sent_at IS NULL AND result_status <> 'rejected' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN sent_at IS NULL AND result_status = 'rejected' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN result_status = 'conflict' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM outbox`).Scan(&st.Outbox, &st.Attention, &st.Conflicts, &st.Delivered); err != nil {
		return st, err
	}
	st.Buffer = map[string]BufferLevel{}
	for ed, t := range targets {
		st.Buffer[ed] = BufferLevel{Target: t.Target, LowWater: t.LowWater}
	}
	krows, err := tx.QueryContext(ctx, `SELECT edition, source, state, COUNT(*) FROM keys WHERE state IN ('available', 'assigned') GROUP BY edition, source, state`)
	if err != nil {
		return st, err
	}
	defer krows.Close()
	for krows.Next() {
		var ed, src, state string
		var n int
		if err := krows.Scan(&ed, &src, &state, &n); err != nil {
			return st, err
		}
		b := st.Buffer[ed]
		if state == LocalAssigned {
			b.Assigned += n
		} else {
			b.Available += n
			if src == SourceUSB {
				b.USB += n
			} else {
				b.Leased += n
			}
		}
		st.Buffer[ed] = b
	}
	if err := krows.Err(); err != nil {
		return st, err
	}
	for ed, b := range st.Buffer {
		b.Low = b.Available < b.LowWater || (b.Target > 0 && b.Available == 0)
		st.Buffer[ed] = b
	}
	return st, nil
}

// Sync states of a report in the history.
const (
	SyncWaiting  = "waiting"  // in the outbox
	SyncSynced   = "synced"   // applied (or found applied) by the server
	SyncConflict = "conflict" // kept by the server, flagged for a supervisor
	SyncRejected = "rejected" // refused; needs attention
)

// ActivationRecord is one activation attempt of this station.
type ActivationRecord struct {
	ReportID  string           `json:"reportId"`
	At        time.Time        `json:"at"`
	KeyID     keystation.KeyID `json:"keyId"`
	Key       string           `json:"key"` // masked
	Edition   string           `json:"edition"`
	Source    string           `json:"source"`
	SN        string           `json:"sn"`
	Model     string           `json:"model"`
	Outcome   AttemptOutcome   `json:"outcome"`
	Code      string           `json:"code,omitempty"`
	Message   string           `json:"message"`
	Simulated bool             `json:"simulated"`
	Sync      string           `json:"sync"`
	SyncNote  string           `json:"syncNote,omitempty"`
	Attempts  int              `json:"attempts"`
}

// HistoryFilter selects activation records.
type HistoryFilter struct {
	Limit   int            // newest first; 100 when <= 0
	Outcome AttemptOutcome // "" for all
	Sync    string         // "" for all, else SyncWaiting, SyncSynced, SyncConflict, SyncRejected
	Search  string         // case-insensitive substring of sn, model or keyId
}

// History lists the station's recent activation attempts, newest first.
func (s *StationDB) History(ctx context.Context, f HistoryFilter) ([]ActivationRecord, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where, args := []string{"1 = 1"}, []any{}
	if f.Outcome != "" {
		where, args = append(where, "o.outcome = ?"), append(args, string(f.Outcome))
	}
	switch f.Sync {
	case "":
	case SyncWaiting:
		where = append(where, "o.sent_at IS NULL AND o.result_status <> 'rejected'")
	case SyncSynced:
		where = append(where, "o.result_status IN ('applied', 'duplicate')")
	case SyncConflict:
		where = append(where, "o.result_status = 'conflict'")
	case SyncRejected:
		where = append(where, "o.sent_at IS NULL AND o.result_status = 'rejected'")
	default:
		return nil, keystation.FieldError(map[string]string{"sync": "one of waiting, synced, conflict, rejected"})
	}
	search := strings.ToLower(strings.TrimSpace(f.Search))
	limit := f.Limit
	if search != "" {
		limit = max(limit*20, 2000) // sn and model are sealed: filter after opening
	}
	args = append(args, limit)
	rows, err := s.c.r.QueryContext(ctx, `SELECT o.uuid, o.outcome, o.body_enc, o.sent_at, o.result_status, o.result_message, o.attempts, o.last_error,
		k.source, k.key_enc FROM outbox o JOIN keys k ON k.id = o.key_ref WHERE `+strings.Join(where, " AND ")+` ORDER BY o.seq DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ActivationRecord
	for rows.Next() && len(out) < f.Limit {
		var r ActivationRecord
		var outcome, status, note string
		var body, kenc []byte
		var sent, lastErr sql.NullString
		if err := rows.Scan(&r.ReportID, &outcome, &body, &sent, &status, &note, &r.Attempts, &lastErr, &r.Source, &kenc); err != nil {
			return nil, err
		}
		sr, err := s.openReport(r.ReportID, body)
		if err != nil {
			return nil, err
		}
		pk, err := s.box.OpenString(kenc, stationKeyPurpose(sr.KeyID))
		if err != nil {
			return nil, err
		}
		r.At, r.KeyID, r.Key, r.Edition = sr.At, sr.KeyID, keystation.MaskKey(pk), sr.Edition
		r.SN, r.Model, r.Outcome, r.Code, r.Message, r.Simulated = sr.Machine.SN, sr.Machine.Model, AttemptOutcome(outcome), sr.Code, sr.Message, sr.Simulated
		switch {
		case status == "rejected" && !sent.Valid:
			r.Sync, r.SyncNote = SyncRejected, note
		case !sent.Valid:
			r.Sync, r.SyncNote = SyncWaiting, lastErr.String
		case status == "conflict":
			r.Sync, r.SyncNote = SyncConflict, note
		default:
			r.Sync = SyncSynced
		}
		if search != "" && !strings.Contains(strings.ToLower(r.SN+"\x00"+r.Model+"\x00"+r.KeyID.String()), search) {
			continue
		}
		out = append(out, r)
	}
	return out, rows.Err()
}
