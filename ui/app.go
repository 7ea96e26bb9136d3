// Package ui is the station's GUI (Fyne): the line worker's screens. It only
// shows things and takes input; the station core (package station) does the
// work, driven by a small Controller that runs slow work in goroutines and
// brings results back with fyne.Do. Every string comes from the translation
// table in i18n.go (English and Simplified Chinese).
package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Screen names.
const (
	ScreenSignIn   = "signin"
	ScreenPC       = "pc"
	ScreenBatch    = "batch"
	ScreenHistory  = "history"
	ScreenSettings = "settings"
)

// UI is the station's window and its screens. The screens' widgets are
// exported so tests can tap them.
type UI struct {
	App fyne.App
	Win fyne.Window
	C   *Controller

	SignIn   *SignInView
	PC       *PCView
	Batch    *BatchView
	History  *HistoryView
	Settings *SettingsView
	Status   *StatusBar

	// Navigation.
	Nav      map[string]*widget.Button
	SignOut  *widget.Button
	Operator *widget.Label
	screen   string
	body     *fyne.Container
	header   *fyne.Container
	dialogs  []dialog.Dialog
	firstDon bool
}

// New builds the station's window on app a (not shown yet).
func New(a fyne.App, opt Options) *UI {
	u := &UI{App: a, C: newController(opt)}
	u.C.Lock(func() {
		a.Settings().SetTheme(newTheme())
		u.Win = a.NewWindow("KeyStation")
		u.Win.Resize(fyne.NewSize(1280, 800))
		u.Win.SetMaster()
		u.build()
		u.Win.Canvas().SetOnTypedKey(u.typedKey)
		u.Win.SetOnClosed(u.C.close)
		u.C.ReadPC()
	})
	u.C.pollStatus()
	return u
}

// build (re)creates every screen in the current language, from the
// controller's state.
func (u *UI) build() {
	c := u.C
	c.onStatus = nil
	u.Win.SetTitle(c.T("app.title"))
	u.Status = newStatusBar(u)
	u.SignIn = newSignInView(u)
	u.PC = newPCView(u)
	u.Batch = newBatchView(u)
	u.History = newHistoryView(u)
	u.Settings = newSettingsView(u)
	c.onStatus = append(c.onStatus, u.Status.render, u.SignIn.renderStatus, u.PC.renderStatus, u.Batch.renderStatus)
	c.onPC = u.PC.render

	u.Nav = map[string]*widget.Button{}
	navBox := container.NewHBox()
	for _, n := range []struct {
		screen, key string
		icon        fyne.Resource
	}{
		{ScreenPC, "nav.pc", theme.ComputerIcon()},
		{ScreenBatch, "nav.batch", theme.StorageIcon()},
		{ScreenHistory, "nav.history", theme.HistoryIcon()},
		{ScreenSettings, "nav.settings", theme.SettingsIcon()},
	} {
		s := n.screen
		b := widget.NewButtonWithIcon(c.T(n.key), n.icon, func() { u.Show(s) })
		u.Nav[s] = b
		navBox.Add(tall(b, 52))
	}
	u.Operator = widget.NewLabel("")
	u.Operator.TextStyle.Bold = true
	u.SignOut = widget.NewButtonWithIcon(c.T("nav.signout"), theme.LogoutIcon(), u.signOut)
	title := heading(c.T("app.title"))
	header := container.NewBorder(nil, nil, container.NewHBox(title, navBox), container.NewHBox(u.Operator, tall(u.SignOut, 52)))
	u.header = header
	u.body = container.NewStack()
	marker := frameMarker(func() {
		if c.opt.OnFirstFrame != nil && !u.firstDon {
			u.firstDon = true
			c.opt.OnFirstFrame()
		}
	})
	bottom := container.NewVBox(widget.NewSeparator(), container.NewBorder(nil, nil, nil, marker, u.Status.Box))
	u.Win.SetContent(container.NewBorder(container.NewVBox(header, widget.NewSeparator()), bottom, nil, nil, u.body))
	screen := u.screen
	if screen == "" || c.Operator == nil {
		screen = ScreenSignIn
	}
	u.Show(screen)
	u.Status.render()
	u.PC.render()
}

