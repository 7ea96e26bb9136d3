package ui

import (
	"fmt"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation"
	"keystation/station"
	"keystation/store"
)

// PCView is the main screen: this PC's hardware and edition, its key, the
// steps of the activation, and a big result banner.
type PCView struct {
	u   *UI
	Box fyne.CanvasObject

	Notice *widget.Label // e.g. signed in offline

	// Hardware card.
	Edition     *canvas.Text // HOME / PRO, large
	EditionNote *widget.Label
	HWValues    map[string]*widget.Label // serial, model, manufacturer, cpu, memory, disks, os

	// Key card.
	KeyID   *widget.Label
	Key     *widget.Label
	Reveal  *widget.Button
	Source  *widget.Label
	KeyNote *widget.Label

	// Steps.
	StepIcons  map[string]*widget.Icon
	StepLabels map[string]*widget.Label
	Retries    *widget.Label
	Progress   *widget.ProgressBarInfinite

	Banner  *Banner
	Action  *widget.Button // the primary action: Activate / Cancel / Next PC / Try again
	NextPC  *widget.Button
	Details *widget.Button
	// SimOutcome picks the simulated driver's next result (simulation only).
	SimOutcome *widget.Select
	simBox     *fyne.Container

	primary func()
}

// Step icons, made once when first needed: building them at package
// initialisation would ask Fyne for the current app before there is one,
// and every headless station command would print that complaint.
var (
	stepIconsOnce                   sync.Once
	iconRunning, iconOK, iconFailed fyne.Resource
)

func stepIcons() {
	stepIconsOnce.Do(func() {
		iconRunning = theme.NewPrimaryThemedResource(theme.MediaPlayIcon())
		iconOK = theme.NewSuccessThemedResource(theme.ConfirmIcon())
		iconFailed = theme.NewErrorThemedResource(theme.CancelIcon())
	})
}

var hwFields = []string{"serial", "model", "manufacturer", "os", "cpu", "memory", "disks"}

// Simulated outcomes offered in the demo control, in order.
var simChoices = []struct{ key, spec string }{
	{"sim.success", "success"},
	{"sim.keyFault", "key-fault,success"},
	{"sim.pcFault", "pc-fault"},
	{"sim.firmware", "firmware"},
	{"sim.slow", "slow:8s"},
}

