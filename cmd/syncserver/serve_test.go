package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	syncserver "keystation/cmd/syncserver"
)

// runCLI runs the syncserver command line in-process.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := syncserver.Run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestDemoIsRepeatableAndStaysOnLoopback(t *testing.T) {
	dir := t.TempDir()
	code, first, stderr := runCLI(t, "demo", "--data", dir)
	if code != 0 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(first, `{"operator":{"username":`) {
		t.Fatalf("demo output does not start with the operator: %s", first)
	}
	var creds struct {
		Operator          struct{ Username, Password string }
		StationEnrolToken string
	}
	if err := json.Unmarshal([]byte(first), &creds); err != nil || creds.Operator.Password == "" || creds.StationEnrolToken == "" {
		t.Fatalf("demo output %q: %v", first, err)
	}
	_, before, _ := runCLI(t, "editions", "list", "--data", dir)
	code, second, _ := runCLI(t, "demo", "--data", dir)
	if code != 0 || second != first {
		t.Fatalf("second demo run: exit %d, output changed:\n%s\n%s", code, first, second)
	}
	code, after, _ := runCLI(t, "editions", "list", "--data", dir)
	if code != 0 || after != before {
		t.Fatalf("the second demo run changed the pools:\n%s\n%s", before, after)
	}
	if st, err := os.Stat(filepath.Join(dir, "keystation.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st, err)
	}

	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		code    int
		message string
	}{
		{"all interfaces with demo accounts", []string{"--addr", "0.0.0.0:0"}, nil, 1, "demo accounts exist"},
		{"address from the environment", nil, map[string]string{"KEYSTATION_ADDR": "0.0.0.0:0"}, 1, "demo accounts exist"},
		{"bad log level", []string{"--log-level", "loud"}, nil, 2, "log level"},
		{"bad burn cap", []string{"--burn-cap", "0"}, nil, 2, "--burn-cap"},
		{"unknown flag", []string{"--nope"}, nil, 2, "flag provided but not defined"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			code, _, stderr := runCLI(t, append([]string{"serve", "--data", dir}, tt.args...)...)
			if code != tt.code || !strings.Contains(stderr, tt.message) {
				t.Fatalf("exit %d, stderr %q; want exit %d mentioning %q", code, stderr, tt.code, tt.message)
			}
		})
	}
}

func TestServeAndGracefulClose(t *testing.T) {
	m := syncserver.NewMain()
	m.Config.DataDir = t.TempDir()
	m.Config.Addr = "127.0.0.1:0"
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := httpGet("http://" + m.Addr() + "/healthz")
	if err != nil || !strings.Contains(resp, `"status":"ok"`) {
		t.Fatalf("healthz: %q %v", resp, err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := httpGet("http://" + m.Addr() + "/healthz"); err == nil {
		t.Fatal("server still answers after Close")
	}
}

func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
