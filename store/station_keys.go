package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"time"

	"keystation"
)

// Key sources on a station.
const (
	SourceLease = "lease" // leased from the server
	SourceUSB   = "usb"   // read from a key list on a USB stick
)

// Local key states (keystation.KeyState plus "released": given back to the
// server).
const (
	LocalAvailable = "available"
	LocalAssigned  = "assigned"
	LocalActivated = "activated"
	LocalFailed    = "failed"
	LocalRevoked   = "revoked"
	LocalReleased  = "released"
)

func stationKeyPurpose(id keystation.KeyID) string { return "station/key/" + id.String() }

const purposeMachine = "station/machine"

func outboxPurpose(id string) string { return "station/outbox/" + id }

// MachineFingerprint is the keyed hash that identifies a machine on this
// station: model and serial number, trimmed and upper case.
func (s *StationDB) MachineFingerprint(m keystation.Machine) string {
	return s.box.Hash("machine", normID(m.Model)+"\x00"+normID(m.SN))
}

// KeyRequest asks for the key of a machine.
type KeyRequest struct {
	Machine keystation.Machine
	Edition string // slug of the edition the machine's OS maps to
	// PreferSource is the key list (key_sources id) whose keys are taken
	// first while a batch is active; 0 for none (leased keys first).
	PreferSource int64
}

// KeyAssignment is a key assigned to a machine.
type KeyAssignment struct {
	Ref        int64                  `json:"-"`
	KeyID      keystation.KeyID       `json:"keyId"`
	Key        keystation.ProductKey  `json:"key"` // prints masked
	Edition    string                 `json:"edition"`
	Source     string                 `json:"source"` // SourceLease or SourceUSB
	SourceRef  int64                  `json:"-"`
	Provenance *keystation.Provenance `json:"provenance,omitempty"`
	// Reused is set when the machine already held this key (invariant 4).
	Reused bool `json:"reused"`
	// State is the key's state after the assignment: assigned, or
	// activated when the machine was activated with it before.
	State string `json:"state"`
	// Burnt is how many keys this machine has burnt on this station.
	Burnt int `json:"burnt"`
}

type localKey struct {
	ref       int64
	keyID     keystation.KeyID
	enc       []byte
	edition   string
	source    string
	sourceRef sql.NullInt64
	line      int
	state     string
	fp        sql.NullString
}

const localKeyCols = `id, key_id, key_enc, edition, source, source_ref, source_line, state, machine_fp`

func scanLocalKey(row interface{ Scan(...any) error }) (localKey, error) {
	var k localKey
	var id int64
	err := row.Scan(&k.ref, &id, &k.enc, &k.edition, &k.source, &k.sourceRef, &k.line, &k.state, &k.fp)
	k.keyID = keystation.KeyID(id)
	return k, err
}

// AssignKey returns the key of a machine: the key already assigned to it (or
// activated on it) when there is one (invariant 4), else the next available
// key of the edition, which becomes assigned to the machine. It is local and
// instant. Errors: EINVALID for a bad machine, EEDITIONMISMATCH when the
// machine holds a key of another edition, EBURNLIMIT when the machine burnt
// its cap of keys, EPOOLEMPTY when no key of the edition is left.
func (s *StationDB) AssignKey(ctx context.Context, req KeyRequest) (KeyAssignment, error) {
	f := map[string]string{}
	req.Machine.Validate(f)
	if strings.TrimSpace(req.Edition) == "" {
		f["edition"] = "required"
	}
	if len(f) > 0 {
		return KeyAssignment{}, keystation.FieldError(f)
	}
	fp := s.MachineFingerprint(req.Machine)
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return KeyAssignment{}, err
	}
	defer tx.Rollback()
	a, err := s.assignKey(ctx, tx, req, fp)
	if err != nil {
		return KeyAssignment{}, err
	}
	if err := tx.Commit(); err != nil {
		return KeyAssignment{}, err
	}
	return a, nil
}