func newPCView(u *UI) *PCView {
	c := u.C
	v := &PCView{u: u, Notice: widget.NewLabel(""), HWValues: map[string]*widget.Label{}, StepIcons: map[string]*widget.Icon{}, StepLabels: map[string]*widget.Label{}}
	v.Notice.Importance = widget.WarningImportance
	v.Notice.Truncation = fyne.TextTruncateEllipsis
	v.Notice.Hide()

	v.Edition = canvas.NewText("—", colorBusy)
	v.Edition.TextSize = 52
	v.Edition.TextStyle.Bold = true
	v.EditionNote = widget.NewLabel("")
	v.EditionNote.Truncation = fyne.TextTruncateEllipsis
	cols := [2]*fyne.Container{container.New(layout.NewFormLayout()), container.New(layout.NewFormLayout())}
	for i, f := range hwFields {
		l := widget.NewLabel("—")
		l.Truncation = fyne.TextTruncateEllipsis
		v.HWValues[f] = l
		col := cols[0]
		if i >= 4 {
			col = cols[1]
		}
		col.Add(boldLabel(c.T("hw." + f)))
		col.Add(l)
	}
	edRow := container.NewBorder(nil, nil, container.NewHBox(widget.NewLabel(c.T("pc.edition")), v.Edition), nil, v.EditionNote)
	hwCard := widget.NewCard("", "", container.NewVBox(edRow, widget.NewSeparator(), container.NewGridWithColumns(2, cols[0], cols[1])))

	v.KeyID, v.Key, v.Source, v.KeyNote = widget.NewLabel("—"), widget.NewLabel("—"), widget.NewLabel("—"), widget.NewLabel("")
	for _, l := range []*widget.Label{v.KeyID, v.Key, v.Source, v.KeyNote} {
		l.Truncation = fyne.TextTruncateEllipsis
	}
	// Bold, not monospace: a third text style would cost the fonts of one
	// more style in memory (Fyne parses them per style), and the key's
	// alphabet has no look-alike characters to tell apart.
	v.Key.TextStyle.Bold = true
	v.KeyNote.Importance = widget.LowImportance
	v.Reveal = widget.NewButtonWithIcon(c.T("pc.reveal"), theme.VisibilityIcon(), func() { c.Reveal() })
	v.Reveal.Disable()
	kf := container.New(layout.NewFormLayout(),
		boldLabel(c.T("key.id")), v.KeyID,
		boldLabel(c.T("key.key")), container.NewBorder(nil, nil, nil, v.Reveal, v.Key),
		boldLabel(c.T("key.source")), v.Source)

	v.simBox = container.NewHBox()
	if c.opt.Sim != nil {
		var opts []string
		for _, s := range simChoices {
			opts = append(opts, c.T(s.key))
		}
		v.SimOutcome = widget.NewSelect(opts, func(sel string) {
			for _, s := range simChoices {
				if c.T(s.key) == sel {
					_ = c.SetSimOutcome(s.spec)
				}
			}
		})
		v.SimOutcome.SetSelectedIndex(0)
		v.simBox.Add(newBadge(colorSim, c.T("status.simulation")).box)
		v.simBox.Add(widget.NewLabel(c.T("sim.next")))
		v.simBox.Add(v.SimOutcome)
	}
	keyCard := widget.NewCard("", "", container.NewVBox(heading(c.T("pc.keyTitle")), kf, v.KeyNote, v.simBox))

	// The steps, as a flow from left to right.
	steps := container.NewHBox()
	for i, s := range flowSteps {
		if i > 0 {
			a := widget.NewLabel("→")
			a.Importance = widget.LowImportance
			steps.Add(a)
		}
		ic := widget.NewIcon(theme.RadioButtonIcon())
		l := widget.NewLabel(c.T("step." + s))
		v.StepIcons[s], v.StepLabels[s] = ic, l
		steps.Add(container.NewHBox(ic, l))
	}
	v.Retries = widget.NewLabel("")
	v.Retries.Truncation = fyne.TextTruncateEllipsis
	v.Retries.Importance = widget.WarningImportance
	v.Retries.TextStyle.Bold = true
	v.Progress = widget.NewProgressBarInfinite()
	v.Progress.Stop()
	v.Progress.Hide()

	v.Banner = newBanner()
	v.Action = bigButton(c.T("pc.activate"), theme.MediaPlayIcon(), widget.HighImportance, func() { v.Primary() })
	v.NextPC = widget.NewButtonWithIcon(c.T("pc.next"), theme.MediaSkipNextIcon(), func() { v.next() })
	v.Details = widget.NewButtonWithIcon(c.T("common.details"), theme.InfoIcon(), func() { v.showDetails() })

	top := container.New(ratio{0.6}, hwCard, keyCard)
	buttons := container.NewBorder(nil, nil, nil, container.NewHBox(tall(v.NextPC, 64), tall(v.Details, 64)), tall(v.Action, 64))
	bottom := container.NewVBox(container.NewHScroll(steps), v.Progress, v.Retries, v.Banner.box, buttons)
	v.Box = container.NewBorder(v.Notice, bottom, nil, nil, container.NewVScroll(top))
	return v
}

func boldLabel(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.TextStyle.Bold = true
	return l
}

// Primary runs the screen's primary action (the big button; Enter).
func (v *PCView) Primary() {
	if v.primary != nil && !v.Action.Disabled() {
		v.primary()
	}
}

func (v *PCView) next() {
	if v.u.C.PC.Running {
		return
	}
	v.u.C.ReadPC()
}

func (v *PCView) renderStatus() {}

func (v *PCView) setPrimary(key string, icon fyne.Resource, imp widget.Importance, f func()) {
	v.Action.SetText(v.u.C.T(key))
	v.Action.SetIcon(icon)
	v.Action.Importance = imp
	v.primary = f
	if f == nil {
		v.Action.Disable()
	} else {
		v.Action.Enable()
	}
	v.Action.Refresh()
}

