package main_test

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"sync"
	"testing"

	"keystation"
	"keystation/internal/testutil"
)

// outcome is what one acquire for one machine got.
type outcome struct {
	machine testutil.Machine
	edition string
	answer  testutil.Answer
	err     error
}

// checkAnswer reports an answer that is neither a key nor a clear
// POOL_EMPTY refusal.
func checkAnswer(t *testing.T, o outcome) {
	t.Helper()
	switch {
	case o.err != nil:
		t.Errorf("machine %s: no answer: %v", o.machine.SN, o.err)
	case o.answer.OK():
	case o.answer.Status == http.StatusConflict && o.answer.Code == keystation.EPOOLEMPTY && o.answer.Message != "":
	default:
		t.Errorf("machine %s: got %s, want a key or 409 %s", o.machine.SN, o.answer, keystation.EPOOLEMPTY)
	}
}

// TestConcurrentAcquireHandsOutEachKeyOnce drains key pools with many
// concurrent clients over HTTP, every request for a new machine, and checks
// that each key went to exactly one machine (invariant 1), that every client
// got a key or a clear POOL_EMPTY, that the counts match the pools, and that
// each machine asking again gets the same key (invariant 4).
func TestConcurrentAcquireHandsOutEachKeyOnce(t *testing.T) {
	tests := []struct {
		name    string
		clients int
		pools   map[string]int
	}{
		{"64 clients drain one pool", 64, map[string]int{"home": 500}},
		{"96 clients drain two pools", 96, map[string]int{"home": 300, "pro": 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, tt.pools)
			c := srv.client(t, tt.clients)
			editions := make([]string, 0, len(tt.pools))
			total := 0
			for e, n := range tt.pools {
				editions = append(editions, e)
				total += n
			}
			sort.Strings(editions)

			// Each client asks for new machines, cycling through the
			// editions, until every pool has told it POOL_EMPTY.
			ctx := context.Background()
			results := make([][]outcome, tt.clients)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for cl := range tt.clients {
				wg.Go(func() {
					<-start
					empty := map[string]bool{}
					for i := 0; len(empty) < len(editions) && i <= total+len(editions); i++ {
						ed := editions[(cl+i)%len(editions)]
						if empty[ed] {
							continue
						}
						m := testutil.Machine{SN: fmt.Sprintf("SN-%03d-%05d", cl, i), Model: "KS-Test 9000", OSVersion: osVersions[ed]}
						a, err := c.Acquire(ctx, m)
						results[cl] = append(results[cl], outcome{m, ed, a, err})
						if err != nil || !a.OK() {
							empty[ed] = true // an error ends this edition for this client, and is reported below
						}
					}
				})
			}
			close(start)
			wg.Wait()

			var all []outcome
			for _, r := range results {
				all = append(all, r...)
			}
			byKeyID := map[int64]outcome{}
			byKey := map[string]outcome{}
			handed := map[string]int{}
			for _, o := range all {
				checkAnswer(t, o)
				if !o.answer.OK() {
					continue
				}
				if prev, dup := byKeyID[o.answer.KeyID]; dup {
					t.Errorf("keyId %d handed to machine %s and to machine %s", o.answer.KeyID, prev.machine.SN, o.machine.SN)
				}
				if prev, dup := byKey[o.answer.Key]; dup {
					t.Errorf("key %s handed to machine %s and to machine %s", keystation.MaskKey(o.answer.Key), prev.machine.SN, o.machine.SN)
				}
				if !srv.keys[o.edition][o.answer.Key] {
					t.Errorf("machine %s asked for a %s key and got %s, which is not in that pool", o.machine.SN, o.edition, keystation.MaskKey(o.answer.Key))
				}
				byKeyID[o.answer.KeyID], byKey[o.answer.Key] = o, o
				handed[o.edition]++
			}
			for _, ed := range editions {
				if handed[ed] != tt.pools[ed] {
					t.Errorf("%s: %d keys handed out, want the whole pool of %d", ed, handed[ed], tt.pools[ed])
				}
				checkDrained(t, srv, ed, tt.pools[ed])
			}
			t.Logf("%d requests from %d clients: %d keys handed out, %d POOL_EMPTY answers", len(all), tt.clients, len(byKeyID), len(all)-len(byKeyID))

			// Every machine asks again, all at once: the same key, or still
			// POOL_EMPTY for a machine that got none.
			again := make([]outcome, len(all))
			work := make(chan int)
			for range tt.clients {
				wg.Go(func() {
					for i := range work {
						a, err := c.Acquire(ctx, all[i].machine)
						again[i] = outcome{all[i].machine, all[i].edition, a, err}
					}
				})
			}
			for i := range all {
				work <- i
			}
			close(work)
			wg.Wait()
			for i, o := range again {
				checkAnswer(t, o)
				first := all[i].answer
				if o.answer.OK() != first.OK() || o.answer.KeyID != first.KeyID || o.answer.Key != first.Key {
					t.Errorf("machine %s asked again: got %s, first got %s", o.machine.SN, o.answer, first)
				}
			}
			for _, ed := range editions {
				checkDrained(t, srv, ed, tt.pools[ed])
			}

			// The store binds each key to the machine that got it, once.
			checkBindings(t, srv, byKeyID)
		})
	}
}

