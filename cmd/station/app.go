package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"keystation"
	"keystation/activation"
	"keystation/hwinfo"
	"keystation/queue"
	"keystation/seal"
	"keystation/station"
	"keystation/store"
)

// Exit codes a line script can rely on.
const (
	exitOK          = 0 // done: the PC is activated / the command succeeded
	exitFailure     = 1 // the command failed (message on stderr)
	exitUsage       = 2 // wrong command line
	exitPCFault     = 3 // the PC or its network is at fault: fix it and run again (the same key is used)
	exitNoKey       = 4 // no key of the edition left on the station, or the PC burnt its cap of keys
	exitFirmware    = 5 // the PC has a firmware (OA3) key: no pool key was used
	exitOffline     = 6 // the sync server cannot be reached (work goes on offline)
	exitInterrupted = 7 // the activation was interrupted or timed out: the key stays with the PC; run again
)

const usage = `station — KeyStation's station: activates Windows on the PC it runs on

Usage:
  station enrol    --server URL --token TOKEN [--name NAME]
  station activate [--activator sim|windows] [--sim-outcome SPEC] [--sim-delay D]
                   [--sn SN] [--model MODEL] [--os-version TEXT] [--operator NAME]
                   [--timeout D] [--no-sync] [--json]
  station batch    --keys FILE [--edition EDITION] [--results FILE] [--import-only]
                   [activate flags]
  station sync     [--timeout D] [--json]
  station status   [--json] [--offline]
  station history  [--limit N] [--sync waiting|synced|conflict|rejected] [--json]
  station targets  --edition EDITION --target N [--low-water N]
  station gui      [--activator sim|windows] [--lang en|zh] (the line worker's GUI;
                   the default with no command where there is a display)
  station help

Every command takes --data DIR (the station's data directory) and
--log-level debug|info|warn|error (logs go to stderr; never a full key).
The data directory defaults to KEYSTATION_STATION_DATA, else the directory of
the executable when it is on removable media (portable mode: a USB stick),
else the user's application-data directory + KeyStation. The data key comes
from DIR/keystation.key (created on first start, mode 0600) or from
KEYSTATION_DATA_KEY (base64 of 32 bytes).

activate reads this PC's hardware (--sn, --model and --os-version override
what is read, e.g. for a demo on Linux), picks the edition, checks for a
firmware key, takes a key from the local buffer (the same PC always gets the
same key back), installs and activates it, and commits the report to the
outbox before it says the PC is done; on a key fault it burns the key and
tries the next. Then it syncs briefly unless --no-sync. On Linux the default
activator is the simulated one (--activator sim); every output then says
SIMULATED. --sim-outcome takes comma-separated outcomes, one per activation:
success, slow:3s, hang, firmware, key-fault[:0xC004C020], pc-fault[:0x8007232B],
hresult:0x..., not-licensed, invalid-key, used-up, no-kms, dns, clock,
not-elevated, no-internet, unknown.

batch imports a key list (CSV or text: key, optional keyId, optional edition)
from a USB stick into a local pool marked with its file name and SHA-256
(the same file twice imports nothing; invalid lines are listed with line
numbers and reasons), then activates this PC preferring the list's keys, and
rewrites the results CSV next to the list (LIST.results.csv).

Exit codes:
  0  done (the PC is activated; the command succeeded)
  1  failure (message on stderr)
  2  usage error
  3  PC or network fault: fix the PC as told and run again (the same key is used)
  4  no key left for the PC's edition, or the PC burnt its cap of keys
  5  the PC has a firmware (OA3) key: no pool key was used
  6  the sync server cannot be reached (sync, enrol; work goes on offline)
  7  the activation was interrupted or timed out: the key stays with the PC; run again
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
	case "enrol", "enroll":
		err = runEnrol(ctx, rest, stdout, stderr)
	case "activate":
		err = runActivate(ctx, rest, stdout, stderr, false)
	case "batch":
		err = runActivate(ctx, rest, stdout, stderr, true)
	case "sync":
		err = runSync(ctx, rest, stdout, stderr)
	case "status":
		err = runStatus(ctx, rest, stdout, stderr)
	case "history":
		err = runHistory(ctx, rest, stdout, stderr)
	case "targets":
		err = runTargets(ctx, rest, stdout, stderr)
	case "gui":
		err = runGUI(ctx, rest, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "station: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return exitCode(err, stderr)
}

type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// exitError carries an exit code; its message has been printed already
// when quiet is set.
type exitError struct {
	code  int
	err   error
	quiet bool
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func exitCode(err error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitUsage
	}
	var ue usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(stderr, "station: %s\n", ue.msg)
		return exitUsage
	}
	code := exitFailure
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
		if ee.quiet {
			return code
		}
	} else if queue.IsOffline(err) {
		code = exitOffline
	}
	fmt.Fprintf(stderr, "station: %s\n", describe(err))
	return code
}

func describe(err error) string {
	var e *keystation.Error
	if errors.As(err, &e) {
		var oe *queue.OfflineError
		if errors.As(err, &oe) {
			return err.Error()
		}
		return e.Error()
	}
	return err.Error()
}

// common flags of every command.
type common struct {
	data     string
	logLevel string
}

func newFlags(name string, stderr io.Writer, c *common) *flag.FlagSet {
	fs := flag.NewFlagSet("station "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.data, "data", "", "data directory (default: see station help)")
	fs.StringVar(&c.logLevel, "log-level", "warn", "debug, info, warn or error")
	return fs
}

// parse parses flags that may come before or after positional arguments.
func parse(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func noArgs(pos []string) error {
	if len(pos) > 0 {
		return usageError{fmt.Sprintf("unexpected argument %q", pos[0])}
	}
	return nil
}

// AppOptions configure OpenApp.
type AppOptions struct {
	DataDir  string // "" for DefaultDataDir
	Logger   *slog.Logger
	Driver   activation.Driver // nil: activation is not possible
	HW       hwinfo.Reader     // nil: hwinfo.Read
	Operator string
	Sync     queue.Config
}

// App is an opened station: its database, sync client and core. The
// headless commands and (later) the GUI open one and drive its Core.
type App struct {
	DataDir  string
	Portable bool
	Log      *slog.Logger
	DB       *store.StationDB
	Client   *queue.Client
	Core     *station.Core
}

// OpenApp opens the station's data directory.
func OpenApp(ctx context.Context, opt AppOptions) (*App, error) {
	a := &App{DataDir: opt.DataDir, Log: opt.Logger}
	if a.Log == nil {
		a.Log = slog.New(slog.DiscardHandler)
	}
	if a.DataDir == "" {
		dir, portable, err := DefaultDataDir()
		if err != nil {
			return nil, fmt.Errorf("no data directory: %w (give --data DIR)", err)
		}
		a.DataDir, a.Portable = dir, portable
	}
	if err := os.MkdirAll(a.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	box, created, err := seal.Load(a.DataDir, os.Getenv(seal.EnvDataKey))
	if err != nil {
		return nil, err
	}
	if created {
		a.Log.Info("created data key file", "path", filepath.Join(a.DataDir, seal.KeyFileName))
	}
	db, err := store.OpenStationDB(ctx, filepath.Join(a.DataDir, store.StationFile), store.Options{Box: box, Logger: a.Log})
	if err != nil {
		return nil, err
	}
	a.DB = db
	a.Client = queue.New(db, opt.Sync, a.Log)
	hw := opt.HW
	if hw == nil {
		hw = hwinfo.ReaderFunc(hwinfo.Read)
	}
	a.Core = &station.Core{Store: db, HW: hw, Driver: opt.Driver, Sync: a.Client, Log: a.Log, Operator: opt.Operator}
	return a, nil
}

// Close closes the database.
func (a *App) Close() error { return a.DB.Close() }

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("log level %q: use debug, info, warn or error", level)}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func openCommon(ctx context.Context, c common, stderr io.Writer, opt AppOptions) (*App, error) {
	log, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return nil, err
	}
	opt.DataDir, opt.Logger = c.data, log
	return OpenApp(ctx, opt)
}

// defaultActivator is the simulated driver except on Windows.
func defaultActivator() string {
	if runtime.GOOS == "windows" {
		return "windows"
	}
	return "sim"
}

func newDriver(name, simSpec string, simDelay time.Duration) (activation.Driver, error) {
	switch strings.ToLower(name) {
	case "sim", "simulated":
		s, err := activation.ParseSim(simSpec)
		if err != nil {
			return nil, usageError{"--sim-outcome: " + keystation.ErrorMessage(err)}
		}
		s.SetStepDelay(simDelay)
		return s, nil
	case "windows":
		if simSpec != "" {
			return nil, usageError{"--sim-outcome needs --activator sim"}
		}
		return activation.NewWindowsDriver()
	}
	return nil, usageError{fmt.Sprintf("--activator %q: use sim or windows", name)}
}

const simBanner = "*** SIMULATED activation: nothing is installed or activated on this PC (simulated driver) ***"
