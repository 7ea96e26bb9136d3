package ui_test

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
	"golang.org/x/crypto/bcrypt"

	"keystation"
	"keystation/activation"
	"keystation/api"
	"keystation/auth"
	"keystation/internal/testutil"
	"keystation/queue"
	"keystation/seal"
	"keystation/station"
	"keystation/store"
	"keystation/ui"
)

func TestMain(m *testing.M) {
	auth.Cost = bcrypt.MinCost
	station.VerifierCost = bcrypt.MinCost
	os.Exit(m.Run())
}

var bg = context.Background()

const (
	opUser  = "liwei"
	opPass  = "liwei-password-1"
	op2User = "zhangmin" // never signs in online at the station
	op2Pass = "zhangmin-password"
)

// server is the real sync server (store + API) over loopback; it can be
// stopped and started again on the same address.
type server struct {
	t    *testing.T
	st   *store.Server
	api  *api.Server
	addr string
	srv  *httptest.Server
}

func newServer(t *testing.T, keysPerEdition int) *server {
	t.Helper()
	box, err := seal.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.OpenServer(bg, filepath.Join(t.TempDir(), store.ServerFile), store.Options{Box: box})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	var entries []store.ImportEntry
	for i, ed := range []string{"home", "pro"} {
		keys, err := testutil.ProductKeys(testutil.GenerateKeys(keysPerEdition, uint64(1000+i)))
		if err != nil {
			t.Fatal(err)
		}
		for j, k := range keys {
			entries = append(entries, store.ImportEntry{Line: len(entries) + 1, Key: k, KeyID: keystation.KeyID(5_000_000_000_000 + i*1_000_000 + j), Edition: ed})
		}
	}
	if _, err := st.ImportKeys(bg, entries, store.ImportOptions{Source: "ui test"}); err != nil {
		t.Fatal(err)
	}
	for _, u := range [][2]string{{opUser, opPass}, {op2User, op2Pass}} {
		h, err := auth.HashPassword(u[1])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.CreateUser(bg, store.User{Username: u[0], PasswordHash: h, Role: store.RoleOperator}); err != nil {
			t.Fatal(err)
		}
	}
	s := &server{t: t, st: st, api: api.NewServer(st, auth.NewAuthenticator(st), nil)}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *server) start() {
	s.t.Helper()
	addr := s.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.srv = httptest.NewUnstartedServer(s.api)
	s.srv.Listener = l
	s.srv.Start()
	s.addr = l.Addr().String()
}

func (s *server) stop() {
	if s.srv != nil {
		s.srv.CloseClientConnections()
		s.srv.Close()
		s.srv = nil
	}
}

func (s *server) url() string { return "http://" + s.addr }

