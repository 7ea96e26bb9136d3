package store

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"

	"keystation"
)

// acquireOp is one Acquire waiting in a group: what it asks, and what it got.
type acquireOp struct {
	mk    machineKeys
	actor Actor
	ed    editionRow

	got    keyRow
	reused bool
}

// Set-wise statements of a group of allocations to new machines. Each takes
// the group's rows as one JSON array, so a group of any size is a handful of
// prepared statements rather than several per allocation.
const (
	qKnownFPs = `SELECT fingerprint FROM machines WHERE fingerprint IN (SELECT value FROM json_each(?))`
	qMaxMachi = `SELECT COALESCE(MAX(id), 0) FROM machines`
	// Rows: [id, tenant, fingerprint, snHash, identity (hex), ip or null, modelRef].
	qInsertMachines = `INSERT INTO machines (id, tenant_id, fingerprint, sn_hash, identity_enc, last_ip, status, burnt,
		first_seen_at, last_seen_at, model_ref)
		SELECT j.value->>0, j.value->>1, j.value->>2, j.value->>3, unhex(j.value->>4), j.value->>5, 'active', 0, ?1, ?1, j.value->>6
		FROM jsonb_each(?2) j`
	// Rows: [keyRef, machine].
	qAssignKeys = `UPDATE product_keys SET state = 'assigned', machine_id = j.value->>1, updated_at = ?1
		FROM jsonb_each(?2) j WHERE product_keys.id = j.value->>0 AND product_keys.state = 'available'`
	// Rows: [keyRef, machine, actor, station or null].
	qAssignHistory = `INSERT INTO key_history (key_ref, from_state, to_state, reason, actor, machine_id, station_id, review, at)
		SELECT j.value->>0, 'available', 'assigned', ?1, j.value->>2, j.value->>1, j.value->>3, 0, ?2
		FROM jsonb_each(?3) j`
)

func init() {
	hotQueries = append(hotQueries, qKnownFPs, qMaxMachi, qInsertMachines, qAssignKeys, qAssignHistory, qSavepointBatch, qReleaseBatch, qRollbackToBatch)
}

const (
	qSavepointBatch  = "SAVEPOINT acquire_set"
	qReleaseBatch    = "RELEASE acquire_set"
	qRollbackToBatch = "ROLLBACK TO acquire_set"
)

// acquireBatch runs a group's allocations. Those for machines the server has
// never seen (the common case on a production line: every PC is new) are
// run set-wise: one lookup, one insert of the machines, one update of the
// keys and one insert of their history for the whole group. The rest (a
// machine seen before, or twice in the group) run one by one through the
// ordinary path, as does everything if the set-wise run fails.
func (s *Server) acquireBatch(t *txn, ops []*groupOp) {
	var fresh, alone []*groupOp
	known, err := s.knownFingerprints(t, ops)
	if err != nil {
		alone = ops
	} else {
		seen := make(map[string]bool, len(ops))
		for _, o := range ops {
			fp := o.arg.(*acquireOp).mk.fp
			if known[fp] || seen[fp] {
				alone = append(alone, o)
				continue
			}
			seen[fp] = true
			fresh = append(fresh, o)
		}
	}
	if len(fresh) > 0 {
		if err := s.acquireFresh(t, fresh); err != nil {
			s.log.Warn("set-wise allocation failed; allocating one by one", "ops", len(fresh), "err", err)
			alone = append(fresh, alone...)
		}
	}
	for _, o := range alone {
		t.runOne(o)
	}
}

func (s *Server) knownFingerprints(t *txn, ops []*groupOp) (map[string]bool, error) {
	b := make([]byte, 0, len(ops)*68+2)
	b = append(b, '[')
	for i, o := range ops {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, o.arg.(*acquireOp).mk.fp) // hex: no escapes
	}
	b = append(b, ']')
	rows, err := t.query(qKnownFPs, string(b))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	known := map[string]bool{}
	for rows.Next() {
		var fp string
		if err := rows.Scan(&fp); err != nil {
			return nil, err
		}
		known[fp] = true
	}
	return known, rows.Err()
}

