package store

import (
	"context"
	"time"
)

// Hooks for the external tests.

// HoldWriter makes the writer wait, so that operations queue up behind it
// and run together as one group once release is called.
func HoldWriter(s *Server) (release func()) {
	started, rel := make(chan struct{}), make(chan struct{})
	go s.g.do(context.Background(), func(*txn) error {
		close(started)
		<-rel
		return nil
	})
	<-started
	return func() { close(rel) }
}

// WaitQueued waits until n write operations are queued for the writer.
func WaitQueued(s *Server, n int) bool {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if len(s.g.queue) >= n {
			return true
		}
	}
	return false
}

// SetWiseAllocations is the number of keys allocated set-wise so far.
func SetWiseAllocations(s *Server) int64 { return s.setWise.Load() }

// HookWALSync runs fn in place of the fsync that makes group commits
// durable, until the test ends.
func HookWALSync(t interface{ Cleanup(func()) }, s *Server, fn func() error) {
	s.g.syncHook.Store(&fn)
	t.Cleanup(func() { s.g.syncHook.Store(nil) })
}

// WriterSynchronous is PRAGMA synchronous on the writer connection, the one
// transactions outside the group commit use.
func WriterSynchronous(s *Server) (int, error) {
	var v int
	err := s.c.w.QueryRow(`PRAGMA synchronous`).Scan(&v)
	return v, err
}

// WALRound is one round of the checkpointer (see walRound).
func WALRound(ck, w func() (frames, copied int, err error), limit int64, waited int) int {
	return walRound(ck, w, limit, waited)
}

// SetWALRestartFrames sets how many frames the WAL may hold before the
// checkpointer starts it over, until the test ends.
func SetWALRestartFrames(t interface{ Cleanup(func()) }, n int) {
	old := walRestartFrames.Swap(int64(n))
	t.Cleanup(func() { walRestartFrames.Store(old) })
}

// SetSyncRuns turns the set-wise application of sync reports (see syncRun)
// on or off until the test ends.
func SetSyncRuns(t interface{ Cleanup(func()) }, on bool) {
	was := syncRunsOff.Load()
	syncRunsOff.Store(!on)
	t.Cleanup(func() { syncRunsOff.Store(was) })
}

// SyncRunReports is the number of sync reports applied set-wise so far.
func SyncRunReports() int64 { return syncRunReports.Load() }

// PCacheInstalled reports whether SQLite's page cache is wrapped (see
// pcache.go), and PCacheTruncates how many truncations the wrapper skipped
// and forwarded so far.
func PCacheInstalled() bool { return pcacheInstalled == 0 }

func PCacheTruncates() (skipped, forwarded int64) { return pcacheTruncates() }

// SQLiteMemoryUsed is SQLite's count of the bytes it has allocated, in the
// whole process (0 once DisableMemoryStatistics has run).
func SQLiteMemoryUsed() int64 { return sqliteMemoryUsed() }