// render shows the controller's PC state.
func (v *PCView) render() {
	c := v.u.C
	p := &c.PC

	// Hardware card.
	for _, f := range hwFields {
		v.HWValues[f].SetText("—")
	}
	v.Edition.Text, v.Edition.Color = "—", colorIdle
	v.EditionNote.SetText("")
	if hw := p.HW; hw != nil {
		set := func(f, s string) {
			if strings.TrimSpace(s) == "" {
				s = "—"
			}
			v.HWValues[f].SetText(s)
		}
		set("serial", hw.SerialNumber)
		set("model", hw.Model)
		set("manufacturer", hw.Manufacturer)
		set("cpu", hw.CPU)
		mem := ""
		if t := hw.MemoryTotal(); t > 0 {
			mem = c.T("hw.memoryText", keystation.HumanBytes(t), len(hw.Memory))
		}
		set("memory", mem)
		var disks []string
		for _, d := range hw.Disks {
			disks = append(disks, strings.TrimSpace(fmt.Sprintf("%s %s %s", keystation.HumanBytes(d.Size), d.InterfaceType, d.Model)))
		}
		set("disks", strings.Join(disks, ", "))
		set("os", hw.OS.OSVersion())
	}
	if p.Plan != nil && p.PlanErr == nil {
		v.Edition.Text, v.Edition.Color = strings.ToUpper(editionName(c, p.Plan.Edition.Slug, p.Plan.Edition.Name)), colorBusy
		v.EditionNote.SetText(c.T("pc.editionNote", p.Plan.OSVersion, editionName(c, p.Plan.Edition.Slug, p.Plan.Edition.Name)))
	}
	v.Edition.Refresh()

	// Key card.
	cur := p.Current
	v.KeyID.SetText("—")
	v.Key.SetText("—")
	v.Source.SetText("—")
	v.KeyNote.SetText(c.T("pc.keyLater"))
	if cur.KeyID != 0 {
		v.KeyID.SetText(cur.KeyID.String())
		v.Key.SetText(cur.Key)
		if p.Revealed != "" {
			v.Key.SetText(p.Revealed)
		}
		v.Source.SetText(sourceText(c, cur.Source))
		v.KeyNote.SetText("")
		if strings.Contains(cur.Message, "from before") {
			v.KeyNote.SetText(c.T("pc.keyReused"))
		}
	}
	if p.Result != nil && p.Result.Outcome == station.OutcomeFirmwareKey {
		v.KeyID.SetText("—")
		v.Key.SetText(c.T("pc.firmwareKey"))
		v.Source.SetText(c.T("source.firmware"))
		v.KeyNote.SetText(c.T("pc.firmwareNote"))
	}
	if cur.KeyID != 0 {
		v.Reveal.Enable()
	} else {
		v.Reveal.Disable()
	}
	if p.Revealed != "" {
		v.Reveal.SetText(c.T("pc.hide"))
		v.Reveal.SetIcon(theme.VisibilityOffIcon())
	} else {
		v.Reveal.SetText(c.T("pc.reveal"))
		v.Reveal.SetIcon(theme.VisibilityIcon())
	}

	// Steps.
	stepIcons()
	for _, s := range flowSteps {
		ic, l := v.StepIcons[s], v.StepLabels[s]
		l.TextStyle.Bold = false
		l.Importance = widget.MediumImportance
		switch p.Steps[s] {
		case stepPending:
			ic.SetResource(theme.RadioButtonIcon())
			l.Importance = widget.LowImportance
		case stepRunning:
			ic.SetResource(iconRunning)
			l.TextStyle.Bold = true
		case stepOK:
			ic.SetResource(iconOK)
		case stepFailed:
			ic.SetResource(iconFailed)
			l.Importance = widget.DangerImportance
			l.TextStyle.Bold = true
		}
		l.Refresh()
	}
	var retries []string
	for _, e := range p.Retries {
		retries = append(retries, c.T("pc.retry", e.Attempt, strings.TrimRight(failureMeaning(c, e.Failure), ".。"), hresult(e.Failure)))
	}
	v.Retries.SetText(strings.Join(retries, "\n"))
	v.Retries.Hidden = len(retries) == 0
	if p.Running {
		v.Progress.Show()
		v.Progress.Start()
	} else {
		v.Progress.Stop()
		v.Progress.Hide()
	}

	// Banner and buttons.
	v.NextPC.Hide()
	v.Details.Hide()
	signedIn := c.Operator != nil
	switch {
	case p.Reading:
		v.Banner.Set(colorIdle, c.T("pc.reading"), "")
		v.setPrimary("pc.activate", theme.MediaPlayIcon(), widget.HighImportance, nil)
	case p.HWErr != nil:
		v.Banner.Set(colorFail, c.T("pc.cannot"), c.T("pc.hwErr", p.HWErr.Error()))
		v.setPrimary("pc.readAgain", theme.ViewRefreshIcon(), widget.HighImportance, v.next)
	case p.Running:
		v.Banner.Set(colorBusy, c.T("pc.working"), c.T("pc.workingText"))
		v.setPrimary("pc.cancel", theme.CancelIcon(), widget.DangerImportance, c.Cancel)
	case p.Result != nil:
		v.renderResult()
	case p.PlanErr != nil:
		v.Banner.Set(colorFail, c.T("pc.cannot"), planError(c, p.PlanErr))
		v.setPrimary("pc.readAgain", theme.ViewRefreshIcon(), widget.HighImportance, v.next)
	case p.HW != nil && signedIn:
		v.Banner.Set(colorIdle, c.T("pc.ready"), c.T("pc.readyText"))
		v.setPrimary("pc.activate", theme.MediaPlayIcon(), widget.HighImportance, c.Activate)
	default:
		v.Banner.Set(colorIdle, c.T("pc.ready"), "")
		v.setPrimary("pc.activate", theme.MediaPlayIcon(), widget.HighImportance, nil)
	}
}

