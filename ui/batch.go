package ui

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"keystation/keylist"
	"keystation/station"
)

// BatchView is batch mode: a key list from a USB stick is previewed,
// imported, and worked through PC by PC with a progress bar; the results
// file is written next to the list.
type BatchView struct {
	u   *UI
	Box fyne.CanvasObject

	Path    *Entry
	Browse  *widget.Button
	Edition *widget.Select // edition of lines that name none
	Preview *widget.Button
	Import  *widget.Button

	Summary *widget.Label // counts per edition
	Invalid *widget.List  // invalid lines with line numbers and reasons
	invalid []keylist.Rejection
	Error   *widget.Label
	list    *keylist.List

	Active     *fyne.Container
	activeCard *widget.Card
	Title      *widget.Label
	Bar        *widget.ProgressBar
	Counts     *widget.Label
	Results    *widget.Label
	GoToPC     *widget.Button
	EndBatch   *widget.Button
}

func newBatchView(u *UI) *BatchView {
	c := u.C
	v := &BatchView{u: u, Path: newEntry(u.escape), Summary: widget.NewLabel(""), Error: widget.NewLabel(""),
		Title: heading(""), Bar: widget.NewProgressBar(), Counts: widget.NewLabel(""), Results: widget.NewLabel("")}
	v.Path.SetPlaceHolder(c.T("batch.pathHint"))
	v.Path.OnSubmitted = func(string) { v.preview() }
	v.Browse = widget.NewButtonWithIcon(c.T("batch.browse"), theme.FolderOpenIcon(), v.browse)
	v.Edition = widget.NewSelect([]string{c.T("batch.editionNone")}, nil)
	v.Edition.SetSelectedIndex(0)
	v.Preview = bigButton(c.T("batch.preview"), theme.SearchIcon(), widget.MediumImportance, v.preview)
	v.Import = bigButton(c.T("batch.import"), theme.DownloadIcon(), widget.HighImportance, v.doImport)
	v.Import.Disable()
	v.Summary.Wrapping = fyne.TextWrapWord
	v.Summary.TextStyle.Bold = true
	v.Error.Importance = widget.DangerImportance
	v.Error.Wrapping = fyne.TextWrapWord
	v.Invalid = widget.NewList(func() int { return len(v.invalid) },
		func() fyne.CanvasObject {
			l := widget.NewLabel("")
			l.Importance = widget.DangerImportance
			l.Truncation = fyne.TextTruncateEllipsis
			return l
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			r := v.invalid[i]
			o.(*widget.Label).SetText(c.T("batch.invalidLine", r.Line, r.Reason))
		})
	v.Bar.Min = 0
	v.Results.Truncation = fyne.TextTruncateEllipsis
	v.Results.Selectable = true
	v.GoToPC = bigButton(c.T("batch.goPC"), theme.ComputerIcon(), widget.HighImportance, func() { u.Show(ScreenPC) })
	v.EndBatch = widget.NewButtonWithIcon(c.T("batch.end"), theme.CancelIcon(), func() {
		c.EndBatch()
		v.refresh()
	})
	v.Active = container.NewVBox(v.Title, v.Bar, v.Counts, v.Results, container.NewHBox(tall(v.GoToPC, 56), tall(v.EndBatch, 56)))

	choose := widget.NewCard(c.T("batch.chooseTitle"), c.T("batch.chooseText"), container.NewVBox(
		container.NewBorder(nil, nil, nil, tall(v.Browse, 48), v.Path),
		container.NewHBox(widget.NewLabel(c.T("batch.edition")), container.NewGridWrap(fyne.NewSize(240, v.Edition.MinSize().Height), v.Edition), layout.NewSpacer(), tall(v.Preview, 52), tall(v.Import, 52)),
	))
	invalidBox := container.NewBorder(boldLabel(c.T("batch.invalidTitle")), nil, nil, nil, v.Invalid)
	preview := widget.NewCard(c.T("batch.previewTitle"), "", container.NewBorder(container.NewVBox(v.Summary, v.Error), nil, nil, nil, invalidBox))
	v.activeCard = widget.NewCard(c.T("batch.activeTitle"), "", v.Active)
	v.activeCard.Hide()
	v.Box = container.NewBorder(choose, nil, nil, nil, container.NewGridWithColumns(2, preview, v.activeCard))
	return v
}

func (v *BatchView) renderStatus() {}

