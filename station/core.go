// Package station is the station's core: everything a line worker's station
// does, without a user interface. The headless command line (cmd/station)
// and the GUI drive the same Core: read the PC's hardware, pick its edition,
// take a key from the local buffer, install and activate it, and queue the
// report in the outbox, with progress events, cancellable contexts and
// status snapshots.
//
// The core depends on small interfaces (Store, hwinfo.Reader,
// activation.Driver, Syncer); cmd/station wires the concrete types.
package station

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"keystation"
	"keystation/activation"
	"keystation/hwinfo"
	"keystation/queue"
	"keystation/store"
)

// Store is what the core needs of the station's database
// (store.StationDB).
type Store interface {
	Editions(ctx context.Context) ([]keystation.Edition, error)
	AssignKey(ctx context.Context, req store.KeyRequest) (store.KeyAssignment, error)
	RecordAttempt(ctx context.Context, at store.Attempt) (string, error)
	LogEvent(ctx context.Context, kind, message string, data map[string]any) error
	Status(ctx context.Context) (store.StationStatus, error)
	History(ctx context.Context, f store.HistoryFilter) ([]store.ActivationRecord, error)
	ImportKeyList(ctx context.Context, in store.KeyListImport) (store.KeyListResult, error)
	SourceResults(ctx context.Context, sourceID int64) ([]store.SourceResult, error)
	BurnCap() int
}

// Syncer is the sync client as the core sees it (queue.Client).
type Syncer interface {
	// Trigger asks for a sync soon; it never blocks.
	Trigger()
	// State is what is known of the server.
	State() queue.State
}

// Core runs the station's work. Set the fields, then call its methods; a
// Core is safe for concurrent use, but activates one PC at a time.
type Core struct {
	Store  Store
	HW     hwinfo.Reader
	Driver activation.Driver
	Sync   Syncer // nil: no sync in this process (the status says so)
	Now    func() time.Time
	Log    *slog.Logger
	// Operator is the signed-in operator, recorded in reports.
	Operator string
	// ActivationTimeout bounds one install+activate+verify run; when it
	// expires the key stays with the PC (its outcome is unknown). 3 min
	// when 0.
	ActivationTimeout time.Duration
	// FirmwareTimeout bounds reading the firmware key; 30 s when 0.
	FirmwareTimeout time.Duration

	mu    sync.Mutex // one activation at a time
	batch *Batch
	bmu   sync.Mutex
}

func (c *Core) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