func (s *StationDB) assignKey(ctx context.Context, tx *sql.Tx, req KeyRequest, fp string) (KeyAssignment, error) {
	var burnt int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE machine_fp = ? AND state = 'failed'`, fp).Scan(&burnt); err != nil {
		return KeyAssignment{}, err
	}
	// Invariant 4: the key this machine holds, the one assigned before the
	// one activated on it.
	k, err := scanLocalKey(tx.QueryRowContext(ctx, `SELECT `+localKeyCols+` FROM keys
		WHERE machine_fp = ? AND state IN ('assigned', 'activated')
		ORDER BY CASE state WHEN 'assigned' THEN 0 ELSE 1 END, assigned_at DESC, id DESC LIMIT 1`, fp))
	switch {
	case err == nil:
		if k.edition != req.Edition {
			return KeyAssignment{}, keystation.Errorf(keystation.EEDITIONMISMATCH,
				"this PC already holds a %s key (keyId %s) but its Windows now maps to %s; check the installed edition", k.edition, k.keyID, req.Edition)
		}
		a, err := s.assignment(ctx, tx, k)
		a.Reused, a.Burnt = true, burnt
		return a, err
	case !isNoRows(err):
		return KeyAssignment{}, err
	}
	if burnt >= s.burnCap {
		return KeyAssignment{}, keystation.Errorf(keystation.EBURNLIMIT,
			"this PC has already burnt %d keys (the cap is %d): no more keys are issued to it; set it aside for a supervisor", burnt, s.burnCap)
	}
	// The active batch's list first, then leased keys, then other lists;
	// each lookup is one index probe.
	err = sql.ErrNoRows
	if req.PreferSource != 0 {
		k, err = scanLocalKey(tx.QueryRowContext(ctx, `SELECT `+localKeyCols+` FROM keys
			WHERE edition = ? AND state = 'available' AND source_ref = ? ORDER BY id LIMIT 1`, req.Edition, req.PreferSource))
	}
	for _, src := range []string{SourceLease, SourceUSB} {
		if !isNoRows(err) {
			break
		}
		k, err = scanLocalKey(tx.QueryRowContext(ctx, `SELECT `+localKeyCols+` FROM keys
			WHERE edition = ? AND state = 'available' AND source = ? ORDER BY id LIMIT 1`, req.Edition, src))
	}
	if isNoRows(err) {
		return KeyAssignment{}, keystation.Errorf(keystation.EPOOLEMPTY,
			"no %s key left on this station: sync with the server (station sync) or import a key list", req.Edition)
	}
	if err != nil {
		return KeyAssignment{}, err
	}
	now := fmtTime(s.now())
	ident, _ := json.Marshal(req.Machine)
	if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = 'assigned', machine_fp = ?, machine_enc = ?, assigned_at = ?, updated_at = ?
		WHERE id = ? AND state = 'available'`, fp, s.box.Seal(ident, purposeMachine), now, now, k.ref); err != nil {
		return KeyAssignment{}, err
	}
	k.state = LocalAssigned
	if err := logEvent(ctx, tx, s.now(), "key.assigned", fmt.Sprintf("key %s (%s, %s) assigned to a PC", k.keyID, k.edition, k.source),
		map[string]any{"keyId": k.keyID.String(), "edition": k.edition, "source": k.source, "machine": fp[:16]}); err != nil {
		return KeyAssignment{}, err
	}
	a, err := s.assignment(ctx, tx, k)
	a.Burnt = burnt
	return a, err
}

func (s *StationDB) assignment(ctx context.Context, tx *sql.Tx, k localKey) (KeyAssignment, error) {
	pk, err := s.box.OpenString(k.enc, stationKeyPurpose(k.keyID))
	if err != nil {
		return KeyAssignment{}, fmt.Errorf("key %s: %w", k.keyID, err)
	}
	a := KeyAssignment{Ref: k.ref, KeyID: k.keyID, Key: keystation.ProductKey(pk), Edition: k.edition, Source: k.source, State: k.state}
	if k.sourceRef.Valid {
		a.SourceRef = k.sourceRef.Int64
		var p keystation.Provenance
		if err := tx.QueryRowContext(ctx, `SELECT file_name, sha256 FROM key_sources WHERE id = ?`, k.sourceRef.Int64).Scan(&p.File, &p.SHA256); err != nil {
			return KeyAssignment{}, fmt.Errorf("key list of key %s: %w", k.keyID, err)
		}
		p.Line = k.line
		a.Provenance = &p
	}
	return a, nil
}

