// Command mkicon draws KeyStation's icon: a white key on a blue rounded
// square with a green "activated" check badge. It renders every size
// natively from the same shapes (no downscaling), on a 16-unit grid whose
// straight edges fall on pixel boundaries at 16, 32, 48, 64, 256 and 512 px,
// so the small sizes stay crisp. Run it from the repository root when the
// design changes and commit the PNGs; builds never run it:
//
//	go run ./scripts/mkicon
//
// It writes cmd/station/Icon.png (512 px: FyneApp.toml's icon, the window
// and taskbar icon) and winres/icon_*.png (the sizes of station.exe's icon,
// read by scripts/package-windows.sh).
package main

import (
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"os"
	"path/filepath"
)

// Colours: Tailwind blue 600 to 800 for the background, green 600 for the
// badge. Strong enough to find on a taskbar, light or dark.
var (
	bgTop    = rgb(0x25, 0x63, 0xEB)
	bgBottom = rgb(0x1E, 0x40, 0xAF)
	white    = rgb(0xFF, 0xFF, 0xFF)
	green    = rgb(0x16, 0xA3, 0x4A)
)

type rgba struct{ r, g, b, a float64 } // premultiplied, 0..1

func rgb(r, g, b uint8) rgba {
	return rgba{float64(r) / 255, float64(g) / 255, float64(b) / 255, 1}
}

func lerp(a, b rgba, t float64) rgba {
	return rgba{a.r + (b.r-a.r)*t, a.g + (b.g-a.g)*t, a.b + (b.b-a.b)*t, a.a + (b.a-a.a)*t}
}

// The design, in units of a 16×16 grid (y grows downwards).
const (
	corner = 3.0 // background corner radius

	bowX, bowY  = 5.0, 5.0 // the key's bow: a ring
	bowR, holeR = 3.5, 1.5
	shaftY0     = 4.0 // the shaft: a bar from the bow to the tip
	shaftY1     = 6.0
	shaftX1     = 14.0
	badgeX      = 12.0 // the check badge
	badgeY      = 12.0
	badgeR      = 3.5
	badgeGap    = 0.75 // background-coloured ring around the badge
	checkW      = 1.3  // stroke width of the check mark
)

// The key's teeth, hanging from the shaft: x0, x1, bottom.
var teeth = [][3]float64{{9, 10, 8}, {11, 13, 7.5}}

// The check mark inside the badge.
var check = [][2]float64{{10.1, 12.1}, {11.4, 13.4}, {13.9, 10.8}}

// paint returns the colour of the icon at (x, y) in grid units.
func paint(x, y float64) rgba {
	if !inRoundedSquare(x, y) {
		return rgba{}
	}
	bg := lerp(bgTop, bgBottom, y/16)
	c := bg
	// The key: bow with a hole, a shaft, teeth hanging from the shaft.
	d := dist(x, y, bowX, bowY)
	if d <= bowR && d >= holeR {
		c = white
	}
	if d >= holeR && x >= bowX && x <= shaftX1 && y >= shaftY0 && y <= shaftY1 {
		c = white
	}
	for _, t := range teeth {
		if x >= t[0] && x <= t[1] && y >= shaftY1 && y <= t[2] {
			c = white
		}
	}
	// The badge cuts into whatever lies under it with a ring of background.
	d = dist(x, y, badgeX, badgeY)
	if d <= badgeR+badgeGap {
		c = bg
	}
	if d <= badgeR {
		c = green
		if distToPolyline(x, y, check) <= checkW/2 {
			c = white
		}
	}
	return c
}

func inRoundedSquare(x, y float64) bool {
	if x < 0 || y < 0 || x > 16 || y > 16 {
		return false
	}
	cx := math.Min(math.Max(x, corner), 16-corner)
	cy := math.Min(math.Max(y, corner), 16-corner)
	return dist(x, y, cx, cy) <= corner
}

func dist(x0, y0, x1, y1 float64) float64 { return math.Hypot(x1-x0, y1-y0) }

func distToPolyline(x, y float64, pts [][2]float64) float64 {
	best := math.Inf(1)
	for i := 0; i+1 < len(pts); i++ {
		ax, ay, bx, by := pts[i][0], pts[i][1], pts[i+1][0], pts[i+1][1]
		dx, dy := bx-ax, by-ay
		t := ((x-ax)*dx + (y-ay)*dy) / (dx*dx + dy*dy)
		t = math.Max(0, math.Min(1, t))
		best = math.Min(best, dist(x, y, ax+t*dx, ay+t*dy))
	}
	return best
}

// render draws the icon at size×size pixels, averaging n×n samples a pixel.
func render(size int) *image.NRGBA {
	n := max(4, 128/size) // 8×8 samples at 16 px, 4×4 from 32 px up
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	unit := 16 / float64(size)
	for py := 0; py < size; py++ {
		for px := 0; px < size; px++ {
			var sum rgba
			for sy := 0; sy < n; sy++ {
				for sx := 0; sx < n; sx++ {
					x := (float64(px) + (float64(sx)+0.5)/float64(n)) * unit
					y := (float64(py) + (float64(sy)+0.5)/float64(n)) * unit
					c := paint(x, y)
					sum.r += c.r
					sum.g += c.g
					sum.b += c.b
					sum.a += c.a
				}
			}
			k := float64(n * n)
			a := sum.a / k
			if a == 0 {
				continue
			}
			to8 := func(v float64) uint8 { return uint8(math.Round(math.Min(1, v/k/a) * 255)) }
			img.SetNRGBA(px, py, color.NRGBA{to8(sum.r), to8(sum.g), to8(sum.b), uint8(math.Round(a * 255))})
		}
	}
	return img
}

func write(path string, img image.Image) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	enc := png.Encoder{CompressionLevel: png.BestCompression}
	if err := enc.Encode(f, img); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func main() {
	root := flag.String("root", ".", "repository root to write the PNGs under")
	flag.Parse()
	outputs := []struct {
		path string
		size int
	}{
		{"cmd/station/Icon.png", 512},
		{"winres/icon_256.png", 256},
		{"winres/icon_64.png", 64},
		{"winres/icon_48.png", 48},
		{"winres/icon_32.png", 32},
		{"winres/icon_24.png", 24},
		{"winres/icon_16.png", 16},
	}
	for _, o := range outputs {
		p := filepath.Join(*root, o.path)
		if err := write(p, render(o.size)); err != nil {
			fmt.Fprintln(os.Stderr, "mkicon:", err)
			os.Exit(1)
		}
		fmt.Println("wrote", p)
	}
}
