package ui_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"keystation/internal/testutil"
	"keystation/station"
	"keystation/store"
	"keystation/ui"
)

// TestOfflineAndBack: an operator who signed in online signs in again with
// the server gone (against the cached verifier), activates from the buffer
// with the report waiting in the outbox; an operator who never signed in
// online cannot; when the server is back the report is delivered.
func TestOfflineAndBack(t *testing.T) {
	e := newEnv(t, true)
	u := e.u
	e.signIn(opUser, opPass)
	e.readyPC()
	e.waitFor("the online badge", func() bool { return u.Status.Online.Text.Text == "ONLINE" })
	e.tap(u.SignOut)

	e.srv.stop()
	e.tap(u.Status.SyncNow)
	e.waitFor("the offline badge", func() bool { return u.Status.Online.Text.Text == "OFFLINE" })
	e.waitFor("the offline sign-in badge", func() bool { return strings.HasPrefix(u.SignIn.Online.Text.Text, "OFFLINE") })

	e.signIn(op2User, op2Pass)
	e.lock(func() {
		if u.Screen() != ui.ScreenSignIn || !strings.Contains(u.SignIn.Error.Text, "not signed in at this station") {
			t.Errorf("an operator never seen online: screen %s, error %q", u.Screen(), u.SignIn.Error.Text)
		}
	})
	e.signIn(opUser, "wrong-password-x")
	e.lock(func() {
		if u.Screen() != ui.ScreenSignIn || !strings.Contains(u.SignIn.Error.Text, "Wrong username or password") {
			t.Errorf("wrong password offline: screen %s, error %q", u.Screen(), u.SignIn.Error.Text)
		}
	})
	e.signIn(opUser, opPass)
	e.lock(func() {
		if u.Screen() != ui.ScreenPC || u.C.Operator == nil || !u.C.Operator.Offline || u.PC.Notice.Hidden {
			t.Fatalf("offline sign-in: screen %s, operator %+v, error %q", u.Screen(), u.C.Operator, u.SignIn.Error.Text)
		}
	})
	e.readyPC()
	r := e.activate()
	if r.Outcome != station.OutcomeActivated {
		t.Fatalf("offline activation: %s %s", r.Outcome, r.Message)
	}
	e.bannerIs(green, "ACTIVATED")
	e.waitFor("the outbox count", func() bool { return u.Status.Outbox.Text == "Reports waiting: 1" })
	e.lock(func() { u.Show(ui.ScreenHistory) })
	e.lock(func() { u.History.Filter.SetSelectedIndex(4) }) // waiting to sync
	e.waitFor("the report waiting to sync", func() bool { return len(u.History.Records) == 1 && u.History.Records[0].Sync == store.SyncWaiting })

	// The server is back.
	e.srv.start()
	e.tap(u.Status.SyncNow)
	e.waitFor("online again with the outbox empty", func() bool {
		return u.Status.Online.Text.Text == "ONLINE" && u.Status.Outbox.Text == "Reports waiting: 0"
	})
	e.lock(func() { u.History.Filter.SetSelectedIndex(5) }) // synced
	e.waitFor("the report synced", func() bool { return len(u.History.Records) == 1 && u.History.Records[0].Sync == store.SyncSynced })
}