// AttemptOutcome is what an activation attempt did to its key.
type AttemptOutcome string

// Attempt outcomes.
const (
	AttemptActivated AttemptOutcome = "activated" // the key is activated on the machine
	AttemptKeyFault  AttemptOutcome = "key-fault" // the key is burnt
	AttemptPCFault   AttemptOutcome = "pc-fault"  // the key stays assigned to the machine
)

// Attempt is the outcome of one activation attempt, to be recorded.
type Attempt struct {
	Assignment KeyAssignment
	Outcome    AttemptOutcome
	Review     bool // an unknown failure code: flagged for a supervisor
	// Report is the report to queue for the server; its ID, At (when zero),
	// KeyID and Station are filled in.
	Report keystation.Report
}

// RecordAttempt changes the key's state and commits the report to the outbox
// in one transaction: once it returns, the report will reach the server
// (invariant 3). It returns the report's ID. A key activated on its machine
// stays activated (as on the server, only a supervisor can take it back): a
// failure on it is refused with EILLEGALSTATE; a success is recorded again.
func (s *StationDB) RecordAttempt(ctx context.Context, at Attempt) (string, error) {
	switch at.Outcome {
	case AttemptActivated, AttemptKeyFault, AttemptPCFault:
	default:
		return "", keystation.Errorf(keystation.EINVALID, "unknown attempt outcome %q", at.Outcome)
	}
	fp := s.MachineFingerprint(at.Report.Machine)
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return "", err
	}
	defer tx.Rollback()
	id, err := s.recordAttempt(ctx, tx, at, fp)
	if err != nil {
		return "", err
	}
	if err := tx.Commit(); err != nil {
		return "", err
	}
	return id, nil
}

