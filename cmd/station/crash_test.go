package main_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"keystation/queue"
	"keystation/store"
)

// TestCrashStationKilled kills the real station binary with SIGKILL at
// random points of activation and sync, at least 30 times. Afterwards one
// sync delivers everything: no report lost or duplicated on the server, no
// key used on two machines, every PC with at most one activated key.
func TestCrashStationKilled(t *testing.T) {
	srv := startServer(t, map[string]int{"pro": 400, "home": 200})
	_, bin := binaries(t)
	data := t.TempDir()
	if code, out := runStation(t, bin, "enrol", "--data", data, "--server", srv.url(), "--token", srv.enrolToken(1), "--name", "crash line"); code != 0 {
		t.Fatalf("enrol: exit %d\n%s", code, out)
	}
	if code, out := runStation(t, bin, "targets", "--data", data, "--edition", "pro", "--target", "40", "--low-water", "10"); code != 0 {
		t.Fatalf("targets: exit %d\n%s", code, out)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	scripts := []string{"success", "success", "success", "key-fault,success", "pc-fault", "slow:100ms"}
	const runs = 40
	killed, finished := 0, 0
	exits := map[int]int{}
	for i := range runs {
		var args []string
		if r.IntN(10) < 7 {
			pcNo := r.IntN(16) // PCs come back: invariant 4 across crashes
			os := "Windows 11 Pro"
			if pcNo%4 == 0 {
				os = "Windows 11 Home"
			}
			args = []string{"activate", "--data", data, "--sn", fmt.Sprintf("CRASH-%02d", pcNo), "--model", "Vostro 3910",
				"--os-version", os, "--sim-delay", fmt.Sprintf("%dms", 10+r.IntN(40)), "--sim-outcome", scripts[r.IntN(len(scripts))], "--sync-timeout", "5s"}
		} else {
			args = []string{"sync", "--data", data, "--timeout", "10s"}
		}
		cmd := exec.Command(bin, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			finished++
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			}
			exits[code]++
			if code == 1 || code == 2 {
				t.Fatalf("run %d (%s) failed: exit %d\n%s", i, strings.Join(args[:1], " "), code, out.String())
			}
		case <-time.After(time.Duration(r.IntN(300)) * time.Millisecond):
			cmd.Process.Signal(syscall.SIGKILL)
			<-done
			killed++
		}
	}
	t.Logf("%d runs: %d killed, %d finished (exit codes %v)", runs, killed, finished, exits)
	if killed < 30 {
		// Make sure of the count the proof asks for: kill more syncs and
		// activations right after they start.
		for i := 0; killed < 30; i++ {
			args := []string{"sync", "--data", data}
			if i%2 == 0 {
				args = []string{"activate", "--data", data, "--sn", fmt.Sprintf("EXTRA-%02d", i), "--model", "M", "--os-version", "Windows 11 Pro", "--sim-delay", "50ms"}
			}
			cmd := exec.Command(bin, args...)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Duration(5+r.IntN(60)) * time.Millisecond)
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			killed++
		}
	}
	// Recovery: one uninterrupted sync delivers everything.
	if code, out := runStation(t, bin, "sync", "--data", data); code != 0 {
		t.Fatalf("final sync: exit %d\n%s", code, out)
	}
	a := openApp(t, data, queue.Config{HTTPTimeout: 5 * time.Second})
	counts := countStation(t, a)
	rec := reconcile(t, a, counts)
	db := srv.db()
	serverChecks(t, db, rec.StationID, counts.reports)
	if n := count(t, db, `SELECT COUNT(*) FROM (SELECT machine_id FROM reports WHERE success = 1 GROUP BY machine_id HAVING COUNT(DISTINCT key_ref) > 1)`); n != 0 {
		t.Errorf("%d PCs activated with two keys (invariant 4)", n)
	}
	// Every key the station used is bound to one machine on the station too.
	recs, err := a.a.Core.History(context.Background(), store.HistoryFilter{Limit: 100000})
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, h := range recs {
		k := h.KeyID.String()
		if prev, ok := owner[k]; ok && prev != h.SN {
			t.Errorf("key %s used on %s and %s", k, prev, h.SN)
		}
		owner[k] = h.SN
	}
	t.Logf("after %d kills: %d reports, reconciliation %+v", killed, counts.reports, rec)
	_ = os.Getpid
}
