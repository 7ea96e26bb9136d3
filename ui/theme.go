package ui

import (
	_ "embed"
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
// (readable from a step away, touch friendly) and bundled Chinese fonts, so
// Simplified Chinese never renders as boxes and never needs the system's
// whole CJK font in memory.
type stationTheme struct {
	base fyne.Theme
}

func newTheme() fyne.Theme {
	slimFyneFonts()
	return &stationTheme{base: theme.DefaultTheme()}
}

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

// Font is, for regular and bold text, the bundled Chinese font. Fyne puts
// Noto Sans, its default font, after it for every character it lacks
// (Latin, digits, general punctuation: it holds only CJK characters and
// the spaces, with Noto Sans's line metrics), so English text looks
// exactly as with the default theme.
func (t *stationTheme) Font(s fyne.TextStyle) fyne.Resource {
	if s.Monospace || s.Symbol {
		return t.base.Font(s)
	}
	if f := userFont(s.Bold); f != nil {
		return f
	}
	if s.Bold {
		return cjkBold
	}
	return cjkRegular
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

// The bundled Chinese fonts (ui/fonts): Noto Sans CJK SC cut down to the
// characters of the GUI's own text, 130 KB each. Fyne parses every font of
// a text style into memory and otherwise finds Chinese characters in the
// system's fonts: fonts-noto-cjk's 19 MB collection on Linux, Microsoft
// YaHei on Windows, some 20 MB of heap once parsed. Characters these lack
// (a Windows message in Chinese, an operator's name) still come from the
// system's fonts, found when first needed.
var (
	//go:embed fonts/KeyStationCJK-Regular.otf
	cjkRegularOTF []byte
	//go:embed fonts/KeyStationCJK-Bold.otf
	cjkBoldOTF []byte
	//go:embed fonts/KeyStationBlank.otf
	blankOTF []byte
	//go:embed fonts/KeyStationLatin-Regular.ttf
	latinRegularTTF []byte
	//go:embed fonts/KeyStationLatin-Bold.ttf
	latinBoldTTF []byte

	cjkRegular = fyne.NewStaticResource("KeyStationCJK-Regular.otf", cjkRegularOTF)
	cjkBold    = fyne.NewStaticResource("KeyStationCJK-Bold.otf", cjkBoldOTF)
)

// slimFyneFonts swaps, once and before any text is measured, the content
// of three of Fyne's bundled fonts (the StaticResources' exported field):
//
//   - Fyne puts its 4 MB colour-emoji font after the theme's font in every
//     text style and parses it for each style (some 5 MB of heap each);
//     the station shows no emoji. Fyne's own switch for this is the
//     no_emoji build tag, which every build would have to remember. The
//     stand-in is a font of nothing but the space character: a font in
//     that place must have the space, as text shaping keeps a space in the
//     run of the character before it.
//   - Fyne also parses its Noto Sans Regular and Bold in full for regular
//     and bold text (1.5 MB of heap each, glyphs for Greek, Cyrillic and
//     Vietnamese the station never shows), whatever the theme's font. The
//     stand-ins are the same fonts cut down to Latin, punctuation and
//     symbols (ui/fonts/subset.sh): the same glyphs for every character
//     the GUI's own text uses, 0.4 MB of heap each.
//
// Characters none of these fonts has still come from the system's fonts,
// as before: Fyne has already parsed the system's font for its language
// in every style, and finds others by character.
func slimFyneFonts() {
	slimOnce.Do(func() {
		for _, f := range []struct {
			r       fyne.Resource
			content []byte
		}{
			{theme.DefaultEmojiFont(), blankOTF},
			{theme.DefaultTextFont(), latinRegularTTF},
			{theme.DefaultTextBoldFont(), latinBoldTTF},
		} {
			if r, ok := f.r.(*fyne.StaticResource); ok && r != nil {
				r.StaticContent = f.content
			}
		}
	})
}

var slimOnce sync.Once

// userFont: KEYSTATION_FONT names a TrueType/OpenType file (not a .ttc
// collection, which Fyne cannot load) to use instead of the bundled fonts,
// for the rare site that wants another face.
var (
	fontOnce            sync.Once
	fontRegular, fontBd fyne.Resource
)

func userFont(bold bool) fyne.Resource {
	fontOnce.Do(func() {
		p := os.Getenv("KEYSTATION_FONT")
		if ext := strings.ToLower(filepath.Ext(p)); ext != ".ttf" && ext != ".otf" {
			return
		}
		if b, err := os.ReadFile(p); err == nil {
			fontRegular = fyne.NewStaticResource(filepath.Base(p), b)
			fontBd = fontRegular
		}
	})
	if bold {
		return fontBd
	}
	return fontRegular
}
