package main

import (
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	fyneapp "fyne.io/fyne/v2/app"

	"keystation"
	"keystation/activation"
	"keystation/hwinfo"
	"keystation/queue"
	"keystation/ui"
)

//go:embed Icon.png
var iconPNG []byte

// processStart is as close to exec as the program can see.
var processStart = time.Now()

// hasDisplay reports whether a GUI can be shown: always on Windows, else
// when X11 or Wayland is there.
func hasDisplay() bool {
	if runtime.GOOS == "windows" || runtime.GOOS == "darwin" {
		return true
	}
	return os.Getenv("DISPLAY") != "" || os.Getenv("WAYLAND_DISPLAY") != ""
}

// guiFlags are the flags of "station gui".
type guiFlags struct {
	activator, simOutcome string
	simDelay              time.Duration
	sn, model, osVersion  string
	lang                  string
	firstFrame            string
	exitAfterFirstFrame   bool
	tour                  string
	benchActivations      int
	removable             string
}

func runGUI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var c common
	var f guiFlags
	fs := newFlags("gui", stderr, &c)
	fs.StringVar(&f.activator, "activator", defaultActivator(), "sim (simulated) or windows")
	fs.StringVar(&f.simOutcome, "sim-outcome", "", "simulated outcomes, one per activation (see station help)")
	fs.DurationVar(&f.simDelay, "sim-delay", 600*time.Millisecond, "simulated install and activate each take this long (to see the steps)")
	fs.StringVar(&f.sn, "sn", "", "serial number (overrides what is read; with the simulated activator a new demo serial is made for each PC otherwise)")
	fs.StringVar(&f.model, "model", "", "model (overrides what is read)")
	fs.StringVar(&f.osVersion, "os-version", "", "OS version string, e.g. \"Windows 11 Pro\" (overrides what is read)")
	fs.StringVar(&f.lang, "lang", "", "en or zh (default: the system locale)")
	fs.StringVar(&f.firstFrame, "first-frame", "", "write the milliseconds from process start to the first painted frame to this file")
	fs.BoolVar(&f.exitAfterFirstFrame, "exit-after-first-frame", false, "quit once the first frame is painted (benchmarks)")
	fs.StringVar(&f.tour, "tour", "", "screenshot tour: drive every screen, signalling each one in this directory (make screenshots)")
	fs.IntVar(&f.benchActivations, "bench-activations", 0, "run this many simulated activations, print the resident memory and quit (make bench)")
	fs.StringVar(&f.removable, "removable", "", "where the key-list dialog opens (default: the USB sticks mounted)")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if !hasDisplay() {
		return fmt.Errorf("no display: $DISPLAY and $WAYLAND_DISPLAY are empty, so the GUI cannot open; use the headless commands (station help)")
	}
	lang := ui.ParseLang(f.lang)
	if f.lang != "" && lang == "" {
		return usageError{fmt.Sprintf("--lang %q: use en or zh", f.lang)}
	}
	driver, err := newDriver(f.activator, f.simOutcome, f.simDelay)
	if err != nil {
		return err
	}
	sim, _ := driver.(*activation.Sim)
	hw := guiHardware(f, sim != nil)

	// Logs: stderr at --log-level, and a file in the data directory at
	// info level for "Export logs" (never a full key).
	stderrLog, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return err
	}
	app, err := OpenApp(ctx, AppOptions{DataDir: c.data, Logger: stderrLog, Driver: driver, HW: hw,
		Sync: queue.Config{HTTPTimeout: 10 * time.Second, BackoffMax: 20 * time.Second, Interval: 30 * time.Second}})
	if err != nil {
		return err
	}
	defer app.Close()
	logFile := filepath.Join(app.DataDir, "logs", "station-gui.log")
	var log *slog.Logger = stderrLog
	if err := os.MkdirAll(filepath.Dir(logFile), 0o700); err == nil {
		if lf, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			defer lf.Close()
			log = slog.New(teeHandler{stderrLog.Handler(), slog.NewTextHandler(lf, &slog.HandlerOptions{Level: slog.LevelInfo})})
		}
	}
	app.Core.Log = log
	log.Info("station GUI starting", "data", app.DataDir, "driver", driver.Name(), "simulated", driver.Simulated())

	syncCtx, stopSync := context.WithCancel(ctx)
	defer stopSync()
	if e, _ := app.DB.Enrolment(ctx); e.Enrolled() && f.benchActivations == 0 {
		go app.Client.Run(syncCtx)
	} else if f.benchActivations == 0 {
		// Not enrolled yet: start syncing once the worker enrols.
		go func() {
			for syncCtx.Err() == nil {
				if e, _ := app.DB.Enrolment(syncCtx); e.Enrolled() {
					app.Client.Run(syncCtx)
					return
				}
				select {
				case <-syncCtx.Done():
				case <-time.After(2 * time.Second):
				}
			}
		}()
	}

	a := fyneapp.NewWithID("io.keystation.station")
	a.SetIcon(fyne.NewStaticResource("Icon.png", iconPNG))
	quit := func() { fyne.Do(a.Quit) }
	var removable []string
	if f.removable != "" {
		removable = strings.Split(f.removable, string(os.PathListSeparator))
	}
	var firstDone atomic.Bool
	var u *ui.UI
	opt := ui.Options{Core: app.Core, DB: app.DB, Client: app.Client, Sim: sim, DataDir: app.DataDir, Portable: app.Portable,
		LogFile: logFile, Log: log, Lang: lang, RemovableRoots: removable,
		OnFirstFrame: func() {
			if firstDone.Swap(true) {
				return
			}
			ms := time.Since(processStart).Milliseconds()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(stdout, "FIRST FRAME %d ms (RSS %d KiB, Go heap in use %d KiB)\n", ms, procStatus("VmRSS"), m.HeapInuse>>10)
			if f.firstFrame != "" {
				_ = os.WriteFile(f.firstFrame, []byte(fmt.Sprintf("%d\n", ms)), 0o644)
			}
			switch {
			case f.exitAfterFirstFrame:
				quit()
			case f.benchActivations > 0:
				go benchActivations(u, sim, f.benchActivations, stdout, quit)
			case f.tour != "":
				go runTour(u, f.tour, sim, quit)
			}
		}}
	u = ui.New(a, opt)
	noDepthBuffer()
	go func() {
		<-ctx.Done() // Ctrl-C, SIGTERM
		quit()
	}()
	u.ShowAndRun()
	log.Info("station GUI closed")
	return nil
}