func (v *PCView) renderResult() {
	c := v.u.C
	r := c.PC.Result
	v.Details.Show()
	edition := editionName(c, r.Edition, "")
	switch r.Outcome {
	case station.OutcomeActivated:
		text := c.T("pc.okText", licenseText(c, r.License), r.KeyID.String(), edition)
		if n := len(r.Tries) - 1; n > 0 {
			text += "\n" + c.T("pc.okAfterRetries", n)
		}
		if r.Simulated {
			text += "\n" + c.T("pc.simNote")
		}
		v.Banner.Set(colorOK, c.T("pc.ok"), text)
		v.setPrimary("pc.next", theme.MediaSkipNextIcon(), widget.SuccessImportance, v.next)
	case station.OutcomePCFault:
		v.Banner.Set(colorFail, c.T("pc.pcFault"), failureText(c, r)+"\n"+c.T("pc.keyKept", r.KeyID.String()))
		v.setPrimary("pc.tryAgain", theme.ViewRefreshIcon(), widget.HighImportance, c.Activate)
		v.NextPC.Show()
	case station.OutcomeFirmwareKey:
		v.Banner.Set(colorWarn, c.T("pc.firmware"), c.T("pc.firmwareText"))
		v.setPrimary("pc.next", theme.MediaSkipNextIcon(), widget.HighImportance, v.next)
	case station.OutcomeNoKey:
		v.Banner.Set(colorFail, c.T("pc.noKey", edition), c.T("pc.noKeyText"))
		v.setPrimary("pc.tryAgain", theme.ViewRefreshIcon(), widget.HighImportance, c.Activate)
		v.NextPC.Show()
	case station.OutcomeBurnLimit:
		text := c.T("pc.burnLimitText")
		if r.Failure != nil {
			text = failureText(c, r) + "\n" + text
		}
		v.Banner.Set(colorFail, c.T("pc.burnLimit"), text)
		v.setPrimary("pc.next", theme.MediaSkipNextIcon(), widget.HighImportance, v.next)
	case station.OutcomeCancelled:
		text := c.T("pc.cancelledText")
		if r.KeyID != 0 {
			text = c.T("pc.keyKept", r.KeyID.String()) + " " + text
		}
		v.Banner.Set(colorWarn, c.T("pc.cancelled"), text)
		v.setPrimary("pc.tryAgain", theme.ViewRefreshIcon(), widget.HighImportance, c.Activate)
		v.NextPC.Show()
	default:
		v.Banner.Set(colorFail, c.T("pc.cannot"), planError(c, c.PC.Err))
		v.setPrimary("pc.tryAgain", theme.ViewRefreshIcon(), widget.HighImportance, c.Activate)
		v.NextPC.Show()
	}
}