func (s *server) token() string {
	s.t.Helper()
	tok, err := s.st.CreateEnrolToken(bg, store.EnrolTokenOptions{Name: "Line T"})
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// pcs is a hardware reader with a new PC (serial number) on every read.
type pcs struct {
	n  atomic.Int64
	os string
}

func (p *pcs) Read(ctx context.Context) (keystation.Hardware, error) {
	n := p.n.Add(1)
	return keystation.Hardware{SerialNumber: fmt.Sprintf("UITEST-%04d", n), Model: "OptiPlex 7010", Manufacturer: "Dell", CPU: "Intel i5-12500",
		Memory: []keystation.MemoryModule{{Size: 8 << 30}, {Size: 8 << 30}}, Disks: []keystation.Disk{{Size: 512 << 30, InterfaceType: "NVMe", Model: "PM9A1"}},
		OS: keystation.OSInfo{Caption: p.os}}, nil
}

// env is a real station core (SQLite, sync client, simulated driver)
// behind the GUI, with a real server.
type env struct {
	t      *testing.T
	srv    *server
	db     *store.StationDB
	client *queue.Client
	core   *station.Core
	sim    *activation.Sim
	u      *ui.UI
	logs   *syncBuffer
	dir    string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newEnv(t *testing.T, enrol bool) *env {
	t.Helper()
	e := &env{t: t, srv: newServer(t, 30), dir: t.TempDir(), logs: &syncBuffer{}}
	box, err := seal.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.db, err = store.OpenStationDB(bg, filepath.Join(e.dir, store.StationFile), store.Options{Box: box, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.db.Close() })
	e.client = queue.New(e.db, queue.Config{HTTPTimeout: 3 * time.Second}, log)
	if enrol {
		if _, err := e.client.Enrol(bg, e.srv.url(), e.srv.token(), "Line T"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.SyncOnce(bg); err != nil {
			t.Fatal(err)
		}
	}
	e.sim = activation.NewSim()
	e.core = &station.Core{Store: e.db, HW: &pcs{os: "Windows 11 Pro"}, Driver: e.sim, Sync: e.client, Log: log}
	a := test.NewApp()
	t.Cleanup(a.Quit)
	e.u = ui.New(a, ui.Options{Core: e.core, DB: e.db, Client: e.client, Sim: e.sim, DataDir: e.dir, Log: log, Lang: ui.English,
		StatusEvery: 150 * time.Millisecond, RemovableRoots: []string{e.dir}})
	t.Cleanup(func() { e.u.Win.Close() })
	return e
}

// lock runs f with the GUI's lock held (widgets are changed by background
// results under it).
func (e *env) lock(f func()) { e.u.C.Lock(f) }

func (e *env) tap(b *widget.Button) {
	e.t.Helper()
	e.lock(func() {
		if b.Disabled() {
			e.t.Fatalf("button %q is disabled", b.Text)
		}
		test.Tap(b)
	})
}

// waitFor polls cond (under the lock) until it holds.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		ok := false
		e.lock(func() { ok = cond() })
		if ok {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	var banner string
	e.lock(func() { banner = e.u.PC.Banner.Text() })
	e.t.Fatalf("timed out waiting for %s (screen %s, banner %q)", what, e.u.Screen(), banner)
}

func (e *env) signIn(user, pass string) {
	e.t.Helper()
	e.lock(func() {
		e.u.SignIn.Username.SetText(user)
		e.u.SignIn.Password.SetText(pass)
	})
	e.tap(e.u.SignIn.Submit)
	e.waitFor("the sign-in to finish", func() bool {
		return !e.u.SignIn.Submit.Disabled() && e.u.C.Pending() >= 0 && (e.u.SignIn.Error.Text != "" || e.u.Screen() == ui.ScreenPC)
	})
}

// readyPC waits for the This PC screen to be ready to activate.
func (e *env) readyPC() {
	e.t.Helper()
	e.waitFor("the PC to be read", func() bool { return !e.u.C.PC.Reading && e.u.C.PC.HW != nil && !e.u.PC.Action.Disabled() })
}

// activate taps the primary action and waits for the result.
func (e *env) activate() station.Result {
	e.t.Helper()
	e.tap(e.u.PC.Action)
	e.waitFor("the activation to finish", func() bool { return !e.u.C.PC.Running && e.u.C.PC.Result != nil })
	var r station.Result
	e.lock(func() { r = *e.u.C.PC.Result })
	return r
}

func (e *env) nextPC() {
	e.t.Helper()
	e.tap(e.u.PC.Action) // "Next PC" after a success
	e.readyPC()
}

func (e *env) simOutcome(i int) {
	e.lock(func() { e.u.PC.SimOutcome.SetSelectedIndex(i) })
}

func (e *env) bannerIs(c color.Color, contains ...string) {
	e.t.Helper()
	var text string
	var got color.Color
	e.lock(func() { text, got = e.u.PC.Banner.Text(), e.u.PC.Banner.Colour() })
	if fmt.Sprint(got) != fmt.Sprint(c) {
		e.t.Errorf("banner colour %v, want %v (%q)", got, c, text)
	}
	for _, s := range contains {
		if !strings.Contains(text, s) {
			e.t.Errorf("banner %q does not say %q", text, s)
		}
	}
}

var (
	green = color.NRGBA{R: 0x1b, G: 0x7f, B: 0x3b, A: 0xff}
	red   = color.NRGBA{R: 0xb3, G: 0x26, B: 0x1e, A: 0xff}
	amber = color.NRGBA{R: 0x9a, G: 0x5b, B: 0x00, A: 0xff}
)

var fullKey = regexp.MustCompile(`[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}-[0-9A-Z]{5}`)

// TestActivationFlows signs in and activates PCs through the GUI: a success,
// a key fault followed by the automatic retry with the next key, a PC fault
// that keeps the key (and the same key on "Try again"), a firmware key;
// then the history with a filter, the connection test and the language
// switch. No log line holds a full key.
func TestActivationFlows(t *testing.T) {
	e := newEnv(t, true)
	u := e.u
	if u.Screen() != ui.ScreenSignIn {
		t.Fatalf("first screen %s, want the sign-in", u.Screen())
	}
	e.waitFor("the station name", func() bool { return strings.Contains(u.SignIn.Station.Text, "Line T") })

	// A wrong password is refused in the worker's words.
	e.signIn(opUser, "not-the-password")
	e.lock(func() {
		if u.Screen() != ui.ScreenSignIn || !strings.Contains(u.SignIn.Error.Text, "Wrong username or password") {
			t.Fatalf("wrong password: screen %s, error %q", u.Screen(), u.SignIn.Error.Text)
		}
	})
	e.signIn(opUser, opPass)
	e.lock(func() {
		if u.Screen() != ui.ScreenPC || u.C.Operator == nil || u.C.Operator.Offline {
			t.Fatalf("after sign-in: screen %s, operator %+v, error %q", u.Screen(), u.C.Operator, u.SignIn.Error.Text)
		}
	})
	if e.core.Operator != opUser {
		t.Errorf("core operator %q", e.core.Operator)
	}
	e.readyPC()
	e.lock(func() {
		if got := u.PC.Edition.Text; got != "PRO" {
			t.Errorf("edition shown %q, want PRO", got)
		}
		if got := u.PC.HWValues["serial"].Text; !strings.HasPrefix(got, "UITEST-") {
			t.Errorf("serial shown %q", got)
		}
	})

	// 1. Success.
	r := e.activate()
	if r.Outcome != station.OutcomeActivated {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Message)
	}
	e.bannerIs(green, "ACTIVATED", "Licensed", r.KeyID.String())
	e.lock(func() {
		for _, s := range []string{"check", "key", "install", "activate", "verify", "report"} {
			if u.PC.StepLabels[s].Importance == widget.DangerImportance {
				t.Errorf("step %s shown failed", s)
			}
		}
		if u.PC.KeyID.Text != r.KeyID.String() || !strings.Contains(u.PC.Key.Text, "*****") {
			t.Errorf("key card %q %q", u.PC.KeyID.Text, u.PC.Key.Text)
		}
		if u.PC.Action.Text != "Next PC" {
			t.Errorf("primary action after success %q", u.PC.Action.Text)
		}
	})
	// The key is masked until the worker asks to see it.
	full, err := e.db.RevealKey(bg, r.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	e.tap(u.PC.Reveal)
	e.waitFor("the key revealed", func() bool { return u.PC.Key.Text == string(full) })
	e.tap(u.PC.Reveal)
	e.waitFor("the key hidden", func() bool { return u.PC.Key.Text == r.Key })

	// 2. A key fault: the key is burnt and the next one tried at once.
	e.nextPC()
	e.simOutcome(1) // key fault, then success
	r = e.activate()
	if r.Outcome != station.OutcomeActivated || len(r.Tries) != 2 || r.Tries[0].Outcome != string(store.AttemptKeyFault) || r.Tries[0].KeyID == r.Tries[1].KeyID {
		t.Fatalf("key fault + retry: %+v", r)
	}
	e.bannerIs(green, "ACTIVATED", "1 key(s) failed first")
	e.lock(func() {
		if !strings.Contains(u.PC.Retries.Text, "Attempt 2") || !strings.Contains(u.PC.Retries.Text, "0xC004C003") || u.PC.Retries.Hidden {
			t.Errorf("retry not shown: %q", u.PC.Retries.Text)
		}
	})

	// 3. A PC fault: the worker is told what to fix; the key stays.
	e.nextPC()
	e.simOutcome(2) // PC fault (no KMS)
	r = e.activate()
	if r.Outcome != station.OutcomePCFault || r.Failure == nil || r.Failure.HRESULT != "0xC004F074" {
		t.Fatalf("PC fault: %+v", r)
	}
	kept := r.KeyID
	e.bannerIs(red, "NOT ACTIVATED", "0xC004F074", "No Key Management Service", "network cable", "Key "+kept.String()+" stays with this PC")
	e.lock(func() {
		if u.PC.Action.Text != "Try again (same key)" || u.PC.NextPC.Hidden {
			t.Errorf("after a PC fault: action %q, next PC hidden %v", u.PC.Action.Text, u.PC.NextPC.Hidden)
		}
		if u.PC.StepLabels["activate"].Importance != widget.DangerImportance {
			t.Error("the failed step is not shown failed")
		}
	})
	// Details are one click away: the codes and the service's message.
	e.tap(u.PC.Details)
	e.lock(func() {
		if u.Dialogs() != 1 {
			t.Errorf("%d dialogs open after Details", u.Dialogs())
		}
	})
	// Esc closes the dialog.
	e.lock(func() { u.Win.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyEscape}) })
	e.lock(func() {
		if u.Dialogs() != 0 {
			t.Errorf("Esc left %d dialogs open", u.Dialogs())
		}
	})
	// Enter runs the primary action: "Try again (same key)".
	e.simOutcome(0)
	e.lock(func() { u.Win.Canvas().OnTypedKey()(&fyne.KeyEvent{Name: fyne.KeyReturn}) })
	e.waitFor("the second try to finish", func() bool {
		return !u.C.PC.Running && u.C.PC.Result != nil && u.C.PC.Result.Outcome != station.OutcomePCFault
	})
	e.lock(func() { r = *u.C.PC.Result })
	if r.Outcome != station.OutcomeActivated || r.KeyID != kept {
		t.Fatalf("try again: outcome %s with key %s, want the kept key %s", r.Outcome, r.KeyID, kept)
	}

	// 4. A PC with a firmware key uses no pool key.
	e.nextPC()
	e.simOutcome(3)
	r = e.activate()
	if r.Outcome != station.OutcomeFirmwareKey || r.KeyID != 0 {
		t.Fatalf("firmware: %+v", r)
	}
	e.bannerIs(amber, "FIRMWARE KEY")
	e.simOutcome(0)

	// History: five attempts; the filter shows the failed key only.
	e.lock(func() { u.Show(ui.ScreenHistory) })
	e.waitFor("the history", func() bool { return len(u.History.Records) == 5 })
	e.lock(func() { u.History.Filter.SetSelectedIndex(2) }) // Failed (key)
	e.waitFor("the filtered history", func() bool {
		return len(u.History.Records) == 1 && u.History.Records[0].Outcome == store.AttemptKeyFault
	})

	// Settings: the connection test against the real server.
	e.lock(func() { u.Show(ui.ScreenSettings) })
	e.lock(func() { u.Settings.Server.SetText(e.srv.url()) })
	e.tap(u.Settings.Test)
	e.waitFor("the connection test", func() bool { return strings.Contains(u.Settings.TestResult.Text, "The server answers") })
	e.lock(func() { u.Settings.Server.SetText("http://127.0.0.1:1") })
	e.tap(u.Settings.Test)
	e.waitFor("the failed connection test", func() bool { return strings.Contains(u.Settings.TestResult.Text, "does not answer") })
	dir := t.TempDir()
	e.lock(func() { u.Settings.ExportTo(dir) })
	e.waitFor("the log export", func() bool { return strings.Contains(u.Settings.Exported.Text, dir) })

	// Language switch: every screen is rebuilt in Chinese.
	e.lock(func() { u.Settings.Language.SetSelected("简体中文") })
	e.waitFor("the switch to Chinese", func() bool { return u.C.Lang() == ui.Chinese && u.Nav[ui.ScreenPC].Text == "本机" })
	e.lock(func() { u.Show(ui.ScreenPC) })
	e.waitFor("the Chinese PC screen", func() bool {
		return strings.Contains(u.PC.Banner.Text(), "固件密钥") && u.PC.Action.Text == "下一台电脑"
	})
	e.nextPC()
	r = e.activate()
	if r.Outcome != station.OutcomeActivated {
		t.Fatalf("activation in Chinese: %s", r.Outcome)
	}
	e.bannerIs(green, "激活成功", "已授权")
	e.lock(func() { u.Show(ui.ScreenSettings) })
	e.lock(func() { u.Settings.Language.SetSelected("English") })
	e.waitFor("the switch back to English", func() bool { return u.C.Lang() == ui.English && u.Nav[ui.ScreenPC].Text == "This PC" })

	// No log line holds a full product key.
	logs := e.logs.String()
	if k := fullKey.FindString(logs); k != "" {
		t.Errorf("a full key is in the logs: %s", k)
	}
	for _, f := range exportedFiles(t, dir) {
		if k := fullKey.FindString(f); k != "" {
			t.Errorf("a full key is in the exported log: %s", k)
		}
	}
}

func exportedFiles(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	if len(out) == 0 {
		t.Error("no log exported")
	}
	return out
}
