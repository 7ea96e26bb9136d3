package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation/store"
)

// HistoryView lists this station's recent activations with their status
// (activated, failed, waiting to sync, synced) and a filter.
type HistoryView struct {
	u       *UI
	Box     fyne.CanvasObject
	Filter  *widget.Select
	Search  *Entry
	Reload  *widget.Button
	Table   *widget.Table
	Count   *widget.Label
	Records []store.ActivationRecord
}

// History filters, in the order offered.
var historyFilters = []struct {
	key     string
	outcome store.AttemptOutcome
	sync    string
}{
	{"history.all", "", ""},
	{"history.activated", store.AttemptActivated, ""},
	{"history.failed", store.AttemptKeyFault, ""},
	{"history.pcFault", store.AttemptPCFault, ""},
	{"history.waiting", "", store.SyncWaiting},
	{"history.synced", "", store.SyncSynced},
	{"history.conflict", "", store.SyncConflict},
}

var historyCols = []struct {
	key   string
	width float32
}{
	{"history.col.time", 190}, {"history.col.sn", 190}, {"history.col.model", 180}, {"history.col.keyId", 150},
	{"history.col.key", 150}, {"history.col.result", 190}, {"history.col.sync", 120}, {"history.col.message", 600},
}

func newHistoryView(u *UI) *HistoryView {
	c := u.C
	v := &HistoryView{u: u, Search: newEntry(u.escape), Count: widget.NewLabel("")}
	var opts []string
	for _, f := range historyFilters {
		opts = append(opts, c.T(f.key))
	}
	v.Filter = widget.NewSelect(opts, nil)
	v.Filter.SetSelectedIndex(0)
	v.Search.SetPlaceHolder(c.T("history.search"))
	v.Search.OnSubmitted = func(string) { v.Refresh() }
	v.Reload = widget.NewButtonWithIcon(c.T("history.reload"), theme.ViewRefreshIcon(), v.Refresh)
	v.Table = widget.NewTableWithHeaders(
		func() (int, int) { return len(v.Records), len(historyCols) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(id widget.TableCellID, o fyne.CanvasObject) {
			l := o.(*widget.Label)
			if id.Row >= len(v.Records) {
				return
			}
			l.SetText(v.cell(v.Records[id.Row], id.Col))
			l.Importance = widget.MediumImportance
			if id.Col == 5 {
				switch v.Records[id.Row].Outcome {
				case store.AttemptActivated:
					l.Importance = widget.SuccessImportance
				default:
					l.Importance = widget.DangerImportance
				}
				l.Refresh()
			}
		})
	v.Table.ShowHeaderColumn = false
	v.Table.CreateHeader = func() fyne.CanvasObject { return boldLabel("") }
	v.Table.UpdateHeader = func(id widget.TableCellID, o fyne.CanvasObject) {
		if id.Col >= 0 {
			o.(*widget.Label).SetText(c.T(historyCols[id.Col].key))
		}
	}
	for i, col := range historyCols {
		v.Table.SetColumnWidth(i, col.width)
	}
	v.Table.OnSelected = func(id widget.TableCellID) {
		if id.Row >= 0 && id.Row < len(v.Records) {
			v.details(v.Records[id.Row])
		}
		v.Table.UnselectAll()
	}
	v.Filter.OnChanged = func(string) { v.Refresh() }
	top := container.NewBorder(nil, nil, container.NewHBox(widget.NewLabel(c.T("history.filter")), v.Filter),
		container.NewHBox(v.Reload, v.Count), v.Search)
	v.Box = container.NewBorder(top, nil, nil, nil, v.Table)
	return v
}

func (v *HistoryView) cell(r store.ActivationRecord, col int) string {
	c := v.u.C
	switch col {
	case 0:
		return r.At.Local().Format("2006-01-02 15:04:05")
	case 1:
		return r.SN
	case 2:
		return r.Model
	case 3:
		return r.KeyID.String()
	case 4:
		if n := len(r.Key); n > 6 {
			return "…" + r.Key[n-6:] // the rest is masked anyway
		}
		return r.Key
	case 5:
		s := c.T("outcome." + string(r.Outcome))
		if r.Simulated {
			s += " (" + c.T("common.sim") + ")"
		}
		return s
	case 6:
		return c.T("sync." + r.Sync)
	case 7:
		msg := r.Message
		if r.Code != "" {
			msg = r.Code + " " + msg
		}
		return msg
	}
	return ""
}

// Refresh reads the history with the filter.
func (v *HistoryView) Refresh() {
	c := v.u.C
	i := max(v.Filter.SelectedIndex(), 0)
	f := store.HistoryFilter{Limit: 200, Outcome: historyFilters[i].outcome, Sync: historyFilters[i].sync, Search: v.Search.Text}
	c.History(f, func(recs []store.ActivationRecord, err error) {
		if err != nil {
			v.Count.SetText(err.Error())
			return
		}
		v.Records = recs
		v.Count.SetText(c.T("history.count", len(recs)))
		v.Table.Refresh()
	})
}

func (v *HistoryView) details(r store.ActivationRecord) {
	c := v.u.C
	text := ""
	for i := range historyCols {
		text += c.T(historyCols[i].key) + ": " + v.cell(r, i) + "\n"
	}
	text += c.T("details.report") + ": " + r.ReportID + "\n"
	if r.SyncNote != "" {
		text += c.T("history.syncNote") + ": " + r.SyncNote + "\n"
	}
	v.u.info(c.T("common.details"), text)
}
