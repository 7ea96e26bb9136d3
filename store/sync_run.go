package store

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"unicode/utf8"

	"keystation"
)

// syncRun is a run of consecutive reports of one sync operation that take
// the common path of a station that worked from a USB key list (a new
// machine activated with a key the server has never seen, see
// applySyncReport). Instead of five statements per report, a run is written
// when it is flushed with one set-wise statement per table, each taking the
// run's rows as one JSON array parameter, as acquireFresh writes a group of
// allocations. The rows are built as the reports are buffered. They are
// read with jsonb_each, which hands each row over as JSONB: its values are
// then read without parsing the row's text again for each column (2.5
// times faster than json_each for rows of a machine's sealed hardware).
//
// The end state is the one the reports would leave applied one by one: the
// machines and keys get the row ids reserved for them in order (see
// syncBatch.machineRef and syncBatch.keyRef), and the history and reports
// rows, inserted in the run's order before any other statement of the
// operation writes those tables, get the ids SQLite would have given them.
type syncRun struct {
	n        int // reports buffered
	machines jsonRows
	keys     jsonRows
	history  jsonRows // two rows a report: consumed, then bound
	reports  jsonRows
}

// syncRunMax is how many reports a run buffers at most before it is
// flushed: enough to make the per-statement costs vanish, few enough that
// its rows (a few KiB a report) stay small.
const syncRunMax = 256

// syncRunsOff turns the set-wise runs off: every report is then applied
// one by one (the tests compare both ways).
var syncRunsOff atomic.Bool

// syncRunReports counts the reports applied set-wise, for the tests.
var syncRunReports atomic.Int64

// Set-wise statements of a run; the layout of each row is given above it.
const (
	// Rows: [id, fingerprint, snHash, identity (hex), modelRef, hardware (hex) or null,
	// hardware summary or null, os info or null, keyRef, now].
	qRunMachines = `INSERT INTO machines (id, tenant_id, fingerprint, sn_hash, identity_enc, last_ip, status, burnt,
		first_seen_at, last_seen_at, model_ref, hardware_enc, hardware_summary, os_info, key_ref, activated_at)
		SELECT j.value->>0, ?1, j.value->>1, j.value->>2, unhex(j.value->>3), ?2, 'active', 0,
		j.value->>9, j.value->>9, j.value->>4, unhex(j.value->>5), j.value->>6, j.value->>7, j.value->>8, j.value->>9
		FROM jsonb_each(?3) j`
	// Rows: [id, keyId, keyHash, sealed key (hex), edition, machine, source, now].
	qRunKeys = `INSERT INTO product_keys (id, key_id, key_hash, key_enc, edition_id, tenant_id, state, station_id, machine_id,
		source, created_at, updated_at)
		SELECT j.value->>0, j.value->>1, j.value->>2, unhex(j.value->>3), j.value->>4, ?1, 'activated', ?2, j.value->>5,
		j.value->>6, j.value->>7, j.value->>7
		FROM jsonb_each(?3) j`
	// Rows: [keyRef, from, to, reason, machine, report or null, message or null, code or null, now].
	qRunHistory = `INSERT INTO key_history (key_ref, from_state, to_state, reason, actor, machine_id, station_id,
		report_uuid, result_message, result_code, hresult, review, at)
		SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, ?1, j.value->>4, ?2,
		j.value->>5, j.value->>6, j.value->>7, NULL, 0, j.value->>8
		FROM jsonb_each(?3) j`
	// Rows: [uuid, keyRef, keyId, machine, operator, edition, osVersion, message, code, simulated,
	// reportedAt, receivedAt, provenance].
	qRunReports = `INSERT INTO reports (uuid, key_ref, key_id, machine_id, station_id, operator, edition, os_version,
		success, result_message, result_code, fault_class, hresult, outcome, simulated, reported_at, received_at, conflict_reason, provenance)
		SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, ?1, j.value->>4, j.value->>5, j.value->>6,
		1, j.value->>7, j.value->>8, '', '', 'applied', j.value->>9, j.value->>10, j.value->>11, '', j.value->>12
		FROM jsonb_each(?2) j`
)

