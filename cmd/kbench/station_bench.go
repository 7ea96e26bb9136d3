package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"keystation"
	"keystation/internal/testutil"
	"keystation/queue"
	"keystation/seal"
	"keystation/store"
)

// The station's sections:
//
//   - "station-key": what a line worker waits for on the station: getting the
//     PC's key from the local buffer and committing its report to the outbox,
//     each a durable (synchronous=FULL) SQLite commit, in-process.
//   - "station-sync": the time to sync 100,000 queued reports
//     (KEYSTATION_BENCH_REPORTS to change) from a station that worked offline
//     from a USB key list, with the real station binary ("station sync") over
//     loopback to the running sync server, and the peak memory of both.
func init() {
	sections = append(sections,
		section{"station-key", "station get-key + enqueue-report, durable commits, in-process (target p99 < 5 ms)", runStationKey},
		section{"station-sync", "sync 100,000 queued reports to the server over loopback with \"station sync\" (target < 10 s), peak memory of both", runStationSync},
	)
}

func newStationDB(ctx context.Context, dir string, box *seal.Box) (*store.StationDB, error) {
	return store.OpenStationDB(ctx, filepath.Join(dir, store.StationFile), store.Options{Box: box})
}

func randomBox() (*seal.Box, string, error) {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, "", err
	}
	box, err := seal.New(k)
	return box, base64.StdEncoding.EncodeToString(k), err
}

