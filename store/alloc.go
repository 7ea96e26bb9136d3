package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"keystation"
)

// Actor is who asks: an operator (online API) or a station (sync).
type Actor struct {
	Name    string
	Tenant  int64
	Station int64 // 0 for online operator requests
	IP      string
}

func (a Actor) tenant() int64 {
	if a.Tenant == 0 {
		return 1
	}
	return a.Tenant
}

// Assignment is a key given to a machine.
type Assignment struct {
	keystation.Grant
	// Reused is set when the machine already held this key (invariant 4).
	Reused bool
}

// Outcomes of a report.
const (
	OutcomeActivated = "activated" // success applied
	OutcomeReplaced  = "replaced"  // key fault: key burnt, Next is a new key
	OutcomeKept      = "kept"      // PC fault: key stays with the machine
	OutcomeDuplicate = "duplicate" // the report was applied before
)

// ReportResult is what applying a report did.
type ReportResult struct {
	Outcome string
	Failure *keystation.Failure
	// Next is the key the machine should use now: the same key after a
	// success or a PC fault, a new one after a key fault. Nil when no key
	// could be given (see the error returned with the result).
	Next *keystation.Grant
}

const (
	qMachineByFP   = `SELECT id, tenant_id, status, burnt FROM machines WHERE fingerprint = ?`
	qInsertMachine = `INSERT INTO machines (tenant_id, fingerprint, sn_hash, identity_enc, last_ip, status, burnt, first_seen_at, last_seen_at, model_ref)
		VALUES (?, ?, ?, ?, ?, 'active', 0, ?, ?, ?)`
	qTouchMachine = `UPDATE machines SET last_seen_at = ?, last_ip = ? WHERE id = +?`
	// Integer parameters on hot paths are written +? : SQLite then plans the
	// statement once instead of re-preparing it for every new value bound.
	qCurrentKey = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
		WHERE machine_id = +? AND state IN ('assigned', 'activated') ORDER BY id DESC LIMIT 1`
	qPickKey = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
		WHERE tenant_id = +? AND edition_id = +? AND state = 'available' ORDER BY id LIMIT 1`
	qKeyByKeyID = `SELECT id, key_id, key_enc, edition_id, tenant_id, state, station_id, machine_id FROM product_keys
		WHERE key_id = ?`
	qUpdateKey = `UPDATE product_keys SET state = ?, machine_id = ?, station_id = ?,
		review = CASE WHEN ? = 1 THEN 1 ELSE review END, updated_at = ? WHERE id = +? AND state = ?`
	qInsertHistory = `INSERT INTO key_history (key_ref, from_state, to_state, reason, actor, machine_id, station_id,
		report_uuid, result_message, result_code, hresult, review, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qBurn         = `UPDATE machines SET burnt = burnt + 1 WHERE id = ?`
	qReportByUUID = `SELECT success, key_ref, machine_id FROM reports WHERE uuid = ?`
	qInsertReport = `INSERT INTO reports (uuid, key_ref, key_id, machine_id, station_id, operator, edition, os_version,
		success, result_message, result_code, fault_class, hresult, outcome, simulated, reported_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	qBindMachine = `UPDATE machines SET hardware_enc = ?, hardware_summary = ?, os_info = ?, key_ref = ?,
		activated_at = COALESCE(activated_at, ?), last_seen_at = ?, last_ip = ? WHERE id = ?`
)

var hotQueries = []string{qMachineByFP, qInsertMachine, qTouchMachine, qCurrentKey, qPickKey, qKeyByKeyID,
	qUpdateKey, qInsertHistory, qBurn, qReportByUUID, qInsertReport, qBindMachine,
	qKeyByHash, qInsertSyncReport, qLeasedKeys, qPickKeys, qModelByHash, qInsertModel,
	qSavepoint, qRelease, qRollbackTo,
	qReportsByUUIDs, qMachinesByFPs, qKeysByHashes, qKeysByKeyIDs, qCountKeyID, qInsertStationKy,
	qMaxKeyRef, qInsertBoundMachine}

type machineRow struct {
	id     int64
	tenant int64
	status string
	burnt  int
	fresh  bool // inserted by this operation: no key can be bound to it yet
}

type keyRow struct {
	id      int64
	keyID   keystation.KeyID
	enc     []byte
	edition int64
	tenant  int64
	state   keystation.KeyState
	station sql.NullInt64
	machine sql.NullInt64
}

func scanKey(row *sql.Row) (keyRow, error) {
	var k keyRow
	var state string
	err := row.Scan(&k.id, &k.keyID, &k.enc, &k.edition, &k.tenant, &state, &k.station, &k.machine)
	k.state = keystation.KeyState(state)
	return k, err
}

// hist is what a history row records beyond the state change.
type hist struct {
	// station is recorded when the key itself no longer names one (a
	// release or reclaim), so the history says whose lease it was.
	station             sql.NullInt64
	reason, actor       string
	report              string
	message, code, hres string
	review              bool
}

// transition moves a key to another state and records it in its history in
// the same transaction; an illegal transition is refused.
func (s *Server) transition(t *txn, k *keyRow, to keystation.KeyState, h hist) error {
	if err := keystation.CheckTransition(k.state, to); err != nil {
		return err
	}
	now := fmtTime(s.now())
	res, err := t.exec(qUpdateKey, string(to), k.machine, k.station, boolInt(h.review), now, k.id, string(k.state))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return keystation.Errorf(keystation.ECONFLICT, "key %s changed state concurrently", k.keyID)
	}
	histStation := k.station
	if !histStation.Valid {
		histStation = h.station
	}
	if _, err := t.exec(qInsertHistory, k.id, string(k.state), string(to), h.reason, h.actor, k.machine, histStation,
		nullStr(h.report), nullStr(h.message), nullStr(h.code), nullStr(h.hres), boolInt(h.review), now); err != nil {
		return err
	}
	k.state = to
	return nil
}