// refresh shows the active batch and the editions to choose from.
func (v *BatchView) refresh() {
	c := v.u.C
	eds := []string{c.T("batch.editionNone")}
	for _, ed := range sortedEditions(c) {
		eds = append(eds, ed)
	}
	sel := v.Edition.Selected
	v.Edition.Options = eds
	if sel == "" || !contains(eds, sel) {
		v.Edition.SetSelectedIndex(0)
	}
	v.Edition.Refresh()
	imported := 0
	if c.BatchImport != nil {
		imported = c.BatchImport.Imported
	}
	c.Progress(imported, func(p BatchProgress, err error) {
		if p.Batch == nil {
			v.activeCard.Hide()
			return
		}
		v.activeCard.Show()
		v.Title.SetText(c.T("batch.activeFile", filepath.Base(p.Batch.File)))
		used := p.Activated + p.Failed
		total := max(imported, used)
		if total == 0 {
			total = 1
		}
		v.Bar.Max = float64(total)
		v.Bar.SetValue(float64(used))
		left := ""
		if imported > 0 {
			left = c.T("batch.left", imported-used)
		}
		v.Counts.SetText(c.T("batch.counts", p.Activated, p.Failed, p.PCFault) + left)
		res := c.T("batch.resultsFile", p.Batch.Results)
		if p.Batch.ResultsErr != "" {
			res += "\n" + c.T("batch.resultsErr", p.Batch.ResultsErr)
		}
		v.Results.SetText(res)
	})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// sortedEditions is the slugs of the editions the station knows.
func sortedEditions(c *Controller) []string {
	var out []string
	for ed := range c.Status.Buffer {
		out = append(out, ed)
	}
	sort.Strings(out)
	return out
}

func (v *BatchView) edition() string {
	if v.Edition.SelectedIndex() <= 0 {
		return ""
	}
	return v.Edition.Selected
}

func (v *BatchView) preview() {
	c := v.u.C
	path := strings.TrimSpace(v.Path.Text)
	v.Error.SetText("")
	v.Import.Disable()
	if path == "" {
		v.Error.SetText(c.T("batch.noFile"))
		return
	}
	v.Preview.Disable()
	c.Preview(path, v.edition(), func(l *keylist.List, err error) {
		v.Preview.Enable()
		v.list = l
		if err != nil {
			v.Summary.SetText("")
			v.invalid = nil
			v.Invalid.Refresh()
			v.Error.SetText(c.T("batch.readErr", err.Error()))
			return
		}
		v.invalid = l.Rejected
		v.Invalid.Refresh()
		var parts []string
		by := l.ByEdition()
		var eds []string
		for ed := range by {
			eds = append(eds, ed)
		}
		sort.Strings(eds)
		for _, ed := range eds {
			parts = append(parts, c.T("batch.perEdition", editionName(c, ed, ""), by[ed]))
		}
		v.Summary.SetText(c.T("batch.summary", filepath.Base(path), len(l.Entries), len(l.Rejected), l.Lines) + "\n" + strings.Join(parts, "   "))
		if len(l.Entries) > 0 {
			v.Import.Enable()
		}
	})
}

func (v *BatchView) doImport() {
	c := v.u.C
	path := strings.TrimSpace(v.Path.Text)
	if path == "" {
		return
	}
	v.Import.Disable()
	c.Import(path, v.edition(), func(imp *station.Import, err error) {
		if err != nil {
			v.Error.SetText(c.T("batch.importErr", err.Error()))
			return
		}
		v.invalid = nil
		for _, n := range append(append([]station.LineNote{}, imp.Rejected...), imp.Skipped...) {
			v.invalid = append(v.invalid, keylist.Rejection{Line: n.Line, Reason: n.Reason, Key: n.Key})
		}
		sort.Slice(v.invalid, func(i, j int) bool { return v.invalid[i].Line < v.invalid[j].Line })
		v.Invalid.Refresh()
		msg := c.T("batch.imported", imp.Imported, len(imp.Skipped), len(imp.Rejected))
		if imp.AlreadyImported {
			msg = c.T("batch.already")
		}
		v.Summary.SetText(v.Summary.Text + "\n" + msg)
		v.refresh()
	})
}

// browse opens a file dialog on the removable drives.
func (v *BatchView) browse() {
	c := v.u.C
	d := dialog.NewFileOpen(func(r fyne.URIReadCloser, err error) {
		if err != nil || r == nil {
			return
		}
		path := r.URI().Path()
		r.Close()
		v.Path.SetText(path)
		v.preview()
	}, v.u.Win)
	d.SetFilter(storage.NewExtensionFileFilter([]string{".csv", ".txt", ".CSV", ".TXT"}))
	d.SetConfirmText(c.T("batch.open"))
	d.SetDismissText(c.T("common.cancel"))
	for _, root := range RemovableRoots(c.opt.RemovableRoots) {
		if l, err := storage.ListerForURI(storage.NewFileURI(root)); err == nil {
			d.SetLocation(l)
			break
		}
	}
	d.Resize(fyne.NewSize(1000, 640))
	v.u.show(d)
}

// RemovableRoots are the places USB sticks are mounted, most specific
// first: the mounted sticks themselves when there are any, else their
// parent directories (Linux /media/$USER, /run/media/$USER, /media, /mnt;
// on Windows the drive letters that exist after C:).
func RemovableRoots(override []string) []string {
	if override != nil {
		return override
	}
	var out []string
	if runtime.GOOS == "windows" {
		for l := 'D'; l <= 'Z'; l++ {
			p := fmt.Sprintf("%c:\\", l)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
		return out
	}
	user := os.Getenv("USER")
	var parents []string
	if user != "" {
		parents = append(parents, "/media/"+user, "/run/media/"+user)
	}
	parents = append(parents, "/media", "/mnt")
	for _, p := range parents {
		ents, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, e := range ents {
			if e.IsDir() && e.Name() != user {
				out = append(out, filepath.Join(p, e.Name()))
			}
		}
	}
	for _, p := range parents {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			out = append(out, p)
		}
	}
	return out
}

// InvalidLines is the invalid lines as shown (tests).
func (v *BatchView) InvalidLines() []string {
	out := make([]string, len(v.invalid))
	for i, r := range v.invalid {
		out[i] = v.u.C.T("batch.invalidLine", r.Line, r.Reason)
	}
	return out
}
