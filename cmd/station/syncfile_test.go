package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"keystation/internal/testutil"
)

// TestAirGappedSyncThroughFiles: a station whose network is gone syncs
// through a request file and a response file carried on a USB stick.
func TestAirGappedSyncThroughFiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs subprocesses")
	}
	srv := startServer(t, map[string]int{"pro": 40})
	_, bin := binaries(t)
	dir, usb := t.TempDir(), t.TempDir()
	// run returns standard output only: standard error may carry the
	// toolkit's complaints about the locale.
	run := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, append(args, "--data", dir)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		code := 0
		if err := cmd.Run(); err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("station %s: exit %d, want %d:\n%s%s", strings.Join(args, " "), code, want, stdout.String(), stderr.String())
		}
		return stdout.String()
	}
	run(0, "enrol", "--server", srv.url(), "--token", srv.enrolToken(1), "--name", "air-gapped line")
	run(0, "targets", "--edition", "pro", "--target", "5")
	run(0, "sync")
	srv.stop() // the network is gone from now on

	for _, sn := range []string{"AG-1", "AG-2"} {
		run(0, "activate", "--activator", "sim", "--sn", sn, "--model", "OptiPlex", "--os-version", "Windows 11 Pro", "--no-sync")
	}
	req := filepath.Join(usb, "request.json")
	run(0, "sync", "--export", req)
	raw, _ := os.ReadFile(req)
	if strings.Contains(string(raw), "AG-1") {
		t.Fatal("the request file shows a serial number in plain")
	}

	resp := filepath.Join(usb, "response.json")
	if out, err := testutil.RunCommand(context.Background(), srv.bin, "", "stations", "sync-file", "--data", srv.data, "--in", req, "--out", resp); err != nil {
		t.Fatalf("sync-file: %v\n%s", err, out)
	}
	out := run(0, "sync", "--import", resp, "--json")
	var sum struct {
		Applied, Sent, Conflicts int
	}
	if err := json.Unmarshal([]byte(out), &sum); err != nil || sum.Applied != 2 || sum.Conflicts != 0 {
		t.Fatalf("import summary %q: %v", out, err)
	}
	// Carrying the same response twice changes nothing more.
	run(0, "sync", "--import", resp)
	var status struct {
		Outbox int `json:"outbox"`
	}
	if err := json.Unmarshal([]byte(run(0, "status", "--json", "--offline")), &status); err != nil || status.Outbox != 0 {
		t.Fatalf("outbox after import: %+v %v", status, err)
	}
	db := srv.db()
	if n := count(t, db, `SELECT COUNT(*) FROM reports WHERE outcome = 'applied' AND success = 1`); n != 2 {
		t.Fatalf("server applied %d successes, want 2", n)
	}
	// A forged or altered response is refused.
	bad := filepath.Join(usb, "forged.json")
	os.WriteFile(bad, []byte(strings.Replace(string(mustRead2(t, resp)), `"stationId": 1`, `"stationId": 2`, 1)), 0o600)
	if code, out := runStation(t, bin, "sync", "--import", bad, "--data", dir); code == 0 {
		t.Fatalf("a forged response was accepted:\n%s", out)
	}
}

func mustRead2(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
