#!/usr/bin/env bash
# Regenerates the station's bundled fonts, KeyStationCJK-Regular.otf and
# KeyStationCJK-Bold.otf (and KeyStationBlank.otf, KeyStationLatin-*.ttf,
# see the end): Noto Sans CJK SC
# (Regular and Bold) cut down to the Chinese characters the GUI's own text
# uses (every CJK character in ui/*.go, that is the translation table), the
# CJK and full-width punctuation blocks and the spaces. About 130 KB each,
# where the whole font is 16 MB: Fyne parses every font it uses into
# memory, once per text style.
#
# Run it after adding Chinese text to ui/i18n.go; TestBundledFontsCoverUI
# says when it is needed. Needs pyftsubset (Debian: fonttools) and
# fonts-noto-cjk (and Go, to find Fyne's module). Text that is not the GUI's own (a Windows message in
# Chinese, an operator's name) still shows: Fyne falls back to the system's
# fonts for characters these fonts lack.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
src="${NOTO_CJK_DIR:-/usr/share/fonts/opentype/noto}"
command -v pyftsubset >/dev/null || { echo "subset.sh: pyftsubset is missing (apt-get install fonttools)" >&2; exit 1; }
for w in Regular Bold; do
  [[ -f "$src/NotoSansCJK-$w.ttc" ]] || { echo "subset.sh: $src/NotoSansCJK-$w.ttc is missing (apt-get install fonts-noto-cjk)" >&2; exit 1; }
done
unicodes="$(mktemp)"
trap 'rm -f "$unicodes"' EXIT
# CJK code points, and the space characters: Latin, digits and general
# punctuation come from Fyne's own Noto Sans, as before. The spaces must be
# there because text shaping keeps a space in the run of the characters
# before it, so a space after Chinese text is drawn with this font.
python3 - "$here/.." >"$unicodes" <<'PY'
import glob, os, sys
def cjk(o):
    return 0x2E80 <= o <= 0x9FFF or 0xF900 <= o <= 0xFAFF or 0xFE30 <= o <= 0xFE4F or 0xFF00 <= o <= 0xFFEF
cps = set(range(0x3000, 0x3040)) | set(range(0xFF01, 0xFF61))
cps |= {0x20, 0xA0, 0x202F, 0x205F} | set(range(0x2000, 0x200B))
for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.go"))):
    if not p.endswith("_test.go"):
        cps |= {ord(c) for c in open(p, encoding="utf-8").read() if cjk(ord(c))}
print(",".join("U+%04X" % o for o in sorted(cps)))
PY
# Face 2 of the collections is Noto Sans CJK SC.
for w in Regular Bold; do
  pyftsubset "$src/NotoSansCJK-$w.ttc" --font-number=2 --unicodes-file="$unicodes" \
    --no-hinting --output-file="$here/KeyStationCJK-$w.otf"
done
# And a font of nothing but the space, to stand in for Fyne's colour-emoji
# font (see dropEmojiFont in ui/theme.go).
pyftsubset "$src/NotoSansCJK-Regular.ttc" --font-number=2 --unicodes=U+0020 \
  --no-hinting --layout-features= --output-file="$here/KeyStationBlank.otf"
# Fyne takes a line's height from the font of the space character, which is
# now this one: give it Noto Sans's vertical metrics (ascender 1069,
# descender 293 of 1000), so every line, English or Chinese, is as high as
# with Fyne's default font. The Chinese glyphs (880 up, 120 down) fit.
py="$(sed -n '1s/^#! *//p' "$(command -v pyftsubset)")"
"${py:-python3}" - "$here"/KeyStationCJK-*.otf "$here"/KeyStationBlank.otf <<'PY'
import sys
from fontTools.ttLib import TTFont
for p in sys.argv[1:]:
    f = TTFont(p)
    f["hhea"].ascent, f["hhea"].descent, f["hhea"].lineGap = 1069, -293, 0
    os2 = f["OS/2"]
    os2.sTypoAscender, os2.sTypoDescender, os2.sTypoLineGap = 1069, -293, 0
    os2.usWinAscent, os2.usWinDescent = 1069, 293
    f.save(p)
PY
# Fyne's own Noto Sans (Regular and Bold), which Fyne puts after the
# theme's font for every character that font lacks, cut down to Latin
# (with Latin-1 and Latin Extended-A and B), combining marks, general
# punctuation, currency, letterlike symbols, arrows, mathematical
# operators, geometric shapes and the replacement character, without
# hinting (Fyne does not hint) or glyph names: about 80 KB each, where the
# whole font is 455 KB and 1.5 MB of heap once parsed. ui/theme.go swaps
# them in for Fyne's fonts. Other scripts (Greek, Cyrillic, Vietnamese)
# come from the system's fonts, which Fyne has parsed for the system's
# language anyway.
fyne="$(cd "$here/../.." && go list -m -f '{{.Dir}}' fyne.io/fyne/v2)"
for w in Regular Bold; do
  pyftsubset "$fyne/theme/font/NotoSans-$w.ttf" \
    --unicodes=U+0020-007E,U+00A0-024F,U+0300-036F,U+2000-206F,U+20A0-20CF,U+2100-214F,U+2190-21FF,U+2200-22FF,U+25A0-25FF,U+FFFD \
    --no-hinting --output-file="$here/KeyStationLatin-$w.ttf" 2> >(grep -v "TTFA NOT subset" >&2)
done
ls -l "$here"/KeyStation*.otf "$here"/KeyStation*.ttf
