// Package store keeps KeyStation's data in SQLite through database/sql and
// mattn/go-sqlite3: the sync server's key pools, machines, users and reports,
// and the station's offline buffer and outbox. Schemas are embedded, numbered
// SQL migrations, each applied in its own transaction at start-up. The SQL
// stays portable so that a PostgreSQL backend can sit behind the same methods.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"keystation"
)

//go:embed migrations
var migrations embed.FS

// timeFormat sorts lexically, so time ranges and ordering work on TEXT columns.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(timeFormat, s)
	return t
}

// dsn builds a mattn/go-sqlite3 connection string: WAL, foreign keys, a busy
// timeout, FULL synchronous commits, no per-connection mutex and, for the
// writer, transactions that take the write lock up front.
func dsn(path string, write bool) string {
	q := url.Values{}
	q.Set("_journal_mode", "WAL")
	q.Set("_foreign_keys", "on")
	q.Set("_busy_timeout", "10000")
	q.Set("_synchronous", "FULL")
	// database/sql never uses a connection from two goroutines at once,
	// so SQLite's own per-connection mutex is only a cost.
	q.Set("_mutex", "no")
	if write {
		q.Set("_txlock", "immediate")
	} else {
		q.Set("_query_only", "1")
	}
	return "file:" + filepath.ToSlash(path) + "?" + q.Encode()
}

// Drivers with per-connection settings the DSN cannot carry: savepoint and
// sort journals in memory, a larger page cache, and on the writer no
// automatic WAL checkpoints (the checkpointer goroutine does them, so a
// commit that hands out a key never waits for one).
const (
	driverWriter = "sqlite3-keystation-writer"
	driverReader = "sqlite3-keystation-reader"
	// The station's drivers: the same settings with smaller page caches.
	// Each connection has a cache of its own, filled up to its limit as
	// tables grow (the status query reads the whole outbox every few
	// seconds), so the server's limits would let a station's pages take
	// tens of MiB of resident memory for a database a worker's PC reads
	// little of.
	driverStationWriter = "sqlite3-keystation-station-writer"
	driverStationReader = "sqlite3-keystation-station-reader"
)

// connProfile is the drivers and reader pool of one kind of database.
type connProfile struct {
	writer, reader string
	readers        int
}

var (
	serverConns  = connProfile{writer: driverWriter, reader: driverReader, readers: 8}
	stationConns = connProfile{writer: driverStationWriter, reader: driverStationReader, readers: 4}
)

func init() {
	hook := func(pragmas string) func(*sqlite3.SQLiteConn) error {
		return func(c *sqlite3.SQLiteConn) error {
			_, err := c.Exec(pragmas, nil)
			return err
		}
	}
	sql.Register(driverWriter, &sqlite3.SQLiteDriver{ConnectHook: hook(
		"PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;")})
	sql.Register(driverReader, &sqlite3.SQLiteDriver{ConnectHook: hook(
		"PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16384;")})
	sql.Register(driverStationWriter, &sqlite3.SQLiteDriver{ConnectHook: hook(
		"PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4096; PRAGMA wal_autocheckpoint = 0;")})
	sql.Register(driverStationReader, &sqlite3.SQLiteDriver{ConnectHook: hook(
		"PRAGMA temp_store = MEMORY; PRAGMA cache_size = -1024;")})
}

// conns is a writer (one connection, so writes never contend for the lock),
// a pool of readers, and the connection that checkpoints the WAL.
type conns struct {
	w, r, ck *sql.DB
	stop     chan struct{}
	done     chan struct{}
	once     *sync.Once
	err      *error
}

// checkpointEvery is how often the checkpointer copies the WAL into the
// database file.
const checkpointEvery = 250 * time.Millisecond

// openConns opens the connections of a database with the server's
// settings.
func openConns(path string) (conns, error) { return openConnsWith(path, serverConns) }

