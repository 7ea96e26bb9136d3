package store_test

import (
	"fmt"
	"sync"
	"testing"

	"keystation"
	"keystation/store"
)

// TestAcquireGroupSetWise queues allocations behind a held writer so they run
// as one group, and checks the set-wise path gives the same answers and
// leaves the same rows as one-by-one allocation would.
func TestAcquireGroupSetWise(t *testing.T) {
	type want struct {
		ok, reused, poolEmpty, mismatch int
		setWise                         int64
	}
	cases := []struct {
		name   string
		home   int   // keys in the home pool
		before []ask // allocated one by one before the group
		group  []ask
		want   want
	}{
		{
			name:  "new machines only",
			home:  40,
			group: asks("NEW-%d", 30, osHome),
			want:  want{ok: 30, setWise: 30},
		},
		{
			name:   "a machine twice and known machines in the group",
			home:   40,
			before: []ask{{"KNOWN-1", osHome}, {"KNOWN-2", osHome}},
			group: append(asks("NEW-%d", 10, osHome),
				ask{"TWICE", osHome}, ask{"TWICE", osHome}, ask{"KNOWN-1", osHome}, ask{"KNOWN-2", osPro}),
			// TWICE once set-wise, once reused; KNOWN-1 reused; KNOWN-2
			// holds a home key and asks for pro.
			want: want{ok: 11, reused: 2, mismatch: 1, setWise: 11},
		},
		{
			name:  "the pool runs out inside the group",
			home:  12,
			group: asks("NEW-%d", 20, osHome),
			want:  want{ok: 12, poolEmpty: 8, setWise: 12},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, store.Options{})
			f.importN("home", tc.home)
			f.importN("pro", 5)
			held := map[string]keystation.KeyID{}
			for _, a := range tc.before {
				held[a.sn] = f.mustAcquire(a.sn, a.os).KeyID
			}
			before := store.SetWiseAllocations(f.s)

			release := store.HoldWriter(f.s)
			var wg sync.WaitGroup
			got := make([]store.Assignment, len(tc.group))
			errs := make([]error, len(tc.group))
			for i, a := range tc.group {
				wg.Go(func() { got[i], errs[i] = f.acquire(a.sn, a.os) })
			}
			if !store.WaitQueued(f.s, len(tc.group)) {
				t.Fatal("the requests did not queue")
			}
			release()
			wg.Wait()

			var n want
			bySN := map[string]keystation.KeyID{}
			owner := map[keystation.KeyID]string{}
			for i, a := range tc.group {
				switch code := keystation.ErrorCode(errs[i]); {
				case errs[i] == nil:
				case code == keystation.EPOOLEMPTY:
					n.poolEmpty++
					continue
				case code == keystation.EEDITIONMISMATCH:
					n.mismatch++
					continue
				default:
					t.Fatalf("%s: %v", a.sn, errs[i])
				}
				id := got[i].KeyID
				if got[i].Reused {
					n.reused++
				} else {
					n.ok++
				}
				if prev, ok := owner[id]; ok && prev != a.sn {
					t.Errorf("key %s given to %s and %s", id, prev, a.sn)
				}
				owner[id] = a.sn
				if prev, ok := bySN[a.sn]; ok && prev != id {
					t.Errorf("%s got keys %s and %s", a.sn, prev, id)
				}
				bySN[a.sn] = id
				if h, ok := held[a.sn]; ok && h != id {
					t.Errorf("%s held %s before the group, got %s", a.sn, h, id)
				}
				// The key is recorded as assigned to this machine: asking
				// again one by one gives it back.
				again := f.mustAcquire(a.sn, a.os)
				if again.KeyID != id || !again.Reused {
					t.Errorf("%s asked again: %+v, want %s reused", a.sn, again, id)
				}
			}
			n.setWise = store.SetWiseAllocations(f.s) - before
			if n != tc.want {
				t.Errorf("got %+v, want %+v", n, tc.want)
			}
			// One machine per distinct serial that got a key, none for the
			// refused; every machine complete.
			machines := len(bySN)
			for sn := range held {
				if _, ok := bySN[sn]; !ok {
					machines++
				}
			}
			if c := f.count(`SELECT COUNT(*) FROM machines`); c != machines {
				t.Errorf("%d machines, want %d", c, machines)
			}
			if c := f.count(`SELECT COUNT(*) FROM machines WHERE model_ref IS NULL OR length(identity_enc) = 0
				OR status <> 'active' OR burnt <> 0 OR first_seen_at > last_seen_at OR tenant_id <> 1`); c != 0 {
				t.Errorf("%d machines incomplete", c)
			}
			if c := f.count(`SELECT COUNT(*) FROM key_history WHERE to_state = 'assigned'
				AND (reason <> ? OR actor = '' OR machine_id IS NULL)`, keystation.ReasonConsumed); c != 0 {
				t.Errorf("%d history rows incomplete", c)
			}
			f.checkHistory()
		})
	}
}

// ask is one machine asking for a key of an edition.
type ask struct{ sn, os string }

func asks(format string, n int, os string) []ask {
	out := make([]ask, n)
	for i := range out {
		out[i].sn, out[i].os = fmt.Sprintf(format, i), os
	}
	return out
}
