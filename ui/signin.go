package ui

import (
	"errors"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation"
	"keystation/station"
)

// SignInView is the first screen: the operator signs in (checked by the
// server when online, against the verifier of the last online sign-in when
// offline). An unenrolled station is enrolled from here.
type SignInView struct {
	u        *UI
	Box      fyne.CanvasObject
	Station  *widget.Label
	Online   *Badge
	Username *Entry
	Password *Entry
	Submit   *widget.Button
	Error    *widget.Label
	Busy     *widget.ProgressBarInfinite
	Details  *widget.Button
	details  string

	// Enrolment, shown while the station is not enrolled.
	EnrolBox    *fyne.Container
	EnrolServer *Entry
	EnrolToken  *Entry
	EnrolName   *Entry
	Enrol       *widget.Button
	EnrolResult *widget.Label
}

func newSignInView(u *UI) *SignInView {
	c := u.C
	v := &SignInView{u: u, Station: heading(""), Online: newBadge(colorIdle, c.T("status.unknown")),
		Username: newEntry(u.escape), Password: newPasswordEntry(u.escape), Error: widget.NewLabel(""), Busy: widget.NewProgressBarInfinite()}
	v.Username.SetPlaceHolder(c.T("signin.username"))
	v.Password.SetPlaceHolder(c.T("signin.password"))
	v.Username.OnSubmitted = func(string) { u.Win.Canvas().Focus(v.Password) }
	v.Password.OnSubmitted = func(string) { v.submit() }
	v.Submit = bigButton(c.T("signin.submit"), theme.LoginIcon(), widget.HighImportance, v.submit)
	v.Error.Importance = widget.DangerImportance
	v.Error.Wrapping = fyne.TextWrapWord
	v.Error.TextStyle.Bold = true
	v.Details = widget.NewButton(c.T("common.details"), func() { u.info(c.T("common.details"), v.details) })
	v.Details.Hide()
	v.Busy.Hide()
	v.Busy.Stop()

	v.EnrolServer, v.EnrolToken, v.EnrolName = newEntry(u.escape), newEntry(u.escape), newEntry(u.escape)
	v.EnrolServer.SetPlaceHolder("http://10.0.0.5:8080")
	v.EnrolToken.SetPlaceHolder(c.T("settings.token"))
	v.EnrolName.SetPlaceHolder(c.T("settings.stationName"))
	v.EnrolResult = widget.NewLabel("")
	v.EnrolResult.Wrapping = fyne.TextWrapWord
	v.Enrol = bigButton(c.T("settings.enrol"), theme.ConfirmIcon(), widget.HighImportance, func() {
		enrol(u, v.EnrolServer.Text, v.EnrolToken.Text, v.EnrolName.Text, v.Enrol, v.EnrolResult, func() { v.EnrolToken.SetText("") })
	})
	v.EnrolBox = container.NewVBox(widget.NewSeparator(), heading(c.T("signin.notEnrolled")), caption(c.T("signin.notEnrolledText")),
		widget.NewForm(
			widget.NewFormItem(c.T("settings.server"), v.EnrolServer),
			widget.NewFormItem(c.T("settings.token"), v.EnrolToken),
			widget.NewFormItem(c.T("settings.stationName"), v.EnrolName)),
		tall(v.Enrol, 52), v.EnrolResult)
	v.EnrolBox.Hide()

	title := widget.NewLabel(c.T("signin.title"))
	title.SizeName = theme.SizeNameHeadingText
	title.TextStyle.Bold = true
	form := widget.NewForm(widget.NewFormItem(c.T("signin.username"), v.Username), widget.NewFormItem(c.T("signin.password"), v.Password))
	card := container.NewVBox(
		title,
		container.NewHBox(v.Station, layout.NewSpacer(), v.Online.box),
		form,
		tall(v.Submit, 60),
		v.Busy,
		v.Error,
		container.NewHBox(layout.NewSpacer(), v.Details),
		v.EnrolBox,
	)
	v.Box = container.NewVScroll(container.NewCenter(container.NewGridWrap(fyne.NewSize(620, card.MinSize().Height+300), card)))
	v.renderStatus()
	return v
}

func (v *SignInView) renderStatus() {
	c := v.u.C
	st := c.Status
	if !c.StatusOK {
		return
	}
	name := st.Station
	if name == "" {
		name = c.T("signin.unnamed")
	}
	v.Station.SetText(c.T("signin.station", name))
	switch {
	case !st.Enrolled:
		v.Online.Set(colorWarn, c.T("status.notEnrolled"))
	case st.Online:
		v.Online.Set(colorOK, c.T("status.online"))
	case !st.Checked:
		v.Online.Set(colorIdle, c.T("status.unknown"))
	default:
		v.Online.Set(colorFail, c.T("status.offlineSignIn"))
	}
	v.EnrolBox.Hidden = st.Enrolled
	if !st.Enrolled && v.EnrolServer.Text == "" && st.Server != "" {
		v.EnrolServer.SetText(st.Server)
	}
	v.EnrolBox.Refresh()
}

func (v *SignInView) submit() {
	c := v.u.C
	if v.Submit.Disabled() {
		return
	}
	v.Error.SetText("")
	v.Details.Hide()
	if v.Username.Text == "" || v.Password.Text == "" {
		v.Error.SetText(c.T("signin.missing"))
		return
	}
	v.Submit.Disable()
	v.Busy.Show()
	v.Busy.Start()
	c.SignIn(v.Username.Text, v.Password.Text, func(op *station.Operator, err error) {
		v.Submit.Enable()
		v.Busy.Stop()
		v.Busy.Hide()
		v.Password.SetText("")
		if err != nil {
			v.Error.SetText(signInError(c, err))
			v.details = err.Error()
			v.Details.Show()
			return
		}
		v.u.Show(ScreenPC)
		if op.Offline {
			v.u.PC.Notice.SetText(c.T("signin.offlineNotice", op.Expires.Local().Format("2006-01-02 15:04")))
			v.u.PC.Notice.Show()
		} else {
			v.u.PC.Notice.Hide()
		}
	})
}

// signInError says why a sign-in failed, in the worker's words.
func signInError(c *Controller, err error) string {
	switch {
	case errors.Is(err, station.ErrNotEnrolled):
		return c.T("signin.err.notEnrolled")
	case errors.Is(err, station.ErrNoCachedSignIn):
		return c.T("signin.err.noCache")
	case errors.Is(err, station.ErrCachedSignInExpired):
		return c.T("signin.err.expired")
	case keystation.ErrorCode(err) == keystation.ERATELIMIT:
		return c.T("signin.err.rateLimit")
	case keystation.ErrorCode(err) == keystation.EFORBIDDEN:
		return c.T("signin.err.forbidden")
	case errors.Is(err, station.ErrSignInRefused):
		return c.T("signin.err.refused")
	}
	return c.T("signin.err.other")
}
