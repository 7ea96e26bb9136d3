package ui

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"github.com/go-text/typesetting/font"
)

// guiText is all of the GUI's own text: the translation table in both
// languages and the source of ui/*.go (any other literal).
func guiText(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	for _, e := range texts {
		sb.WriteString(e.en)
		sb.WriteString(e.zh)
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(b)
	}
	return sb.String()
}

// isCJK: the code points the bundled fonts are made of (ui/fonts/subset.sh
// keeps the same ranges).
func isCJK(r rune) bool {
	return r >= 0x2E80 && r <= 0x9FFF || r >= 0xF900 && r <= 0xFAFF || r >= 0xFE30 && r <= 0xFE4F || r >= 0xFF00 && r <= 0xFFEF
}

// TestBundledFontsCoverUI: every Chinese character of the GUI's own text
// (the translation table and any other literal in ui/*.go) is in both
// bundled fonts, so none shows as a box or makes Fyne load the system's
// whole CJK font. When this fails, run ui/fonts/subset.sh.
func TestBundledFontsCoverUI(t *testing.T) {
	need := map[rune]bool{}
	for _, r := range guiText(t) {
		if isCJK(r) {
			need[r] = true
		}
	}
	if len(need) < 100 {
		t.Fatalf("only %d Chinese characters found in the GUI's text", len(need))
	}
	for name, b := range map[string][]byte{"KeyStationCJK-Regular.otf": cjkRegularOTF, "KeyStationCJK-Bold.otf": cjkBoldOTF} {
		f, missing := parseAndCheck(t, name, b, need)
		if len(missing) > 0 {
			t.Errorf("%s lacks %d characters of the GUI's text (run ui/fonts/subset.sh): %s", name, len(missing), strings.Join(missing, ", "))
		}
		// Only CJK code points and spaces: Latin, digits and general
		// punctuation stay Noto Sans's, so English looks as with Fyne's
		// default theme. The spaces must be there (a space after Chinese
		// text is shaped with this font), and as Fyne then takes a line's
		// height from this font, its vertical metrics are Noto Sans's.
		if _, ok := f.NominalGlyph('A'); ok {
			t.Errorf("%s maps Latin letters: English text would take its glyphs", name)
		}
		if _, ok := f.NominalGlyph(' '); !ok {
			t.Errorf("%s has no space: a space after Chinese text would show as a box", name)
		}
		noto, err := font.ParseTTF(bytes.NewReader(theme.DefaultTextFont().Content()))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := f.FontHExtents()
		want, _ := noto.FontHExtents()
		if got != want {
			t.Errorf("%s: line extents %+v, Noto Sans has %+v (lines would change height)", name, got, want)
		}
	}
}

// TestLatinFontsCoverUI: every other character of the GUI's own text is
// in both cut-down Noto Sans fonts that stand in for Fyne's, so English
// looks exactly as with Fyne's fonts; only the arrows, which Noto Sans
// lacks too, come from the system's fonts. When this fails, widen the
// ranges in ui/fonts/subset.sh and run it.
func TestLatinFontsCoverUI(t *testing.T) {
	need := map[rune]bool{}
	for _, r := range guiText(t) {
		if r >= ' ' && !isCJK(r) && (r < 0x2190 || r > 0x21FF) {
			need[r] = true
		}
	}
	if !need['×'] || !need['…'] {
		t.Fatal("the GUI's text has no × or …: the scan is broken")
	}
	for name, b := range map[string][]byte{"KeyStationLatin-Regular.ttf": latinRegularTTF, "KeyStationLatin-Bold.ttf": latinBoldTTF} {
		f, missing := parseAndCheck(t, name, b, need)
		if len(missing) > 0 {
			t.Errorf("%s lacks %d characters of the GUI's text: %s", name, len(missing), strings.Join(missing, ", "))
		}
		// Fyne draws a box with the replacement character for a character
		// no font has.
		if _, ok := f.NominalGlyph(0xFFFD); !ok {
			t.Errorf("%s has no replacement character", name)
		}
	}
}

// TestThemeFonts: regular and bold text get the bundled fonts, monospace
// Fyne's; the colour-emoji font and Fyne's Noto Sans are swapped for the
// small stand-ins.
func TestThemeFonts(t *testing.T) {
	th := newTheme()
	if th.Font(fyne.TextStyle{}) != cjkRegular || th.Font(fyne.TextStyle{Bold: true}) != cjkBold {
		t.Error("regular and bold text do not use the bundled fonts")
	}
	if th.Font(fyne.TextStyle{Monospace: true}) != theme.DefaultTheme().Font(fyne.TextStyle{Monospace: true}) {
		t.Error("monospace text does not use Fyne's font")
	}
	if e := theme.DefaultEmojiFont(); e != nil && len(e.Content()) > 64<<10 {
		t.Errorf("the emoji font is still %d bytes", len(e.Content()))
	}
	// Fyne's Noto Sans, which follows the theme's font in regular and bold
	// text, is the cut-down one.
	if !bytes.Equal(theme.DefaultTextFont().Content(), latinRegularTTF) || !bytes.Equal(theme.DefaultTextBoldFont().Content(), latinBoldTTF) {
		t.Error("Fyne's regular and bold fonts are not the cut-down Noto Sans")
	}
	blank, err := font.ParseTTF(bytes.NewReader(blankOTF))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := blank.NominalGlyph(' '); !ok {
		t.Error("the emoji font's stand-in has no space: a space after a character it were chosen for would show as a box")
	}
}

// parseAndCheck parses a bundled font and returns it with the characters
// of need it lacks, sorted.
func parseAndCheck(t *testing.T, name string, b []byte, need map[rune]bool) (*font.Face, []string) {
	t.Helper()
	f, err := font.ParseTTF(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var missing []string
	for r := range need {
		if _, ok := f.NominalGlyph(r); !ok {
			missing = append(missing, fmt.Sprintf("%c U+%04X", r, r))
		}
	}
	sort.Strings(missing)
	return f, missing
}
