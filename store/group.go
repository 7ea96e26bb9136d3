package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"keystation"
)

// grouper runs write operations in group commits: a single goroutine takes
// every operation waiting, runs them in one transaction, each inside its own
// SAVEPOINT so that one refused operation does not undo the others, and
// commits once. A durable (synchronous=FULL) commit is the expensive part of
// handing out a key; sharing it between concurrent requests is what lets the
// server hand out many more keys per second than the disk allows commits,
// without any request being answered before its data is on disk.
//
// The group's fsync runs outside the write lock: the writer commits with
// synchronous=NORMAL (SQLite writes the WAL frames but does not sync them)
// and hands the group to the syncer goroutine, which fsyncs the WAL file
// and only then answers the group's operations. Meanwhile the writer runs
// the next group, so the disk's sync time and the statements overlap
// instead of adding up (a slow disk no longer idles the writer). One
// committed group may wait for the syncer; the writer waits beyond that,
// so operations queue up meanwhile and the groups stay large, and the
// syncer covers all the groups waiting with one fsync. When no operation
// waits and the syncer is idle, the writer syncs the group itself, sparing
// a lone request the hand-over. Nothing is answered before it is durable:
// a sync of the WAL covers every frame written before it, those of the
// earlier groups included. Transactions outside the grouper keep
// synchronous=FULL, which the writer connection is set back to after each
// group.
type grouper struct {
	db       *sql.DB
	log      *slog.Logger
	queue    chan *groupOp
	maxBatch int
	// walPath is the WAL file the syncer fsyncs; empty, each group commits
	// with synchronous=FULL and is answered at once.
	walPath string
	walMu   sync.Mutex
	wal     *os.File     // open WAL file, under walMu
	pending atomic.Int64 // groups handed to the syncer, not answered yet
	toSync  chan []*groupOp
	// syncHook, when set, runs in place of the WAL's fsync (tests use it to
	// hold or fail the sync).
	syncHook atomic.Pointer[func() error]

	mu     sync.Mutex
	closed bool
	done   chan struct{}

	stmtMu sync.Mutex
	stmts  map[string]*sql.Stmt

	// batchers are set before the first operation and not changed after.
	batchers map[opKind]batcher
}

type groupOp struct {
	ctx context.Context
	fn  func(tx *txn) error
	// kind, when not zero, names a batcher that can run this operation
	// together with the others of its kind in the group in a few set-wise
	// statements; arg is what that batcher needs. fn stays the way to run
	// the operation on its own.
	kind opKind
	arg  any
	err  error
	done chan struct{}
}

// opKind names a kind of operation a batcher runs set-wise.
type opKind int

const (
	opGeneric opKind = iota
	opAcquire
)

// batcher runs several operations of one kind in a group's transaction. It
// sets each operation's err; an operation it cannot run set-wise it runs
// alone with t.runOne.
type batcher func(t *txn, ops []*groupOp)

// txn is a write transaction with cached prepared statements.
type txn struct {
	*sql.Tx
	ctx   context.Context
	g     *grouper
	stmts map[string]*sql.Stmt
}

// Each operation of a group runs inside its own savepoint; these statements
// are prepared once with the others.
const (
	qSyncNormal = "PRAGMA synchronous = NORMAL"
	qSyncFull   = "PRAGMA synchronous = FULL"
	qSavepoint  = "SAVEPOINT op"
	qRelease    = "RELEASE op"
	qRollbackTo = "ROLLBACK TO op"
)

// newGrouper starts the writer of db. walPath, when not empty, is db's WAL
// file, synced outside the write lock (see grouper).
func newGrouper(db *sql.DB, walPath string, log *slog.Logger) *grouper {
	g := &grouper{db: db, log: log, queue: make(chan *groupOp, 1024), maxBatch: 512, walPath: walPath,
		toSync: make(chan []*groupOp, 1), done: make(chan struct{}), stmts: map[string]*sql.Stmt{}, batchers: map[opKind]batcher{}}
	go g.loop()
	go g.syncer()
	return g
}

// do runs fn in the next group commit and returns once that commit is durable
// (or fn's error, in which case none of fn's changes were kept).
func (g *grouper) do(ctx context.Context, fn func(tx *txn) error) error {
	return g.doOp(ctx, &groupOp{fn: fn})
}

// doOp is do for an operation that may also be run set-wise (o.kind).
func (g *grouper) doOp(ctx context.Context, o *groupOp) error {
	o.ctx, o.done = ctx, make(chan struct{})
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return keystation.Errorf(keystation.EUNAVAILABLE, "the server is shutting down")
	}
	select {
	case g.queue <- o:
		g.mu.Unlock()
	case <-ctx.Done():
		g.mu.Unlock()
		return ctx.Err()
	}
	// Once queued, wait for the outcome even if ctx ends: the operation may
	// already be committed, and the caller must not guess.
	<-o.done
	return o.err
}

