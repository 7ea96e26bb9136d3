package ui

import (
	"image/color"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
)

// Colours of what happened to the PC: impossible to misread from a step away.
var (
	colorOK      = color.NRGBA{R: 0x1b, G: 0x7f, B: 0x3b, A: 0xff} // activated
	colorFail    = color.NRGBA{R: 0xb3, G: 0x26, B: 0x1e, A: 0xff} // not activated
	colorWarn    = color.NRGBA{R: 0x9a, G: 0x5b, B: 0x00, A: 0xff} // firmware key, cancelled, low stock
	colorBusy    = color.NRGBA{R: 0x1f, G: 0x5f, B: 0xbf, A: 0xff} // working
	colorIdle    = color.NRGBA{R: 0x5f, G: 0x63, B: 0x68, A: 0xff} // nothing yet
	colorSim     = color.NRGBA{R: 0x8e, G: 0x24, B: 0xaa, A: 0xff} // simulation label
	colorOnBadge = color.NRGBA{R: 0xff, G: 0xff, B: 0xff, A: 0xff}
)

// stationTheme is the default light theme with larger text and controls
// (readable from a step away, touch friendly) and, when the system has one,
// a CJK font so Simplified Chinese never renders as boxes.
type stationTheme struct {
	base fyne.Theme
}

func newTheme() fyne.Theme { return &stationTheme{base: theme.DefaultTheme()} }

func (t *stationTheme) Color(n fyne.ThemeColorName, _ fyne.ThemeVariant) color.Color {
	switch n {
	case colorNameOnBanner:
		return colorOnBadge
	case theme.ColorNamePrimary:
		return colorBusy
	case theme.ColorNameSuccess:
		return colorOK
	case theme.ColorNameError:
		return colorFail
	case theme.ColorNameWarning:
		return colorWarn
	}
	// Always the light variant: factory floors are bright.
	return t.base.Color(n, theme.VariantLight)
}

func (t *stationTheme) Icon(n fyne.ThemeIconName) fyne.Resource { return t.base.Icon(n) }

func (t *stationTheme) Font(s fyne.TextStyle) fyne.Resource {
	if s.Monospace || s.Symbol {
		return t.base.Font(s)
	}
	if f := cjkFont(s.Bold); f != nil {
		return f
	}
	return t.base.Font(s)
}

func (t *stationTheme) Size(n fyne.ThemeSizeName) float32 {
	switch n {
	case theme.SizeNameText:
		return 17
	case theme.SizeNameHeadingText:
		return 28
	case theme.SizeNameSubHeadingText:
		return 20
	case theme.SizeNameCaptionText:
		return 14
	case theme.SizeNamePadding:
		return 6
	case theme.SizeNameInnerPadding:
		return 8
	case theme.SizeNameInlineIcon:
		return 24
	case theme.SizeNameScrollBar:
		return 14
	}
	return t.base.Size(n)
}

// A font for Chinese text. Fyne falls back to the system's fonts for glyphs
// its own font lacks (fonts-noto-cjk on Linux, Microsoft YaHei on
// Windows), so by default nothing is set here. KEYSTATION_FONT names a
// TrueType/OpenType file (not a .ttc collection, which Fyne cannot load) to
// use instead, for systems whose fallback renders boxes.
var (
	fontOnce            sync.Once
	fontRegular, fontBd fyne.Resource
	useCJKFont          = true
)

func cjkFont(bold bool) fyne.Resource {
	if !useCJKFont {
		return nil
	}
	fontOnce.Do(func() {
		load := func(p string) fyne.Resource {
			if p == "" {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			return fyne.NewStaticResource(p, b)
		}
		p := os.Getenv("KEYSTATION_FONT")
		if ext := strings.ToLower(filepath.Ext(p)); ext == ".ttf" || ext == ".otf" {
			fontRegular = load(p)
			fontBd = fontRegular
		}
	})
	if bold {
		return fontBd
	}
	return fontRegular
}
