package store_test

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keystation/store"
)

// TestWALStartsOverUnderSteadyWrites keeps the writer busy without a pause
// and checks that the WAL is started over again and again (its header's
// salt changes each time), so that it stays bounded. A checkpoint beside a
// writer that never pauses never copies the whole WAL, and SQLite only
// starts the WAL over once it has: the WAL would grow without end.
func TestWALStartsOverUnderSteadyWrites(t *testing.T) {
	store.SetWALRestartFrames(t, 64)
	f := newFixture(t, store.Options{})
	f.importN("home", 60000)

	var stop atomic.Bool
	var wg sync.WaitGroup
	var seq atomic.Int64
	errs := make(chan error, 1)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if _, err := f.acquire(fmt.Sprintf("WAL-%d", seq.Add(1)), osHome); err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		}()
	}
	wal := f.path + "-wal"
	salts := map[string]bool{}
	var maxSize int64
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && len(salts) < 4; time.Sleep(20 * time.Millisecond) {
		if s, err := walSalt(wal); err == nil {
			salts[s] = true
		}
		if st, err := os.Stat(wal); err == nil {
			maxSize = max(maxSize, st.Size())
		}
	}
	stop.Store(true)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	if len(salts) < 4 {
		t.Errorf("the WAL was started over %d times under steady writes in 3 s (%d allocations, WAL up to %d bytes), want at least 3",
			len(salts)-1, seq.Load(), maxSize)
	}
}

// walSalt returns the salt in a WAL file's header, which SQLite draws anew
// each time it starts the WAL over.
func walSalt(path string) (string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer fh.Close()
	hdr := make([]byte, 32)
	if _, err := fh.ReadAt(hdr, 0); err != nil {
		return "", err
	}
	if bytes.Equal(hdr[16:24], make([]byte, 8)) {
		return "", fmt.Errorf("no WAL header yet")
	}
	return fmt.Sprintf("%x", hdr[16:24]), nil
}