func nullStr(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// AcquireRequest asks for the key of a machine.
type AcquireRequest struct {
	Actor     Actor
	Machine   keystation.Machine
	OSVersion string
}

// Acquire returns the key assigned to the machine, assigning one from the pool
// of the osVersion's edition if it has none (invariant 4: the same machine
// gets the same key while that key has not failed).
func (s *Server) Acquire(ctx context.Context, req AcquireRequest) (Assignment, error) {
	ed, err := s.MatchEdition(ctx, req.OSVersion)
	if err != nil {
		return Assignment{}, err
	}
	edRow, _ := s.edition(ed.Slug)
	// Every request goes to the writer, which looks the machine up for the
	// whole group at once. (Answering a machine that asks again from a
	// reader first cost every new machine a read transaction, about a third
	// of an allocation's time, to spare the rare re-ask a group commit.)
	fp := s.machineFingerprint(req.Machine)
	op := &acquireOp{mk: s.newMachineKeys(req.Machine, fp), actor: req.Actor, ed: edRow}
	err = s.g.doOp(ctx, &groupOp{kind: opAcquire, arg: op, fn: func(t *txn) error {
		m, err := s.ensureMachine(t, op.mk, op.actor)
		if err != nil {
			return err
		}
		op.got, op.reused, err = s.assign(t, m, op.ed, op.actor)
		return err
	}})
	if err != nil {
		return Assignment{}, err
	}
	got, reused := op.got, op.reused
	g, err := s.grant(got)
	if err != nil {
		return Assignment{}, err
	}
	if !reused {
		s.log.Debug("key assigned", "keyId", g.KeyID, "key", g.Key.Masked(), "edition", g.Edition, "actor", req.Actor.Name)
	}
	return Assignment{Grant: g, Reused: reused}, nil
}

func (s *Server) grant(k keyRow) (keystation.Grant, error) {
	pk, err := s.openKey(k.keyID, k.enc)
	if err != nil {
		return keystation.Grant{}, err
	}
	return keystation.Grant{KeyID: k.keyID, Key: pk, Edition: s.editionByID(k.edition).Slug}, nil
}

// machineKeys are a machine's lookup hashes and sealed identity, computed
// outside the write transaction.
type machineKeys struct {
	fp, snHash string
	model      string // normalised, for the bindings' model search
	modelHash  string
	identity   []byte
}

func (s *Server) newMachineKeys(m keystation.Machine, fp string) machineKeys {
	id, _ := json.Marshal(m)
	return machineKeys{fp: fp, snHash: fp[:fpHalf], model: normID(m.Model),
		modelHash: s.box.Hash("model", normID(m.Model)), identity: s.box.Seal(id, "machine/identity")}
}

func (s *Server) ensureMachine(t *txn, mk machineKeys, a Actor) (machineRow, error) {
	now := fmtTime(s.now())
	m, err := s.findMachine(t, mk.fp)
	if isNoRows(err) {
		ref, err := s.modelRefHashed(t.ctx, txnQuerier{t}, mk.model, mk.modelHash)
		if err != nil {
			return m, err
		}
		res, err := t.exec(qInsertMachine, a.tenant(), mk.fp, mk.snHash, mk.identity, nullStr(a.IP), now, now, ref)
		if err != nil {
			return m, err
		}
		id, _ := res.LastInsertId()
		return machineRow{id: id, tenant: a.tenant(), status: "active", fresh: true}, nil
	}
	if err != nil {
		return m, err
	}
	if m.tenant != a.tenant() {
		return m, keystation.Errorf(keystation.EFORBIDDEN, "this machine belongs to another tenant")
	}
	if _, err := t.exec(qTouchMachine, now, nullStr(a.IP), m.id); err != nil {
		return m, err
	}
	return m, nil
}

func (s *Server) findMachine(t *txn, fp string) (machineRow, error) {
	var m machineRow
	err := t.queryRow(qMachineByFP, fp).Scan(&m.id, &m.tenant, &m.status, &m.burnt)
	return m, err
}

// assign returns the machine's current key or assigns it a new one.
func (s *Server) assign(t *txn, m machineRow, ed editionRow, a Actor) (keyRow, bool, error) {
	if m.status == "blocked" {
		return keyRow{}, false, keystation.Errorf(keystation.EMACHINEBLOCKED, "a supervisor blocked this machine; no key is issued")
	}
	err := sql.ErrNoRows
	var cur keyRow
	if !m.fresh {
		cur, err = scanKey(t.queryRow(qCurrentKey, m.id))
	}
	switch {
	case err == nil:
		if cur.edition != ed.id {
			return keyRow{}, false, keystation.Errorf(keystation.EEDITIONMISMATCH,
				"this machine already holds a %s key (keyId %s) but asks for %s; report that key first or ask a supervisor to return it",
				s.editionByID(cur.edition).Name, cur.keyID, ed.Name)
		}
		return cur, true, nil
	case !isNoRows(err):
		return keyRow{}, false, err
	}
	if m.burnt >= s.burnCap {
		return keyRow{}, false, keystation.Errorf(keystation.EBURNLIMIT,
			"this machine has already burnt %d keys (the limit is %d); no more keys are issued to it until a supervisor checks it", m.burnt, s.burnCap)
	}
	k, err := scanKey(t.queryRow(qPickKey, m.tenant, ed.id))
	if isNoRows(err) {
		return keyRow{}, false, keystation.Errorf(keystation.EPOOLEMPTY, "the %s pool has no available key", ed.Name)
	}
	if err != nil {
		return keyRow{}, false, err
	}
	k.machine = sql.NullInt64{Int64: m.id, Valid: true}
	if err := s.transition(t, &k, keystation.StateAssigned, hist{reason: keystation.ReasonConsumed, actor: a.Name}); err != nil {
		return keyRow{}, false, err
	}
	return k, false, nil
}

// ReportOptions carry what Report needs beyond the report itself.
type ReportOptions struct {
	Actor Actor
}

// Report applies an activation report from an operator: a success binds the
// key to the machine; a failure is classified, keeps its message and code
// verbatim, and the machine gets its next key. A report whose ID was applied
// before is not applied again. A report for a key not assigned to that
// machine is refused and changes nothing.
//
// When the failure is recorded but no next key can be given (the machine hit
// its burn cap, or the pool is empty), Report returns the result and that
// error together.
func (s *Server) Report(ctx context.Context, r keystation.Report, opt ReportOptions) (ReportResult, error) {
	ed, err := s.MatchEdition(ctx, r.OSVersion)
	if err != nil {
		return ReportResult{}, err
	}
	edRow, _ := s.edition(ed.Slug)
	fp := s.machineFingerprint(r.Machine)
	if r.ID == "" {
		r.ID = newReportID()
	}
	var hw sealedHardware
	if r.Success {
		hw = s.sealHardware(r.Hardware, r.Machine, r.OSVersion)
	}
	var (
		res  ReportResult
		next keyRow
		soft error
	)
	a := opt.Actor
	err = s.g.do(ctx, func(t *txn) error {
		res, next, soft = ReportResult{}, keyRow{}, nil
		m, err := s.findMachine(t, fp)
		if isNoRows(err) {
			return keystation.Errorf(keystation.ENOTASSIGNED, "keyId %s is not assigned to this machine", r.KeyID)
		}
		if err != nil {
			return err
		}
		if m.status == "blocked" {
			return keystation.Errorf(keystation.EMACHINEBLOCKED, "a supervisor blocked this machine; its reports are refused")
		}
		// Exactly once by report ID.
		var prevSuccess int
		var prevKey, prevMachine sql.NullInt64
		err = t.queryRow(qReportByUUID, r.ID).Scan(&prevSuccess, &prevKey, &prevMachine)
		if err == nil {
			var prevKeyID int64
			if prevKey.Valid {
				if err := t.queryRow(`SELECT key_id FROM product_keys WHERE id = ?`, prevKey.Int64).Scan(&prevKeyID); err != nil {
					return err
				}
			}
			if prevMachine.Int64 != m.id || keystation.KeyID(prevKeyID) != r.KeyID || (prevSuccess == 1) != r.Success {
				return keystation.Errorf(keystation.ECONFLICT, "reportId %s was already used for another report", r.ID)
			}
			res.Outcome = OutcomeDuplicate
			next, _, soft = s.assign(t, m, edRow, a)
			return hardOnly(&soft)
		} else if !isNoRows(err) {
			return err
		}
		k, err := scanKey(t.queryRow(qKeyByKeyID, int64(r.KeyID)))
		if isNoRows(err) || (err == nil && (!k.machine.Valid || k.machine.Int64 != m.id)) {
			return keystation.Errorf(keystation.ENOTASSIGNED, "keyId %s is not assigned to this machine", r.KeyID)
		}
		if err != nil {
			return err
		}
		now := fmtTime(s.now())
		if r.Success {
			switch k.state {
			case keystation.StateActivated:
				res.Outcome, next = OutcomeDuplicate, k
				return nil
			case keystation.StateAssigned:
			default:
				return keystation.Errorf(keystation.ENOTASSIGNED, "keyId %s is %s, not assigned to this machine", r.KeyID, k.state)
			}
			if err := s.transition(t, &k, keystation.StateActivated, hist{reason: keystation.ReasonBound, actor: a.Name,
				report: r.ID, message: r.Message, code: r.Code}); err != nil {
				return err
			}
			if _, err := t.exec(qBindMachine, nullBytes(hw.enc), nullStr(hw.summary), nullStr(hw.osInfo), k.id, now, now, nullStr(a.IP), m.id); err != nil {
				return err
			}
			res.Outcome, next = OutcomeActivated, k
			return s.insertReport(t, r, k, m.id, a, ed.Slug, "", "", now)
		}
		// Failure.
		switch k.state {
		case keystation.StateAssigned:
		case keystation.StateFailed:
			// The same failure reported again without a report ID.
			res.Outcome = OutcomeDuplicate
			next, _, soft = s.assign(t, m, edRow, a)
			return hardOnly(&soft)
		default:
			return keystation.Errorf(keystation.EILLEGALSTATE, "keyId %s is %s on this machine; a failure cannot be reported for it", r.KeyID, k.state)
		}
		f := keystation.ClassifyFailure(r.Code, r.Message)
		res.Failure = &f
		h := hist{actor: a.Name, report: r.ID, message: r.Message, code: r.Code, hres: f.HRESULT}
		if f.Class == keystation.FaultPC {
			// Not the key's fault: it goes back, and straight to this machine
			// again, which keeps it while the worker fixes the PC.
			h.reason = keystation.ReasonPCFault
			if err := s.transition(t, &k, keystation.StateFailed, h); err != nil {
				return err
			}
			k.machine = sql.NullInt64{}
			if err := s.transition(t, &k, keystation.StateAvailable, hist{reason: keystation.ReasonReturned, actor: a.Name, report: r.ID}); err != nil {
				return err
			}
			k.machine = sql.NullInt64{Int64: m.id, Valid: true}
			if err := s.transition(t, &k, keystation.StateAssigned, hist{reason: keystation.ReasonConsumed, actor: a.Name, report: r.ID}); err != nil {
				return err
			}
			res.Outcome, next = OutcomeKept, k
			return s.insertReport(t, r, k, m.id, a, ed.Slug, string(f.Class), f.HRESULT, now)
		}
		h.reason, h.review = keystation.ReasonDefective, f.Review
		if f.Review {
			h.reason = keystation.ReasonReview
		}
		if err := s.transition(t, &k, keystation.StateFailed, h); err != nil {
			return err
		}
		if _, err := t.exec(qBurn, m.id); err != nil {
			return err
		}
		m.burnt++
		if err := s.insertReport(t, r, k, m.id, a, ed.Slug, string(f.Class), f.HRESULT, now); err != nil {
			return err
		}
		res.Outcome = OutcomeReplaced
		next, _, soft = s.assign(t, m, edRow, a)
		return hardOnly(&soft)
	})
	if err != nil {
		return ReportResult{}, err
	}
	if next.id != 0 {
		g, err := s.grant(next)
		if err != nil {
			return res, err
		}
		res.Next = &g
	}
	s.log.Info("report applied", "keyId", r.KeyID, "success", r.Success, "outcome", res.Outcome, "actor", a.Name)
	return res, soft
}

// sealedHardware is a machine's hardware ready for the machines table: the
// details sealed, the summary and OS plain.
type sealedHardware struct {
	enc             []byte
	summary, osInfo string
}

func (s *Server) sealHardware(h *keystation.Hardware, m keystation.Machine, osVersion string) sealedHardware {
	if h == nil {
		return sealedHardware{}
	}
	c := *h
	c.SerialNumber, c.Model = m.SN, m.Model
	raw, _ := json.Marshal(c)
	sum, _ := json.Marshal(c.Summary())
	osInfo := c.OS
	osInfo.Caption = firstNonEmpty(osInfo.Caption, osVersion)
	oi, _ := json.Marshal(osInfo)
	return sealedHardware{enc: s.box.Seal(raw, "machine/hardware"), summary: string(sum), osInfo: string(oi)}
}

// hardOnly keeps domain errors (no key available for the machine, and the
// like) in *soft, to return after the commit, and hands back anything else
// so the operation is rolled back.
func hardOnly(soft *error) error {
	if *soft == nil {
		return nil
	}
	if keystation.ErrorCode(*soft) == keystation.EINTERNAL {
		err := *soft
		*soft = nil
		return err
	}
	return nil
}

func (s *Server) insertReport(t *txn, r keystation.Report, k keyRow, machine int64, a Actor, edition, class, hres, now string) error {
	at := now
	if !r.At.IsZero() {
		at = fmtTime(r.At)
	}
	var station any
	if a.Station != 0 {
		station = a.Station
	}
	_, err := t.exec(qInsertReport, r.ID, k.id, int64(k.keyID), machine, station, firstNonEmpty(r.Operator, a.Name), edition,
		r.OSVersion, boolInt(r.Success), r.Message, r.Code, class, hres, "applied", boolInt(r.Simulated), at, now)
	if err != nil {
		return fmt.Errorf("insert report: %w", err)
	}
	return nil
}

func firstNonEmpty(v ...string) string {
	for _, s := range v {
		if s != "" {
			return s
		}
	}
	return ""
}
