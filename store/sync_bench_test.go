package store_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"keystation"
	"keystation/store"
)

// benchSyncHardware is the hardware a station sends with each success, the
// same shape as kbench's.
func benchSyncHardware(sn string) *keystation.Hardware {
	return &keystation.Hardware{SerialNumber: sn, Model: model, Manufacturer: "KBench", CPU: "Intel(R) Core(TM) i5-12500 @ 3.00GHz",
		Memory: []keystation.MemoryModule{{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}, {ID: 1, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}},
		Disks:  []keystation.Disk{{ID: 0, Size: 512 << 30, InterfaceType: "NVMe", Model: "KBench SSD"}},
		MACs:   []string{"00:11:22:33:44:55"}, OS: keystation.OSInfo{Caption: osHome, Version: "10.0.22631", Build: "22631", Architecture: "64-bit"}}
}

// BenchmarkSyncUSBReports measures the server applying one sync request of
// MaxSyncReports successful activations with keys from a USB key list (keys the server
// did not issue), each on a new machine: what a station that worked offline
// sends, as in kbench's station-sync section.
func BenchmarkSyncUSBReports(b *testing.B) {
	const per = keystation.MaxSyncReports
	f := newFixture(b, store.Options{})
	st := f.enrolStation("bench")
	var reports int
	for round := 0; b.Loop(); round++ {
		b.StopTimer()
		req := usbRequest(b, strconv.Itoa(round), per)
		b.StartTimer()
		reports += applyAll(b, f, st, req)
	}
	b.ReportMetric(float64(reports)/b.Elapsed().Seconds(), "reports/s")
}

// BenchmarkSyncUSBReportsOneByOne is BenchmarkSyncUSBReports with every
// report applied on its own, without the set-wise runs.
func BenchmarkSyncUSBReportsOneByOne(b *testing.B) {
	store.SetSyncRuns(b, false)
	BenchmarkSyncUSBReports(b)
}

// applyAll syncs req and fails the benchmark unless every report is
// applied; it returns how many there were.
func applyAll(b *testing.B, f *fixture, st store.Station, req keystation.SyncRequest) int {
	resp, err := f.s.Sync(ctx, st, req, "127.0.0.1")
	if err != nil {
		b.Fatal(err)
	}
	for _, r := range resp.Results {
		if r.Status != keystation.SyncApplied {
			b.Fatalf("report %s: %+v", r.ID, r)
		}
	}
	return len(req.Reports)
}

// BenchmarkSyncUSBReportsPool is BenchmarkSyncUSBReports against a server
// that already holds a pool of 200,000 keys and grows as kbench's does:
// each iteration applies 20,000 reports in requests of per reports.
func BenchmarkSyncUSBReportsPool(b *testing.B) {
	for _, per := range []int{1000, 5000, 10000, 20000} {
		b.Run(fmt.Sprintf("per=%d", per), func(b *testing.B) {
			f := newFixture(b, store.Options{})
			var entries []store.ImportEntry
			for i, k := range newKeys(b, 200_000) {
				entries = append(entries, store.ImportEntry{Line: i + 1, Key: k, Edition: "home"})
			}
			if _, err := f.s.ImportKeys(ctx, entries, store.ImportOptions{Source: "bench"}); err != nil {
				b.Fatal(err)
			}
			for _, ix := range strings.Fields(os.Getenv("KS_DROP")) {
				if _, err := f.raw.Exec("DROP INDEX " + ix); err != nil {
					b.Fatal(err)
				}
			}
			st := f.enrolStation("bench")
			var reports int
			for round := 0; b.Loop(); round++ {
				for j := 0; j < 20_000/per; j++ {
					b.StopTimer()
					req := usbRequest(b, fmt.Sprintf("%d-%d", round, j), per)
					b.StartTimer()
					reports += applyAll(b, f, st, req)
				}
			}
			b.ReportMetric(float64(reports)/b.Elapsed().Seconds(), "reports/s")
		})
	}
}

var usbKeySeq atomic.Int64

func usbRequest(b *testing.B, tag string, per int) keystation.SyncRequest {
	keys := newKeys(b, per)
	req := keystation.SyncRequest{StationTime: time.Now(), Reports: make([]keystation.SyncReport, per), Targets: map[string]int{}}
	for i := range per {
		sn := fmt.Sprintf("USB-%s-%d", tag, i)
		req.Reports[i] = keystation.SyncReport{Edition: "home", Key: keys[i].Plain(),
			Provenance: &keystation.Provenance{File: "keys.txt", SHA256: strings.Repeat("ab", 32), Line: i + 1},
			Report: keystation.Report{ID: uuid.Must(uuid.NewV7()).String(), KeyID: keystation.KeyID(3_000_000_000_000 + usbKeySeq.Add(7919)),
				Machine: machine(sn), OSVersion: osHome, Success: true, Message: "Windows is activated: LicenseStatus 1 (Licensed)",
				Hardware: benchSyncHardware(sn), Simulated: true, At: time.Now()}}
	}
	return req
}