func (s *StationDB) recordAttempt(ctx context.Context, tx *sql.Tx, at Attempt, fp string) (string, error) {
	k, err := scanLocalKey(tx.QueryRowContext(ctx, `SELECT `+localKeyCols+` FROM keys WHERE id = ?`, at.Assignment.Ref))
	if isNoRows(err) {
		return "", keystation.Errorf(keystation.ENOTFOUND, "key %s is not on this station", at.Assignment.KeyID)
	}
	if err != nil {
		return "", err
	}
	if !k.fp.Valid || k.fp.String != fp {
		return "", keystation.Errorf(keystation.ENOTASSIGNED, "key %s is not assigned to this PC", k.keyID)
	}
	now := s.now()
	r := at.Report
	r.ID = newReportID()
	r.KeyID = k.keyID
	if r.At.IsZero() {
		r.At = now
	}
	if r.Station == "" {
		if r.Station, err = getMeta(ctx, tx, metaName); err != nil {
			return "", err
		}
	}
	r.Success = at.Outcome == AttemptActivated
	sr := keystation.SyncReport{Report: r, Edition: k.edition}
	if k.source == SourceUSB {
		a, err := s.assignment(ctx, tx, k)
		if err != nil {
			return "", err
		}
		sr.Key, sr.Provenance = a.Key.Plain(), a.Provenance
	}
	if err := sr.Validate(); err != nil {
		return "", err
	}

	to := k.state
	switch {
	case k.state == LocalRevoked:
		// The server revoked the key while this PC was using it: the report
		// still tells the truth, and the server flags it as a conflict.
		if err := logEvent(ctx, tx, now, "key.conflict", fmt.Sprintf("key %s was revoked while in use; its report will be flagged by the server", k.keyID),
			map[string]any{"keyId": k.keyID.String(), "outcome": string(at.Outcome)}); err != nil {
			return "", err
		}
	case at.Outcome == AttemptActivated && (k.state == LocalAssigned || k.state == LocalActivated):
		to = LocalActivated
	case at.Outcome == AttemptKeyFault && k.state == LocalAssigned:
		to = LocalFailed
	case at.Outcome == AttemptPCFault && k.state == LocalAssigned:
	default:
		return "", keystation.Errorf(keystation.EILLEGALSTATE, "key %s is %s: cannot record %s", k.keyID, k.state, at.Outcome)
	}
	ts := fmtTime(now)
	if to != k.state || at.Review {
		if _, err := tx.ExecContext(ctx, `UPDATE keys SET state = ?, review = MAX(review, ?), updated_at = ? WHERE id = ?`,
			to, boolInt(at.Review), ts, k.ref); err != nil {
			return "", err
		}
	}
	body, err := json.Marshal(sr)
	if err != nil {
		return "", err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO outbox (uuid, key_ref, key_id, edition, machine_fp, outcome, result_code_raw, simulated, body_enc, body_size, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, k.ref, int64(k.keyID), k.edition, fp, string(at.Outcome), r.Code,
		boolInt(r.Simulated), s.box.Seal(body, outboxPurpose(r.ID)), len(body), ts); err != nil {
		return "", err
	}
	msg := fmt.Sprintf("key %s: %s; report %s queued", k.keyID, at.Outcome, r.ID)
	if r.Simulated {
		msg += " (SIMULATED)"
	}
	if err := logEvent(ctx, tx, now, "activation."+string(at.Outcome), msg,
		map[string]any{"keyId": k.keyID.String(), "report": r.ID, "code": r.Code, "simulated": r.Simulated}); err != nil {
		return "", err
	}
	return r.ID, nil
}

// KeyListImport is a key list read from a USB stick, to import.
type KeyListImport struct {
	File     string // file name (no directories) recorded as provenance
	Path     string // where it was read from, for the record
	SHA256   string // of the file's bytes
	Lines    int
	Rejected int // lines the reader rejected
	Entries  []ImportEntry
}

// KeyListResult says what an import did.
type KeyListResult struct {
	SourceID        int64          `json:"sourceId"`
	AlreadyImported bool           `json:"alreadyImported"`
	Imported        int            `json:"imported"`
	ByEdition       map[string]int `json:"byEdition"`
	Skipped         []LineNote     `json:"skipped"`  // keys already known on this station
	Rejected        []LineNote     `json:"rejected"` // lines that cannot be used here
}

// ImportKeyList makes a key list a local pool marked with its file name and
// SHA-256. The same file imported again imports nothing (AlreadyImported);
// keys already known locally (by value or keyId) are skipped; lines of an
// edition this station does not know are rejected. Lines without a keyId get
// a random local one (the server keeps it unless it is taken).
func (s *StationDB) ImportKeyList(ctx context.Context, in KeyListImport) (KeyListResult, error) {
	res := KeyListResult{ByEdition: map[string]int{}}
	in.SHA256 = strings.ToLower(strings.TrimSpace(in.SHA256))
	if len(in.SHA256) != 64 || strings.TrimSpace(in.File) == "" {
		return res, keystation.FieldError(map[string]string{"file": "a file name and its SHA-256 are required"})
	}
	eds, err := s.Editions(ctx)
	if err != nil {
		return res, err
	}
	known := map[string]bool{}
	for _, e := range eds {
		known[e.Slug] = true
	}
	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		return res, err
	}
	defer tx.Rollback()
	err = tx.QueryRowContext(ctx, `SELECT id FROM key_sources WHERE sha256 = ?`, in.SHA256).Scan(&res.SourceID)
	if err == nil {
		res.AlreadyImported = true
		return res, nil
	} else if !isNoRows(err) {
		return res, err
	}
	now := s.now()
	ts := fmtTime(now)
	r, err := tx.ExecContext(ctx, `INSERT INTO key_sources (file_name, path, sha256, lines, rejected, imported_at) VALUES (?, ?, ?, ?, ?, ?)`,
		in.File, in.Path, in.SHA256, in.Lines, in.Rejected, ts)
	if err != nil {
		return res, err
	}
	res.SourceID, _ = r.LastInsertId()
	ins, err := tx.PrepareContext(ctx, `INSERT INTO keys (key_id, key_hash, key_enc, edition, source, source_ref, source_line, state, acked, received_at, updated_at)
		VALUES (?, ?, ?, ?, 'usb', ?, ?, 'available', 1, ?, ?)`)
	if err != nil {
		return res, err
	}
	defer ins.Close()
	for _, e := range in.Entries {
		if !known[e.Edition] {
			res.Rejected = append(res.Rejected, LineNote{e.Line, fmt.Sprintf("this station knows no key pool %q (sync first if a supervisor added it)", e.Edition)})
			continue
		}
		hash := s.box.Hash("key", e.Key.Plain())
		var have int64
		err := tx.QueryRowContext(ctx, `SELECT key_id FROM keys WHERE key_hash = ?`, hash).Scan(&have)
		if err == nil {
			res.Skipped = append(res.Skipped, LineNote{e.Line, fmt.Sprintf("key already on this station (keyId %s)", keystation.KeyID(have))})
			continue
		} else if !isNoRows(err) {
			return res, err
		}
		id := e.KeyID
		if id != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE key_id = ?`, int64(id)).Scan(&n); err != nil {
				return res, err
			}
			if n > 0 {
				res.Skipped = append(res.Skipped, LineNote{e.Line, fmt.Sprintf("keyId %s is already used on this station by another key", id)})
				continue
			}
		} else if id, err = localKeyID(ctx, tx); err != nil {
			return res, err
		}
		if _, err := ins.ExecContext(ctx, int64(id), hash, s.box.SealString(e.Key.Plain(), stationKeyPurpose(id)), e.Edition,
			res.SourceID, e.Line, ts, ts); err != nil {
			return res, err
		}
		res.Imported++
		res.ByEdition[e.Edition]++
	}
	if _, err := tx.ExecContext(ctx, `UPDATE key_sources SET imported = ?, skipped = ?, rejected = rejected + ? WHERE id = ?`,
		res.Imported, len(res.Skipped), len(res.Rejected), res.SourceID); err != nil {
		return res, err
	}
	if err := logEvent(ctx, tx, now, "keylist.imported", fmt.Sprintf("key list %s imported: %d keys, %d skipped, %d rejected here", in.File, res.Imported, len(res.Skipped), len(res.Rejected)),
		map[string]any{"file": in.File, "sha256": in.SHA256, "imported": res.Imported}); err != nil {
		return res, err
	}
	return res, tx.Commit()
}

// localKeyID returns a random 13-digit keyId not used on this station.
func localKeyID(ctx context.Context, tx *sql.Tx) (keystation.KeyID, error) {
	for range 100 {
		n, err := rand.Int(rand.Reader, big.NewInt(8_999_999_999_999))
		if err != nil {
			return 0, err
		}
		id := keystation.KeyID(n.Int64() + 1_000_000_000_000)
		var c int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM keys WHERE key_id = ?`, int64(id)).Scan(&c); err != nil {
			return 0, err
		}
		if c == 0 {
			return id, nil
		}
	}
	return 0, fmt.Errorf("could not find a free keyId")
}