func (g *grouper) close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.queue)
	}
	g.mu.Unlock()
	<-g.done
	g.stmtMu.Lock()
	for _, s := range g.stmts {
		s.Close()
	}
	g.stmtMu.Unlock()
}

func (g *grouper) loop() {
	defer close(g.toSync)
	for o := range g.queue {
		g.run(drainInto(g.queue, append(make([]*groupOp, 0, 16), o), g.maxBatch))
	}
}

// run runs a group in one transaction and commits it. The operations are
// answered once the commit is durable: by the syncer, or here when the
// group commits with synchronous=FULL or fails.
func (g *grouper) run(batch []*groupOp) {
	ctx := context.Background()
	conn, err := g.db.Conn(ctx)
	if err != nil {
		g.fail(batch, "connect", err)
		return
	}
	defer conn.Close()
	async := g.walPath != ""
	if async {
		if _, err := conn.ExecContext(ctx, qSyncNormal); err != nil {
			g.fail(batch, "set synchronous", err)
			return
		}
		// Back to FULL for the transactions outside the grouper, before
		// the connection goes back to the pool. If that fails the
		// connection is dropped, so none runs with NORMAL.
		defer func() {
			if _, err := conn.ExecContext(ctx, qSyncFull); err != nil {
				g.log.Error("reset synchronous", "err", err)
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}()
	}
	committed := g.runTx(ctx, conn, batch)
	if !async || !committed {
		g.answer(batch, nil)
		return
	}
	if len(g.queue) == 0 && g.pending.Load() == 0 {
		// Nobody waits for the writer and the syncer is idle: sync here,
		// sparing the hand-over (a lone request's latency).
		g.answer(batch, g.durable(g.syncWAL(), 1))
		return
	}
	g.pending.Add(1)
	g.toSync <- batch
}

// durable turns the outcome of the sync after groups commits into their
// operations' outcome.
func (g *grouper) durable(err error, groups int) error {
	if err == nil {
		return nil
	}
	// The commits are in the WAL but may not be on disk: their callers are
	// told they failed (a retry finds what was kept, as after a crash).
	g.log.Error("sync the WAL after group commits", "groups", groups, "err", err)
	return keystation.Errorf(keystation.EUNAVAILABLE, "the server could not make the change durable: try again")
}

// runTx runs batch in a transaction on conn and says whether it committed;
// each operation's err is set.
func (g *grouper) runTx(ctx context.Context, conn *sql.Conn, batch []*groupOp) bool {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		g.log.Error("begin group transaction", "err", err)
		for _, o := range batch {
			o.err = fmt.Errorf("begin: %w", err)
		}
		return false
	}
	t := &txn{Tx: tx, ctx: ctx, g: g, stmts: map[string]*sql.Stmt{}}
	if len(batch) == 1 {
		o := batch[0]
		if o.err = o.ctx.Err(); o.err == nil {
			o.err = safeCall(o.fn, t)
		}
		if o.err != nil {
			tx.Rollback()
			return false
		}
	} else {
		var sets map[opKind][]*groupOp
		for _, o := range batch {
			if o.err = o.ctx.Err(); o.err != nil {
				continue
			}
			if g.batchers[o.kind] != nil {
				if sets == nil {
					sets = map[opKind][]*groupOp{}
				}
				sets[o.kind] = append(sets[o.kind], o)
				continue
			}
			t.runOne(o)
		}
		// Operations in one group are concurrent (none has been answered),
		// so running a kind's set after the others is a valid order.
		for k, ops := range sets {
			if len(ops) == 1 {
				t.runOne(ops[0])
				continue
			}
			g.batchers[k](t, ops)
		}
	}
	if err := tx.Commit(); err != nil {
		g.log.Error("commit group transaction", "ops", len(batch), "err", err)
		for _, o := range batch {
			if o.err == nil {
				o.err = fmt.Errorf("commit: %w", err)
			}
		}
		return false
	}
	return true
}

// fail answers every operation of batch with err.
func (g *grouper) fail(batch []*groupOp, what string, err error) {
	g.log.Error("group "+what, "ops", len(batch), "err", err)
	for _, o := range batch {
		o.err = fmt.Errorf("%s: %w", what, err)
	}
	g.answer(batch, nil)
}

// answer hands each operation its outcome; syncErr, when not nil, is the
// outcome of those that succeeded but whose commit did not become durable.
func (g *grouper) answer(batch []*groupOp, syncErr error) {
	for _, o := range batch {
		if syncErr != nil && o.err == nil {
			o.err = syncErr
		}
		close(o.done)
	}
}