func init() {
	hotQueries = append(hotQueries, qRunMachines, qRunKeys, qRunHistory, qRunReports)
}

// runnable reports whether p, a report on the common USB key list path,
// may join the run: its keyId is not known present (so the key keeps it,
// and its value sealed while preparing), and its texts go through JSON
// unchanged.
func (b *syncBatch) runnable(p *syncPrepared) bool {
	r := &p.r
	return !syncRunsOff.Load() && !b.keyIDs[int64(r.KeyID)] && p.source != "" && p.keyEnc != nil &&
		jsonSafe(r.ID, r.Message, r.Code, r.Operator, r.OSVersion, p.source)
}

// jsonSafe reports whether every string is valid UTF-8: JSON text would
// carry any other bytes as U+FFFD.
func jsonSafe(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// machineRef returns the row id of the next machine the run inserts:
// max(id)+1, SQLite's own choice, read at the run's first machine. The
// reservation ends with the run (flushSyncRun), so a machine inserted one
// by one, between runs, takes its id from SQLite without colliding.
func (b *syncBatch) machineRef(t *txn) (int64, error) {
	return reserveRef(t, qMaxMachi, &b.nextMachineRef)
}

// bufferSyncReport adds p to the run: what applySyncReport's common USB key
// list path writes, as rows of the run's statements. The run is flushed
// once full.
func (s *Server) bufferSyncReport(t *txn, b *syncBatch, st Station, p *syncPrepared, a Actor, now string) error {
	if err := keystation.CheckTransition(keystation.StateAssigned, keystation.StateActivated); err != nil {
		return err
	}
	keyRef, err := b.keyRef(t)
	if err != nil {
		return err
	}
	machine, err := b.machineRef(t)
	if err != nil {
		return err
	}
	// The model is looked up or recorded now: machine_models is none of
	// the run's tables.
	model, err := s.syncModelRef(t, b, p.mk)
	if err != nil {
		return err
	}
	b.run.add(p, keyRef, machine, model, now)
	b.fps[p.mk.fp] = true
	b.keyIDs[int64(p.r.KeyID)] = true
	b.keyHash[p.keyHash] = true
	if b.run.n >= syncRunMax {
		return s.flushSyncRun(t, b, st, a)
	}
	return nil
}

// add appends p's rows to the run.
func (run *syncRun) add(p *syncPrepared, keyRef, machine, model int64, now string) {
	r := &p.r
	run.n++

	m := &run.machines
	m.startRow()
	m.int(machine)
	m.str(p.mk.fp)
	m.str(p.mk.snHash)
	m.hex(p.mk.identity)
	m.int(model)
	m.hexOrNull(p.hw.enc)
	m.strOrNull(p.hw.summary)
	m.strOrNull(p.hw.osInfo)
	m.int(keyRef)
	m.str(now)

	k := &run.keys
	k.startRow()
	k.int(keyRef)
	k.int(int64(r.KeyID))
	k.str(p.keyHash)
	k.hex(p.keyEnc)
	k.int(p.ed.id)
	k.int(machine)
	k.str(p.source)
	k.str(now)

	// As insertStationKey records a key activated at once: consumed, then
	// bound (boundHist).
	h := &run.history
	h.startRow()
	h.int(keyRef)
	h.str("")
	h.str(string(keystation.StateAssigned))
	h.str(keystation.ReasonConsumed)
	h.int(machine)
	h.str(r.ID)
	h.str("recorded from " + p.source)
	h.null()
	h.str(now)
	h.startRow()
	h.int(keyRef)
	h.str(string(keystation.StateAssigned))
	h.str(string(keystation.StateActivated))
	h.str(keystation.ReasonBound)
	h.int(machine)
	h.strOrNull(r.ID)
	h.strOrNull(r.Message)
	h.strOrNull(r.Code)
	h.str(now)

	rp := &run.reports
	rp.startRow()
	rp.str(r.ID)
	rp.int(keyRef)
	rp.int(int64(r.KeyID))
	rp.int(machine)
	rp.str(r.Operator)
	rp.str(p.ed.Slug)
	rp.str(r.OSVersion)
	rp.str(r.Message)
	rp.str(r.Code)
	rp.int(int64(boolInt(r.Simulated)))
	rp.str(fmtTime(r.At))
	rp.str(now)
	rp.str(p.prov)
}

// flushSyncRun writes the buffered run, if any, and ends its machine id
// reservation. It runs before any other statement of the operation that
// writes (or reads) the run's tables, so that they see the run applied.
// A failed statement fails the operation, which then changes nothing.
func (s *Server) flushSyncRun(t *txn, b *syncBatch, st Station, a Actor) error {
	run := &b.run
	n := run.n
	defer run.reset()
	b.nextMachineRef = 0
	if n == 0 {
		return nil
	}
	if err := execN(t, n, qRunMachines, a.tenant(), nullStr(a.IP), run.machines.text()); err != nil {
		return fmt.Errorf("insert machines: %w", err)
	}
	if err := execN(t, n, qRunKeys, st.TenantID, st.ID, run.keys.text()); err != nil {
		return fmt.Errorf("insert station keys: %w", err)
	}
	if err := execN(t, 2*n, qRunHistory, a.Name, st.ID, run.history.text()); err != nil {
		return fmt.Errorf("key history: %w", err)
	}
	if err := execN(t, n, qRunReports, a.Station, run.reports.text()); err != nil {
		return fmt.Errorf("insert reports: %w", err)
	}
	syncRunReports.Add(int64(n))
	return nil
}

func (run *syncRun) reset() {
	run.n = 0
	run.machines.reset()
	run.keys.reset()
	run.history.reset()
	run.reports.reset()
}

// jsonRows is a JSON array of rows, each an array of values, built a value
// at a time: the parameter of a set-wise statement, read with jsonb_each.
type jsonRows struct {
	b    []byte
	rows int
	cols int // values in the row being built
}

// startRow starts a new row.
func (j *jsonRows) startRow() {
	if j.rows == 0 {
		j.b = append(j.b[:0], '[', '[')
	} else {
		j.b = append(j.b, ']', ',', '[')
	}
	j.rows++
	j.cols = 0
}

// next separates a value from the one before it in its row.
func (j *jsonRows) next() {
	if j.cols > 0 {
		j.b = append(j.b, ',')
	}
	j.cols++
}

func (j *jsonRows) int(v int64) {
	j.next()
	j.b = strconv.AppendInt(j.b, v, 10)
}

func (j *jsonRows) str(s string) {
	j.next()
	j.b = appendJSONString(j.b, s)
}

// strOrNull appends s, or null when it is empty (as nullStr binds it).
func (j *jsonRows) strOrNull(s string) {
	j.next()
	j.b = appendJSONStringOrNull(j.b, s)
}

func (j *jsonRows) null() {
	j.next()
	j.b = append(j.b, "null"...)
}

// hex appends v hex-encoded, for unhex().
func (j *jsonRows) hex(v []byte) {
	j.next()
	j.b = append(j.b, '"')
	j.b = hex.AppendEncode(j.b, v)
	j.b = append(j.b, '"')
}

// hexOrNull appends v hex-encoded, or null when it is nil (as nullBytes
// binds it).
func (j *jsonRows) hexOrNull(v []byte) {
	if v == nil {
		j.null()
		return
	}
	j.hex(v)
}

// text returns the array built so far.
func (j *jsonRows) text() string {
	if j.rows == 0 {
		return "[]"
	}
	return string(j.b) + "]]"
}

func (j *jsonRows) reset() {
	j.b = j.b[:0]
	j.rows, j.cols = 0, 0
}
