package store

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"

	"keystation"
)

// BulkBinding is one machine binding for BulkLoadBindings.
type BulkBinding struct {
	Tenant    int64 // 0: the default tenant
	Machine   keystation.Machine
	Key       keystation.ProductKey
	KeyID     keystation.KeyID
	Edition   string // pool slug
	Summary   keystation.Summary
	OS        keystation.OSInfo
	IP        string
	FirstSeen time.Time
	LastSeen  time.Time
	Blocked   bool
}

type bulkRow struct {
	b                     BulkBinding
	fp, snHash, keyHash   string
	identity, keyEnc      []byte
	summary, osInfo, mdl  string
	first, last, activate string
}

// BulkLoadBindings writes n machine bindings (gen(i) for i in [0, n)) with
// activated keys straight into the tables, in one transaction, with values
// sealed and hashed exactly as the allocation path does (in parallel, ahead
// of the writer). It is for benchmarks and tests that need many bindings;
// it writes no key history and no audit entries.
func (s *Server) BulkLoadBindings(ctx context.Context, n int, gen func(i int) BulkBinding) error {
	const chunk = 4096
	workers := max(1, runtime.NumCPU()-1)
	type batch struct {
		seq  int
		rows []bulkRow
	}
	jobs := make(chan int)
	results := make(chan batch, workers*2)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range jobs {
				end := min(start+chunk, n)
				rows := make([]bulkRow, 0, end-start)
				for i := start; i < end; i++ {
					rows = append(rows, s.bulkRow(gen(i)))
				}
				results <- batch{start / chunk, rows}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for start := 0; start < n; start += chunk {
			select {
			case jobs <- start:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() {
		wg.Wait()
		close(results)
	}()
	drain := func() {
		for range results {
		}
	}

	tx, err := s.c.w.BeginTx(ctx, nil)
	if err != nil {
		drain()
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `PRAGMA cache_size = -1048576`); err != nil { // 1 GiB for the load
		drain()
		return err
	}
	insKey, err := tx.PrepareContext(ctx, `INSERT INTO product_keys (key_id, key_hash, key_enc, edition_id, tenant_id, state,
		machine_id, source, demo, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'activated', ?, 'bulk', 1, ?, ?)`)
	if err != nil {
		drain()
		return err
	}
	defer insKey.Close()
	insMachine, err := tx.PrepareContext(ctx, `INSERT INTO machines (id, tenant_id, fingerprint, sn_hash, identity_enc,
		hardware_summary, os_info, last_ip, status, block_reason, key_ref, activated_at, first_seen_at, last_seen_at, model_ref)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		drain()
		return err
	}
	defer insMachine.Close()
	setKey, err := tx.PrepareContext(ctx, `UPDATE product_keys SET machine_id = ? WHERE id = ?`)
	if err != nil {
		drain()
		return err
	}
	defer setKey.Close()
	var nextMachine int64
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM machines`).Scan(&nextMachine); err != nil {
		drain()
		return err
	}
	models := map[string]int64{}
	pending := map[int][]bulkRow{}
	want := 0
	for b := range results {
		pending[b.seq] = b.rows
		for rows, ok := pending[want]; ok; rows, ok = pending[want] {
			delete(pending, want)
			want++
			for _, r := range rows {
				ed, ok := s.edition(r.b.Edition)
				if !ok {
					drain()
					return keystation.Errorf(keystation.EUNKNOWNEDITION, "no key pool %q", r.b.Edition)
				}
				ref, ok := models[r.mdl]
				if !ok {
					if ref, err = s.modelRef(ctx, tx, r.mdl); err != nil {
						drain()
						return err
					}
					models[r.mdl] = ref
				}
				nextMachine++
				res, err := insKey.ExecContext(ctx, int64(r.b.KeyID), r.keyHash, r.keyEnc, ed.id, r.b.Tenant, nil, r.activate, r.activate)
				if err != nil {
					drain()
					return fmt.Errorf("bulk key %s: %w", r.b.KeyID, err)
				}
				keyRef, _ := res.LastInsertId()
				status, reason := "active", any(nil)
				if r.b.Blocked {
					status, reason = "blocked", DefaultBlockReason
				}
				if _, err := insMachine.ExecContext(ctx, nextMachine, r.b.Tenant, r.fp, r.snHash, r.identity, r.summary, r.osInfo,
					nullStr(r.b.IP), status, reason, keyRef, r.activate, r.first, r.last, ref); err != nil {
					drain()
					return fmt.Errorf("bulk machine: %w", err)
				}
				if _, err := setKey.ExecContext(ctx, nextMachine, keyRef); err != nil {
					drain()
					return err
				}
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if want*chunk < n {
		return fmt.Errorf("bulk load: only %d of %d chunks written", want, (n+chunk-1)/chunk)
	}
	if _, err := tx.ExecContext(ctx, `PRAGMA cache_size = -2000`); err != nil {
		return err
	}
	return tx.Commit()
}

func (s *Server) bulkRow(b BulkBinding) bulkRow {
	if b.Tenant == 0 {
		b.Tenant = 1
	}
	id, _ := json.Marshal(b.Machine)
	sum, _ := json.Marshal(b.Summary)
	oi, _ := json.Marshal(b.OS)
	return bulkRow{b: b, fp: s.machineFingerprint(b.Machine), snHash: s.snHash(b.Machine.SN),
		keyHash: s.box.Hash("key", b.Key.Plain()), identity: s.box.Seal(id, "machine/identity"),
		keyEnc: s.box.SealString(b.Key.Plain(), keyPurpose(b.KeyID)), summary: string(sum), osInfo: string(oi),
		mdl: normID(b.Machine.Model), first: fmtTime(b.FirstSeen), last: fmtTime(b.LastSeen), activate: fmtTime(b.FirstSeen)}
}
