package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"

	"keystation"
	"keystation/activation"
	"keystation/keylist"
	"keystation/queue"
	"keystation/station"
	"keystation/store"
)

// Options wire the GUI to an opened station (cmd/station does it).
type Options struct {
	Core     *station.Core
	DB       *store.StationDB
	Client   *queue.Client
	Sim      *activation.Sim // the simulated driver, when in use (demo controls)
	DataDir  string
	Portable bool
	LogFile  string // the GUI's log file, for log export ("" for none)
	Log      *slog.Logger
	Lang     Lang // "" for the system's
	// RemovableRoots are where the key-list dialog opens (USB sticks);
	// nil for the platform's defaults.
	RemovableRoots []string
	// StatusEvery is how often the status bar refreshes; 2 s when 0.
	StatusEvery time.Duration
	// SignInTTL is how long an online sign-in allows offline sign-ins.
	SignInTTL time.Duration
	// OnFirstFrame is called (once, in a goroutine) when the first frame
	// is painted.
	OnFirstFrame func()
}

// Controller holds the station's state as the screens show it. Slow work
// (hardware, activation, database, network) runs in goroutines; results
// come back through fyne.Do, so the model is only changed on the UI thread.
type Controller struct {
	opt    Options
	ctx    context.Context
	cancel context.CancelFunc
	lang   Lang
	signIn *station.SignIn

	// uiMu serialises UI updates: fyne.Do runs them on the main thread in
	// the app, synchronously in the calling goroutine under the test
	// driver.
	uiMu    sync.Mutex
	pending atomic.Int64

	Operator *station.Operator
	Status   station.Status
	StatusOK bool

	PC pcModel
	// BatchImport is the key list imported for the active batch.
	BatchImport *station.Import

	onStatus []func()
	onPC     func()
}

// pcModel is the This PC screen's state.
type pcModel struct {
	Reading  bool
	HW       *keystation.Hardware
	HWErr    error
	Plan     *station.Plan
	PlanErr  error
	Running  bool
	Steps    map[string]stepState
	Attempt  int
	Retries  []station.Event // key faults that led to a retry
	Current  station.Event   // the last key event (keyId, masked key, source)
	Log      []station.Event
	Result   *station.Result
	Err      error
	Revealed string // the full key, while the worker asked to see it
	cancel   context.CancelFunc
}

type stepState int

const (
	stepPending stepState = iota
	stepRunning
	stepOK
	stepFailed
)

// The steps shown, in order.
var flowSteps = []string{"check", "key", "install", "activate", "verify", "report"}

