package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// SyncserverPackage is the import path of the sync server's main package.
const SyncserverPackage = "keystation/cmd/syncserver"

// BuildSyncserver builds the sync server binary into dir and returns its
// path. It runs "go build" from the current directory, which must lie inside
// the keystation module (as a test's or "go run"'s working directory does).
func BuildSyncserver(ctx context.Context, dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("the go command is needed to build the sync server: %w", err)
	}
	out := filepath.Join(dir, "syncserver")
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, SyncserverPackage)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", SyncserverPackage, err, stderr.String())
	}
	return out, nil
}

// RunCommand runs the binary bin with args and stdin, and returns its
// standard output; a non-zero exit is an error carrying standard error.
func RunCommand(ctx context.Context, bin, stdin string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w\n%s", filepath.Base(bin), strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String(), nil
}

// Credential is a username and password.
type Credential struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// Demo runs "syncserver demo --data DIR" and returns the demo operator.
func Demo(ctx context.Context, bin, dataDir string) (Credential, error) {
	out, err := RunCommand(ctx, bin, "", "demo", "--data", dataDir)
	if err != nil {
		return Credential{}, err
	}
	var creds struct {
		Operator Credential `json:"operator"`
	}
	if err := json.Unmarshal([]byte(out), &creds); err != nil {
		return Credential{}, fmt.Errorf("syncserver demo printed %q: %w", out, err)
	}
	if creds.Operator.Username == "" || creds.Operator.Password == "" {
		return Credential{}, fmt.Errorf("syncserver demo printed no operator: %q", out)
	}
	return creds.Operator, nil
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// Proc is a "syncserver serve" subprocess.
type Proc struct {
	Addr    string
	LogPath string // the server's standard error (its JSON log)
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
	waitErr error
}

// StartServer starts "bin serve --data DIR --addr 127.0.0.1:PORT" on a free
// port, its log going to logPath, and returns once GET /healthz answers (or
// fails when the process exits or does not answer within 30 s).
func StartServer(ctx context.Context, bin, dataDir, logPath string, extra ...string) (*Proc, error) {
	var last error
	for range 3 { // the free port may be taken between FreeAddr and listen
		addr, err := FreeAddr()
		if err != nil {
			return nil, err
		}
		p, err := startServer(ctx, bin, dataDir, addr, logPath, extra)
		if err == nil {
			return p, nil
		}
		last = err
	}
	return nil, last
}

func startServer(ctx context.Context, bin, dataDir, addr, logPath string, extra []string) (*Proc, error) {
	log, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--data", dataDir, "--addr", addr}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &Proc{Addr: addr, LogPath: logPath, cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		log.Close()
		close(p.exited)
	}()
	c := NewClient(addr, "", "", 1)
	defer c.CloseIdle()
	deadline := time.Now().Add(30 * time.Second)
	for {
		hctx, cancel := context.WithTimeout(ctx, time.Second)
		ok := c.Healthy(hctx)
		cancel()
		if ok {
			return p, nil
		}
		select {
		case <-p.exited:
			return nil, fmt.Errorf("syncserver serve on %s exited: %v (log: %s)", addr, p.waitErr, tail(logPath, 2000))
		case <-ctx.Done():
			p.Kill()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Kill()
			return nil, fmt.Errorf("syncserver serve on %s did not answer /healthz within 30 s (log: %s)", addr, tail(logPath, 2000))
		}
	}
}

// PID is the server's process ID.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to end.
func (p *Proc) Kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// Stop asks the server to shut down (SIGTERM) and waits up to timeout for
// it, then kills it. It returns the process's exit error, if any.
func (p *Proc) Stop(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.waitErr
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("syncserver did not stop within %s; killed", timeout)
	}
}

// Exited is closed once the process has ended.
func (p *Proc) Exited() <-chan struct{} { return p.exited }

// Status reads a "kB" line of /proc/PID/status ("VmHWM" is the peak resident
// set size, "VmRSS" the current one), in KiB. Linux only.
func (p *Proc) Status(field string) (int64, error) { return ProcStatus(p.PID(), field) }

// ProcStatus is Status for any process id.
func ProcStatus(pid int, field string) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		name, val, ok := strings.Cut(line, ":")
		if !ok || name != field {
			continue
		}
		f := strings.Fields(val)
		if len(f) == 0 {
			break
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// CPUTime is the CPU time (user + system) the process has used so far.
// Linux only.
func (p *Proc) CPUTime() (time.Duration, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID()))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from its ')'.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	const clkTck = 100 // USER_HZ on every Linux Go supports
	return time.Duration(utime+stime) * time.Second / clkTck, nil
}

// tail returns the last n bytes of a file, for error messages.
func tail(path string, n int64) string {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if int64(len(raw)) > n {
		raw = raw[int64(len(raw))-n:]
	}
	return string(raw)
}

// Tail returns the last n bytes of the server's log.
func (p *Proc) Tail(n int64) string { return tail(p.LogPath, n) }