func (c *Core) log() *slog.Logger {
	if c.Log != nil {
		return c.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Simulated reports whether the driver is the simulated one: every output of
// the station must then say so.
func (c *Core) Simulated() bool { return c.Driver != nil && c.Driver.Simulated() }

// ReadHardware reads the hardware of this PC.
func (c *Core) ReadHardware(ctx context.Context) (keystation.Hardware, error) {
	if c.HW == nil {
		return keystation.Hardware{}, errors.New("station: no hardware reader")
	}
	return c.HW.Read(ctx)
}

// Plan is what the station will do for a PC, before it does it: the machine,
// its OS string and the edition pool that string maps to.
type Plan struct {
	Machine   keystation.Machine `json:"machine"`
	OSVersion string             `json:"osVersion"`
	Edition   keystation.Edition `json:"edition"`
}

// Plan checks the hardware identifies the PC and picks its edition with the
// station's edition rules (the server's, as of the last sync).
func (c *Core) Plan(ctx context.Context, hw keystation.Hardware) (Plan, error) {
	p := Plan{Machine: keystation.Machine{SN: strings.TrimSpace(hw.SerialNumber), Model: strings.TrimSpace(hw.Model)}, OSVersion: hw.OS.OSVersion()}
	f := map[string]string{}
	p.Machine.Validate(f)
	if len(f) > 0 || hwinfo.IsPlaceholder(p.Machine.SN) || hwinfo.IsPlaceholder(p.Machine.Model) {
		return p, machineError(hw, f)
	}
	eds, err := c.Store.Editions(ctx)
	if err != nil {
		return p, err
	}
	slug, err := keystation.NewEditionRules(eds).Match(p.OSVersion)
	if err != nil {
		return p, err
	}
	for _, e := range eds {
		if e.Slug == slug {
			p.Edition = e
		}
	}
	return p, nil
}

// machineError explains which identifying field is missing and why.
func machineError(hw keystation.Hardware, f map[string]string) error {
	var why []string
	for _, w := range hw.Warnings {
		if strings.HasPrefix(w, "serial number:") || strings.HasPrefix(w, "model:") {
			why = append(why, w)
		}
	}
	if hwinfo.IsPlaceholder(hw.SerialNumber) && f["sn"] == "" {
		f["sn"] = fmt.Sprintf("%q does not identify a PC", hw.SerialNumber)
	}
	if hwinfo.IsPlaceholder(hw.Model) && f["model"] == "" {
		f["model"] = fmt.Sprintf("%q does not identify a PC", hw.Model)
	}
	msg := "the PC's serial number and model identify it and are required"
	if len(why) > 0 {
		msg += ": " + strings.Join(why, "; ")
	}
	return &keystation.Error{Code: keystation.EINVALID, Message: msg, Fields: f}
}

// Step is a step of an activation, as progress events name them.
type Step string

// The steps of Activate.
const (
	StepCheck    Step = "check"    // machine and edition
	StepFirmware Step = "firmware" // firmware key check
	StepKey      Step = "key"      // get a key from the local buffer
	StepInstall  Step = "install"
	StepActivate Step = "activate"
	StepVerify   Step = "verify"
	StepReport   Step = "report" // report committed to the outbox
	StepRetry    Step = "retry"  // a key fault: the next key is tried
	StepDone     Step = "done"
)

// Phase is where a step is.
type Phase string

// Phases of a step.
const (
	PhaseStart  Phase = "start"
	PhaseOK     Phase = "ok"
	PhaseFailed Phase = "failed"
)

// Event is a progress event of Activate. It never holds a full key.
type Event struct {
	At        time.Time           `json:"at"`
	Step      Step                `json:"step"`
	Phase     Phase               `json:"phase"`
	Attempt   int                 `json:"attempt"` // 1 for the first key, 2 after a key fault, ...
	KeyID     keystation.KeyID    `json:"keyId,omitempty"`
	Key       string              `json:"key,omitempty"` // masked
	Edition   string              `json:"edition,omitempty"`
	Source    string              `json:"source,omitempty"`
	Message   string              `json:"message,omitempty"`
	Failure   *keystation.Failure `json:"failure,omitempty"`
	Simulated bool                `json:"simulated"`
}

// Outcome is how Activate ended.
type Outcome string

// Outcomes of Activate.
const (
	OutcomeActivated   Outcome = "activated"    // the PC is activated; report queued
	OutcomePCFault     Outcome = "pc-fault"     // fix the PC and run again: the same key is used
	OutcomeFirmwareKey Outcome = "firmware-key" // the PC has an OA3 firmware key: no pool key used
	OutcomeNoKey       Outcome = "no-key"       // no key of the edition left on the station
	OutcomeBurnLimit   Outcome = "burn-limit"   // the PC burnt its cap of keys
	OutcomeCancelled   Outcome = "cancelled"    // cancelled or timed out: the key stays with the PC
	OutcomeError       Outcome = "error"        // anything else (unreadable PC, unknown edition, ...)
)

// Try is one key tried on the PC.
type Try struct {
	KeyID    keystation.KeyID    `json:"keyId"`
	Key      string              `json:"key"` // masked
	Source   string              `json:"source"`
	Reused   bool                `json:"reused"`
	Outcome  string              `json:"outcome"` // activated, key-fault, pc-fault, cancelled
	Code     string              `json:"code,omitempty"`
	Message  string              `json:"message,omitempty"` // the activation service's, verbatim
	Failure  *keystation.Failure `json:"failure,omitempty"`
	ReportID string              `json:"reportId,omitempty"`
}

// Result is what Activate did to the PC.
type Result struct {
	Outcome   Outcome             `json:"outcome"`
	Message   string              `json:"message"`       // for the worker
	Fix       string              `json:"fix,omitempty"` // what to do, when something is to do
	Machine   keystation.Machine  `json:"machine"`
	OSVersion string              `json:"osVersion"`
	Edition   string              `json:"edition,omitempty"`
	KeyID     keystation.KeyID    `json:"keyId,omitempty"`
	Key       string              `json:"key,omitempty"` // masked
	Source    string              `json:"source,omitempty"`
	License   string              `json:"licenseStatus,omitempty"`
	Failure   *keystation.Failure `json:"failure,omitempty"`
	Tries     []Try               `json:"tries"`
	Driver    string              `json:"driver"`
	Simulated bool                `json:"simulated"`
	Duration  time.Duration       `json:"duration"`
}

// Reports returns the IDs of the reports queued for the server.
func (r Result) Reports() []string {
	var ids []string
	for _, t := range r.Tries {
		if t.ReportID != "" {
			ids = append(ids, t.ReportID)
		}
	}
	return ids
}

// maxTries bounds the keys one Activate tries, whatever the burn cap.
const maxTries = 10

// Activate runs the whole flow for one PC: checks, firmware key, key from
// the local buffer, install, activate, verify, report queued. On a key fault
// the key is burnt and the next one tried automatically (up to the burn
// cap); on a PC fault the key stays with the PC and the worker is told what
// to fix; a cancelled context (or ActivationTimeout) keeps the key with the
// PC too. Each report is committed to the outbox before Activate returns.
// The error is nil only for OutcomeActivated; the Result is always filled.
func (c *Core) Activate(ctx context.Context, hw keystation.Hardware, progress func(Event)) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := time.Now()
	res, err := c.activate(ctx, hw, progress)
	res.Duration = time.Since(start)
	lvl := slog.LevelInfo
	if err != nil {
		lvl = slog.LevelWarn
	}
	c.log().Log(ctx, lvl, "activation finished", "outcome", res.Outcome, "keyId", res.KeyID, "key", res.Key, "edition", res.Edition,
		"tries", len(res.Tries), "simulated", res.Simulated, "err", err)
	if c.Sync != nil && len(res.Reports()) > 0 {
		c.Sync.Trigger()
	}
	return res, err
}

func (c *Core) activate(ctx context.Context, hw keystation.Hardware, progress func(Event)) (Result, error) {
	res := Result{Driver: c.Driver.Name(), Simulated: c.Driver.Simulated(), OSVersion: hw.OS.OSVersion(),
		Machine: keystation.Machine{SN: strings.TrimSpace(hw.SerialNumber), Model: strings.TrimSpace(hw.Model)}}
	emit := func(e Event) {
		e.At, e.Simulated = c.now(), res.Simulated
		if e.Simulated && e.Message != "" && !strings.HasPrefix(e.Message, activation.SimPrefix) {
			e.Message = activation.SimPrefix + e.Message
		}
		if progress != nil {
			progress(e)
		}
	}
	fail := func(o Outcome, err error, fix string) (Result, error) {
		res.Outcome, res.Message, res.Fix = o, keystation.ErrorMessage(err), fix
		if keystation.ErrorCode(err) == keystation.EINTERNAL {
			res.Message = err.Error()
		}
		return res, err
	}

	// 1. The PC and its edition.
	emit(Event{Step: StepCheck, Phase: PhaseStart})
	plan, err := c.Plan(ctx, hw)
	if err != nil {
		emit(Event{Step: StepCheck, Phase: PhaseFailed, Message: keystation.ErrorMessage(err)})
		fix := ""
		if keystation.ErrorCode(err) == keystation.EINVALID {
			fix = "Run the station as administrator so it can read the serial number, or give --sn and --model."
		} else if keystation.ErrorCode(err) == keystation.EUNKNOWNEDITION {
			fix = "Check the Windows edition installed on this PC; no key was used."
		}
		return fail(OutcomeError, err, fix)
	}
	res.Machine, res.Edition = plan.Machine, plan.Edition.Slug
	emit(Event{Step: StepCheck, Phase: PhaseOK, Edition: plan.Edition.Slug, Message: fmt.Sprintf("%s maps to the %s pool", plan.OSVersion, plan.Edition.Name)})

	// 2. A PC with a firmware key must not consume a pool key.
	emit(Event{Step: StepFirmware, Phase: PhaseStart})
	fctx, cancel := context.WithTimeout(ctx, durationOr(c.FirmwareTimeout, 30*time.Second))
	fw, err := c.Driver.FirmwareKey(fctx)
	cancel()
	if err != nil {
		emit(Event{Step: StepFirmware, Phase: PhaseFailed, Message: err.Error()})
		if ctx.Err() != nil {
			return fail(OutcomeCancelled, ctx.Err(), "No key was used; run again.")
		}
		return fail(OutcomeError, fmt.Errorf("cannot read the firmware key, so no pool key is used: %w", err), "Run the station as administrator and try again.")
	}
	if fw.Present() {
		msg := fmt.Sprintf("this PC has a firmware (OA3) key %s: no pool key is used", fw.Key.Masked())
		emit(Event{Step: StepFirmware, Phase: PhaseFailed, Message: msg})
		c.event(ctx, "firmware-key", msg, map[string]any{"key": fw.Key.Masked(), "model": plan.Machine.Model, "simulated": res.Simulated})
		return fail(OutcomeFirmwareKey, keystation.Errorf(keystation.EFIRMWAREKEY, "%s", msg),
			"Windows activates itself with the firmware key; set this PC aside if it should not have one.")
	}
	emit(Event{Step: StepFirmware, Phase: PhaseOK, Message: "no firmware key"})

	prefer := int64(0)
	if b := c.Batch(); b != nil {
		prefer = b.SourceID
	}
	for attempt := 1; attempt <= maxTries; attempt++ {
		// 3. The key of this PC: the same one again, or the next one.
		emit(Event{Step: StepKey, Phase: PhaseStart, Attempt: attempt, Edition: plan.Edition.Slug})
		a, err := c.Store.AssignKey(ctx, store.KeyRequest{Machine: plan.Machine, Edition: plan.Edition.Slug, PreferSource: prefer})
		if err != nil {
			emit(Event{Step: StepKey, Phase: PhaseFailed, Attempt: attempt, Message: keystation.ErrorMessage(err)})
			switch keystation.ErrorCode(err) {
			case keystation.EPOOLEMPTY:
				c.event(ctx, "no-key", keystation.ErrorMessage(err), map[string]any{"edition": plan.Edition.Slug})
				c.triggerSync()
				return fail(OutcomeNoKey, err, "Connect the station to the network and sync, or import a key list.")
			case keystation.EBURNLIMIT:
				c.event(ctx, "burn-limit", keystation.ErrorMessage(err), map[string]any{"model": plan.Machine.Model})
				return fail(OutcomeBurnLimit, err, "Set this PC aside for a supervisor.")
			}
			if ctx.Err() != nil {
				return fail(OutcomeCancelled, ctx.Err(), "Run again.")
			}
			return fail(OutcomeError, err, "")
		}
		res.KeyID, res.Key, res.Source = a.KeyID, a.Key.Masked(), a.Source
		try := Try{KeyID: a.KeyID, Key: a.Key.Masked(), Source: a.Source, Reused: a.Reused}
		msg := fmt.Sprintf("key %s (%s) from the %s", a.KeyID, a.Key.Masked(), sourceName(a.Source))
		if a.Reused {
			msg = fmt.Sprintf("key %s (%s): this PC's key from before", a.KeyID, a.Key.Masked())
		}
		emit(Event{Step: StepKey, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked(), Edition: a.Edition, Source: a.Source, Message: msg})

		// 4. Install, activate, verify.
		rctx, cancel := context.WithTimeout(ctx, durationOr(c.ActivationTimeout, 3*time.Minute))
		var last activation.Step
		run, err := activation.Run(rctx, c.Driver, a.Key, func(s activation.Step) {
			if last != 0 {
				emit(Event{Step: Step(last.String()), Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked()})
			}
			last = s
			emit(Event{Step: Step(s.String()), Phase: PhaseStart, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked()})
		})
		timedOut := rctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
		cancel()
		if err == nil {
			emit(Event{Step: StepVerify, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked(),
				Message: "LicenseStatus " + fmt.Sprint(uint32(run.Status)) + " (" + run.Status.String() + ")"})
			res.License = run.Status.String()
			message := fmt.Sprintf("Windows is activated: LicenseStatus %d (%s)", uint32(run.Status), run.Status)
			if res.Simulated {
				message = activation.SimPrefix + message
			}
			id, rerr := c.record(ctx, a, store.AttemptActivated, false, c.report(hw, plan, true, "", message))
			if rerr != nil {
				emit(Event{Step: StepReport, Phase: PhaseFailed, Attempt: attempt, Message: rerr.Error()})
				return fail(OutcomeError, fmt.Errorf("the PC is activated but its report could not be saved: %w", rerr), "Run the station again on this PC: the same key is used and the report saved.")
			}
			try.Outcome, try.ReportID = string(store.AttemptActivated), id
			res.Tries = append(res.Tries, try)
			emit(Event{Step: StepReport, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Message: "report queued for the server"})
			res.Outcome, res.Message = OutcomeActivated, message
			emit(Event{Step: StepDone, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked(), Message: message})
			c.writeBatchResults(ctx)
			return res, nil
		}
		step := Step(last.String())
		if last == 0 {
			step = StepInstall
		}
		f, ok := activation.Classify(err)
		if !ok {
			// Cancelled or timed out: no outcome; the key stays with the PC.
			why := "cancelled"
			if timedOut {
				why = fmt.Sprintf("did not finish within %s", durationOr(c.ActivationTimeout, 3*time.Minute))
			}
			emit(Event{Step: step, Phase: PhaseFailed, Attempt: attempt, KeyID: a.KeyID, Message: "activation " + why})
			try.Outcome = "cancelled"
			res.Tries = append(res.Tries, try)
			c.event(ctx, "activation.cancelled", fmt.Sprintf("activation with key %s %s; the key stays with the PC", a.KeyID, why), map[string]any{"keyId": a.KeyID.String()})
			e := keystation.Errorf(keystation.EUNAVAILABLE, "the activation %s; the key stays with this PC", why)
			return fail(OutcomeCancelled, e, "Run the station again on this PC: the same key is used.")
		}
		code, message := errorText(err)
		try.Code, try.Message, try.Failure = code, message, &f
		res.Failure = &f
		emit(Event{Step: step, Phase: PhaseFailed, Attempt: attempt, KeyID: a.KeyID, Key: a.Key.Masked(), Failure: &f, Message: message})
		if a.State == store.LocalActivated {
			// This PC was activated with this key before: the key is bound to
			// it and is never burnt or replaced by the station (a supervisor
			// can return it). Nothing is reported: the server has its
			// activation; the failure is kept in the event log, verbatim.
			try.Outcome = "reactivation-failed"
			res.Tries = append(res.Tries, try)
			c.event(ctx, "activation.reactivation-failed", fmt.Sprintf("key %s, activated on this PC before, failed to activate again: %s %s", a.KeyID, code, message),
				map[string]any{"keyId": a.KeyID.String(), "code": code, "message": message, "class": string(f.Class)})
			res.Outcome = OutcomePCFault
			res.Message = fmt.Sprintf("This PC was activated with key %s before and Windows now fails to activate it: %s %s", a.KeyID, f.Meaning, message)
			res.Fix = "Check the PC (network, clock, installed edition) and run again with the same key; if it keeps failing, set the PC aside for a supervisor."
			return res, &keystation.Error{Code: "PC_FAULT", Message: res.Message}
		}
		if f.Class == keystation.FaultPC {
			id, rerr := c.record(ctx, a, store.AttemptPCFault, false, c.report(hw, plan, false, code, message))
			if rerr != nil {
				return fail(OutcomeError, fmt.Errorf("recording the failure: %w", rerr), f.Fix)
			}
			try.Outcome, try.ReportID = string(store.AttemptPCFault), id
			res.Tries = append(res.Tries, try)
			emit(Event{Step: StepReport, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Message: "failure report queued; the key stays with this PC"})
			c.writeBatchResults(ctx)
			res.Outcome, res.Message, res.Fix = OutcomePCFault, f.Meaning+" "+message, f.Fix
			return res, &keystation.Error{Code: "PC_FAULT", Message: f.Meaning}
		}
		// A key fault: burn the key, take the next one.
		id, rerr := c.record(ctx, a, store.AttemptKeyFault, f.Review, c.report(hw, plan, false, code, message))
		if rerr != nil {
			return fail(OutcomeError, fmt.Errorf("recording the failure: %w", rerr), "Run again.")
		}
		try.Outcome, try.ReportID = string(store.AttemptKeyFault), id
		res.Tries = append(res.Tries, try)
		emit(Event{Step: StepReport, Phase: PhaseOK, Attempt: attempt, KeyID: a.KeyID, Message: "failure report queued; the key is burnt"})
		c.writeBatchResults(ctx)
		emit(Event{Step: StepRetry, Phase: PhaseStart, Attempt: attempt + 1, Failure: &f, Message: f.Meaning + " Trying the next key."})
		if err := ctx.Err(); err != nil {
			return fail(OutcomeCancelled, err, "Run again: the next key is used.")
		}
	}
	return fail(OutcomeBurnLimit, keystation.Errorf(keystation.EBURNLIMIT, "%d keys failed on this PC in one run", maxTries), "Set this PC aside for a supervisor.")
}

func sourceName(s string) string {
	if s == store.SourceUSB {
		return "USB key list"
	}
	return "station's buffer"
}

func durationOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// errorText returns the raw code and the service's message, verbatim
// (invariant 5).
func errorText(err error) (code, message string) {
	var ae *activation.Error
	if errors.As(err, &ae) {
		return ae.Code(), ae.Message
	}
	var se *activation.StepError
	if errors.As(err, &se) {
		err = se.Err
	}
	return "", err.Error()
}

func (c *Core) report(hw keystation.Hardware, plan Plan, success bool, code, message string) keystation.Report {
	h := hw
	h.SerialNumber, h.Model = plan.Machine.SN, plan.Machine.Model
	return keystation.Report{Machine: plan.Machine, OSVersion: plan.OSVersion, Success: success, Message: message, Code: code,
		Hardware: &h, Operator: c.Operator, Simulated: c.Simulated(), At: c.now().UTC()}
}

// record commits an attempt even when ctx has ended: the PC's state changed.
func (c *Core) record(ctx context.Context, a store.KeyAssignment, o store.AttemptOutcome, review bool, r keystation.Report) (string, error) {
	return c.Store.RecordAttempt(context.WithoutCancel(ctx), store.Attempt{Assignment: a, Outcome: o, Review: review, Report: r})
}

func (c *Core) event(ctx context.Context, kind, msg string, data map[string]any) {
	if err := c.Store.LogEvent(context.WithoutCancel(ctx), kind, msg, data); err != nil {
		c.log().Error("event log", "err", err)
	}
}

func (c *Core) triggerSync() {
	if c.Sync != nil {
		c.Sync.Trigger()
	}
}
