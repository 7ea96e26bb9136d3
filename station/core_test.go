package station_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"keystation"
	"keystation/activation"
	"keystation/hwinfo"
	"keystation/internal/testutil"
	"keystation/keylist"
	"keystation/queue"
	"keystation/seal"
	"keystation/station"
	"keystation/store"
)

type fakeSync struct{ triggers atomic.Int32 }

func (f *fakeSync) Trigger() { f.triggers.Add(1) }
func (f *fakeSync) State() queue.State {
	return queue.State{Online: false, Checked: true, LastError: "offline"}
}

type coreFix struct {
	t    *testing.T
	db   *store.StationDB
	sim  *activation.Sim
	core *station.Core
	sync *fakeSync
}

func newCore(t *testing.T, burnCap int, script string) *coreFix {
	t.Helper()
	box, err := seal.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	db, err := store.OpenStationDB(context.Background(), filepath.Join(t.TempDir(), store.StationFile), store.Options{Box: box, BurnCap: burnCap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sim, err := activation.ParseSim(script)
	if err != nil {
		t.Fatal(err)
	}
	fs := &fakeSync{}
	c := &station.Core{Store: db, Driver: sim, Sync: fs, Operator: "op1", HW: hwinfo.Fixed{Hardware: pc("SN-1", "Windows 11 Pro")}}
	return &coreFix{t: t, db: db, sim: sim, core: c, sync: fs}
}

func pc(sn, os string) keystation.Hardware {
	return keystation.Hardware{SerialNumber: sn, Model: "ThinkCentre M70", Manufacturer: "Lenovo", CPU: "i5",
		Memory: []keystation.MemoryModule{{ID: 0, Size: 8 << 30}}, OS: keystation.OSInfo{Caption: os}}
}

func (f *coreFix) grant(edition string, first keystation.KeyID, n int, seed uint64) []keystation.SyncGrant {
	f.t.Helper()
	resp := keystation.SyncResponse{ServerTime: time.Now()}
	for i, k := range testutil.GenerateKeys(n, seed) {
		resp.Grants = append(resp.Grants, keystation.SyncGrant{KeyID: first + keystation.KeyID(i), Key: k, Edition: edition})
	}
	if err := f.db.ApplySync(context.Background(), &keystation.SyncRequest{}, &resp, 0); err != nil {
		f.t.Fatal(err)
	}
	return resp.Grants
}

func (f *coreFix) activate(ctx context.Context, hw keystation.Hardware) (station.Result, []station.Event, error) {
	var evs []station.Event
	res, err := f.core.Activate(ctx, hw, func(e station.Event) { evs = append(evs, e) })
	return res, evs, err
}

func (f *coreFix) outbox() []keystation.SyncReport {
	f.t.Helper()
	req, err := f.db.NextSync(context.Background(), 0, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	return req.Reports
}

func steps(evs []station.Event) string {
	var s []string
	for _, e := range evs {
		s = append(s, string(e.Step)+":"+string(e.Phase))
	}
	return strings.Join(s, " ")
}

func TestActivate(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		burnCap int
		keys    int
		hw      keystation.Hardware
		want    station.Outcome
		code    string
		tries   []string // outcome of each key tried
		reports int
		left    int // pro keys available afterwards
	}{
		{name: "success", script: "success", keys: 3, want: station.OutcomeActivated, tries: []string{"activated"}, reports: 1, left: 2},
		{name: "key fault then automatic retry", script: "key-fault,success", keys: 3, want: station.OutcomeActivated,
			tries: []string{"key-fault", "activated"}, reports: 2, left: 1},
		{name: "unknown code is a key fault for review", script: "unknown,success", keys: 3, want: station.OutcomeActivated,
			tries: []string{"key-fault", "activated"}, reports: 2, left: 1},
		{name: "pc fault keeps the key", script: "dns", keys: 3, want: station.OutcomePCFault, code: "PC_FAULT",
			tries: []string{"pc-fault"}, reports: 1, left: 2},
		{name: "burn cap", script: "key-fault", burnCap: 2, keys: 5, want: station.OutcomeBurnLimit, code: keystation.EBURNLIMIT,
			tries: []string{"key-fault", "key-fault"}, reports: 2, left: 3},
		{name: "no key left", script: "success", keys: 0, want: station.OutcomeNoKey, code: keystation.EPOOLEMPTY},
		{name: "pool runs dry during retries", script: "key-fault", keys: 1, want: station.OutcomeNoKey, code: keystation.EPOOLEMPTY,
			tries: []string{"key-fault"}, reports: 1},
		{name: "firmware key present", script: "firmware", keys: 3, want: station.OutcomeFirmwareKey, code: keystation.EFIRMWAREKEY, left: 3},
		{name: "unknown edition", script: "success", keys: 3, hw: pc("SN-1", "Windows 11 Enterprise"), want: station.OutcomeError,
			code: keystation.EUNKNOWNEDITION, left: 3},
		{name: "placeholder serial", script: "success", keys: 3, hw: pc("To be filled by O.E.M.", "Windows 11 Pro"), want: station.OutcomeError,
			code: keystation.EINVALID, left: 3},
		{name: "not licensed after activation", script: "not-licensed,success", keys: 3, want: station.OutcomeActivated,
			tries: []string{"key-fault", "activated"}, reports: 2, left: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bc := tc.burnCap
			if bc == 0 {
				bc = 3
			}
			f := newCore(t, bc, tc.script)
			if tc.keys > 0 {
				f.grant("pro", 1_000_000_000_001, tc.keys, 11)
			}
			hw := tc.hw
			if hw.SerialNumber == "" {
				hw = pc("SN-1", "Windows 11 Pro")
			}
			res, evs, err := f.activate(context.Background(), hw)
			if res.Outcome != tc.want {
				t.Fatalf("outcome %s (%v), want %s; steps %s", res.Outcome, err, tc.want, steps(evs))
			}
			if got := keystation.ErrorCode(err); (tc.code == "" && err != nil) || (tc.code != "" && got != tc.code) {
				t.Fatalf("error %v (code %q), want code %q", err, got, tc.code)
			}
			var tries []string
			for _, tr := range res.Tries {
				tries = append(tries, tr.Outcome)
			}
			if strings.Join(tries, ",") != strings.Join(tc.tries, ",") {
				t.Fatalf("tries %v, want %v", tries, tc.tries)
			}
			reports := f.outbox()
			if len(reports) != tc.reports || len(res.Reports()) != tc.reports {
				t.Fatalf("%d reports queued (%d in the result), want %d", len(reports), len(res.Reports()), tc.reports)
			}
			for i, r := range reports {
				if !r.Simulated || r.Operator != "op1" || r.Hardware == nil || r.Machine.SN != strings.TrimSpace(hw.SerialNumber) {
					t.Fatalf("report %d: simulated %v operator %q hardware %v machine %+v", i, r.Simulated, r.Operator, r.Hardware != nil, r.Machine)
				}
				if r.Success != (res.Tries[i].Outcome == "activated") {
					t.Fatalf("report %d success %v for %s", i, r.Success, res.Tries[i].Outcome)
				}
				if !r.Success && (r.Message == "" || !strings.HasPrefix(r.Message, activation.SimPrefix)) {
					t.Fatalf("failure report %d does not keep the service's message: %q", i, r.Message)
				}
			}
			st, err := f.core.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.Buffer["pro"].Available != tc.left {
				t.Fatalf("%d pro keys left, want %d", st.Buffer["pro"].Available, tc.left)
			}
			if !st.Simulated || !res.Simulated {
				t.Fatal("simulation not flagged")
			}
			for _, e := range evs {
				if !e.Simulated || (e.Message != "" && !strings.HasPrefix(e.Message, activation.SimPrefix)) {
					t.Fatalf("event %+v not labelled simulated", e)
				}
				if strings.Contains(e.Message, "-") && len(e.Key) > 0 && !strings.HasPrefix(e.Key, "*****") {
					t.Fatalf("event shows a key unmasked: %+v", e)
				}
			}
		})
	}
}

func TestActivateSteps(t *testing.T) {
	f := newCore(t, 3, "key-fault,success")
	f.grant("pro", 1_000_000_000_001, 3, 12)
	_, evs, err := f.activate(context.Background(), pc("SN-1", "Windows 11 Pro"))
	if err != nil {
		t.Fatal(err)
	}
	want := "check:start check:ok firmware:start firmware:ok key:start key:ok install:start install:ok activate:start activate:failed report:ok retry:start " +
		"key:start key:ok install:start install:ok activate:start activate:ok verify:start verify:ok report:ok done:ok"
	if got := steps(evs); got != want {
		t.Fatalf("steps\n got %s\nwant %s", got, want)
	}
	if evs[len(evs)-1].Attempt != 2 {
		t.Fatalf("last event attempt %d, want 2", evs[len(evs)-1].Attempt)
	}
	if f.sync.triggers.Load() == 0 {
		t.Fatal("no sync triggered after the activation")
	}
}

func TestActivatePCFaultThenRerunUsesSameKey(t *testing.T) {
	f := newCore(t, 3, "pc-fault,success")
	f.grant("pro", 1_000_000_000_001, 3, 13)
	hw := pc("SN-7", "Windows 11 Pro")
	first, _, err := f.activate(context.Background(), hw)
	if first.Outcome != station.OutcomePCFault || first.Fix == "" || first.Failure == nil || first.Failure.Class != keystation.FaultPC {
		t.Fatalf("first run: %+v, %v", first, err)
	}
	second, _, err := f.activate(context.Background(), hw)
	if err != nil || second.Outcome != station.OutcomeActivated {
		t.Fatalf("rerun: %+v, %v", second, err)
	}
	if second.KeyID != first.KeyID || !second.Tries[0].Reused {
		t.Fatalf("rerun used key %s, want %s again", second.KeyID, first.KeyID)
	}
	third, _, err := f.activate(context.Background(), hw)
	if err != nil || third.KeyID != first.KeyID {
		t.Fatalf("a third run on an activated PC: key %s, %v; want the same key", third.KeyID, err)
	}
}

func TestActivateCancelAndHang(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration // ActivationTimeout
		cancel  time.Duration // the caller cancels after
	}{
		{"caller cancels", time.Minute, 50 * time.Millisecond},
		{"activation hangs past the timeout", 80 * time.Millisecond, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newCore(t, 3, "hang")
			f.grant("pro", 1_000_000_000_001, 3, 14)
			f.core.ActivationTimeout = tc.timeout
			ctx := context.Background()
			if tc.cancel > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.cancel)
				defer cancel()
			}
			start := time.Now()
			res, _, err := f.activate(ctx, pc("SN-1", "Windows 11 Pro"))
			if time.Since(start) > 5*time.Second {
				t.Fatal("Activate did not return promptly")
			}
			if res.Outcome != station.OutcomeCancelled || err == nil {
				t.Fatalf("outcome %s, %v; want cancelled", res.Outcome, err)
			}
			if len(f.outbox()) != 0 {
				t.Fatal("a report was queued for an activation with no outcome")
			}
			// The key stays with the PC: the next run uses it.
			f.sim.SetScript()
			again, _, err := f.activate(context.Background(), pc("SN-1", "Windows 11 Pro"))
			if err != nil || again.KeyID != res.KeyID {
				t.Fatalf("rerun: key %s, %v; want %s", again.KeyID, err, res.KeyID)
			}
		})
	}
}

