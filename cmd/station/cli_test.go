package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	stationcmd "keystation/cmd/station"
	"keystation/internal/testutil"
)

func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := stationcmd.Run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestExitCodes runs the headless commands in-process, in order, on one
// data directory: the exit codes are what line scripts rely on.
func TestExitCodes(t *testing.T) {
	data := t.TempDir()
	list := filepath.Join(t.TempDir(), "keys.txt")
	body := "# keys for line 3\n" + strings.Join(testutil.GenerateKeys(12, 77), " pro\n") + " pro\nnot-a-key pro\n"
	if err := os.WriteFile(list, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	pcArgs := func(sn string, extra ...string) []string {
		return append([]string{"--data", data, "--sn", sn, "--model", "HP 400 G9", "--os-version", "Windows 11 Pro", "--no-sync"}, extra...)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string // expected in stdout or stderr
	}{
		{"help", []string{"help"}, 0, "Exit codes:"},
		{"no command", nil, 2, "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, "unknown command"},
		{"bad flag", []string{"status", "--data", data, "--nope"}, 2, "flag provided but not defined"},
		{"bad sim outcome", append([]string{"activate"}, pcArgs("PC-0", "--sim-outcome", "explode")...), 2, "unknown simulated outcome"},
		{"no key yet", append([]string{"activate"}, pcArgs("PC-1")...), 4, "no pro key left"},
		{"batch import only", []string{"batch", "--data", data, "--keys", list, "--import-only"}, 0, "line 14 rejected"},
		{"same list again", []string{"batch", "--data", data, "--keys", list, "--import-only"}, 0, "nothing imported"},
		{"activated", append([]string{"activate"}, pcArgs("PC-1")...), 0, "SIMULATED ACTIVATED"},
		{"key fault then next key", append([]string{"activate"}, pcArgs("PC-2", "--sim-outcome", "key-fault,success")...), 0, "SIMULATED ACTIVATED"},
		{"pc fault", append([]string{"activate"}, pcArgs("PC-3", "--sim-outcome", "clock")...), 3, "PC FAULT"},
		{"firmware key", append([]string{"activate"}, pcArgs("PC-4", "--sim-outcome", "firmware")...), 5, "firmware"},
		{"hang times out", append([]string{"activate"}, pcArgs("PC-5", "--sim-outcome", "hang", "--timeout", "100ms")...), 7, "stays with this PC"},
		{"burn cap", append([]string{"activate"}, pcArgs("PC-6", "--sim-outcome", "key-fault")...), 4, "cap is 3"},
		{"unknown edition", []string{"activate", "--data", data, "--sn", "PC-7", "--model", "ProDesk 600", "--os-version", "Windows 11 Enterprise", "--no-sync"}, 1, "matches no key pool"},
		{"sync before enrolling", []string{"sync", "--data", data}, 1, "not enrolled"},
		{"enrol with a server that is not there", []string{"enrol", "--data", data, "--server", "http://" + freeAddr(t), "--token", "x", "--timeout", "2s"}, 6, "cannot be reached"},
		{"history", []string{"history", "--data", data}, 0, "PC-3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.out) {
				t.Fatalf("exit %d, want %d; want %q in:\n%s\n%s", code, tc.code, tc.out, out, errOut)
			}
			if len(tc.args) > 0 && tc.args[0] == "activate" && !strings.Contains(out, "SIMULATED") && code != 2 {
				t.Fatalf("the simulated activator is not labelled:\n%s", out)
			}
		})
	}
	// The PC with a PC fault gets its key back on the next run.
	code, out, _ := runCLI(t, append([]string{"activate", "--json"}, pcArgs("PC-3")...)...)
	var res struct {
		Outcome   string `json:"outcome"`
		Simulated bool   `json:"simulated"`
		Tries     []struct {
			Reused bool `json:"reused"`
		} `json:"tries"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || code != 0 || res.Outcome != "activated" || !res.Simulated || !res.Tries[0].Reused {
		t.Fatalf("rerun after a PC fault: exit %d %+v %v\n%s", code, res, err, out)
	}
	code, out, _ = runCLI(t, "status", "--data", data, "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	for _, k := range []string{"online", "outbox", "buffer", "simulated", "lastSync"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("status --json has no %q: %s", k, out)
		}
	}
	if st["outbox"].(float64) < 5 || st["simulated"] != true {
		t.Fatalf("status: %s", out)
	}
	if _, ok := st["buffer"].(map[string]any)["pro"]; !ok {
		t.Fatalf("no pro buffer: %s", out)
	}
	// The results CSV sits next to the list.
	raw, err := os.ReadFile(filepath.Join(filepath.Dir(list), "keys.results.csv"))
	if err != nil || !strings.HasPrefix(string(raw), "keyId,key,sn,model,status,message,time") {
		t.Fatalf("results file: %v\n%s", err, raw)
	}
}
