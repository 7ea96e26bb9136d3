package store_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"keystation/store"
)

// BenchmarkAcquireParallel measures group-committed allocations in-process:
// every operation a new machine, so every one hands out a key.
func BenchmarkAcquireParallel(b *testing.B) {
	f := newFixture(b, store.Options{})
	n := b.N + 100
	for done := 0; done < n; done += 50000 {
		f.importN("home", min(50000, n-done))
	}
	var seq atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			sn := fmt.Sprintf("SN-%d", seq.Add(1))
			if _, err := f.acquire(sn, osHome); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
