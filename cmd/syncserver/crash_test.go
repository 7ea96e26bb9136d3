package main_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"keystation"
	"keystation/internal/testutil"
	"keystation/seal"
	"keystation/store"
)

// ledger is what the clients of the crash test were told: the key each
// machine got, and the machines whose request went unanswered (the server may
// or may not have assigned them a key before it died).
type ledger struct {
	t        *testing.T
	machines []testutil.Machine
	editions []string

	mu        sync.Mutex
	key       map[int]testutil.Answer // machine index → the key it was given
	owner     map[int64]int           // keyId → machine index
	uncertain map[int]bool            // asked, never answered, no known key
	touched   []int                   // machines asked at least once, in order
	asked     map[int]bool
	resolved  int // unanswered machines that later got a key
	empty     int // POOL_EMPTY answers

	run     int         // the server's life (0, 1, …) the clients talk to
	lostIn  map[int]int // machine index → the life its request went unanswered in
	started []time.Time // when each life started
}

func newLedger(t *testing.T, n int) *ledger {
	l := &ledger{t: t, key: map[int]testutil.Answer{}, owner: map[int64]int{}, uncertain: map[int]bool{}, asked: map[int]bool{}, lostIn: map[int]int{}}
	l.editions = []string{"home", "pro"}
	for i := range n {
		ed := l.editions[i%2]
		l.machines = append(l.machines, testutil.Machine{SN: fmt.Sprintf("CRASH-%05d", i), Model: "KS-Crash 1", OSVersion: osVersions[ed]})
	}
	return l
}

// ask sends one acquire for machine i and checks its answer against all
// earlier ones: a machine keeps its key, and a key has one machine.
func (l *ledger) ask(ctx context.Context, c *testutil.Client, i int) {
	l.mu.Lock()
	if !l.asked[i] {
		l.asked[i] = true
		l.touched = append(l.touched, i)
	}
	l.mu.Unlock()
	a, err := c.Acquire(ctx, l.machines[i])
	l.mu.Lock()
	defer l.mu.Unlock()
	sn := l.machines[i].SN
	prev, had := l.key[i]
	switch {
	case err != nil:
		if !had {
			l.uncertain[i] = true
			if _, ok := l.lostIn[i]; !ok {
				l.lostIn[i] = l.run
			}
		}
	case a.OK():
		if had && (prev.KeyID != a.KeyID || prev.Key != a.Key) {
			l.t.Errorf("machine %s got keyId %d, earlier keyId %d", sn, a.KeyID, prev.KeyID)
			return
		}
		if o, taken := l.owner[a.KeyID]; taken && o != i {
			l.t.Errorf("keyId %d handed to machine %s, earlier to machine %s", a.KeyID, sn, l.machines[o].SN)
			return
		}
		if !had && l.uncertain[i] {
			l.resolved++
		}
		delete(l.uncertain, i)
		l.key[i], l.owner[a.KeyID] = a, i
	case a.Status == http.StatusConflict && a.Code == keystation.EPOOLEMPTY:
		if had {
			l.t.Errorf("machine %s holds keyId %d but was told %s", sn, prev.KeyID, a)
		}
		// An unanswered request did not assign a key: the machine would have
		// got it now.
		delete(l.uncertain, i)
		l.empty++
	default:
		l.t.Errorf("machine %s: unexpected answer %s", sn, a)
	}
}

// pick returns a machine asked before, at random, or -1.
func (l *ledger) pick(r *rand.Rand) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.touched) == 0 {
		return -1
	}
	return l.touched[r.IntN(len(l.touched))]
}

// reaskAll has every machine asked so far ask again through workers clients.
func (l *ledger) reaskAll(ctx context.Context, c *testutil.Client, workers int) {
	l.mu.Lock()
	list := append([]int(nil), l.touched...)
	l.mu.Unlock()
	if len(list) == 0 {
		return
	}
	// One request first: it pays for bcrypt and fills the credential cache.
	l.ask(ctx, c, list[0])
	work := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range work {
				l.ask(ctx, c, i)
			}
		})
	}
	for _, i := range list[1:] {
		work <- i
	}
	close(work)
	wg.Wait()
}

