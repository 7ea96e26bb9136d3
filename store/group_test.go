package store_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"keystation"
	"keystation/store"
)

// TestGroupCommitConcurrentAcquire hands keys to many machines at once: the
// group commit must give each its own key, and each the same key again.
func TestGroupCommitConcurrentAcquire(t *testing.T) {
	const n = 200
	f := newFixture(t, store.Options{})
	f.importN("home", n)
	var wg sync.WaitGroup
	got := make([]store.Assignment, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			got[i], errs[i] = f.acquire(fmt.Sprintf("SN-%04d", i), osHome)
		})
	}
	wg.Wait()
	seen := map[keystation.KeyID]int{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("machine %d: %v", i, errs[i])
		}
		if j, ok := seen[got[i].KeyID]; ok {
			t.Fatalf("machines %d and %d got the same key %s", j, i, got[i].KeyID)
		}
		seen[got[i].KeyID] = i
	}
	// Again, concurrently: every machine gets its key back.
	for i := range n {
		wg.Go(func() {
			a, err := f.acquire(fmt.Sprintf("SN-%04d", i), osHome)
			if err != nil || !a.Reused || a.KeyID != got[i].KeyID {
				t.Errorf("machine %d again: %+v, %v; want %s", i, a, err, got[i].KeyID)
			}
		})
	}
	wg.Wait()
	if c := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'assigned'`); c != n {
		t.Errorf("%d keys assigned, want %d", c, n)
	}
	if c := f.count(`SELECT COUNT(DISTINCT machine_id) FROM product_keys WHERE state = 'assigned'`); c != n {
		t.Errorf("keys assigned to %d machines, want %d", c, n)
	}
	f.checkHistory()
}

// TestGroupCommitFailureDoesNotUndoOthers mixes refused operations
// (EDITION_MISMATCH, POOL_EMPTY, KEY_NOT_ASSIGNED) with good ones in the same
// group commits: each refused one changes nothing, the others all stick.
func TestGroupCommitFailureDoesNotUndoOthers(t *testing.T) {
	var logBuf syncBuffer
	log := slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := newFixture(t, store.Options{Logger: log})
	f.importN("home", 20)
	const proKeys, proWanted = 30, 50
	f.importN("pro", proKeys)
	// Ten machines hold home keys; they ask for pro keys below (mismatch).
	holders := make([]store.Assignment, 10)
	for i := range holders {
		holders[i] = f.mustAcquire(fmt.Sprintf("HOLDER-%d", i), osHome)
	}
	histBefore := f.count(`SELECT COUNT(*) FROM key_history`)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		okKeys    = map[keystation.KeyID]string{}
		codes     = map[string]int{}
		mismatchN = 40
	)
	record := func(who string, a store.Assignment, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			codes[keystation.ErrorCode(err)]++
			return
		}
		if prev, ok := okKeys[a.KeyID]; ok && prev != who {
			t.Errorf("%s and %s got the same key %s", prev, who, a.KeyID)
		}
		okKeys[a.KeyID] = who
	}
	for i := range proWanted {
		wg.Go(func() {
			who := fmt.Sprintf("PRO-%d", i)
			a, err := f.acquire(who, osPro)
			record(who, a, err)
		})
	}
	for i := range mismatchN {
		wg.Go(func() {
			who := fmt.Sprintf("HOLDER-%d", i%len(holders))
			a, err := f.acquire(who, osPro)
			record(who, a, err)
		})
	}
	for i := range 20 {
		wg.Go(func() {
			// A report for a key the machine does not hold.
			_, err := f.report(failure(holders[i%len(holders)].KeyID, fmt.Sprintf("PRO-%d", i), osPro, "0xC004C003", "x"))
			mu.Lock()
			codes["report:"+keystation.ErrorCode(err)]++
			mu.Unlock()
		})
	}
	wg.Wait()
	if len(okKeys) != proKeys {
		t.Errorf("%d pro keys handed out, want %d", len(okKeys), proKeys)
	}
	want := map[string]int{
		keystation.EPOOLEMPTY:               proWanted - proKeys,
		keystation.EEDITIONMISMATCH:         mismatchN,
		"report:" + keystation.ENOTASSIGNED: 20,
	}
	for c, n := range want {
		if codes[c] != n {
			t.Errorf("%d × %s, want %d (all: %v)", codes[c], c, n, codes)
		}
	}
	// Every key handed out is really assigned to its machine.
	for id, who := range okKeys {
		a, err := f.acquire(who, osPro)
		if err != nil || !a.Reused || a.KeyID != id {
			t.Errorf("%s: %+v, %v; want %s kept", who, a, err, id)
		}
	}
	pools := map[string]map[keystation.KeyState]int{}
	pc, _ := f.s.PoolCounts(ctx, 0)
	for _, p := range pc {
		pools[p.Edition] = p.States
	}
	if pools["pro"][keystation.StateAssigned] != proKeys || pools["pro"][keystation.StateAvailable] != 0 {
		t.Errorf("pro pool %v", pools["pro"])
	}
	if pools["home"][keystation.StateAssigned] != len(holders) || pools["home"][keystation.StateAvailable] != 20-len(holders) {
		t.Errorf("home pool %v", pools["home"])
	}
	if got := f.count(`SELECT COUNT(*) FROM key_history`); got != histBefore+proKeys {
		t.Errorf("%d history rows added, want %d", got-histBefore, proKeys)
	}
	if n := f.count(`SELECT COUNT(*) FROM reports`); n != 0 {
		t.Errorf("%d reports recorded from refused reports", n)
	}
	f.checkHistory()
	// Evidence that refused and kept operations did share a commit.
	mixed := false
	dec := json.NewDecoder(bytes.NewReader(logBuf.Bytes()))
	for dec.More() {
		var rec struct {
			Msg  string `json:"msg"`
			Ops  int    `json:"ops"`
			Kept int    `json:"kept"`
		}
		if err := dec.Decode(&rec); err != nil {
			t.Fatal(err)
		}
		if rec.Msg == "group commit" && rec.Kept > 1 && rec.Ops > rec.Kept {
			mixed = true
		}
	}
	if !mixed {
		t.Log("no group commit mixed refused and kept operations this run (timing); the counts above still hold")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

func (s *syncBuffer) String() string { return string(s.Bytes()) }

// A group is committed with its fsync outside the write lock: its
// operations are answered only once the WAL is synced, a failed sync is
// an error for each of them (and what was committed is found again), and
// the writer connection is left with synchronous=FULL for the transactions
// outside the group commit.
func TestGroupAnsweredOnlyOnceDurable(t *testing.T) {
	f := newFixture(t, store.Options{})
	f.importN("home", 20)

	t.Run("held sync holds the answer", func(t *testing.T) {
		entered, release := make(chan struct{}, 16), make(chan struct{})
		store.HookWALSync(t, f.s, func() error {
			entered <- struct{}{}
			<-release
			return nil
		})
		type result struct {
			a   store.Assignment
			err error
		}
		done := make(chan result, 1)
		go func() {
			a, err := f.acquire("SN-HELD", osHome)
			done <- result{a, err}
		}()
		<-entered // committed, now syncing
		if c := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'assigned'`); c != 1 {
			t.Fatalf("%d keys assigned while the sync runs, want the committed 1", c)
		}
		select {
		case r := <-done:
			t.Fatalf("answered before the commit was durable: %+v %v", r.a, r.err)
		default:
		}
		close(release)
		r := <-done
		if r.err != nil || r.a.KeyID == 0 {
			t.Fatalf("after the sync: %+v %v", r.a, r.err)
		}
	})

	t.Run("failed sync is an error, the retry finds the key", func(t *testing.T) {
		store.HookWALSync(t, f.s, func() error { return errors.New("EIO") })
		_, err := f.acquire("SN-EIO", osHome)
		wantCode(t, err, keystation.EUNAVAILABLE)
		var committed int64
		if err := f.raw.QueryRow(`SELECT k.key_id FROM product_keys k JOIN machines m ON m.id = k.machine_id
			WHERE k.state = 'assigned' ORDER BY k.id DESC LIMIT 1`).Scan(&committed); err != nil {
			t.Fatal(err)
		}
		store.HookWALSync(t, f.s, func() error { return nil })
		a := f.mustAcquire("SN-EIO", osHome)
		if !a.Reused || int64(a.KeyID) != committed {
			t.Fatalf("retry: %+v, want the committed key %d again", a, committed)
		}
	})

	t.Run("groups committed behind a held sync wait for it", func(t *testing.T) {
		var mu sync.Mutex
		syncs := 0
		entered, release := make(chan struct{}, 64), make(chan struct{})
		store.HookWALSync(t, f.s, func() error {
			mu.Lock()
			syncs++
			mu.Unlock()
			entered <- struct{}{}
			<-release
			return nil
		})
		// Four groups: a held one that goes to the syncer (an
		// allocation waits behind it) and blocks in the sync; that
		// allocation's group, committed behind it; another held group,
		// which waits for the syncer; five allocations behind it. None
		// is answered before the first sync is let go.
		var wg sync.WaitGroup
		hold := store.HoldWriter(f.s)
		wg.Go(func() { f.mustAcquire("SN-Q0", osHome) })
		if !store.WaitQueued(f.s, 1) {
			t.Fatal("the allocation did not queue up")
		}
		hold()
		<-entered // the first group is syncing
		for f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'assigned'`) < 2+1 {
			time.Sleep(time.Millisecond)
		}
		hold = store.HoldWriter(f.s)
		for i := 1; i <= 5; i++ {
			wg.Go(func() { f.mustAcquire(fmt.Sprintf("SN-Q%d", i), osHome) })
		}
		if !store.WaitQueued(f.s, 5) {
			t.Fatal("the allocations did not queue up")
		}
		hold()
		if c := f.count(`SELECT COUNT(*) FROM product_keys WHERE state = 'assigned'`); c < 2+1 {
			t.Fatalf("%d keys assigned", c)
		}
		close(release)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		// The syncer covers the groups waiting for it with one sync when
		// they are there together; how they line up is the scheduler's.
		if syncs < 2 || syncs > 4 {
			t.Errorf("%d syncs for four groups, want 2 to 4", syncs)
		}
	})

	if v, err := store.WriterSynchronous(f.s); err != nil || v != 2 {
		t.Errorf("writer connection synchronous = %d (%v), want 2 (FULL)", v, err)
	}
	f.checkHistory()
}
