package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"keystation"
	"keystation/seal"
)

// ServerFile is the server's database file name in its data directory.
const ServerFile = "syncserver.db"

// DefaultBurnCap is how many keys one machine may burn by default.
const DefaultBurnCap = 3

// Options configure a store.
type Options struct {
	Box     *seal.Box
	Now     func() time.Time
	Logger  *slog.Logger
	BurnCap int // keys one machine may burn; DefaultBurnCap when 0
}

func (o *Options) defaults() {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BurnCap <= 0 {
		o.BurnCap = DefaultBurnCap
	}
}

// Server is the sync server's store.
type Server struct {
	c       conns
	g       *grouper
	box     *seal.Box
	now     func() time.Time
	log     *slog.Logger
	burnCap int

	edMu     sync.RWMutex
	editions map[string]editionRow // by slug
	rules    *keystation.EditionRules

	// The user read on every request of the station key API, prepared once
	// for the reader pool, and recently read users.
	readUser *sql.Stmt
	users    userCache

	// setWise counts allocations made set-wise (acquireFresh).
	setWise atomic.Int64
}

type editionRow struct {
	id int64
	keystation.Edition
}

// OpenServer opens (creating and migrating as needed) the server database at
// path.
func OpenServer(ctx context.Context, path string, opt Options) (*Server, error) {
	opt.defaults()
	if opt.Box == nil {
		return nil, errors.New("store: a seal.Box is required")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	c, err := openConns(path)
	if err != nil {
		return nil, err
	}
	s := &Server{c: c, box: opt.Box, now: opt.Now, log: opt.Logger, burnCap: opt.BurnCap}
	if err := migrate(ctx, c.w, "server", opt.Now(), opt.Logger); err != nil {
		c.close()
		return nil, err
	}
	if err := checkDataKey(ctx, c.w, opt.Box.Check()); err != nil {
		c.close()
		return nil, err
	}
	if err := s.loadEditions(ctx); err != nil {
		c.close()
		return nil, err
	}
	if err := s.upgradeFingerprints(ctx); err != nil {
		c.close()
		return nil, fmt.Errorf("upgrade machine fingerprints: %w", err)
	}
	s.g = newGrouper(c.w, path+"-wal", opt.Logger)
	s.g.batchers[opAcquire] = s.acquireBatch
	err = s.g.prepare(ctx, hotQueries...)
	if err == nil {
		s.readUser, err = c.r.PrepareContext(ctx, qUserByName)
	}
	if err != nil {
		s.closeReads()
		s.g.close()
		c.close()
		return nil, err
	}
	return s, nil
}

// Close waits for writes in flight and closes the database.
func (s *Server) Close() error {
	if s.g != nil {
		s.g.close()
	}
	s.closeReads()
	return s.c.close()
}

func (s *Server) closeReads() {
	for _, st := range []*sql.Stmt{s.readUser} {
		if st != nil {
			st.Close()
		}
	}
}

// BurnCap is the number of keys one machine may burn.
func (s *Server) BurnCap() int { return s.burnCap }

func (s *Server) loadEditions(ctx context.Context) error {
	rows, err := s.c.r.QueryContext(ctx, `SELECT id, slug, name, patterns, low_stock FROM editions ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	m := map[string]editionRow{}
	var list []keystation.Edition
	for rows.Next() {
		var e editionRow
		var pats string
		if err := rows.Scan(&e.id, &e.Slug, &e.Name, &pats, &e.LowStock); err != nil {
			return err
		}
		if err := json.Unmarshal([]byte(pats), &e.Patterns); err != nil {
			return fmt.Errorf("edition %s: bad patterns: %w", e.Slug, err)
		}
		m[e.Slug] = e
		list = append(list, e.Edition)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	s.edMu.Lock()
	s.editions, s.rules = m, keystation.NewEditionRules(list)
	s.edMu.Unlock()
	return nil
}

// Editions lists the key pools.
func (s *Server) Editions(ctx context.Context) ([]keystation.Edition, error) {
	if err := s.loadEditions(ctx); err != nil {
		return nil, err
	}
	s.edMu.RLock()
	defer s.edMu.RUnlock()
	rows := make([]editionRow, 0, len(s.editions))
	for _, e := range s.editions {
		rows = append(rows, e)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].id < rows[j].id })
	out := make([]keystation.Edition, len(rows))
	for i, e := range rows {
		out[i] = e.Edition
	}
	return out, nil
}

// CreateEdition adds a key pool on behalf of the system (CreatePool with
// the person who adds it, for the audit log).
func (s *Server) CreateEdition(ctx context.Context, e keystation.Edition) error {
	return s.CreatePool(ctx, e, AuditBy{})
}

// MatchEdition picks the pool for an osVersion string.
func (s *Server) MatchEdition(ctx context.Context, osVersion string) (keystation.Edition, error) {
	slug, err := s.matchSlug(osVersion)
	if keystation.ErrorCode(err) == keystation.EUNKNOWNEDITION {
		// A supervisor may have added a pool from another process.
		if lerr := s.loadEditions(ctx); lerr != nil {
			return keystation.Edition{}, lerr
		}
		slug, err = s.matchSlug(osVersion)
	}
	if err != nil {
		return keystation.Edition{}, err
	}
	e, _ := s.edition(slug)
	return e.Edition, nil
}

func (s *Server) matchSlug(osVersion string) (string, error) {
	s.edMu.RLock()
	defer s.edMu.RUnlock()
	return s.rules.Match(osVersion)
}

func (s *Server) edition(slug string) (editionRow, bool) {
	s.edMu.RLock()
	defer s.edMu.RUnlock()
	e, ok := s.editions[strings.ToLower(slug)]
	return e, ok
}

func (s *Server) editionByID(id int64) editionRow {
	s.edMu.RLock()
	defer s.edMu.RUnlock()
	for _, e := range s.editions {
		if e.id == id {
			return e
		}
	}
	return editionRow{id: id, Edition: keystation.Edition{Slug: fmt.Sprint(id)}}
}

// resolveEdition accepts a slug or a name ("Pro", "pro", "Home Single Language").
func (s *Server) resolveEdition(ctx context.Context, v string) (editionRow, error) {
	want := strings.ToLower(strings.TrimSpace(v))
	find := func() (editionRow, bool) {
		s.edMu.RLock()
		defer s.edMu.RUnlock()
		for _, e := range s.editions {
			if e.Slug == want || strings.ToLower(e.Name) == want || e.Slug == strings.ReplaceAll(want, " ", "-") {
				return e, true
			}
		}
		return editionRow{}, false
	}
	if e, ok := find(); ok {
		return e, nil
	}
	if err := s.loadEditions(ctx); err != nil {
		return editionRow{}, err
	}
	if e, ok := find(); ok {
		return e, nil
	}
	return editionRow{}, keystation.Errorf(keystation.EUNKNOWNEDITION, "no key pool named %q", v)
}

// machineFingerprint is the keyed hash that identifies a machine: 128 bits
// of the serial number's keyed hash, then 128 bits of the keyed hash of
// model and serial number. The one index on it finds a machine by its
// whole id, and by serial number alone (snRange), so a new machine costs
// one random index insert rather than two.
func (s *Server) machineFingerprint(m keystation.Machine) string {
	sn := normID(m.SN)
	return s.box.Hash("sn", sn)[:fpHalf] + s.box.Hash("machine", normID(m.Model)+"\x00"+sn)[:fpHalf]
}

// fpHalf is the length of each half of a fingerprint, in hex digits.
const fpHalf = 32

// snRange bounds the fingerprints of the machines with serial number sn:
// fingerprint >= lo AND fingerprint < hi.
func (s *Server) snRange(sn string) (lo, hi string) {
	p := s.snHash(sn)[:fpHalf]
	return p, p + "g" // hex digits sort before 'g'
}

func (s *Server) snHash(sn string) string { return s.box.Hash("sn", normID(sn)) }

func normID(v string) string { return strings.ToUpper(strings.TrimSpace(v)) }

func keyPurpose(id keystation.KeyID) string { return "product_key/" + id.String() }

func (s *Server) openKey(id keystation.KeyID, enc []byte) (keystation.ProductKey, error) {
	v, err := s.box.OpenString(enc, keyPurpose(id))
	if err != nil {
		return "", fmt.Errorf("key %s: %w", id, err)
	}
	return keystation.ProductKey(v), nil
}

// Ping checks the database answers.
func (s *Server) Ping(ctx context.Context) error {
	var one int
	return s.c.r.QueryRowContext(ctx, `SELECT 1`).Scan(&one)
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