// syncer makes each committed group durable, in commit order, and answers
// its operations.
func (g *grouper) syncer() {
	defer close(g.done)
	defer func() {
		g.walMu.Lock()
		if g.wal != nil {
			g.wal.Close()
		}
		g.walMu.Unlock()
	}()
	var batches [][]*groupOp
	for batch := range g.toSync {
		// Every group committed by now is covered by one sync.
		batches = drainInto(g.toSync, append(batches[:0], batch), 0)
		syncErr := g.durable(g.syncWAL(), len(batches))
		for _, b := range batches {
			g.answer(b, syncErr)
		}
		g.pending.Add(-int64(len(batches)))
	}
}

// drainInto appends to buf what ch holds now, without waiting, until buf
// has max elements (0: no limit).
func drainInto[T any](ch <-chan T, buf []T, max int) []T {
	for max == 0 || len(buf) < max {
		select {
		case v, ok := <-ch:
			if !ok {
				return buf
			}
			buf = append(buf, v)
		default:
			return buf
		}
	}
	return buf
}

// syncWAL makes every commit so far durable. The writer and the syncer
// may both call it.
func (g *grouper) syncWAL() error {
	if h := g.syncHook.Load(); h != nil {
		return (*h)()
	}
	g.walMu.Lock()
	defer g.walMu.Unlock()
	return g.fsyncWAL()
}

// fsyncWAL fsyncs the WAL file, under walMu. The file stays open between
// syncs: SQLite keeps the WAL in place while any connection is
// open, and the server's connections stay open until it closes. After an
// error it is opened again on the next sync.
func (g *grouper) fsyncWAL() error {
	if g.wal == nil {
		f, err := os.OpenFile(g.walPath, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		g.wal = f
	}
	err := g.wal.Sync()
	if err != nil {
		g.wal.Close()
		g.wal = nil
	}
	return err
}

// runOne runs one operation of a group inside its own savepoint, so that its
// failure undoes only its own changes.
func (t *txn) runOne(o *groupOp) {
	if _, err := t.exec(qSavepoint); err != nil {
		o.err = err
		return
	}
	o.err = safeCall(o.fn, t)
	if o.err != nil {
		if _, err := t.exec(qRollbackTo); err != nil {
			t.g.log.Error("rollback to savepoint", "err", err)
		}
	}
	if _, err := t.exec(qRelease); err != nil {
		t.g.log.Error("release savepoint", "err", err)
	}
}

func safeCall(fn func(*txn) error, t *txn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in write operation: %v\n%s", r, debug.Stack())
		}
	}()
	return fn(t)
}

// prepare prepares queries on the writer connection once, before any
// transaction holds it; transactions then reuse them.
func (g *grouper) prepare(ctx context.Context, queries ...string) error {
	g.stmtMu.Lock()
	defer g.stmtMu.Unlock()
	for _, q := range queries {
		if _, ok := g.stmts[q]; ok {
			continue
		}
		s, err := g.db.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %q: %w", q, err)
		}
		g.stmts[q] = s
	}
	return nil
}

// stmt returns query bound to this transaction: a statement prepared at
// start-up where there is one, else one prepared for this transaction only.
func (t *txn) stmt(query string) (*sql.Stmt, error) {
	if s, ok := t.stmts[query]; ok {
		return s, nil
	}
	t.g.stmtMu.Lock()
	s, ok := t.g.stmts[query]
	t.g.stmtMu.Unlock()
	var ts *sql.Stmt
	if ok {
		ts = t.StmtContext(t.ctx, s)
	} else {
		var err error
		if ts, err = t.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
	}
	t.stmts[query] = ts
	return ts, nil
}

func (t *txn) exec(query string, args ...any) (sql.Result, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(t.ctx, args...)
}

func (t *txn) queryRow(query string, args ...any) *sql.Row {
	s, err := t.stmt(query)
	if err != nil {
		// Let Scan report the error.
		return t.Tx.QueryRowContext(t.ctx, query, args...)
	}
	return s.QueryRowContext(t.ctx, args...)
}

// txnQuerier runs a txn's queries through its prepared statements.
type txnQuerier struct{ t *txn }

func (q txnQuerier) QueryRowContext(_ context.Context, query string, args ...any) *sql.Row {
	return q.t.queryRow(query, args...)
}

func (q txnQuerier) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	return q.t.exec(query, args...)
}

func (t *txn) query(query string, args ...any) (*sql.Rows, error) {
	s, err := t.stmt(query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(t.ctx, args...)
}
