package store_test

import (
	"context"
	"fmt"
	"testing"

	"keystation"
	"keystation/store"
)

// BenchmarkStationSyncRound measures the station's side of one sync round
// trip of 1000 reports: building the request (opening the sealed reports)
// and recording the answer.
func BenchmarkStationSyncRound(b *testing.B) {
	f := newStationFix(b, 3)
	ctx := context.Background()
	for round := 0; b.Loop(); round++ {
		b.StopTimer()
		g := f.grant("home", keystation.KeyID(1_000_000_000_000+round*1000), 1000, uint64(round+100))
		_ = g
		for i := range 1000 {
			sn := fmt.Sprintf("B-%d-%d", round, i)
			a := f.mustAssign(sn, "home")
			f.record(a, sn, store.AttemptActivated, "", "Licensed")
		}
		b.StartTimer()
		req, err := f.db.NextSync(ctx, 1000, 0)
		if err != nil {
			b.Fatal(err)
		}
		resp := keystation.SyncResponse{ServerTime: f.clock()}
		for _, r := range req.Reports {
			resp.Results = append(resp.Results, keystation.SyncResult{ID: r.ID, Status: keystation.SyncApplied})
		}
		if err := f.db.ApplySync(ctx, &req, &resp, 0); err != nil {
			b.Fatal(err)
		}
	}
}
