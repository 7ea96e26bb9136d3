package ui

import (
	"sort"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation/queue"
)

// StatusBar is always visible: server online/offline, last sync and its age,
// reports waiting in the outbox, keys left per edition with a low-stock
// warning, and the simulation label.
type StatusBar struct {
	u        *UI
	Box      *fyne.Container
	Online   *Badge
	LastSync *widget.Label
	Outbox   *widget.Label
	Keys     *widget.Label // keys left per edition
	Low      *Badge        // low-stock warning
	Sim      *Badge
	SyncNow  *widget.Button
}

func newStatusBar(u *UI) *StatusBar {
	c := u.C
	s := &StatusBar{u: u, Online: newBadge(colorIdle, c.T("status.unknown")), LastSync: widget.NewLabel(""), Outbox: widget.NewLabel(""),
		Keys: widget.NewLabel(""), Low: newBadge(colorWarn, ""), Sim: newBadge(colorSim, c.T("status.simulation"))}
	for _, l := range []*widget.Label{s.LastSync, s.Outbox, s.Keys} {
		l.Truncation = fyne.TextTruncateEllipsis
	}
	s.SyncNow = widget.NewButtonWithIcon(c.T("status.syncNow"), theme.ViewRefreshIcon(), func() {
		s.SyncNow.Disable()
		c.SyncNow(func(sum queue.Summary, err error) {
			s.SyncNow.Enable()
			if err != nil {
				s.u.info(c.T("status.syncFailed"), c.T("status.syncFailedText", err.Error()))
			}
		})
	})
	s.Sim.box.Hidden = true
	s.Low.box.Hidden = true
	s.Box = container.NewBorder(nil, nil, container.NewHBox(s.Sim.box, s.Online.box), container.NewHBox(s.Low.box, s.SyncNow),
		container.NewGridWithColumns(3, s.LastSync, s.Outbox, s.Keys))
	return s
}

func (s *StatusBar) render() {
	c := s.u.C
	st := c.Status
	if !c.StatusOK {
		return
	}
	switch {
	case !st.Enrolled:
		s.Online.Set(colorWarn, c.T("status.notEnrolled"))
	case st.Syncing:
		s.Online.Set(colorBusy, c.T("status.syncing"))
	case st.Online:
		s.Online.Set(colorOK, c.T("status.online"))
	case !st.Checked:
		s.Online.Set(colorIdle, c.T("status.unknown"))
	default:
		s.Online.Set(colorFail, c.T("status.offline"))
	}
	if st.LastSync == nil {
		s.LastSync.SetText(c.T("status.lastSyncNever"))
	} else {
		s.LastSync.SetText(c.T("status.lastSync", st.LastSync.Local().Format("15:04"), age(c, time.Since(*st.LastSync))))
	}
	s.Outbox.SetText(c.T("status.outbox", st.Outbox))
	if st.Attention > 0 {
		s.Outbox.SetText(c.T("status.outboxAttention", st.Outbox, st.Attention))
	}
	eds := make([]string, 0, len(st.Buffer))
	for ed := range st.Buffer {
		eds = append(eds, ed)
	}
	sort.Strings(eds)
	var parts, low []string
	for _, ed := range eds {
		b := st.Buffer[ed]
		name := editionName(c, ed, b.Name)
		parts = append(parts, c.T("status.keyPart", name, b.Available))
		if b.Low {
			low = append(low, name)
		}
	}
	s.Keys.SetText(c.T("status.keys", strings.Join(parts, " · ")))
	s.Low.Set(colorWarn, c.T("status.keysLow", strings.Join(low, ", ")))
	s.Low.box.Hidden = len(low) == 0
	s.Low.box.Refresh()
	s.Sim.box.Hidden = !st.Simulated
	s.Sim.box.Refresh()
	s.Box.Refresh()
}

// age says how long ago, shortly: "3 min", "2 h", "5 d".
func age(c *Controller, d time.Duration) string {
	switch {
	case d < time.Minute:
		return c.T("age.seconds", int(d.Seconds()))
	case d < time.Hour:
		return c.T("age.minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return c.T("age.hours", int(d.Hours()))
	}
	return c.T("age.days", int(d.Hours()/24))
}

// editionName is an edition's name in the worker's language.
func editionName(c *Controller, slug, name string) string {
	if t, ok := lookup(c.lang, "edition."+slug); ok {
		return t
	}
	if name != "" {
		return name
	}
	return strings.ToUpper(slug[:1]) + slug[1:]
}
