package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"keystation"
	"keystation/api"
	"keystation/auth"
	"keystation/seal"
	"keystation/store"
)

// Exit codes a script can rely on.
const (
	exitOK       = 0
	exitFailure  = 1 // the command failed (message on stderr)
	exitUsage    = 2 // wrong command line
	exitRejected = 3 // done, but some input lines were rejected (keys import)
)

const usage = `syncserver — KeyStation's sync server

Usage:
  syncserver serve    [--data DIR] [--addr HOST:PORT] [--log-level LEVEL] [--burn-cap N] [--allow-demo-on-network]
  syncserver demo     [--data DIR]
  syncserver keys import [--data DIR] [--edition EDITION] FILE
  syncserver users add NAME --role operator|tenant-admin|super-admin [--tenant ID] [--password-stdin]
  syncserver users list | disable NAME | enable NAME | set-password NAME [--password-stdin]
  syncserver stations enrol-token [--name NAME] [--uses N] [--ttl DURATION] [--tenant ID]
  syncserver stations list | reclaim ID | revoke ID | reconcile ID
  syncserver stations sync-file --in REQUEST_FILE [--out RESPONSE_FILE]   (air-gapped station via USB stick)
  syncserver editions list | add --slug SLUG --name NAME --pattern TEXT [--pattern TEXT ...] [--low-stock N]
  syncserver tenants add NAME | list
  syncserver audit verify [--json]

Every flag has an environment variable: KEYSTATION_DATA, KEYSTATION_ADDR,
KEYSTATION_LOG_LEVEL, KEYSTATION_BURN_CAP, KEYSTATION_ALLOW_DEMO_ON_NETWORK.
The data key comes from DIR/keystation.key (created on first start, mode 0600)
or from KEYSTATION_DATA_KEY (base64 of 32 bytes).
`