// KeySource is an imported key list.
type KeySource struct {
	ID         int64     `json:"id"`
	File       string    `json:"file"`
	Path       string    `json:"path"`
	SHA256     string    `json:"sha256"`
	Imported   int       `json:"imported"`
	Available  int       `json:"available"`
	ImportedAt time.Time `json:"importedAt"`
}

// KeySourceBySHA256 returns an imported key list; ENOTFOUND when there is none.
func (s *StationDB) KeySourceBySHA256(ctx context.Context, sha string) (KeySource, error) {
	var k KeySource
	var at string
	err := s.c.r.QueryRowContext(ctx, `SELECT id, file_name, path, sha256, imported, imported_at,
		(SELECT COUNT(*) FROM keys WHERE source_ref = key_sources.id AND state = 'available')
		FROM key_sources WHERE sha256 = ?`, strings.ToLower(sha)).Scan(&k.ID, &k.File, &k.Path, &k.SHA256, &k.Imported, &at, &k.Available)
	if isNoRows(err) {
		return k, keystation.Errorf(keystation.ENOTFOUND, "no key list with that SHA-256 was imported")
	}
	k.ImportedAt = parseTime(at)
	return k, err
}

// SourceResult is the outcome of one key of a key list (the results CSV of
// batch mode).
type SourceResult struct {
	KeyID   keystation.KeyID
	Key     keystation.ProductKey // write it masked
	SN      string
	Model   string
	Status  string // activated | failed | pc-fault
	Message string
	Time    time.Time
}