// Show switches to a screen (the sign-in screen until an operator signs in).
func (u *UI) Show(screen string) {
	if u.C.Operator == nil && screen != ScreenSignIn {
		screen = ScreenSignIn
	}
	u.screen = screen
	var content fyne.CanvasObject
	switch screen {
	case ScreenSignIn:
		content = u.SignIn.Box
	case ScreenPC:
		content = u.PC.Box
		u.PC.render()
	case ScreenBatch:
		content = u.Batch.Box
		u.Batch.refresh()
	case ScreenHistory:
		content = u.History.Box
		u.History.Refresh()
	case ScreenSettings:
		content = u.Settings.Box
		u.Settings.refresh()
	}
	signedIn := u.C.Operator != nil
	u.header.Hidden = !signedIn
	for s, b := range u.Nav {
		if s == screen {
			b.Importance = widget.HighImportance
		} else {
			b.Importance = widget.MediumImportance
		}
		b.Refresh()
	}
	if signedIn {
		who := u.C.Operator.Username
		if u.C.Operator.Offline {
			who += " · " + u.C.T("signin.offlineMark")
		}
		u.Operator.SetText(who)
	}
	u.body.Objects = []fyne.CanvasObject{content}
	u.body.Refresh()
	if screen == ScreenSignIn {
		u.Win.Canvas().Focus(u.SignIn.Username)
	} else {
		u.Win.Canvas().Unfocus()
	}
}

// Screen is the screen shown.
func (u *UI) Screen() string { return u.screen }

func (u *UI) signOut() {
	if u.C.PC.Running {
		return
	}
	u.C.SignOut()
	u.SignIn.Password.SetText("")
	u.Show(ScreenSignIn)
}

// SetLang switches the language and rebuilds the screens in it.
func (u *UI) SetLang(l Lang) {
	if l == u.C.lang {
		return
	}
	u.C.SetLang(l)
	u.closeDialogs()
	u.build()
	if u.C.Operator != nil {
		u.Show(ScreenSettings)
	}
}

// typedKey: Enter runs the screen's primary action, Esc closes the dialog on
// top (keys typed while nothing has the focus).
func (u *UI) typedKey(k *fyne.KeyEvent) {
	switch k.Name {
	case fyne.KeyEscape:
		u.escape()
	case fyne.KeyReturn, fyne.KeyEnter:
		if len(u.dialogs) > 0 {
			return
		}
		switch u.screen {
		case ScreenPC:
			u.PC.Primary()
		case ScreenSignIn:
			u.SignIn.submit()
		}
	}
}

// escape closes the dialog on top.
func (u *UI) escape() {
	if n := len(u.dialogs); n > 0 {
		d := u.dialogs[n-1]
		u.dialogs = u.dialogs[:n-1]
		d.Hide()
	}
}

// show shows a dialog that Esc closes.
func (u *UI) show(d dialog.Dialog) {
	u.dialogs = append(u.dialogs, d)
	d.SetOnClosed(func() {
		for i, x := range u.dialogs {
			if x == d {
				u.dialogs = append(u.dialogs[:i], u.dialogs[i+1:]...)
				break
			}
		}
	})
	d.Show()
}

func (u *UI) closeDialogs() {
	for len(u.dialogs) > 0 {
		u.escape()
	}
}

// Dialogs is how many dialogs are open (tests).
func (u *UI) Dialogs() int { return len(u.dialogs) }

// info shows a message the worker closes.
func (u *UI) info(title, text string) {
	l := widget.NewLabel(text)
	l.Wrapping = fyne.TextWrapWord
	sc := container.NewVScroll(l)
	sc.SetMinSize(fyne.NewSize(680, 220))
	d := dialog.NewCustom(title, u.C.T("common.close"), sc, u.Win)
	u.show(d)
}

// ShowAndRun shows the window and runs the app until it is closed.
func (u *UI) ShowAndRun() {
	u.Win.ShowAndRun()
}

// CloseDialogs closes every open dialog.
func (u *UI) CloseDialogs() { u.closeDialogs() }
