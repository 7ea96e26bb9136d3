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

// TestWALRound drives the checkpointer's rounds with scripted checkpoint
// results: the writer connection is held only when the copy beside the
// writer cannot reach the WAL's end, or reached it a round ago and the WAL
// has not started over since.
func TestWALRound(t *testing.T) {
	type result struct{ frames, copied int }
	tests := []struct {
		name       string
		waited     int
		ck         []result // the results of the checkpoints beside the writer, in order
		wantHeld   bool
		wantWaited int
	}{
		{name: "small WAL", ck: []result{{50, 50}}},
		{name: "small WAL forgets an earlier copy", waited: 500, ck: []result{{50, 50}}},
		{name: "writer never pauses", ck: []result{{200, 150}, {230, 200}}, wantHeld: true},
		{name: "writer paused: copied whole", ck: []result{{200, 150}, {200, 200}}, wantWaited: 200},
		{name: "not started over by the next round", waited: 200, ck: []result{{200, 200}}, wantHeld: true},
		{name: "not started over, more frames since", waited: 200, ck: []result{{260, 200}}, wantHeld: true},
		{name: "started over and grew again", waited: 500, ck: []result{{200, 100}, {200, 200}}, wantWaited: 200},
		{name: "started over, writer busy", waited: 500, ck: []result{{200, 100}, {240, 200}}, wantHeld: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			ck := func() (int, int, error) {
				if calls >= len(tt.ck) {
					t.Fatalf("checkpoint beside the writer %d times, scripted %d", calls+1, len(tt.ck))
				}
				r := tt.ck[calls]
				calls++
				return r.frames, r.copied, nil
			}
			held := false
			w := func() (int, int, error) {
				held = true
				return 0, 0, nil
			}
			got := store.WALRound(ck, w, 100, tt.waited)
			if held != tt.wantHeld || got != tt.wantWaited {
				t.Errorf("held the writer %v, waited %d; want %v, %d", held, got, tt.wantHeld, tt.wantWaited)
			}
			if calls != len(tt.ck) {
				t.Errorf("checkpoint beside the writer %d times, want %d", calls, len(tt.ck))
			}
		})
	}
}
