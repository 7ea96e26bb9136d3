package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/internal/testutil"
	"keystation/queue"
	"keystation/seal"
	"keystation/store"
)

// BenchmarkSyncLoopback syncs KEYSTATION_BENCH_REPORTS (default 2000)
// queued USB-key-list reports from a real station database through the real
// sync client to a real server (store and HTTP handlers on loopback, durable
// commits, a pool of twice as many keys imported): kbench's station-sync
// section in one process, for profiling. KEYSTATION_BENCH_CACHE names a
// directory where the prepared databases are kept between runs (preparing
// is slow and not measured).
func BenchmarkSyncLoopback(b *testing.B) {
	n := 2000
	if v, err := strconv.Atoi(os.Getenv("KEYSTATION_BENCH_REPORTS")); err == nil && v > 0 {
		n = v
	}
	box, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		b.Fatal(err)
	}
	cache := os.Getenv("KEYSTATION_BENCH_CACHE")
	if cache == "" {
		cache = b.TempDir()
	}
	prep := filepath.Join(cache, fmt.Sprintf("loopback-%d", n))
	if _, err := os.Stat(filepath.Join(prep, "done")); err != nil {
		os.RemoveAll(prep)
		if err := prepareLoopback(b, prep, box, n); err != nil {
			b.Fatal(err)
		}
	}
	var sent int
	for b.Loop() {
		b.StopTimer()
		dir := b.TempDir()
		for _, f := range []string{store.ServerFile, store.StationFile} {
			if err := copyDBFile(filepath.Join(prep, f), filepath.Join(dir, f)); err != nil {
				b.Fatal(err)
			}
		}
		srv, st, db := openLoopback(b, dir, box)
		cfg := queue.Config{HTTPTimeout: time.Minute}
		if v, err := strconv.Atoi(os.Getenv("KEYSTATION_BENCH_BATCH")); err == nil {
			cfg.MaxReports = v
		}
		c := queue.New(db, cfg, nil)
		b.StartTimer()
		sum, err := c.SyncOnce(context.Background())
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if sum.Applied != n {
			b.Fatalf("%d of %d applied: %+v", sum.Applied, n, sum)
		}
		sent += sum.Sent
		srv.Close()
		db.Close()
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "reports/s")
}

func openLoopback(b *testing.B, dir string, box *seal.Box) (*httptest.Server, *store.Server, *store.StationDB) {
	ctx := context.Background()
	st, err := store.OpenServer(ctx, filepath.Join(dir, store.ServerFile), store.Options{Box: box})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(api.NewServer(st, auth.NewAuthenticator(st), nil))
	db, err := store.OpenStationDB(ctx, filepath.Join(dir, store.StationFile), store.Options{Box: box})
	if err != nil {
		b.Fatal(err)
	}
	if err := db.SetServerURL(ctx, srv.URL); err != nil {
		b.Fatal(err)
	}
	return srv, st, db
}

func prepareLoopback(b *testing.B, dir string, box *seal.Box, n int) error {
	ctx := context.Background()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := store.OpenServer(ctx, filepath.Join(dir, store.ServerFile), store.Options{Box: box})
	if err != nil {
		return err
	}
	defer st.Close()
	var entries []store.ImportEntry
	for i, k := range testutil.GenerateKeys(2*n, 77) {
		entries = append(entries, store.ImportEntry{Line: i + 1, Key: keystation.ProductKey(k), Edition: "home"})
	}
	if _, err := st.ImportKeys(ctx, entries, store.ImportOptions{Source: "bench"}); err != nil {
		return err
	}
	tok, err := st.CreateEnrolToken(ctx, store.EnrolTokenOptions{Name: "bench"})
	if err != nil {
		return err
	}
	srv := httptest.NewServer(api.NewServer(st, auth.NewAuthenticator(st), nil))
	defer srv.Close()
	db, err := store.OpenStationDB(ctx, filepath.Join(dir, store.StationFile), store.Options{Box: box})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := queue.New(db, queue.Config{}, nil).Enrol(ctx, srv.URL, tok, "bench"); err != nil {
		return err
	}
	in := store.KeyListImport{File: "bench-keys.txt", SHA256: fmt.Sprintf("%064x", n), Lines: n}
	for i, k := range testutil.GenerateKeys(n, 99) {
		in.Entries = append(in.Entries, store.ImportEntry{Line: i + 1, Key: keystation.ProductKey(k), Edition: "home"})
	}
	res, err := db.ImportKeyList(ctx, in)
	if err != nil {
		return err
	}
	for i := range n {
		sn := "BENCH-OFFLINE-" + strconv.Itoa(i)
		m := keystation.Machine{SN: sn, Model: "Bench Model 1"}
		a, err := db.AssignKey(ctx, store.KeyRequest{Machine: m, Edition: "home", PreferSource: res.SourceID})
		if err != nil {
			return err
		}
		hw := &keystation.Hardware{SerialNumber: sn, Model: m.Model, Manufacturer: "KBench", CPU: "Intel(R) Core(TM) i5-12500 @ 3.00GHz",
			Memory: []keystation.MemoryModule{{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}, {ID: 1, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}},
			Disks:  []keystation.Disk{{ID: 0, Size: 512 << 30, InterfaceType: "NVMe", Model: "KBench SSD"}},
			MACs:   []string{"00:11:22:33:44:55"}, OS: keystation.OSInfo{Caption: "Windows 11 Home", Version: "10.0.22631", Build: "22631", Architecture: "64-bit"}}
		if _, err := db.RecordAttempt(ctx, store.Attempt{Assignment: a, Outcome: store.AttemptActivated, Report: keystation.Report{
			Machine: m, OSVersion: "Windows 11 Home", Message: "Windows is activated: LicenseStatus 1 (Licensed)", Hardware: hw, Simulated: true}}); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "done"), nil, 0o600)
}

func copyDBFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