func benchHardware(sn string) *keystation.Hardware {
	return &keystation.Hardware{SerialNumber: sn, Model: benchModel, Manufacturer: "KBench", CPU: "Intel(R) Core(TM) i5-12500 @ 3.00GHz",
		Memory: []keystation.MemoryModule{{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}, {ID: 1, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"}},
		Disks:  []keystation.Disk{{ID: 0, Size: 512 << 30, InterfaceType: "NVMe", Model: "KBench SSD"}},
		MACs:   []string{"00:11:22:33:44:55"}, OS: keystation.OSInfo{Caption: benchOS, Version: "10.0.22631", Build: "22631", Architecture: "64-bit"}}
}

func pctOf(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[int(float64(len(lat)-1)*p)]
}

func runStationKey(ctx context.Context, b *bench) error {
	dir := filepath.Join(b.data, "station-key")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	box, _, err := randomBox()
	if err != nil {
		return err
	}
	db, err := newStationDB(ctx, dir, box)
	if err != nil {
		return err
	}
	defer db.Close()
	const stock = 5000
	resp := keystation.SyncResponse{ServerTime: time.Now()}
	for i, k := range testutil.GenerateKeys(stock, uint64(time.Now().UnixNano())) {
		resp.Grants = append(resp.Grants, keystation.SyncGrant{KeyID: keystation.KeyID(5_000_000_000_000 + i), Key: k, Edition: "home"})
	}
	if err := db.ApplySync(ctx, &keystation.SyncRequest{}, &resp, 0); err != nil {
		return err
	}
	var get, put, both []time.Duration
	deadline := time.Now().Add(b.cfg.duration)
	for i := 0; i < stock && time.Now().Before(deadline); i++ {
		sn := "KBENCH-ST-" + strconv.Itoa(i)
		m := keystation.Machine{SN: sn, Model: benchModel}
		t0 := time.Now()
		a, err := db.AssignKey(ctx, store.KeyRequest{Machine: m, Edition: "home"})
		if err != nil {
			return err
		}
		t1 := time.Now()
		if _, err := db.RecordAttempt(ctx, store.Attempt{Assignment: a, Outcome: store.AttemptActivated, Report: keystation.Report{
			Machine: m, OSVersion: benchOS, Message: "Windows is activated: LicenseStatus 1 (Licensed)", Hardware: benchHardware(sn), Simulated: true}}); err != nil {
			return err
		}
		t2 := time.Now()
		get, put, both = append(get, t1.Sub(t0)), append(put, t2.Sub(t1)), append(both, t2.Sub(t0))
	}
	for _, l := range [][]time.Duration{get, put, both} {
		slices.Sort(l)
	}
	fmt.Fprintf(b.out, "%d PCs, one after the other, each: get key (1 commit) + report to the outbox (1 commit)\n", len(both))
	for _, r := range []struct {
		name string
		lat  []time.Duration
	}{{"get key", get}, {"enqueue report", put}, {"both", both}} {
		fmt.Fprintf(b.out, "  %-15s p50 %s  p90 %s  p99 %s  max %s\n", r.name, ms(pctOf(r.lat, .5)), ms(pctOf(r.lat, .9)), ms(pctOf(r.lat, .99)), ms(pctOf(r.lat, 1)))
	}
	verdict := "met"
	if pctOf(both, .99) >= 5*time.Millisecond {
		verdict = "NOT met"
	}
	fmt.Fprintf(b.out, "  target: get-key + enqueue-report p99 < 5 ms: %s\n", verdict)
	if f, err := fsyncLatency(dir, 300); err == nil {
		fmt.Fprintf(b.out, "  for reference, this disk's bare fsync of 4 KiB: p50 %s  p99 %s  max %s (two such flushes per PC are the floor)\n",
			ms(pctOf(f, .5)), ms(pctOf(f, .99)), ms(pctOf(f, 1)))
	}
	return nil
}

// fsyncLatency times n writes of 4 KiB each followed by fsync in dir.
func fsyncLatency(dir string, n int) ([]time.Duration, error) {
	f, err := os.CreateTemp(dir, "fsync-")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	var lat []time.Duration
	for range n {
		t0 := time.Now()
		if _, err := f.Write(buf); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return lat, nil
}

func runStationSync(ctx context.Context, b *bench) error {
	n := 100_000
	if v, err := strconv.Atoi(os.Getenv("KEYSTATION_BENCH_REPORTS")); err == nil && v > 0 {
		n = v
	}
	// Build the station binary.
	t0 := time.Now()
	stationBin := filepath.Join(b.data, "station")
	build := exec.CommandContext(ctx, "go", "build", "-o", stationBin, "keystation/cmd/station")
	var stderr bytes.Buffer
	build.Stderr = &stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build keystation/cmd/station: %w\n%s", err, stderr.String())
	}
	fmt.Fprintf(b.out, "built keystation/cmd/station in %s\n", time.Since(t0).Round(time.Millisecond))

	// Prepare the offline station on tmpfs (preparing is not measured), then
	// move its database to disk for the measured sync.
	prep, err := os.MkdirTemp(shmDir(), "kbench-station-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(prep)
	box, keyB64, err := randomBox()
	if err != nil {
		return err
	}
	t0 = time.Now()
	if err := prepareOfflineStation(ctx, b, prep, box, n); err != nil {
		return err
	}
	fmt.Fprintf(b.out, "prepared a station with %d reports queued offline (USB key list keys) in %s\n", n, time.Since(t0).Round(time.Millisecond))
	dir := filepath.Join(b.data, "station-sync")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(prep, store.StationFile), filepath.Join(dir, store.StationFile)); err != nil {
		return err
	}
	serverHWMBefore, _ := b.proc.Status("VmHWM")

	// The measured sync: the real station binary, as a line script runs it.
	cmd := exec.CommandContext(ctx, stationBin, "sync", "--data", dir, "--json", "--timeout", "10m")
	cmd.Env = append(os.Environ(), seal.EnvDataKey+"="+keyB64)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	t0 = time.Now()
	// The station's peak: VmHWM of its own address space, sampled while it
	// runs. (Its rusage would also count the copy of kbench it was forked
	// from, which is large after the bindings section.)
	var stationPeak int64
	if err = cmd.Start(); err == nil {
		done, peak := make(chan struct{}), make(chan int64)
		go func() {
			var hwm int64
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				if v, err := testutil.ProcStatus(cmd.Process.Pid, "VmHWM"); err == nil {
					hwm = max(hwm, v)
				}
				select {
				case <-done:
					peak <- hwm
					return
				case <-t.C:
				}
			}
		}()
		err = cmd.Wait()
		close(done)
		stationPeak = <-peak
	}
	took := time.Since(t0)
	if err != nil {
		return fmt.Errorf("station sync: %w\n%s%s", err, lastBytes(out.String(), 1000), lastBytes(errOut.String(), 1000))
	}
	var sum queue.Summary
	if err := json.Unmarshal(out.Bytes(), &sum); err != nil {
		return fmt.Errorf("station sync printed %q: %w", lastBytes(out.String(), 500), err)
	}
	serverHWM, _ := b.proc.Status("VmHWM")
	fmt.Fprintf(b.out, "synced %d reports in %s (%.0f reports/s): %d round trips, %d applied, %d duplicate, %d conflict, %d rejected, %d waiting after\n",
		sum.Sent, took.Round(time.Millisecond), float64(sum.Sent)/took.Seconds(), sum.Rounds, sum.Applied, sum.Duplicates, sum.Conflicts, sum.Rejected, sum.Backlog)
	fmt.Fprintf(b.out, "  peak RSS: station process %.1f MiB; server %.1f MiB (its peak before this sync: %.1f MiB)\n",
		float64(stationPeak)/1024, float64(serverHWM)/1024, float64(serverHWMBefore)/1024)
	verdict := "met"
	if took >= 10*time.Second || sum.Sent < n {
		verdict = "NOT met"
	}
	fmt.Fprintf(b.out, "  target: %d reports in < 10 s (>= 10,000 reports/s): %s\n", n, verdict)
	if sum.Applied != n {
		return fmt.Errorf("%d of %d reports applied", sum.Applied, n)
	}
	return nil
}

// prepareOfflineStation enrols a station, imports a key list of n keys and
// queues n successful activations.
func prepareOfflineStation(ctx context.Context, b *bench, dir string, box *seal.Box, n int) error {
	db, err := newStationDB(ctx, dir, box)
	if err != nil {
		return err
	}
	defer db.Close()
	out, err := testutil.RunCommand(ctx, b.bin, "", "stations", "enrol-token", "--data", filepath.Join(b.data, "db"), "--json")
	if err != nil {
		return err
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &tok); err != nil {
		return fmt.Errorf("enrol-token printed %q: %w", out, err)
	}
	c := queue.New(db, queue.Config{}, nil)
	if _, err := c.Enrol(ctx, "http://"+b.proc.Addr, tok.Token, "kbench station"); err != nil {
		return err
	}
	keys := testutil.GenerateKeys(n, uint64(time.Now().UnixNano())^0x5eed)
	in := store.KeyListImport{File: "kbench-keys.txt", SHA256: fmt.Sprintf("%064x", time.Now().UnixNano()), Lines: n}
	for i, k := range keys {
		in.Entries = append(in.Entries, store.ImportEntry{Line: i + 1, Key: keystation.ProductKey(k), Edition: "home"})
	}
	res, err := db.ImportKeyList(ctx, in)
	if err != nil {
		return err
	}
	if res.Imported != n {
		return fmt.Errorf("imported %d of %d keys", res.Imported, n)
	}
	for i := range n {
		sn := "KBENCH-OFFLINE-" + strconv.Itoa(i)
		m := keystation.Machine{SN: sn, Model: benchModel}
		a, err := db.AssignKey(ctx, store.KeyRequest{Machine: m, Edition: "home", PreferSource: res.SourceID})
		if err != nil {
			return err
		}
		if _, err := db.RecordAttempt(ctx, store.Attempt{Assignment: a, Outcome: store.AttemptActivated, Report: keystation.Report{
			Machine: m, OSVersion: benchOS, Message: "Windows is activated: LicenseStatus 1 (Licensed)", Hardware: benchHardware(sn), Simulated: true}}); err != nil {
			return err
		}
	}
	return nil
}

func shmDir() string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		return "/dev/shm"
	}
	return ""
}

func copyFile(from, to string) error {
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
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func lastBytes(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return strings.TrimSpace(s)
}