// guiHardware is the hardware reader of the GUI: the real one with the
// command line's overrides; with the simulated activator, a PC that cannot
// be identified (Linux without root, a VM) gets a new demo serial number
// on every read ("Next PC"), a demo model and, when its OS maps to no
// Windows edition, "Windows 11 Pro".
func guiHardware(f guiFlags, simulated bool) hwinfo.Reader {
	ov := hwinfo.Override{SN: f.sn, Model: f.model, OSVersion: f.osVersion}
	var n atomic.Int64
	// Unique per run: two runs started together must not invent the same PCs.
	base := fmt.Sprintf("%s-%02x", time.Now().Format("0102-150405"), rand.IntN(256))
	return hwinfo.ReaderFunc(func(ctx context.Context) (keystation.Hardware, error) {
		h, err := hwinfo.Read(ctx)
		if err != nil && !simulated {
			return h, err
		}
		h = ov.Apply(h)
		if simulated {
			if f.sn == "" {
				h = hwinfo.Override{SN: fmt.Sprintf("SIM-%s-%03d", base, n.Add(1))}.Apply(h)
			}
			if f.model == "" && (h.Model == "" || hwinfo.IsPlaceholder(h.Model)) {
				h = hwinfo.Override{Model: "KeyStation Demo PC"}.Apply(h)
			}
			if f.osVersion == "" && !strings.Contains(strings.ToLower(h.OS.OSVersion()), "windows") {
				h = hwinfo.Override{OSVersion: "Windows 11 Pro"}.Apply(h)
			}
		}
		return h, nil
	})
}

// teeHandler sends records to two handlers.
type teeHandler struct{ a, b slog.Handler }

func (t teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return t.a.Enabled(ctx, l) || t.b.Enabled(ctx, l)
}

func (t teeHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if t.a.Enabled(ctx, r.Level) {
		err = t.a.Handle(ctx, r.Clone())
	}
	if t.b.Enabled(ctx, r.Level) {
		if e := t.b.Handle(ctx, r.Clone()); e != nil {
			err = e
		}
	}
	return err
}

func (t teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return teeHandler{t.a.WithAttrs(as), t.b.WithAttrs(as)}
}

func (t teeHandler) WithGroup(n string) slog.Handler {
	return teeHandler{t.a.WithGroup(n), t.b.WithGroup(n)}
}
