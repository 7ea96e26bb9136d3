package main_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"keystation"
	"keystation/activation"
	stationcmd "keystation/cmd/station"
	"keystation/hwinfo"
	"keystation/internal/testutil"
	"keystation/queue"
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// binaries builds syncserver and station once per test run.
func binaries(t *testing.T) (syncserver, station string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs subprocesses")
	}
	buildOnce.Do(func() {
		binDir, buildErr = os.MkdirTemp("", "keystation-station-e2e-")
		if buildErr != nil {
			return
		}
		ctx := context.Background()
		if _, buildErr = testutil.BuildSyncserver(ctx, binDir); buildErr != nil {
			return
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(binDir, "station"), "keystation/cmd/station")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			buildErr = fmt.Errorf("go build station: %w\n%s", err, stderr.String())
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(binDir, "syncserver"), filepath.Join(binDir, "station")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// server is a real "syncserver serve" subprocess that can be stopped and
// started again on the same address.
type server struct {
	t    *testing.T
	bin  string
	data string
	addr string
	proc *proc
}

// proc is a "syncserver serve" subprocess on a fixed address.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

func (p *proc) Stop(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return nil
	case <-time.After(timeout):
		p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("syncserver did not stop within %s; killed", timeout)
	}
}

func startServer(t *testing.T, pools map[string]int) *server {
	t.Helper()
	bin, _ := binaries(t)
	s := &server{t: t, bin: bin, data: t.TempDir()}
	ctx := context.Background()
	seed := uint64(100)
	for ed, n := range pools {
		seed++
		file := filepath.Join(t.TempDir(), ed+".txt")
		if err := testutil.WriteKeyFile(file, testutil.GenerateKeys(n, seed)); err != nil {
			t.Fatal(err)
		}
		if _, err := testutil.RunCommand(ctx, bin, "", "keys", "import", "--data", s.data, "--edition", ed, file); err != nil {
			t.Fatal(err)
		}
	}
	s.start()
	t.Cleanup(func() {
		if s.proc != nil {
			s.proc.Stop(10 * time.Second)
		}
	})
	return s
}

func (s *server) start() {
	s.t.Helper()
	if s.addr == "" {
		s.addr = freeAddr(s.t)
	}
	log, err := os.OpenFile(filepath.Join(s.data, "server.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, "serve", "--data", s.data, "--addr", s.addr, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	p := &proc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); log.Close(); close(p.exited) }()
	s.proc = p
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url() + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			raw, _ := os.ReadFile(filepath.Join(s.data, "server.log"))
			s.t.Fatalf("syncserver exited: %s", raw)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.t.Fatal("syncserver did not answer /healthz within 30 s")
		}
	}
}

func (s *server) stop() {
	s.t.Helper()
	if err := s.proc.Stop(10 * time.Second); err != nil {
		s.t.Logf("server stop: %v", err)
	}
	s.proc = nil
}

func (s *server) url() string { return "http://" + s.addr }

func (s *server) enrolToken(uses int) string {
	s.t.Helper()
	out, err := testutil.RunCommand(context.Background(), s.bin, "", "stations", "enrol-token", "--data", s.data, "--uses", fmt.Sprint(uses), "--json")
	if err != nil {
		s.t.Fatal(err)
	}
	var v struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || v.Token == "" {
		s.t.Fatalf("enrol-token printed %q: %v", out, err)
	}
	return v.Token
}

// db opens the server's database read-only, for checks behind the API.
func (s *server) db() *sql.DB {
	s.t.Helper()
	db, err := sql.Open("sqlite3", "file:"+filepath.Join(s.data, "syncserver.db")+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { db.Close() })
	return db
}

func count(t *testing.T, db *sql.DB, q string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// serverChecks verifies what the server holds for a station: every report
// once, no key activated on two machines, no key bound to two machines.
func serverChecks(t *testing.T, db *sql.DB, stationID int64, wantReports int) {
	t.Helper()
	if n := count(t, db, `SELECT COUNT(*) FROM reports WHERE station_id = ?`, stationID); n != wantReports {
		t.Errorf("the server holds %d reports of station %d, want %d", n, stationID, wantReports)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM (SELECT uuid FROM reports GROUP BY uuid HAVING COUNT(*) > 1)`); n != 0 {
		t.Errorf("%d reports recorded twice", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM (SELECT key_ref FROM reports WHERE success = 1 AND outcome = 'applied'
		GROUP BY key_ref HAVING COUNT(DISTINCT machine_id) > 1)`); n != 0 {
		t.Errorf("%d keys activated on two machines", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM (SELECT key_ref FROM reports WHERE outcome = 'applied' AND key_ref IS NOT NULL
		GROUP BY key_ref HAVING COUNT(DISTINCT machine_id) > 1)`); n != 0 {
		t.Errorf("%d keys used on two machines", n)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM reports WHERE outcome = 'conflict'`); n != 0 {
		t.Errorf("%d conflicts", n)
	}
}

// app is an in-process station (the real core) on a data directory.
type app struct {
	t   *testing.T
	a   *stationcmd.App
	sim *activation.Sim
	hw  *hwSwitch
}

// hwSwitch is a hardware reader whose PC can be changed between activations.
type hwSwitch struct {
	mu sync.Mutex
	hw keystation.Hardware
}

func (h *hwSwitch) Read(ctx context.Context) (keystation.Hardware, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return hwinfo.Fixed{Hardware: h.hw}.Read(ctx)
}

func (h *hwSwitch) set(sn, os string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hw = keystation.Hardware{SerialNumber: sn, Model: "OptiPlex 7010", Manufacturer: "Dell", CPU: "i7",
		Memory: []keystation.MemoryModule{{Size: 16 << 30}}, OS: keystation.OSInfo{Caption: os}}
}

func openApp(t *testing.T, dir string, cfg queue.Config) *app {
	t.Helper()
	sim := activation.NewSim()
	hw := &hwSwitch{}
	a, err := stationcmd.OpenApp(context.Background(), stationcmd.AppOptions{DataDir: dir, Driver: sim, HW: hw, Sync: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return &app{t: t, a: a, sim: sim, hw: hw}
}

// freeAddr returns a loopback address nobody listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// runStation runs the station binary and returns its exit code and output.
func runStation(t *testing.T, bin string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, out.String()
}

var _ = io.Discard
var _ = strings.TrimSpace