// TestCrashNeverDoubleAllocates runs the real syncserver binary, storms it
// with concurrent acquires and SIGKILLs it at a random moment, several times
// on the same data directory. After every restart each machine that was
// given a key gets the same key again, a machine whose request went
// unanswered gets the key it may already have been given, and no key ever
// has two machines (invariants 1 and 4 across crashes). At the end the
// database, read in-process, agrees: one machine per assigned key, one key
// per machine, and pool counts that add up.
func TestCrashNeverDoubleAllocates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the sync server binary")
	}
	const (
		kills      = 5
		clients    = 32
		machines   = 30000
		extraKeys  = 4000 // imported per edition on top of demo's 1,000
		reaskShare = 4    // one request in reaskShare repeats a machine
	)
	ctx, cancel := context.WithTimeout(context.Background(), 80*time.Second)
	defer cancel()
	tmp := t.TempDir()
	bin, err := testutil.BuildSyncserver(ctx, tmp)
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(tmp, "data")
	op, err := testutil.Demo(ctx, bin, data)
	if err != nil {
		t.Fatal(err)
	}
	poolSize := map[string]int{}
	for i, ed := range []string{"home", "pro"} {
		file := filepath.Join(tmp, ed+".txt")
		if err := testutil.WriteKeyFile(file, testutil.GenerateKeys(extraKeys, uint64(100+i))); err != nil {
			t.Fatal(err)
		}
		if out, err := testutil.RunCommand(ctx, bin, "", "keys", "import", "--data", data, "--edition", ed, file); err != nil {
			t.Fatalf("import %s keys: %v\n%s", ed, err, out)
		}
		poolSize[ed] = 1000 + extraKeys
	}

	seed := uint64(time.Now().UnixNano())
	t.Logf("random seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	l := newLedger(t, machines)
	var next atomic.Int64
	logPath := filepath.Join(tmp, "server.log")
	defer func() {
		if t.Failed() {
			raw, _ := os.ReadFile(logPath)
			if len(raw) > 8000 {
				raw = raw[len(raw)-8000:]
			}
			t.Logf("server log (tail):\n%s", raw)
		}
	}()

	for run := 0; run <= kills; run++ {
		l.run = run
		l.started = append(l.started, time.Now())
		p, err := testutil.StartServer(ctx, bin, data, logPath)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		t.Cleanup(func() {
			select {
			case <-p.Exited():
			default:
				p.Kill()
			}
		})
		c := testutil.NewClient(p.Addr, op.Username, op.Password, clients)
		// Every machine that asked before the crash asks again.
		l.reaskAll(ctx, c, clients)
		if run == 0 {
			// One request alone first, so that the storm starts with the
			// operator's password verified (bcrypt) and cached.
			l.ask(ctx, c, int(next.Add(1)-1))
		}
		if run == kills {
			if err := p.Stop(15 * time.Second); err != nil {
				t.Errorf("graceful stop: %v", err)
			}
			c.CloseIdle()
			break
		}

		// The storm: clients ask for new machines and repeat old ones until
		// the server dies under them.
		before := len(l.owner)
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for cl := range clients {
			r := rand.New(rand.NewPCG(seed, uint64(run*1000+cl)))
			wg.Go(func() {
				for n := 0; n < 100_000; n++ {
					select {
					case <-stop:
						return
					default:
					}
					i := -1
					if r.IntN(reaskShare) == 0 {
						i = l.pick(r)
					}
					if i < 0 {
						if i = int(next.Add(1) - 1); i >= machines {
							i = l.pick(r)
						}
					}
					l.ask(ctx, c, i)
				}
			})
		}
		time.Sleep(time.Duration(100+rng.IntN(600)) * time.Millisecond)
		close(stop)
		p.Kill()
		wg.Wait()
		c.CloseIdle()
		l.mu.Lock()
		t.Logf("run %d: killed after %d new keys; %d machines with a key, %d unanswered, %d unanswered resolved to a key so far, %d POOL_EMPTY",
			run, len(l.owner)-before, len(l.key), len(l.uncertain), l.resolved, l.empty)
		l.mu.Unlock()
		if t.Failed() {
			return
		}
	}
	if len(l.uncertain) != 0 {
		t.Errorf("%d machines still unresolved after the last restart", len(l.uncertain))
	}

	// Read the database in-process now that the server has exited.
	checkCrashStore(t, ctx, data, l, poolSize)
}

// checkCrashStore opens the data directory's store and checks it against
// the ledger: each assigned key is held by exactly one machine, each machine
// holds one key and was assigned one key ever, nothing was assigned that no
// client was told of, and every pool adds up.
func checkCrashStore(t *testing.T, ctx context.Context, data string, l *ledger, poolSize map[string]int) {
	t.Helper()
	box, _, err := seal.Load(data, "")
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenServer(ctx, filepath.Join(data, store.ServerFile), store.Options{Box: box})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	defer st.Close()

	told := map[string]int{}
	for i := range l.key {
		told[l.editions[i%2]]++
	}
	for ed, size := range poolSize {
		states := poolStates(t, st, ed)
		sum := 0
		for _, n := range states {
			sum += n
		}
		if sum != size || states[keystation.StateAvailable]+states[keystation.StateAssigned] != size {
			t.Errorf("%s pool: %v, want available + assigned = %d", ed, states, size)
		}
		if states[keystation.StateAssigned] != told[ed] {
			t.Errorf("%s pool: %d keys assigned, but clients were given %d", ed, states[keystation.StateAssigned], told[ed])
		}
	}
	machineOf := map[int64]int{}
	kept := 0 // unanswered requests the server had committed: the retry got that key
	for i, a := range l.key {
		ki, err := st.KeyByID(ctx, keystation.KeyID(a.KeyID))
		if err != nil {
			t.Errorf("keyId %d: %v", a.KeyID, err)
			continue
		}
		sn := l.machines[i].SN
		if ki.State != keystation.StateAssigned || ki.MachineID == 0 {
			t.Errorf("keyId %d given to %s is %s (machine %d), want assigned", a.KeyID, sn, ki.State, ki.MachineID)
		}
		if o, dup := machineOf[ki.MachineID]; dup {
			t.Errorf("machine row %d holds the keys of %s and %s", ki.MachineID, l.machines[o].SN, sn)
		}
		machineOf[ki.MachineID] = i
		var assigned []string
		for _, h := range ki.History {
			if h.To == keystation.StateAssigned {
				assigned = append(assigned, h.At)
			}
		}
		if len(assigned) != 1 {
			t.Errorf("keyId %d: %d assignments in its history, want 1", a.KeyID, len(assigned))
			continue
		}
		if run, lost := l.lostIn[i]; lost {
			at, err := time.Parse("2006-01-02T15:04:05.000000Z", assigned[0])
			if err == nil && at.Before(l.started[run+1]) {
				kept++
			}
		}
	}
	t.Logf("store: %d keys assigned to %d machines, checked against the clients' answers; "+
		"%d of %d unanswered requests had been committed before the kill and their retry got that key back",
		len(l.key), len(machineOf), kept, len(l.lostIn))

	// SQLite itself survived the kills.
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(data, store.ServerFile)+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&res); err != nil || res != "ok" {
		t.Errorf("integrity_check: %q, %v", res, err)
	}
}