// checkDrained checks an edition's pool has all its n keys assigned.
func checkDrained(t *testing.T, srv *testServer, edition string, n int) {
	t.Helper()
	states := poolStates(t, srv.main.Store, edition)
	for st, got := range states {
		want := 0
		if st == keystation.StateAssigned {
			want = n
		}
		if got != want {
			t.Errorf("%s pool: %d keys %s, want %d (all: %v)", edition, got, st, want, states)
		}
	}
}

// checkBindings checks in the store that every key handed out is assigned to
// one machine, a different one for each key, and that its history records a
// single assignment.
func checkBindings(t *testing.T, srv *testServer, byKeyID map[int64]outcome) {
	t.Helper()
	machineOf := map[int64]string{}
	for id, o := range byKeyID {
		ki, err := srv.main.Store.KeyByID(context.Background(), keystation.KeyID(id))
		if err != nil {
			t.Errorf("keyId %d: %v", id, err)
			continue
		}
		if ki.State != keystation.StateAssigned || ki.MachineID == 0 {
			t.Errorf("keyId %d handed to %s is %s, machine %d; want assigned to a machine", id, o.machine.SN, ki.State, ki.MachineID)
		}
		if prev, dup := machineOf[ki.MachineID]; dup {
			t.Errorf("machine row %d holds the keys of %s and %s", ki.MachineID, prev, o.machine.SN)
		}
		machineOf[ki.MachineID] = o.machine.SN
		assigned := 0
		for _, h := range ki.History {
			if h.To == keystation.StateAssigned {
				assigned++
			}
		}
		if assigned != 1 {
			t.Errorf("keyId %d: history records %d assignments, want 1: %+v", id, assigned, ki.History)
		}
	}
}

// TestConcurrentAcquireSameMachine has many goroutines ask for the key of the
// same machine at once: each machine gets one key, the same in every answer,
// and no machine takes a second key from the pool (invariant 4). When the
// pool is smaller than the number of machines, each machine's answers still
// agree: all the same key, or all POOL_EMPTY.
func TestConcurrentAcquireSameMachine(t *testing.T) {
	tests := []struct {
		name       string
		machines   int
		goroutines int // per machine
		repeats    int // requests per goroutine
		pool       int
	}{
		{"one machine, 64 goroutines", 1, 64, 3, 10},
		{"8 machines, 16 goroutines each", 8, 16, 3, 50},
		{"12 machines, pool of 5", 12, 8, 3, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t, map[string]int{"pro": tt.pool})
			c := srv.client(t, tt.machines*tt.goroutines)
			ctx := context.Background()
			answers := make([][]outcome, tt.machines*tt.goroutines)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := range tt.machines * tt.goroutines {
				m := testutil.Machine{SN: fmt.Sprintf("SAME-%02d", g%tt.machines), Model: "KS-Twin", OSVersion: osVersions["pro"]}
				wg.Go(func() {
					<-start
					for range tt.repeats {
						a, err := c.Acquire(ctx, m)
						answers[g] = append(answers[g], outcome{m, "pro", a, err})
					}
				})
			}
			close(start)
			wg.Wait()

			first := map[string]testutil.Answer{}
			owner := map[int64]string{}
			for _, as := range answers {
				for _, o := range as {
					checkAnswer(t, o)
					sn := o.machine.SN
					f, seen := first[sn]
					if !seen {
						first[sn] = o.answer
						if o.answer.OK() {
							if prev, dup := owner[o.answer.KeyID]; dup {
								t.Errorf("keyId %d handed to %s and %s", o.answer.KeyID, prev, sn)
							}
							owner[o.answer.KeyID] = sn
						}
						continue
					}
					if o.answer.OK() != f.OK() || o.answer.KeyID != f.KeyID || o.answer.Key != f.Key {
						t.Errorf("machine %s: answers differ: %s and %s", sn, f, o.answer)
					}
				}
			}
			want := min(tt.machines, tt.pool)
			if len(owner) != want {
				t.Errorf("%d machines got keys, want %d", len(owner), want)
			}
			states := poolStates(t, srv.main.Store, "pro")
			if states[keystation.StateAssigned] != want || states[keystation.StateAvailable] != tt.pool-want {
				t.Errorf("pool: %v, want %d assigned and %d available", states, want, tt.pool-want)
			}
		})
	}
}