// acquireFresh allocates keys to machines that are all new and distinct,
// inside a savepoint: on an error nothing of it is kept, and the caller runs
// the operations one by one instead. An operation refused on its own (its
// pool is empty) gets its error and changes nothing.
func (s *Server) acquireFresh(t *txn, ops []*groupOp) (err error) {
	if _, err := t.exec(qSavepointBatch); err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in set-wise allocation: %v", r)
		}
		if err != nil {
			for _, o := range ops {
				o.err = nil
			}
			if _, rerr := t.exec(qRollbackToBatch); rerr != nil {
				s.log.Error("rollback to savepoint", "err", rerr)
			}
		}
		if _, rerr := t.exec(qReleaseBatch); rerr != nil && err == nil {
			err = rerr
		}
	}()

	// Keys: the next available ones of each pool, in pool order.
	type pool struct{ tenant, edition int64 }
	want := map[pool][]*acquireOp{}
	var order []pool
	for _, o := range ops {
		a := o.arg.(*acquireOp)
		p := pool{a.actor.tenant(), a.ed.id}
		if _, ok := want[p]; !ok {
			order = append(order, p)
		}
		want[p] = append(want[p], a)
	}
	given := make(map[*acquireOp]bool, len(ops))
	for _, p := range order {
		as := want[p]
		rows, err := t.query(qPickKeys, p.tenant, p.edition, len(as))
		if err != nil {
			return err
		}
		i := 0
		for rows.Next() {
			var k keyRow
			var state string
			if err := rows.Scan(&k.id, &k.keyID, &k.enc, &k.edition, &k.tenant, &state, &k.station, &k.machine); err != nil {
				rows.Close()
				return err
			}
			k.state = keystation.KeyState(state)
			if err := keystation.CheckTransition(k.state, keystation.StateAssigned); err != nil {
				rows.Close()
				return err
			}
			as[i].got = k
			given[as[i]] = true
			i++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	for _, o := range ops {
		if a := o.arg.(*acquireOp); !given[a] {
			o.err = keystation.Errorf(keystation.EPOOLEMPTY, "the %s pool has no available key", a.ed.Name)
		}
	}
	if len(given) == 0 {
		return nil
	}

	// Machines: ids given here (this is the only writer), so the keys can
	// name them without reading them back.
	var maxID int64
	if err := t.queryRow(qMaxMachi).Scan(&maxID); err != nil {
		return err
	}
	models := map[string]int64{}
	var mrows, krows, hrows jsonRows
	n := 0
	for _, o := range ops {
		a := o.arg.(*acquireOp)
		if !given[a] {
			continue
		}
		ref, ok := models[a.mk.modelHash]
		if !ok {
			if ref, err = s.modelRefHashed(t.ctx, txnQuerier{t}, a.mk.model, a.mk.modelHash); err != nil {
				return err
			}
			models[a.mk.modelHash] = ref
		}
		maxID++
		a.got.machine = sql.NullInt64{Int64: maxID, Valid: true}
		n++
		mrows.startRow()
		mrows.int(maxID)
		mrows.int(a.actor.tenant())
		mrows.str(a.mk.fp)
		mrows.str(a.mk.snHash)
		mrows.hex(a.mk.identity)
		mrows.strOrNull(a.actor.IP)
		mrows.int(ref)

		krows.startRow()
		krows.int(a.got.id)
		krows.int(maxID)

		hrows.startRow()
		hrows.int(a.got.id)
		hrows.int(maxID)
		hrows.str(a.actor.Name)
		if a.got.station.Valid {
			hrows.int(a.got.station.Int64)
		} else {
			hrows.null()
		}
	}
	now := fmtTime(s.now())
	if err := execN(t, n, qInsertMachines, now, mrows.text()); err != nil {
		return fmt.Errorf("insert machines: %w", err)
	}
	if err := execN(t, n, qAssignKeys, now, krows.text()); err != nil {
		return fmt.Errorf("assign keys: %w", err)
	}
	if err := execN(t, n, qAssignHistory, keystation.ReasonConsumed, now, hrows.text()); err != nil {
		return fmt.Errorf("key history: %w", err)
	}
	for a := range given {
		a.got.state = keystation.StateAssigned
	}
	s.setWise.Add(int64(n))
	return nil
}

// execN runs a set-wise statement that must change exactly n rows.
func execN(t *txn, n int, query string, args ...any) error {
	res, err := t.exec(query, args...)
	if err != nil {
		return err
	}
	if got, err := res.RowsAffected(); err != nil || got != int64(n) {
		return fmt.Errorf("%d rows changed, want %d (%v)", got, n, err)
	}
	return nil
}

// appendJSONStringOrNull appends s as a JSON string, or null when empty.
func appendJSONStringOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, s)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