// failureText is the red banner's text: the Windows message verbatim, the
// HRESULT, what it means and what to do.
func failureText(c *Controller, r *station.Result) string {
	f := r.Failure
	if f == nil {
		return r.Message
	}
	msg := ""
	if n := len(r.Tries); n > 0 {
		msg = r.Tries[n-1].Message
	}
	return c.T("pc.failText", msg, hresult(f), failureMeaning(c, f), failureFix(c, f))
}

func hresult(f *keystation.Failure) string {
	if f == nil || f.HRESULT == "" {
		return "—"
	}
	return f.HRESULT
}

// failureMeaning and failureFix translate a failure through its Hint (the
// classifier's English text when the table has none).
func failureMeaning(c *Controller, f *keystation.Failure) string {
	if f == nil {
		return ""
	}
	if t, ok := lookup(c.lang, "hint."+f.Hint+".meaning"); ok {
		return t
	}
	return f.Meaning
}

func failureFix(c *Controller, f *keystation.Failure) string {
	if f == nil {
		return ""
	}
	if t, ok := lookup(c.lang, "hint."+f.Hint+".fix"); ok {
		return t
	}
	return f.Fix
}

func planError(c *Controller, err error) string {
	if err == nil {
		return ""
	}
	switch keystation.ErrorCode(err) {
	case keystation.EINVALID:
		return c.T("pc.err.machine", keystation.ErrorMessage(err))
	case keystation.EUNKNOWNEDITION:
		return c.T("pc.err.edition", keystation.ErrorMessage(err))
	}
	return c.T("pc.err.other", keystation.ErrorMessage(err))
}

func licenseText(c *Controller, s string) string {
	if t, ok := lookup(c.lang, "license."+s); ok {
		return t
	}
	if s == "" {
		return "—"
	}
	return s
}

func sourceText(c *Controller, s string) string {
	if s == store.SourceUSB {
		return c.T("source.usb")
	}
	return c.T("source.lease")
}

// showDetails shows every try with its codes and the service's messages.
func (v *PCView) showDetails() {
	c := v.u.C
	r := c.PC.Result
	if r == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n", c.T("details.outcome"), r.Outcome)
	fmt.Fprintf(&b, "%s: %s %s (%s)\n", c.T("details.machine"), r.Machine.Model, r.Machine.SN, r.OSVersion)
	fmt.Fprintf(&b, "%s: %s, %s %v\n", c.T("details.driver"), r.Driver, c.T("details.simulated"), r.Simulated)
	if r.Message != "" {
		fmt.Fprintf(&b, "%s: %s\n", c.T("details.message"), r.Message)
	}
	if r.Fix != "" {
		fmt.Fprintf(&b, "%s: %s\n", c.T("details.fix"), r.Fix)
	}
	for i, t := range r.Tries {
		fmt.Fprintf(&b, "\n%s %d: %s %s (%s) → %s", c.T("details.try"), i+1, t.KeyID, t.Key, t.Source, t.Outcome)
		if t.Code != "" {
			fmt.Fprintf(&b, "  %s", t.Code)
		}
		if t.Message != "" {
			fmt.Fprintf(&b, "\n    %s", t.Message)
		}
		if t.ReportID != "" {
			fmt.Fprintf(&b, "\n    %s %s", c.T("details.report"), t.ReportID)
		}
	}
	fmt.Fprintf(&b, "\n\n%s\n", c.T("details.steps"))
	for _, e := range c.PC.Log {
		fmt.Fprintf(&b, "  %s [%d] %s %s %s\n", e.At.Local().Format("15:04:05"), max(e.Attempt, 1), e.Step, e.Phase, e.Message)
	}
	v.u.info(c.T("common.details"), b.String())
}