// TestBatchImportWithInvalidLines previews a key list from a "USB stick"
// (counts per edition, invalid lines with line numbers and reasons),
// imports it, activates a PC from it and finds the results file next to it.
func TestBatchImportWithInvalidLines(t *testing.T) {
	e := newEnv(t, true)
	u := e.u
	e.signIn(opUser, opPass)
	e.readyPC()

	stick := t.TempDir()
	list := filepath.Join(stick, "keys.csv")
	keys := testutil.GenerateKeys(6, 4242)
	lines := []string{"key,edition",
		keys[0] + ",pro", keys[1] + ",pro", keys[2] + ",home",
		"THIS-IS-NOT-A-KEY,pro",            // line 5
		keys[3] + ",pro", keys[1] + ",pro", // line 7: a duplicate
		keys[4] + ",enterprise", // line 8: an edition the station does not know
		keys[5] + ",pro"}
	if err := os.WriteFile(list, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.lock(func() { u.Show(ui.ScreenBatch) })
	e.lock(func() { u.Batch.Path.SetText(list) })
	e.tap(u.Batch.Preview)
	e.waitFor("the preview", func() bool { return u.Batch.Summary.Text != "" || u.Batch.Error.Text != "" })
	e.lock(func() {
		if !strings.Contains(u.Batch.Summary.Text, "5 valid keys, 3 invalid lines") || !strings.Contains(u.Batch.Summary.Text, "Pro: 4") || !strings.Contains(u.Batch.Summary.Text, "Home: 1") {
			t.Errorf("preview summary %q (error %q)", u.Batch.Summary.Text, u.Batch.Error.Text)
		}
	})
	got := batchInvalid(e)
	for _, want := range []string{`^Line 5: `, `^Line 7: duplicate of line 3`, `^Line 8: edition "enterprise"`} {
		found := false
		for _, g := range got {
			if regexp.MustCompile(want).MatchString(g) {
				found = true
			}
		}
		if !found {
			t.Errorf("invalid lines %q: none matches %s", got, want)
		}
	}
	e.tap(u.Batch.Import)
	e.waitFor("the batch to start", func() bool { return e.core.Batch() != nil && strings.Contains(u.Batch.Title.Text, "keys.csv") })

	e.lock(func() { u.Show(ui.ScreenPC) })
	e.readyPC()
	r := e.activate()
	if r.Outcome != station.OutcomeActivated || r.Source != store.SourceUSB {
		t.Fatalf("batch activation: %s from %s", r.Outcome, r.Source)
	}
	e.lock(func() {
		if u.PC.Source.Text != "USB key list" {
			t.Errorf("key source shown %q", u.PC.Source.Text)
		}
	})
	res, err := os.ReadFile(station.ResultsPath(list))
	if err != nil {
		t.Fatalf("results file: %v", err)
	}
	if !strings.Contains(string(res), r.KeyID.String()) || !strings.Contains(string(res), "activated") {
		t.Errorf("results file:\n%s", res)
	}
	if fullKey.Match(res) {
		t.Error("the results file holds a full key")
	}
	e.lock(func() { u.Show(ui.ScreenBatch) })
	e.waitFor("the batch progress", func() bool { return strings.HasPrefix(u.Batch.Counts.Text, "1 activated") && u.Batch.Bar.Value == 1 })
}

func batchInvalid(e *env) []string {
	var out []string
	e.lock(func() {
		out = append(out, e.u.Batch.InvalidLines()...)
	})
	return out
}

// TestTranslationTable: every key has both languages, and every key the
// code uses is in the table.
func TestTranslationTable(t *testing.T) {
	have := map[string]bool{}
	for _, k := range ui.Keys() {
		have[k] = true
		en, zh := ui.T(ui.English, k), ui.T(ui.Chinese, k)
		if en == "" || zh == "" || en == k {
			t.Errorf("%s: en %q zh %q", k, en, zh)
		}
		if strings.Count(en, "%") != strings.Count(zh, "%") {
			t.Errorf("%s: the languages take different arguments: %q / %q", k, en, zh)
		}
	}
	files, _ := filepath.Glob("*.go")
	used := regexp.MustCompile(`\bT\("([a-zA-Z0-9_.]+)"`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || f == "i18n.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range used.FindAllStringSubmatch(string(b), -1) {
			if !strings.HasSuffix(m[1], ".") && !have[m[1]] {
				t.Errorf("%s uses %q, which is not in the table", f, m[1])
			}
		}
	}
	// The failure hints the classifier gives all have translations.
	for _, code := range []string{"0xC004C003", "0xC004C001", "0xC004C008", "0xC004F074", "0x8007232B", "0xC004B011", "0x80070005", "0x80072EE7", "0x80070422", "0xC004F069", "0xDEADBEEF"} {
		f := classify(code)
		for _, part := range []string{"meaning", "fix"} {
			if !have["hint."+f+"."+part] {
				t.Errorf("no translation of hint %s (%s)", f, code)
			}
		}
	}
	// Sub-keys built at run time.
	for _, k := range []string{"step.check", "step.key", "step.install", "step.activate", "step.verify", "step.report",
		"hw.serial", "hw.model", "hw.manufacturer", "hw.os", "hw.cpu", "hw.memory", "hw.disks", "outcome.activated", "outcome.key-fault",
		"outcome.pc-fault", "sync.waiting", "sync.synced", "sync.conflict", "sync.rejected", "license.Licensed"} {
		if !have[k] {
			t.Errorf("missing %s", k)
		}
	}
	if ui.ParseLang("zh_CN.UTF-8") != ui.Chinese || ui.ParseLang("en_US.UTF-8") != ui.English {
		t.Error("ParseLang")
	}
}

func classify(code string) string { return keystationClassify(code) }