// Run runs the command line args and returns the exit code.
func Run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	var err error
	switch cmd {
	case "serve":
		err = runServe(ctx, rest, stderr)
	case "demo":
		err = runDemo(ctx, rest, stdout, stderr)
	case "keys":
		return runKeys(ctx, rest, stdout, stderr)
	case "users":
		err = runUsers(ctx, rest, stdin, stdout, stderr)
	case "stations":
		err = runStations(ctx, rest, stdout, stderr)
	case "editions":
		err = runEditions(ctx, rest, stdout, stderr)
	case "tenants":
		err = runTenants(ctx, rest, stdout, stderr)
	case "audit":
		err = runAudit(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "syncserver: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

type usageError struct {
	msg     string
	printed bool // the flag package already said it
}

func (e usageError) Error() string { return e.msg }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	var ue usageError
	if errors.As(err, &ue) {
		if !ue.printed {
			fmt.Fprintf(stderr, "syncserver: %s\n", ue.msg)
		}
		return exitUsage
	}
	fmt.Fprintf(stderr, "syncserver: %s\n", describe(err))
	return exitFailure
}

// describe returns the message of a domain error with its fields, or the
// error text of anything else (the command line is the operator's own).
func describe(err error) string {
	var e *keystation.Error
	if errors.As(err, &e) {
		return e.Error()
	}
	return err.Error()
}

// Config is the server's configuration, from flags and the environment.
type Config struct {
	DataDir            string
	Addr               string
	LogLevel           string
	BurnCap            int
	AllowDemoOnNetwork bool
	ShutdownTimeout    time.Duration
}

func env(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(env(name, "")); err == nil {
		return v
	}
	return def
}

func envBool(name string) bool {
	b, _ := strconv.ParseBool(env(name, "false"))
	return b
}

func newFlags(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("syncserver "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

func dataFlag(fs *flag.FlagSet) *string {
	return fs.String("data", env("KEYSTATION_DATA", "./data"), "data directory (KEYSTATION_DATA)")
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{msg: err.Error(), printed: true}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newLogger(w io.Writer, level string, json bool) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{msg: fmt.Sprintf("log level %q: use debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: l}
	if json {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}

// openStore opens the data directory's database and data key.
func openStore(ctx context.Context, dir string, log *slog.Logger, burnCap int) (*store.Server, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	box, created, err := seal.Load(dir, os.Getenv(seal.EnvDataKey))
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("created data key file", "path", filepath.Join(dir, seal.KeyFileName))
	}
	return store.OpenServer(ctx, filepath.Join(dir, store.ServerFile), store.Options{Box: box, Logger: log, BurnCap: burnCap})
}

// Main is a running sync server; tests drive it through Run and Close.
type Main struct {
	Config Config
	Logger *slog.Logger

	Store *store.Server
	API   *api.Server
	http  *http.Server
	ln    net.Listener
	done  chan error
}

// NewMain returns a Main with the default configuration.
func NewMain() *Main {
	return &Main{Config: Config{DataDir: "./data", Addr: "127.0.0.1:8080", LogLevel: "info",
		BurnCap: store.DefaultBurnCap, ShutdownTimeout: 30 * time.Second}}
}

// Run opens the store and starts serving; it returns once the server listens.
func (m *Main) Run(ctx context.Context) error {
	if m.Logger == nil {
		m.Logger = slog.New(slog.DiscardHandler)
	}
	st, err := openStore(ctx, m.Config.DataDir, m.Logger, m.Config.BurnCap)
	if err != nil {
		return err
	}
	m.Store = st
	if demo, err := st.HasDemoUsers(ctx); err != nil {
		return err
	} else if demo && !m.Config.AllowDemoOnNetwork && !isLoopback(m.Config.Addr) {
		return keystation.Errorf(keystation.EDEMOONNETWORK,
			"refusing to listen on %s: demo accounts exist in this data directory; disable them, listen on 127.0.0.1, or pass --allow-demo-on-network", m.Config.Addr)
	}
	a := auth.NewAuthenticator(st)
	m.API = api.NewServer(st, a, m.Logger)
	if err := setupAdminAPI(ctx, m.API, st); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", m.Config.Addr)
	if err != nil {
		return err
	}
	m.ln = ln
	m.http = &http.Server{Handler: m.API, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn)}
	m.done = make(chan error, 1)
	go func() { m.done <- m.http.Serve(ln) }()
	m.Logger.Info("sync server listening", "addr", ln.Addr().String(), "data", m.Config.DataDir, "burnCap", st.BurnCap())
	return nil
}

// Addr is the address the server listens on.
func (m *Main) Addr() string { return m.ln.Addr().String() }

// Close stops accepting requests, finishes those in flight and closes the
// database.
func (m *Main) Close() error {
	var errs []error
	if m.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), m.Config.ShutdownTimeout)
		defer cancel()
		errs = append(errs, m.http.Shutdown(ctx))
		if err := <-m.done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
	}
	if m.Store != nil {
		errs = append(errs, m.Store.Close())
	}
	return errors.Join(errs...)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func runServe(ctx context.Context, args []string, stderr io.Writer) error {
	tuneGC()
	m := NewMain()
	fs := newFlags("serve", stderr)
	fs.StringVar(&m.Config.DataDir, "data", env("KEYSTATION_DATA", "./data"), "data directory (KEYSTATION_DATA)")
	fs.StringVar(&m.Config.Addr, "addr", env("KEYSTATION_ADDR", "127.0.0.1:8080"), "listen address (KEYSTATION_ADDR)")
	fs.StringVar(&m.Config.LogLevel, "log-level", env("KEYSTATION_LOG_LEVEL", "info"), "debug, info, warn or error (KEYSTATION_LOG_LEVEL)")
	fs.IntVar(&m.Config.BurnCap, "burn-cap", envInt("KEYSTATION_BURN_CAP", store.DefaultBurnCap), "keys one machine may burn (KEYSTATION_BURN_CAP)")
	fs.BoolVar(&m.Config.AllowDemoOnNetwork, "allow-demo-on-network", envBool("KEYSTATION_ALLOW_DEMO_ON_NETWORK"),
		"listen off loopback even while demo accounts exist (KEYSTATION_ALLOW_DEMO_ON_NETWORK)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if m.Config.BurnCap < 1 {
		return usageError{msg: "--burn-cap must be at least 1"}
	}
	log, err := newLogger(stderr, m.Config.LogLevel, true)
	if err != nil {
		return err
	}
	m.Logger = log
	if err := m.Run(ctx); err != nil {
		if m.Store != nil {
			m.Store.Close()
		}
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down: finishing requests in flight")
	case err := <-m.done:
		m.done <- err
		log.Error("server stopped", "err", err)
	}
	if err := m.Close(); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// tuneGC sets the collector for a long-running server, unless GOGC or
// GOMEMLIMIT say otherwise. Its live heap is small (tens of MiB) and its
// garbage is short-lived request data, so collecting at five times the live
// heap rather than twice cuts the collector's share of a busy line's CPU;
// the soft limit keeps a burst (a large import) from growing the heap
// without bound.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(1 << 30)
	}
}