func newController(opt Options) *Controller {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	if opt.StatusEvery <= 0 {
		opt.StatusEvery = 2 * time.Second
	}
	c := &Controller{opt: opt, lang: opt.Lang}
	if c.lang == "" {
		c.lang = SystemLang()
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.signIn = &station.SignIn{Store: opt.DB, Server: opt.Client, TTL: opt.SignInTTL}
	c.resetPC()
	return c
}

// T translates.
func (c *Controller) T(key string, args ...any) string { return T(c.lang, key, args...) }

// Lang is the language in use.
func (c *Controller) Lang() Lang { return c.lang }

// do runs f on the UI thread.
func (c *Controller) do(f func()) {
	fyne.Do(func() {
		c.uiMu.Lock()
		defer c.uiMu.Unlock()
		f()
	})
}

// work runs slow in a goroutine, counted as pending until its result is
// back on the UI thread.
func (c *Controller) work(slow func(ctx context.Context) func()) {
	c.pending.Add(1)
	go func() {
		defer c.pending.Add(-1)
		done := slow(c.ctx)
		if done != nil {
			c.do(done)
		}
	}()
}

// Pending is how many background jobs have not finished (tests).
func (c *Controller) Pending() int { return int(c.pending.Load()) }

// Lock runs f holding the UI lock (tests read and tap widgets with it).
func (c *Controller) Lock(f func()) {
	c.uiMu.Lock()
	defer c.uiMu.Unlock()
	f()
}

func (c *Controller) close() {
	c.cancel()
	if c.PC.cancel != nil {
		c.PC.cancel()
	}
}

// ---- status ----

func (c *Controller) pollStatus() {
	go func() {
		t := time.NewTicker(c.opt.StatusEvery)
		defer t.Stop()
		for {
			c.RefreshStatus()
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// RefreshStatus reads the status in the background and shows it.
func (c *Controller) RefreshStatus() {
	c.work(func(ctx context.Context) func() {
		st, err := c.opt.Core.Status(ctx)
		if ctx.Err() != nil {
			return nil
		}
		return func() {
			if err == nil {
				c.Status, c.StatusOK = st, true
			}
			for _, f := range c.onStatus {
				f()
			}
		}
	})
}

// SyncNow syncs in the background (the status bar's button).
func (c *Controller) SyncNow(done func(queue.Summary, error)) {
	c.work(func(ctx context.Context) func() {
		sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		sum, err := c.opt.Client.SyncOnce(sctx)
		st, serr := c.opt.Core.Status(ctx)
		return func() {
			if serr == nil {
				c.Status, c.StatusOK = st, true
			}
			for _, f := range c.onStatus {
				f()
			}
			if done != nil {
				done(sum, err)
			}
		}
	})
}

// ---- sign-in ----

// SignIn checks an operator in the background.
func (c *Controller) SignIn(username, password string, done func(*station.Operator, error)) {
	c.work(func(ctx context.Context) func() {
		op, err := c.signIn.SignIn(ctx, username, password)
		st, serr := c.opt.Core.Status(ctx)
		return func() {
			if serr == nil {
				c.Status, c.StatusOK = st, true
			}
			if err == nil {
				c.Operator = &op
				c.opt.Core.Operator = op.Username
				c.opt.Log.Info("operator signed in", "operator", op.Username, "offline", op.Offline)
			}
			for _, f := range c.onStatus {
				f()
			}
			done(&op, err)
		}
	})
}

// SetOperatorName records who works in the core's reports.
func (c *Controller) SetOperatorName(name string) { c.opt.Core.Operator = name }

// SignOut forgets the operator.
func (c *Controller) SignOut() {
	if c.Operator != nil {
		c.opt.Log.Info("operator signed out", "operator", c.Operator.Username)
	}
	c.Operator = nil
	c.opt.Core.Operator = ""
}

// ---- This PC ----

func (c *Controller) resetPC() {
	c.PC = pcModel{Steps: map[string]stepState{}}
}

func (c *Controller) pcChanged() {
	if c.onPC != nil {
		c.onPC()
	}
}

// ReadPC reads this PC's hardware and plans its edition in the background.
func (c *Controller) ReadPC() {
	if c.PC.Running {
		return
	}
	c.resetPC()
	c.PC.Reading = true
	c.pcChanged()
	c.work(func(ctx context.Context) func() {
		hw, err := c.opt.Core.ReadHardware(ctx)
		var plan station.Plan
		var perr error
		if err == nil {
			plan, perr = c.opt.Core.Plan(ctx, hw)
		}
		return func() {
			c.PC.Reading = false
			if err != nil {
				c.PC.HWErr = err
			} else {
				c.PC.HW = &hw
				c.PC.Plan, c.PC.PlanErr = &plan, perr
			}
			c.pcChanged()
		}
	})
}

// CanActivate reports whether the primary action may start an activation.
func (c *Controller) CanActivate() bool {
	return c.Operator != nil && !c.PC.Reading && !c.PC.Running && c.PC.HW != nil
}

// Activate runs the whole flow for this PC in the background; progress
// events come back through fyne.Do.
func (c *Controller) Activate() {
	if !c.CanActivate() {
		return
	}
	hw := *c.PC.HW
	c.PC.Running, c.PC.Result, c.PC.Err, c.PC.Revealed = true, nil, nil, ""
	c.PC.Steps, c.PC.Attempt, c.PC.Retries, c.PC.Log, c.PC.Current = map[string]stepState{}, 1, nil, nil, station.Event{}
	ctx, cancel := context.WithCancel(c.ctx)
	c.PC.cancel = cancel
	c.pcChanged()
	c.work(func(context.Context) func() {
		defer cancel()
		res, err := c.opt.Core.Activate(ctx, hw, func(e station.Event) {
			c.do(func() { c.applyEvent(e) })
		})
		return func() {
			c.PC.Running, c.PC.cancel = false, nil
			c.PC.Result, c.PC.Err = &res, err
			c.pcChanged()
			c.RefreshStatus()
		}
	})
}

// Cancel stops a running activation (the key stays with the PC).
func (c *Controller) Cancel() {
	if c.PC.cancel != nil {
		c.PC.cancel()
	}
}

func (c *Controller) applyEvent(e station.Event) {
	p := &c.PC
	p.Log = append(p.Log, e)
	if e.Attempt > 0 {
		p.Attempt = e.Attempt
	}
	step := string(e.Step)
	switch e.Step {
	case station.StepFirmware:
		step = "check"
		if e.Phase == station.PhaseOK {
			p.Steps["check"] = stepOK
			c.pcChanged()
			return
		}
	case station.StepRetry:
		p.Retries = append(p.Retries, e)
		for _, s := range []string{"key", "install", "activate", "verify", "report"} {
			p.Steps[s] = stepPending
		}
		p.Revealed = ""
		c.pcChanged()
		return
	case station.StepDone:
		c.pcChanged()
		return
	case station.StepCheck:
		if e.Phase == station.PhaseOK {
			p.Steps["check"] = stepRunning // the firmware check follows
			c.pcChanged()
			return
		}
	}
	if e.Step == station.StepKey && e.Phase == station.PhaseOK {
		p.Current = e
	}
	switch e.Phase {
	case station.PhaseStart:
		p.Steps[step] = stepRunning
	case station.PhaseOK:
		p.Steps[step] = stepOK
	case station.PhaseFailed:
		p.Steps[step] = stepFailed
	}
	c.pcChanged()
}

// Reveal shows (or hides again) the full key of the PC being activated.
func (c *Controller) Reveal() {
	if c.PC.Revealed != "" {
		c.PC.Revealed = ""
		c.pcChanged()
		return
	}
	id := c.PC.Current.KeyID
	if id == 0 {
		return
	}
	c.work(func(ctx context.Context) func() {
		k, err := c.opt.DB.RevealKey(ctx, id)
		return func() {
			if err == nil {
				c.PC.Revealed = string(k)
				c.opt.Log.Info("key revealed to the operator", "keyId", id)
			}
			c.pcChanged()
		}
	})
}

// SetSimOutcome scripts the simulated driver's next activations.
func (c *Controller) SetSimOutcome(spec string) error {
	if c.opt.Sim == nil {
		return nil
	}
	script, err := activation.ParseScript(spec)
	if err != nil {
		return err
	}
	c.opt.Sim.SetFirmwareKey("")
	c.opt.Sim.SetScript(script...)
	return nil
}

// ---- batch ----

// Preview reads a key list without importing it. Lines of an edition the
// station does not know are listed as invalid too (the import refuses
// them).
func (c *Controller) Preview(path, edition string, done func(*keylist.List, error)) {
	c.work(func(ctx context.Context) func() {
		l, err := station.ReadKeyList(path, keylist.Options{DefaultEdition: edition})
		if err == nil {
			if eds, eerr := c.opt.DB.Editions(ctx); eerr == nil && len(eds) > 0 {
				known := map[string]bool{}
				for _, e := range eds {
					known[e.Slug] = true
				}
				var keep []keylist.Entry
				for _, e := range l.Entries {
					if known[e.Edition] {
						keep = append(keep, e)
						continue
					}
					l.Rejected = append(l.Rejected, keylist.Rejection{Line: e.Line, Reason: fmt.Sprintf("edition %q is not one of this station's editions", e.Edition), Key: e.Key.Masked()})
				}
				l.Entries = keep
				sort.Slice(l.Rejected, func(i, j int) bool { return l.Rejected[i].Line < l.Rejected[j].Line })
			}
		}
		return func() { done(l, err) }
	})
}

// Import imports a key list and starts the batch.
func (c *Controller) Import(path, edition string, done func(*station.Import, error)) {
	c.work(func(ctx context.Context) func() {
		imp, err := c.opt.Core.ImportKeyList(ctx, path, keylist.Options{DefaultEdition: edition})
		if err == nil {
			_, err = c.opt.Core.StartBatch(ctx, imp, "")
		}
		st, _ := c.opt.Core.Status(ctx)
		return func() {
			c.Status, c.StatusOK = st, true
			if err == nil {
				c.BatchImport = &imp
			}
			for _, f := range c.onStatus {
				f()
			}
			done(&imp, err)
		}
	})
}

// BatchProgress is how far the active batch is.
type BatchProgress struct {
	Batch     *station.Batch
	Imported  int // keys of the list on the station
	Activated int
	Failed    int
	PCFault   int
}

// Progress reads the active batch's progress.
func (c *Controller) Progress(imported int, done func(BatchProgress, error)) {
	c.work(func(ctx context.Context) func() {
		p := BatchProgress{Batch: c.opt.Core.Batch(), Imported: imported}
		var err error
		if p.Batch != nil {
			var rows []keylist.Result
			rows, err = c.opt.Core.BatchResults(ctx)
			for _, r := range rows {
				switch {
				case strings.HasPrefix(r.Status, "activated"):
					p.Activated++
				case strings.HasPrefix(r.Status, "failed"):
					p.Failed++
				default:
					p.PCFault++
				}
			}
		}
		return func() { done(p, err) }
	})
}

// EndBatch ends the active batch.
func (c *Controller) EndBatch() { c.opt.Core.EndBatch(); c.BatchImport = nil; c.RefreshStatus() }

// ---- history ----

// History reads the recent activations.
func (c *Controller) History(f store.HistoryFilter, done func([]store.ActivationRecord, error)) {
	c.work(func(ctx context.Context) func() {
		recs, err := c.opt.Core.History(ctx, f)
		return func() { done(recs, err) }
	})
}

// ---- settings ----

// TestServer checks that a server answers GET /healthz.
func (c *Controller) TestServer(url string, done func(time.Duration, error)) {
	c.work(func(ctx context.Context) func() {
		t0 := time.Now()
		err := ping(ctx, url)
		d := time.Since(t0)
		return func() { done(d, err) }
	})
}

func ping(ctx context.Context, base string) error {
	base = strings.TrimRight(strings.TrimSpace(base), "/")
	if !strings.HasPrefix(base, "http://") && !strings.HasPrefix(base, "https://") {
		return keystation.FieldError(map[string]string{"server": "must start with http:// or https://"})
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+queue.PathHealth, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Enrol enrols the station and syncs once.
func (c *Controller) Enrol(url, token, name string, done func(keystation.EnrolResponse, error)) {
	c.work(func(ctx context.Context) func() {
		ectx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		r, err := c.opt.Client.Enrol(ectx, url, token, name)
		if err == nil {
			_, _ = c.opt.Client.SyncOnce(ectx)
		}
		st, _ := c.opt.Core.Status(ctx)
		return func() {
			c.Status, c.StatusOK = st, true
			for _, f := range c.onStatus {
				f()
			}
			done(r, err)
		}
	})
}

// SaveServerURL changes the enrolled server's address.
func (c *Controller) SaveServerURL(url string, done func(error)) {
	c.work(func(ctx context.Context) func() {
		err := c.opt.DB.SetServerURL(ctx, url)
		if err == nil {
			c.opt.Client.Trigger()
		}
		return func() { done(err); c.RefreshStatus() }
	})
}

// Targets reads the buffer targets.
func (c *Controller) Targets(done func(map[string]store.BufferTarget, []keystation.Edition, error)) {
	c.work(func(ctx context.Context) func() {
		t, err := c.opt.DB.Targets(ctx)
		eds, eerr := c.opt.DB.Editions(ctx)
		return func() { done(t, eds, errors.Join(err, eerr)) }
	})
}

// SaveTargets stores buffer targets and asks for a sync.
func (c *Controller) SaveTargets(t map[string]store.BufferTarget, done func(error)) {
	c.work(func(ctx context.Context) func() {
		var err error
		for ed, v := range t {
			if e := c.opt.DB.SetTarget(ctx, ed, v); e != nil {
				err = errors.Join(err, e)
			}
		}
		if err == nil {
			c.opt.Client.Trigger()
		}
		return func() { done(err); c.RefreshStatus() }
	})
}

// ExportLogs writes the GUI's log and the station's event log into dir and
// returns the file written. Neither holds a full key.
func (c *Controller) ExportLogs(dir string, done func(string, error)) {
	c.work(func(ctx context.Context) func() {
		path, err := c.exportLogs(ctx, dir)
		return func() { done(path, err) }
	})
}

func (c *Controller) exportLogs(ctx context.Context, dir string) (string, error) {
	name := "keystation-log-" + time.Now().Format("20060102-150405") + ".txt"
	path := filepath.Join(dir, name)
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	st, _ := c.opt.Core.Status(ctx)
	fmt.Fprintf(f, "KeyStation station log export, %s\nstation %s (id %d), server %s, driver %s (simulated %v), data %s\n\n",
		time.Now().Format(time.RFC3339), st.Station, st.StationID, st.Server, st.Driver, st.Simulated, c.opt.DataDir)
	fmt.Fprintln(f, "== station events (newest first)")
	evs, err := c.opt.DB.Events(ctx, 1000)
	if err != nil {
		return "", err
	}
	for _, e := range evs {
		fmt.Fprintf(f, "%s %s %s\n", e.At.Format(time.RFC3339), e.Kind, e.Message)
	}
	if c.opt.LogFile != "" {
		fmt.Fprintln(f, "\n== GUI log")
		if lf, err := os.Open(c.opt.LogFile); err == nil {
			_, err = io.Copy(f, lf)
			lf.Close()
			if err != nil {
				return "", err
			}
		}
	}
	return path, f.Sync()
}

// SetLang switches the language (the UI is rebuilt by the caller).
func (c *Controller) SetLang(l Lang) { c.lang = l }
