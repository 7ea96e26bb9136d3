package ui

import (
	"image"
	"image/color"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Banner is the big coloured result strip: a title readable from a step
// away and lines of explanation below it (each on one line, cut with an
// ellipsis when too long: the whole text is under Details). Its widgets are
// made once and reused.
type Banner struct {
	bg    *canvas.Rectangle
	Title *canvas.Text
	lines []*widget.RichText
	text  string
	box   *fyne.Container
}

// colorNameOnBanner is the theme colour of text on the banner (white).
const colorNameOnBanner fyne.ThemeColorName = "keystation-on-banner"

const bannerLines = 6

func newBanner() *Banner {
	b := &Banner{bg: canvas.NewRectangle(colorIdle), Title: canvas.NewText("", colorOnBadge)}
	b.bg.CornerRadius = 8
	b.Title.TextSize = 34
	b.Title.TextStyle.Bold = true
	inner := container.New(layout.NewCustomPaddedVBoxLayout(-8), b.Title)
	for range bannerLines {
		r := widget.NewRichText(&widget.TextSegment{Style: widget.RichTextStyle{ColorName: colorNameOnBanner, TextStyle: fyne.TextStyle{Bold: true}, SizeName: theme.SizeNameSubHeadingText}})
		// Wrapped, not cut: the worker reads the whole message.
		r.Wrapping = fyne.TextWrapWord
		r.Hide()
		b.lines = append(b.lines, r)
		inner.Add(r)
	}
	b.box = container.NewStack(b.bg, container.New(layout.NewCustomPaddedLayout(4, 8, 14, 14), inner))
	return b
}

// Set shows a title and text (lines separated by newlines) on a colour.
func (b *Banner) Set(c color.Color, title, text string) {
	b.bg.FillColor = c
	b.bg.Refresh()
	b.Title.Text = title
	b.Title.Refresh()
	b.text = text
	var lines []string
	if text != "" {
		lines = strings.Split(text, "\n")
	}
	for i, r := range b.lines {
		seg := r.Segments[0].(*widget.TextSegment)
		if i < len(lines) {
			seg.Text = lines[i]
			r.Show()
		} else {
			seg.Text = ""
			r.Hide()
		}
		r.Refresh()
	}
	b.box.Refresh()
}

// Text is the banner's title and lines (tests).
func (b *Banner) Text() string { return b.Title.Text + "\n" + b.text }

// Colour is the banner's colour (tests).
func (b *Banner) Colour() color.Color { return b.bg.FillColor }

// Badge is a small coloured label (online/offline, SIMULATION, LOW).
type Badge struct {
	bg   *canvas.Rectangle
	Text *canvas.Text
	box  *fyne.Container
}

func newBadge(c color.Color, text string) *Badge {
	b := &Badge{bg: canvas.NewRectangle(c), Text: canvas.NewText(text, colorOnBadge)}
	b.bg.CornerRadius = 6
	b.Text.TextStyle.Bold = true
	b.Text.TextSize = 16
	b.box = container.NewStack(b.bg, container.New(layout.NewCustomPaddedLayout(3, 3, 10, 10), b.Text))
	return b
}

// Set changes the badge.
func (b *Badge) Set(c color.Color, text string) {
	b.bg.FillColor = c
	b.Text.Text = text
	b.bg.Refresh()
	b.Text.Refresh()
	b.box.Refresh()
}

// Entry is a text entry that closes the open dialog on Esc and runs
// OnEnter on Enter (the form's primary action).
type Entry struct {
	widget.Entry
	onEsc func()
}

func newEntry(onEsc func()) *Entry {
	e := &Entry{onEsc: onEsc}
	e.ExtendBaseWidget(e)
	return e
}

func newPasswordEntry(onEsc func()) *Entry {
	e := newEntry(onEsc)
	e.Password = true
	return e
}

// TypedKey handles Esc; everything else is the entry's.
func (e *Entry) TypedKey(k *fyne.KeyEvent) {
	if k.Name == fyne.KeyEscape && e.onEsc != nil {
		e.onEsc()
		return
	}
	e.Entry.TypedKey(k)
}

// frameMarker is a 1×1 raster drawn with the first frame: its generator runs
// when the painter draws it, which is when the window's first frame is
// painted.
func frameMarker(once func()) fyne.CanvasObject {
	var o sync.Once
	r := canvas.NewRaster(func(w, h int) image.Image {
		if once != nil {
			o.Do(func() { go once() })
		}
		return image.NewUniform(color.Transparent)
	})
	r.SetMinSize(fyne.NewSize(1, 1))
	return r
}

func heading(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.SizeName = theme.SizeNameSubHeadingText
	l.TextStyle.Bold = true
	return l
}

func caption(text string) *widget.Label {
	l := widget.NewLabel(text)
	l.Importance = widget.LowImportance
	return l
}

func bigButton(label string, icon fyne.Resource, imp widget.Importance, tapped func()) *widget.Button {
	b := widget.NewButtonWithIcon(label, icon, tapped)
	b.Importance = imp
	return b
}

// tall makes a button (or anything) at least h high: touch friendly.
func tall(o fyne.CanvasObject, h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(0, h))
	return container.NewStack(r, o)
}

// ratio lays out two objects side by side, the first taking share of the
// width.
type ratio struct{ share float32 }

func (r ratio) MinSize(objs []fyne.CanvasObject) fyne.Size {
	var w, h float32
	for _, o := range objs {
		m := o.MinSize()
		w += m.Width
		h = max(h, m.Height)
	}
	return fyne.NewSize(w+theme.Padding(), h)
}

func (r ratio) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	if len(objs) != 2 {
		return
	}
	p := theme.Padding()
	w0 := (size.Width - p) * r.share
	objs[0].Move(fyne.NewPos(0, 0))
	objs[0].Resize(fyne.NewSize(w0, size.Height))
	objs[1].Move(fyne.NewPos(w0+p, 0))
	objs[1].Resize(fyne.NewSize(size.Width-w0-p, size.Height))
}
