package ui

import (
	"os"
	"sort"
	"strconv"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation"
	"keystation/store"
)

// SettingsView: server URL with a connection test, station enrolment,
// buffer targets, language, data directory (read only) and log export.
type SettingsView struct {
	u   *UI
	Box fyne.CanvasObject

	Server     *Entry
	Test       *widget.Button
	SaveServer *widget.Button
	TestResult *widget.Label

	Enrolment   *widget.Label
	Token       *Entry
	StationName *Entry
	Enrol       *widget.Button
	EnrolResult *widget.Label

	Targets     *fyne.Container
	TargetEdits map[string][2]*Entry // edition → target, low water
	SaveTargets *widget.Button
	TargetsNote *widget.Label

	Language *widget.RadioGroup
	DataDir  *widget.Label
	Export   *widget.Button
	Exported *widget.Label
}

func newSettingsView(u *UI) *SettingsView {
	c := u.C
	v := &SettingsView{u: u, Server: newEntry(u.escape), TestResult: widget.NewLabel(""), Enrolment: widget.NewLabel(""),
		Token: newEntry(u.escape), StationName: newEntry(u.escape), EnrolResult: widget.NewLabel(""), Targets: container.NewVBox(),
		TargetEdits: map[string][2]*Entry{}, TargetsNote: widget.NewLabel(""), Exported: widget.NewLabel("")}
	for _, l := range []*widget.Label{v.TestResult, v.EnrolResult, v.TargetsNote, v.Exported, v.Enrolment} {
		l.Wrapping = fyne.TextWrapWord
	}
	v.Server.SetPlaceHolder("http://10.0.0.5:8080")
	v.Test = widget.NewButtonWithIcon(c.T("settings.test"), theme.SearchIcon(), v.test)
	v.SaveServer = widget.NewButtonWithIcon(c.T("settings.saveServer"), theme.DocumentSaveIcon(), func() {
		c.SaveServerURL(v.Server.Text, func(err error) {
			if err != nil {
				v.TestResult.SetText(c.T("settings.saveErr", keystation.ErrorMessage(err)))
				return
			}
			v.TestResult.SetText(c.T("settings.saved"))
		})
	})
	v.Token.SetPlaceHolder(c.T("settings.tokenHint"))
	v.StationName.SetPlaceHolder(c.T("settings.stationNameHint"))
	v.Enrol = widget.NewButtonWithIcon(c.T("settings.enrol"), theme.ConfirmIcon(), func() {
		enrol(u, v.Server.Text, v.Token.Text, v.StationName.Text, v.Enrol, v.EnrolResult, func() { v.Token.SetText(""); v.refresh() })
	})
	v.SaveTargets = widget.NewButtonWithIcon(c.T("settings.saveTargets"), theme.DocumentSaveIcon(), v.saveTargets)
	v.Language = widget.NewRadioGroup([]string{"English", "简体中文"}, nil)
	v.Language.Horizontal = true
	if c.lang == Chinese {
		v.Language.SetSelected("简体中文")
	} else {
		v.Language.SetSelected("English")
	}
	v.Language.OnChanged = func(s string) {
		l := English
		if s == "简体中文" {
			l = Chinese
		}
		// Rebuilding the screens from inside the radio's own callback
		// would replace the widget that is calling us: do it next.
		go c.do(func() { u.SetLang(l) })
	}
	mode := ""
	if c.opt.Portable {
		mode = " " + c.T("settings.portable")
	}
	v.DataDir = widget.NewLabel(c.opt.DataDir + mode)
	v.DataDir.Selectable = true
	v.DataDir.Wrapping = fyne.TextWrapBreak
	v.Export = widget.NewButtonWithIcon(c.T("settings.export"), theme.DocumentSaveIcon(), v.export)

	server := widget.NewCard(c.T("settings.serverTitle"), "", container.NewVBox(
		container.NewBorder(nil, nil, nil, container.NewHBox(v.Test, v.SaveServer), v.Server), v.TestResult))
	enrolCard := widget.NewCard(c.T("settings.enrolTitle"), "", container.NewVBox(v.Enrolment,
		widget.NewForm(widget.NewFormItem(c.T("settings.token"), v.Token), widget.NewFormItem(c.T("settings.stationName"), v.StationName)),
		container.NewHBox(v.Enrol), v.EnrolResult))
	// The explanation wraps inside the card (a card's subtitle does not, and
	// would make the window wider than the screen).
	targetsText := widget.NewLabel(c.T("settings.targetsText"))
	targetsText.Wrapping = fyne.TextWrapWord
	targets := widget.NewCard(c.T("settings.targetsTitle"), "", container.NewVBox(targetsText, v.Targets, container.NewHBox(v.SaveTargets), v.TargetsNote))
	lang := widget.NewCard(c.T("settings.langTitle"), "", v.Language)
	data := widget.NewCard(c.T("settings.dataTitle"), "", container.NewVBox(v.DataDir, container.NewHBox(v.Export), v.Exported))
	v.Box = container.NewVScroll(container.NewGridWithColumns(2, container.NewVBox(server, enrolCard, lang), container.NewVBox(targets, data)))
	return v
}

