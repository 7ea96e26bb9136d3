package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"fyne.io/fyne/v2"

	"keystation/activation"
	"keystation/internal/testutil"
	"keystation/station"
	"keystation/ui"
)

// onUI runs f on the UI thread and waits for it.
func onUI(u *ui.UI, f func()) {
	fyne.DoAndWait(func() { u.C.Lock(f) })
}

// waitIdle waits until no background work is pending and no activation
// runs.
func waitIdle(u *ui.UI, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		idle := false
		onUI(u, func() { idle = u.C.Pending() == 0 && !u.C.PC.Running && !u.C.PC.Reading })
		if idle {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runTour drives every screen in order for "make screenshots". For each
// screen it writes DIR/NN-name.ready once the screen has settled and waits
// for DIR/NN-name.done (the script has taken the screenshot), then writes
// DIR/finished and quits. The operator's credentials come from
// KEYSTATION_TOUR_USER and KEYSTATION_TOUR_PASSWORD.
func runTour(u *ui.UI, dir string, sim *activation.Sim, quit func()) {
	defer quit()
	n := 0
	shot := func(name string) {
		waitIdle(u, 30*time.Second)
		time.Sleep(900 * time.Millisecond) // let the frame paint
		n++
		base := filepath.Join(dir, fmt.Sprintf("%02d-%s", n, name))
		_ = os.WriteFile(base+".ready", nil, 0o644)
		for i := 0; i < 600; i++ {
			if _, err := os.Stat(base + ".done"); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	setSim := func(spec string) {
		if sim != nil {
			onUI(u, func() { _ = u.C.SetSimOutcome(spec) })
		}
	}
	user, pass := os.Getenv("KEYSTATION_TOUR_USER"), os.Getenv("KEYSTATION_TOUR_PASSWORD")

	// Sign-in.
	onUI(u, func() { u.SignIn.Username.SetText(user) })
	shot("signin")
	onUI(u, func() {
		u.SignIn.Password.SetText(pass)
		u.SignIn.Submit.OnTapped()
	})
	waitIdle(u, 30*time.Second)
	onUI(u, func() { u.Show(ui.ScreenPC) })
	shot("pc-ready")

	// Activations: running, success, key fault + retry, PC fault, firmware.
	if sim != nil {
		sim.SetStepDelay(2500 * time.Millisecond)
	}
	setSim("success")
	onUI(u, func() { u.PC.Primary() })
	time.Sleep(3200 * time.Millisecond)
	n++
	base := filepath.Join(dir, fmt.Sprintf("%02d-%s", n, "pc-running"))
	_ = os.WriteFile(base+".ready", nil, 0o644)
	for i := 0; i < 600; i++ {
		if _, err := os.Stat(base + ".done"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if sim != nil {
		sim.SetStepDelay(0)
	}
	shot("pc-activated")
	for _, c := range []struct{ name, spec string }{{"pc-keyfault-retry", "key-fault,success"}, {"pc-pcfault", "pc-fault"}, {"pc-firmware", "firmware"}} {
		onUI(u, func() { u.C.ReadPC() })
		waitIdle(u, 30*time.Second)
		setSim(c.spec)
		onUI(u, func() { u.PC.Primary() })
		shot(c.name)
	}
	onUI(u, func() { u.PC.Details.OnTapped() })
	shot("pc-details")
	onUI(u, func() { u.CloseDialogs() })
	setSim("success")

	// Batch: a key list with invalid lines on a "USB stick".
	stick := filepath.Join(dir, "usb")
	_ = os.MkdirAll(stick, 0o755)
	list := filepath.Join(stick, "keys-"+string(u.C.Lang())+".csv")
	if err := writeDemoList(list, time.Now().UnixNano()); err == nil {
		onUI(u, func() { u.Show(ui.ScreenBatch) })
		onUI(u, func() { u.Batch.Browse.OnTapped() })
		shot("batch-choose")
		onUI(u, func() {
			u.CloseDialogs()
			u.Batch.Path.SetText(list)
			u.Batch.Preview.OnTapped()
		})
		shot("batch-preview")
		onUI(u, func() { u.Batch.Import.OnTapped() })
		waitIdle(u, 30*time.Second)
		onUI(u, func() { u.Show(ui.ScreenPC) })
		waitIdle(u, 30*time.Second)
		onUI(u, func() { u.C.ReadPC() })
		waitIdle(u, 30*time.Second)
		onUI(u, func() { u.PC.Primary() })
		waitIdle(u, 30*time.Second)
		onUI(u, func() { u.Show(ui.ScreenBatch) })
		shot("batch-active")
	}

	onUI(u, func() { u.Show(ui.ScreenHistory) })
	shot("history")
	onUI(u, func() { u.Show(ui.ScreenSettings) })
	shot("settings")
	_ = os.WriteFile(filepath.Join(dir, "finished"), nil, 0o644)
}

// writeDemoList writes a key list with a few invalid lines.
func writeDemoList(path string, seed int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintln(w, "key,edition")
	keys := testutil.GenerateKeys(12, uint64(seed))
	for i, k := range keys {
		ed := "pro"
		if i%3 == 0 {
			ed = "home"
		}
		fmt.Fprintf(w, "%s,%s\n", k, ed)
		switch i {
		case 3:
			fmt.Fprintln(w, "THIS-IS-NOT-A-KEY,pro")
		case 6:
			fmt.Fprintf(w, "%s,pro\n", keys[1]) // a duplicate
		case 8:
			fmt.Fprintf(w, "%s,enterprise\n", testutil.GenerateKeys(1, uint64(seed)+1)[0])
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// benchActivations runs n simulated activations through the GUI (new PC,
// primary action, result) and prints the resident memory afterwards.
func benchActivations(u *ui.UI, sim *activation.Sim, n int, out io.Writer, quit func()) {
	defer quit()
	if sim == nil {
		fmt.Fprintln(out, "BENCH ERROR: --bench-activations needs --activator sim")
		return
	}
	sim.SetStepDelay(0)
	_ = u.C.SetSimOutcome("success")
	// No sign-in screen in a benchmark: the operator is the benchmark.
	onUI(u, func() { u.C.Operator = &station.Operator{Username: "kbench"}; u.C.SetOperatorName("kbench") })
	onUI(u, func() { u.Show(ui.ScreenPC) })
	t0 := time.Now()
	ok := 0
	// $KEYSTATION_BENCH_TRACE names a file that gets the memory figures
	// every 50 activations (to see how they grow).
	var trace io.Writer
	if p := os.Getenv("KEYSTATION_BENCH_TRACE"); p != "" {
		if f, err := os.Create(p); err == nil {
			defer f.Close()
			trace = f
		}
	}
	for i := 0; i < n; i++ {
		if trace != nil && i%50 == 0 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			fmt.Fprintf(trace, "%5d %6.1fs rss %6d anon %6d KiB go-heap %6d go-sys %6d KiB\n", i, time.Since(t0).Seconds(),
				procStatus("VmRSS"), procStatus("RssAnon"), m.HeapInuse>>10, (m.Sys-m.HeapReleased)>>10)
		}
		onUI(u, func() { u.C.ReadPC() })
		waitIdle(u, time.Minute)
		onUI(u, func() { u.C.Activate() })
		waitIdle(u, time.Minute)
		var outcome string
		onUI(u, func() {
			if r := u.C.PC.Result; r != nil {
				outcome = string(r.Outcome)
			}
		})
		if outcome == "activated" {
			ok++
		} else if i == 0 || outcome != "activated" && ok == 0 {
			fmt.Fprintf(out, "BENCH WARNING: activation %d: %s\n", i+1, outcome)
		}
	}
	d := time.Since(t0)
	if p := os.Getenv("KEYSTATION_HEAP_PROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			runtime.GC()
			_ = pprof.WriteHeapProfile(f)
			f.Close()
		}
	}
	if p := os.Getenv("KEYSTATION_BENCH_MEMSTATS"); p != "" {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		_ = os.WriteFile(p, []byte(fmt.Sprintf("%+v\n", m)), 0o644)
	}
	if p := os.Getenv("KEYSTATION_BENCH_SMAPS"); p != "" {
		if b, err := os.ReadFile("/proc/self/smaps"); err == nil {
			_ = os.WriteFile(p, b, 0o644)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fmt.Fprintf(out, "BENCH GOHEAP %d KiB\nBENCH GOSYS %d KiB\n", m.HeapInuse>>10, (m.Sys-m.HeapReleased)>>10)
	fmt.Fprintf(out, "BENCH ACTIVATIONS %d ok %d in %s\nBENCH RSS %d KiB\nBENCH HWM %d KiB\nBENCH ANON %d KiB\nBENCH FILE %d KiB\n",
		n, ok, d.Round(time.Millisecond), procStatus("VmRSS"), procStatus("VmHWM"), procStatus("RssAnon"), procStatus("RssFile"))
}

// procStatus reads a kB field of /proc/self/status (0 where there is none).
func procStatus(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, field+":") {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(strings.TrimPrefix(line, field+":")), " kB"), 10, 64)
			return v
		}
	}
	return 0
}