// openConnsWith opens the connections of a database with a profile's
// drivers and reader pool.
func openConnsWith(path string, p connProfile) (conns, error) {
	w, err := sql.Open(p.writer, dsn(path, true))
	if err != nil {
		return conns{}, err
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := w.Ping(); err != nil {
		w.Close()
		return conns{}, fmt.Errorf("open %s: %w", path, err)
	}
	r, err := sql.Open(p.reader, dsn(path, false))
	if err != nil {
		w.Close()
		return conns{}, err
	}
	r.SetMaxOpenConns(p.readers)
	r.SetMaxIdleConns(p.readers)
	ck, err := sql.Open(p.reader, dsn(path, true))
	if err != nil {
		w.Close()
		r.Close()
		return conns{}, err
	}
	ck.SetMaxOpenConns(1)
	c := conns{w: w, r: r, ck: ck, stop: make(chan struct{}), done: make(chan struct{}), once: new(sync.Once), err: new(error)}
	go c.checkpointer()
	return c, nil
}

// walRestartFrames is how many frames (of 4 KiB pages) the WAL may hold
// before the checkpointer copies the rest of it between two of the
// writer's transactions, so that the next one starts it over.
var walRestartFrames atomic.Int64

func init() { walRestartFrames.Store(16384) }

// checkpointer copies committed WAL frames into the database file in the
// background (PASSIVE: it never blocks the writer or readers).
//
// Under steady writes that alone never lets the WAL start over: frames
// keep coming while a checkpoint copies, so the WAL is never copied to
// its end, and SQLite only starts it over from its beginning once it
// is. It would grow without end (1.2 GB after 20 s of allocations), and
// every frame appended to a growing file costs the kernel zeroed pages.
// So once the WAL holds walRestartFrames frames, the checkpointer takes
// the writer connection, between two transactions, and copies the few
// frames the background copy has not: nothing is added meanwhile, and
// the next write transaction starts the WAL over, writing over the
// pages it wrote before. When the writer paused long enough for the
// background copy to reach the WAL's end (after a large sync's long
// transaction, say), the next write starts the WAL over by itself, and
// the writer is spared the wait: only if that did not happen by the next
// round is it held.
func (c conns) checkpointer() {
	defer close(c.done)
	t := time.NewTicker(checkpointEvery)
	defer t.Stop()
	// waited is how many frames the WAL held when a checkpoint beside
	// the writer last copied it whole (0: none since).
	waited := 0
	ck := func() (int, int, error) { return checkpoint(c.ck) }
	w := func() (int, int, error) { return checkpoint(c.w) }
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
			waited = walRound(ck, w, walRestartFrames.Load(), waited)
		}
	}
}

// walRound is one round of the checkpointer. ck runs a PASSIVE checkpoint
// beside the writer, w one on the writer connection (between two of its
// transactions); both return how many frames the WAL holds and how many of
// them are copied. waited is how many frames the WAL held when a round last
// copied it whole beside the writer (0: none since, or it started over);
// walRound returns the next round's.
func walRound(ck, w func() (frames, copied int, err error), limit int64, waited int) int {
	frames, _, err := ck()
	if err != nil || int64(frames) < limit {
		return 0
	}
	// Copy what the writer added meanwhile beside it first, so that it
	// waits only for the last few frames and the syncs, if at all.
	if waited == 0 || frames < waited {
		if n, copied, err := ck(); err == nil && copied == n {
			// The writer paused (a large sync's long transaction
			// ended, say): the next write starts the WAL over by
			// itself, unless it began before the copy ended or a
			// reader still used the WAL. Give it the chance, rather
			// than make the writer wait here for a copy of all the
			// frames of the transaction it may be in now.
			return n
		}
	}
	// The WAL did not start over since (steady writes never pause long
	// enough): copy the rest between two of the writer's transactions,
	// so that the next one starts it over.
	w()
	return 0
}

// checkpoint runs a PASSIVE checkpoint on db and returns how many frames
// the WAL holds and how many of them are copied into the database.
func checkpoint(db *sql.DB) (frames, copied int, err error) {
	var busy int
	err = db.QueryRow(`PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// close stops the checkpointer and closes the connections; closing again
// returns the first result.
func (c conns) close() error {
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		// A last full checkpoint leaves a small WAL behind (best effort: a
		// reader still open elsewhere may hold it).
		c.ck.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`)
		*c.err = errors.Join(c.ck.Close(), c.r.Close(), c.w.Close())
	})
	return *c.err
}

// migrate applies the embedded migrations in dir that the database has not
// seen yet, each in its own transaction, in numeric order.
func migrate(ctx context.Context, db *sql.DB, dir string, now time.Time, log *slog.Logger) error {
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	entries, err := fs.ReadDir(migrations, "migrations/"+dir)
	if err != nil {
		return err
	}
	type mig struct {
		version int
		name    string
	}
	var ms []mig
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".sql") {
			continue
		}
		n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", e.Name())
		}
		ms = append(ms, mig{n, e.Name()})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for _, m := range ms {
		if err := applyMigration(ctx, db, dir, m.version, m.name, now); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return err
	}
	if len(ms) > 0 && v > ms[len(ms)-1].version {
		return fmt.Errorf("database schema version %d is newer than this program (%d): upgrade the program", v, ms[len(ms)-1].version)
	}
	log.Debug("schema up to date", "schema", dir, "version", v)
	return nil
}

func applyMigration(ctx context.Context, db *sql.DB, dir string, version int, name string, now time.Time) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	body, err := fs.ReadFile(migrations, "migrations/"+dir+"/"+name)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
		version, name, fmtTime(now)); err != nil {
		return err
	}
	return tx.Commit()
}

// checkDataKey stores the data key's check value on first use and refuses a
// database opened with another key: its sealed values would be unreadable.
func checkDataKey(ctx context.Context, db *sql.DB, check string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var have string
	err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE name = 'data_key_check'`).Scan(&have)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO meta (name, value) VALUES ('data_key_check', ?)`, check); err != nil {
			return err
		}
	case err != nil:
		return err
	case have != check:
		return keystation.Errorf(keystation.EINTERNAL, "the data key does not match this database: restore the data directory's %s or set the right KEYSTATION_DATA_KEY", "keystation.key")
	}
	return tx.Commit()
}