// SourceResults lists the reports of the keys of a key list, in order.
func (s *StationDB) SourceResults(ctx context.Context, sourceID int64) ([]SourceResult, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT o.uuid, o.outcome, o.body_enc, k.key_id, k.key_enc FROM outbox o JOIN keys k ON k.id = o.key_ref
		WHERE k.source_ref = ? ORDER BY o.seq`, sourceID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []SourceResult
	for rows.Next() {
		var id, outcome string
		var body, kenc []byte
		var kid int64
		if err := rows.Scan(&id, &outcome, &body, &kid, &kenc); err != nil {
			return nil, err
		}
		sr, err := s.openReport(id, body)
		if err != nil {
			return nil, err
		}
		pk, err := s.box.OpenString(kenc, stationKeyPurpose(keystation.KeyID(kid)))
		if err != nil {
			return nil, err
		}
		status := outcome
		if outcome == string(AttemptKeyFault) {
			status = "failed"
		}
		msg := sr.Message
		if sr.Code != "" && !strings.Contains(msg, sr.Code) {
			msg = sr.Code + ": " + msg
		}
		out = append(out, SourceResult{KeyID: keystation.KeyID(kid), Key: keystation.ProductKey(pk), SN: sr.Machine.SN, Model: sr.Machine.Model,
			Status: status, Message: msg, Time: sr.At})
	}
	return out, rows.Err()
}

func (s *StationDB) openReport(id string, body []byte) (keystation.SyncReport, error) {
	var sr keystation.SyncReport
	raw, err := s.box.Open(body, outboxPurpose(id))
	if err != nil {
		return sr, fmt.Errorf("report %s: %w", id, err)
	}
	if err := json.Unmarshal(raw, &sr); err != nil {
		return sr, fmt.Errorf("report %s: %w", id, err)
	}
	return sr, nil
}

// LocalKey describes a key the station holds, without its value.
type LocalKey struct {
	KeyID      keystation.KeyID `json:"keyId"`
	Masked     string           `json:"key"`
	Edition    string           `json:"edition"`
	Source     string           `json:"source"`
	State      string           `json:"state"`
	Acked      bool             `json:"acked"`
	Review     bool             `json:"review"`
	ReceivedAt time.Time        `json:"receivedAt"`
}

// LocalKeys lists the keys the station holds, in the order received.
func (s *StationDB) LocalKeys(ctx context.Context) ([]LocalKey, error) {
	rows, err := s.c.r.QueryContext(ctx, `SELECT key_id, key_enc, edition, source, state, acked, review, received_at FROM keys ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []LocalKey
	for rows.Next() {
		var k LocalKey
		var id int64
		var enc []byte
		var acked, review int
		var at string
		if err := rows.Scan(&id, &enc, &k.Edition, &k.Source, &k.State, &acked, &review, &at); err != nil {
			return nil, err
		}
		k.KeyID, k.Acked, k.Review, k.ReceivedAt = keystation.KeyID(id), acked == 1, review == 1, parseTime(at)
		pk, err := s.box.OpenString(enc, stationKeyPurpose(k.KeyID))
		if err != nil {
			return nil, err
		}
		k.Masked = keystation.MaskKey(pk)
		out = append(out, k)
	}
	return out, rows.Err()
}