type failingDriver struct{ *activation.Sim }

func (failingDriver) FirmwareKey(ctx context.Context) (activation.FirmwareKey, error) {
	return activation.FirmwareKey{}, errors.New("WMI is broken")
}

func TestActivateFirmwareUnreadableUsesNoKey(t *testing.T) {
	f := newCore(t, 3, "success")
	f.grant("pro", 1_000_000_000_001, 1, 15)
	f.core.Driver = failingDriver{f.sim}
	res, _, err := f.activate(context.Background(), pc("SN-1", "Windows 11 Pro"))
	if err == nil || res.Outcome != station.OutcomeError || res.KeyID != 0 {
		t.Fatalf("outcome %s key %s err %v", res.Outcome, res.KeyID, err)
	}
	if f.sim.Calls().Install != 0 {
		t.Fatal("a key was installed although the firmware could not be read")
	}
}

func TestBatchImportAndResults(t *testing.T) {
	f := newCore(t, 3, "key-fault,success")
	dir := t.TempDir()
	keys := testutil.GenerateKeys(3, 16)
	body := "key,keyId,edition\n" + keys[0] + ",3000000000001,pro\n" + keys[1] + ",,Pro\nnot-a-key,,pro\n" + keys[2] + ",3000000000003,home\n"
	list := filepath.Join(dir, "line1.csv")
	if err := os.WriteFile(list, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	imp, err := f.core.ImportKeyList(ctx, list, keylist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Imported != 3 || len(imp.Rejected) != 1 || imp.Rejected[0].Line != 4 || imp.ByEdition["pro"] != 2 {
		t.Fatalf("import %+v", imp)
	}
	again, err := f.core.ImportKeyList(ctx, list, keylist.Options{})
	if err != nil || !again.AlreadyImported || again.Imported != 0 {
		t.Fatalf("second import %+v, %v", again, err)
	}
	f.grant("pro", 1_000_000_000_001, 2, 17) // leased keys exist too
	b, err := f.core.StartBatch(ctx, imp, "")
	if err != nil {
		t.Fatal(err)
	}
	if b.Results != filepath.Join(dir, "line1.results.csv") {
		t.Fatalf("results path %s", b.Results)
	}
	res, _, err := f.activate(ctx, pc("SN-B1", "Windows 11 Pro"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range res.Tries {
		if tr.Source != store.SourceUSB {
			t.Fatalf("batch took a %s key before the list's", tr.Source)
		}
	}
	reports := f.outbox()
	if len(reports) != 2 || reports[0].Provenance == nil || reports[0].Provenance.File != "line1.csv" || reports[0].Key == "" {
		t.Fatalf("batch reports %+v", reports)
	}
	raw, err := os.ReadFile(b.Results)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	if strings.Count(text, "\n") != 3 || !strings.Contains(text, "SN-B1") || !strings.Contains(text, "activated (SIMULATED)") ||
		!strings.Contains(text, "failed (SIMULATED)") || strings.Contains(text, keys[0]) || strings.Contains(text, keys[1]) {
		t.Fatalf("results file:\n%s", text)
	}
}

func TestActivateAgainAfterActivation(t *testing.T) {
	f := newCore(t, 3, "success")
	f.grant("pro", 1_000_000_000_001, 3, 18)
	hw := pc("SN-R", "Windows 11 Pro")
	first, _, err := f.activate(context.Background(), hw)
	if err != nil {
		t.Fatal(err)
	}
	// The PC comes back (re-imaged) and its key now fails: it is not burnt,
	// no second key is used and no failure report contradicts the server.
	f.sim.SetScript(activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C003})
	res, _, err := f.activate(context.Background(), hw)
	if err == nil || res.Outcome != station.OutcomePCFault || res.KeyID != first.KeyID || len(res.Tries) != 1 {
		t.Fatalf("re-activation failure: %+v, %v", res, err)
	}
	if n := len(f.outbox()); n != 1 {
		t.Fatalf("%d reports, want only the first activation's", n)
	}
	f.sim.SetScript()
	ok, _, err := f.activate(context.Background(), hw)
	if err != nil || ok.KeyID != first.KeyID {
		t.Fatalf("third run: key %s, %v", ok.KeyID, err)
	}
}