// refresh shows the enrolment and the buffer targets.
func (v *SettingsView) refresh() {
	c := v.u.C
	st := c.Status
	if st.Enrolled {
		v.Enrolment.SetText(c.T("settings.enrolled", st.StationID, st.Station, st.Server))
		if v.Server.Text == "" {
			v.Server.SetText(st.Server)
		}
	} else {
		v.Enrolment.SetText(c.T("settings.notEnrolled"))
	}
	c.Targets(func(t map[string]store.BufferTarget, eds []keystation.Edition, err error) {
		v.Targets.Objects = nil
		v.TargetEdits = map[string][2]*Entry{}
		slugs := map[string]string{}
		for _, e := range eds {
			slugs[e.Slug] = e.Name
		}
		for ed := range t {
			if _, ok := slugs[ed]; !ok {
				slugs[ed] = ""
			}
		}
		var order []string
		for s := range slugs {
			order = append(order, s)
		}
		sort.Strings(order)
		form := widget.NewForm()
		for _, ed := range order {
			tv := t[ed]
			if tv.Target == 0 && tv.LowWater == 0 {
				tv = store.BufferTarget{Target: store.DefaultTarget, LowWater: store.DefaultLowWater}
			}
			te, le := newEntry(v.u.escape), newEntry(v.u.escape)
			te.SetText(strconv.Itoa(tv.Target))
			le.SetText(strconv.Itoa(tv.LowWater))
			v.TargetEdits[ed] = [2]*Entry{te, le}
			form.Append(editionName(c, ed, slugs[ed]), container.NewGridWithColumns(4, widget.NewLabel(c.T("settings.target")), te, widget.NewLabel(c.T("settings.lowWater")), le))
		}
		if len(order) == 0 {
			v.Targets.Add(widget.NewLabel(c.T("settings.noEditions")))
		} else {
			v.Targets.Add(form)
		}
		v.Targets.Refresh()
		if err != nil {
			v.TargetsNote.SetText(err.Error())
		}
	})
}

func (v *SettingsView) test() {
	c := v.u.C
	v.TestResult.SetText(c.T("settings.testing"))
	v.Test.Disable()
	c.TestServer(v.Server.Text, func(d time.Duration, err error) {
		v.Test.Enable()
		if err != nil {
			v.TestResult.SetText(c.T("settings.testFail", err.Error()))
			v.TestResult.Importance = widget.DangerImportance
		} else {
			v.TestResult.SetText(c.T("settings.testOK", d.Round(time.Millisecond).String()))
			v.TestResult.Importance = widget.SuccessImportance
		}
		v.TestResult.Refresh()
	})
}

func (v *SettingsView) saveTargets() {
	c := v.u.C
	t := map[string]store.BufferTarget{}
	for ed, e := range v.TargetEdits {
		tg, err1 := strconv.Atoi(e[0].Text)
		lw, err2 := strconv.Atoi(e[1].Text)
		if err1 != nil || err2 != nil || tg < 0 || lw < 0 || lw > tg {
			v.TargetsNote.SetText(c.T("settings.targetsBad", editionName(c, ed, "")))
			return
		}
		t[ed] = store.BufferTarget{Target: tg, LowWater: lw}
	}
	c.SaveTargets(t, func(err error) {
		if err != nil {
			v.TargetsNote.SetText(c.T("settings.saveErr", keystation.ErrorMessage(err)))
			return
		}
		v.TargetsNote.SetText(c.T("settings.saved"))
	})
}

// export asks for a folder (the USB stick) and writes the logs there.
func (v *SettingsView) export() {
	c := v.u.C
	d := dialog.NewFolderOpen(func(l fyne.ListableURI, err error) {
		if err != nil || l == nil {
			return
		}
		v.ExportTo(l.Path())
	}, v.u.Win)
	d.SetConfirmText(c.T("settings.exportHere"))
	d.SetDismissText(c.T("common.cancel"))
	for _, root := range append(RemovableRoots(c.opt.RemovableRoots), homeDir()) {
		if l, err := storage.ListerForURI(storage.NewFileURI(root)); err == nil && root != "" {
			d.SetLocation(l)
			break
		}
	}
	d.Resize(fyne.NewSize(1000, 640))
	v.u.show(d)
}

// ExportTo writes the logs into dir.
func (v *SettingsView) ExportTo(dir string) {
	c := v.u.C
	c.ExportLogs(dir, func(path string, err error) {
		if err != nil {
			v.Exported.SetText(c.T("settings.exportErr", err.Error()))
			return
		}
		v.Exported.SetText(c.T("settings.exported", path))
	})
}

func homeDir() string {
	h, _ := os.UserHomeDir()
	return h
}

// enrol enrols the station (from the sign-in screen or Settings).
func enrol(u *UI, server, token, name string, btn *widget.Button, result *widget.Label, ok func()) {
	c := u.C
	btn.Disable()
	result.SetText(c.T("settings.enrolling"))
	c.Enrol(server, token, name, func(r keystation.EnrolResponse, err error) {
		btn.Enable()
		if err != nil {
			result.SetText(c.T("settings.enrolErr", keystation.ErrorMessage(err)))
			result.Importance = widget.DangerImportance
			result.Refresh()
			return
		}
		result.SetText(c.T("settings.enrolOK", r.StationID, r.Name))
		result.Importance = widget.SuccessImportance
		result.Refresh()
		ok()
	})
}
