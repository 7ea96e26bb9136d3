package activation_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"keystation"
	"keystation/activation"
)

const (
	keyA keystation.ProductKey = "BCDFG-HJKMN-PQRTV-WXY23-46789"
	keyB keystation.ProductKey = "BBBBB-CCCCC-DDDDD-FFFFF-3V66T"
)

// waitReturn runs fn and fails the test if it has not returned well after
// ctx was cancelled (the only time limit these tests use).
func waitReturn(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("did not return after the context was cancelled")
		return nil
	}
}

func TestParseOutcome(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    activation.Outcome
		wantErr bool
	}{
		{"success", "success", activation.Outcome{}, false},
		{"success, case and spaces", "  SUCCESS ", activation.Outcome{}, false},
		{"slow", "slow:3s", activation.Outcome{Delay: 3 * time.Second}, false},
		{"hang", "hang", activation.Outcome{Kind: activation.OutcomeHang}, false},
		{"firmware", "firmware", activation.Outcome{Kind: activation.OutcomeFirmware}, false},
		{"key fault default", "key-fault", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C003}, false},
		{"key fault with code", "key-fault:0xC004C020", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C020}, false},
		{"pc fault default", "pc-fault", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004F074}, false},
		{"pc fault with code", "pc-fault:0x8007232B", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0x8007232B}, false},
		{"dns", "dns", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0x8007232B}, false},
		{"clock", "clock", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0x80072F8F}, false},
		{"not elevated", "not-elevated", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0x80070005}, false},
		{"unknown", "unknown", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004F00F}, false},
		{"hresult", "hresult:0xC004C020", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C020}, false},
		{"hresult without 0x", "hresult:C004C020", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C020}, false},
		{"not licensed", "not-licensed", activation.Outcome{Kind: activation.OutcomeNotLicensed, Status: activation.StatusNotification}, false},
		{"status by number", "status:2", activation.Outcome{Kind: activation.OutcomeNotLicensed, Status: activation.StatusOOBGrace}, false},
		{"status licensed is success", "status:1", activation.Outcome{}, false},
		{"empty", "", activation.Outcome{}, true},
		{"unknown name", "explode", activation.Outcome{}, true},
		{"slow without duration", "slow", activation.Outcome{}, true},
		{"slow negative", "slow:-1s", activation.Outcome{}, true},
		{"hresult zero", "hresult:0", activation.Outcome{}, true},
		{"hresult garbage", "hresult:xyz", activation.Outcome{}, true},
		{"pc fault with key code", "pc-fault:0xC004C003", activation.Outcome{}, true},
		{"key fault with pc code", "key-fault:0x80070005", activation.Outcome{}, true},
		{"key fault with unknown code", "key-fault:0xC004F00F", activation.Outcome{}, true},
		{"argument not taken", "hang:5s", activation.Outcome{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := activation.ParseOutcome(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseOutcome(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err != nil {
				if keystation.ErrorCode(err) != keystation.EINVALID {
					t.Errorf("error code %q, want %q", keystation.ErrorCode(err), keystation.EINVALID)
				}
				return
			}
			if got != tt.want {
				t.Errorf("ParseOutcome(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			back, err := activation.ParseOutcome(got.String())
			if err != nil || back != got {
				t.Errorf("round trip via %q = %+v, %v", got.String(), back, err)
			}
		})
	}
}

func TestParseScript(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    int
		wantErr bool
	}{
		{"empty", "", 0, false},
		{"one", "success", 1, false},
		{"two with spaces", "key-fault, success", 2, false},
		{"bad entry", "success,nope", 0, true},
		{"empty entry", "success,,hang", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := activation.ParseScript(tt.in)
			if len(got) != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseScript(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}

// TestSimOutcomes runs each outcome through Install + Activate and checks
// the error and its classification, from the *Error and from its message
// alone.
func TestSimOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		wantHR  uint32 // 0: success
		class   keystation.FaultClass
		review  bool
		status  activation.LicenseStatus
		context string // a part of the message
	}{
		{"success", "success", 0, "", false, activation.StatusLicensed, ""},
		{"slow, short", "slow:5ms", 0, "", false, activation.StatusLicensed, ""},
		{"firmware", "firmware", 0, "", false, activation.StatusLicensed, ""},
		{"not licensed", "status:5", 0, "", false, activation.StatusNotification, ""},
		{"key fault", "key-fault", 0xC004C003, keystation.FaultKey, false, activation.StatusOOBGrace, "blocked"},
		{"key fault used up", "key-fault:0xC004C020", 0xC004C020, keystation.FaultKey, false, activation.StatusOOBGrace, "exceeded"},
		{"pc fault no KMS", "pc-fault", 0xC004F074, keystation.FaultPC, false, activation.StatusOOBGrace, "Key Management Service"},
		{"pc fault DNS", "pc-fault:0x8007232B", 0x8007232B, keystation.FaultPC, false, activation.StatusOOBGrace, "DNS"},
		{"pc fault clock", "clock", 0x80072F8F, keystation.FaultPC, false, activation.StatusOOBGrace, "security"},
		{"pc fault not elevated", "not-elevated", 0x80070005, keystation.FaultPC, false, activation.StatusOOBGrace, "denied"},
		{"unknown code", "unknown", 0xC004F00F, keystation.FaultKey, true, activation.StatusOOBGrace, "tolerance"},
		{"any code", "hresult:0xC0041234", 0xC0041234, keystation.FaultKey, true, activation.StatusOOBGrace, "0xC0041234"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := activation.ParseSim(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if err := sim.Install(ctx, keyA); err != nil {
				t.Fatalf("Install: %v", err)
			}
			err = sim.Activate(ctx)
			st, serr := sim.Status(ctx)
			if serr != nil || st != tt.status {
				t.Errorf("Status = %v, %v; want %v", st, serr, tt.status)
			}
			if tt.wantHR == 0 {
				if err != nil {
					t.Fatalf("Activate: %v", err)
				}
				return
			}
			var e *activation.Error
			if !errors.As(err, &e) {
				t.Fatalf("Activate = %T %v, want *activation.Error", err, err)
			}
			if e.HRESULT != tt.wantHR {
				t.Errorf("HRESULT = %s, want %s", e.Code(), keystation.FormatHRESULT(tt.wantHR))
			}
			if !strings.HasPrefix(e.Message, activation.SimPrefix) {
				t.Errorf("message %q lacks %q", e.Message, activation.SimPrefix)
			}
			if !strings.Contains(e.Message, tt.context) {
				t.Errorf("message %q does not contain %q", e.Message, tt.context)
			}
			if want := keystation.FormatHRESULT(tt.wantHR) + ": " + e.Message; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			for src, f := range map[string]keystation.Failure{
				"Classify":      e.Classify(),
				"message alone": keystation.ClassifyFailure("", e.Message),
			} {
				if f.Class != tt.class || f.Review != tt.review || f.HRESULT != keystation.FormatHRESULT(tt.wantHR) {
					t.Errorf("%s: %+v, want class %s review %v", src, f, tt.class, tt.review)
				}
			}
		})
	}
}

func TestSimCancel(t *testing.T) {
	tests := []struct {
		name string
		spec string
		run  func(ctx context.Context, s *activation.Sim) error
	}{
		{"slow activation", "slow:1h", func(ctx context.Context, s *activation.Sim) error { return s.Activate(ctx) }},
		{"hang", "hang", func(ctx context.Context, s *activation.Sim) error { return s.Activate(ctx) }},
		{"hang in Run", "hang", func(ctx context.Context, s *activation.Sim) error {
			_, err := activation.Run(ctx, s, keyA)
			var se *activation.StepError
			if !errors.As(err, &se) || se.Step != activation.StepActivate {
				t.Errorf("Run error %v, want a StepError at activate", err)
			}
			return err
		}},
		{"slow install (step delay)", "success", func(ctx context.Context, s *activation.Sim) error {
			s.SetStepDelay(time.Hour)
			return s.Install(ctx, keyB)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := activation.ParseSim(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			if err := sim.Install(context.Background(), keyA); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(20*time.Millisecond, cancel)
			err = waitReturn(t, func() error { return tt.run(ctx, sim) })
			if !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
			if _, ok := activation.Classify(err); ok {
				t.Errorf("a cancellation must not classify as an activation failure")
			}
			if st, _ := sim.Status(context.Background()); st.Licensed() {
				t.Errorf("cancelled activation left the PC licensed")
			}
		})
	}
}

func TestSimCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	sim := activation.NewSim()
	tests := []struct {
		name string
		call func() error
	}{
		{"FirmwareKey", func() error { _, err := sim.FirmwareKey(ctx); return err }},
		{"Install", func() error { return sim.Install(ctx, keyA) }},
		{"Activate", func() error { return sim.Activate(ctx) }},
		{"Status", func() error { _, err := sim.Status(ctx); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("error %v, want context.Canceled", err)
			}
		})
	}
	if c := sim.Calls(); c != (activation.SimCalls{}) {
		t.Errorf("calls counted after cancel: %+v", c)
	}
}

func TestSimScript(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		want  []uint32 // per Activate call; 0 = success
		calls int
	}{
		{"empty script always succeeds", "", []uint32{0, 0, 0}, 3},
		{"first key fails, retry succeeds", "key-fault,success", []uint32{0xC004C003, 0}, 2},
		{"last outcome repeats", "success,pc-fault", []uint32{0, 0xC004F074, 0xC004F074, 0xC004F074}, 4},
		{"burn three keys", "key-fault", []uint32{0xC004C003, 0xC004C003, 0xC004C003}, 3},
		{"mixed", "dns,hresult:0xC004C020,success", []uint32{0x8007232B, 0xC004C020, 0, 0}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := activation.ParseSim(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for i, want := range tt.want {
				if err := sim.Install(ctx, keyA); err != nil {
					t.Fatal(err)
				}
				err := sim.Activate(ctx)
				var got uint32
				var e *activation.Error
				if errors.As(err, &e) {
					got = e.HRESULT
				} else if err != nil {
					t.Fatalf("call %d: %v", i+1, err)
				}
				if got != want {
					t.Errorf("call %d: got %s, want %s", i+1, keystation.FormatHRESULT(got), keystation.FormatHRESULT(want))
				}
			}
			if c := sim.Calls(); c.Activate != tt.calls {
				t.Errorf("Calls().Activate = %d, want %d", c.Activate, tt.calls)
			}
		})
	}
}

func TestSimKeyRules(t *testing.T) {
	sim := activation.NewSim(activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004F074}, activation.Outcome{})
	sim.SetKeyOutcome("3v66t", activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C003})
	sim.SetKeyOutcome("", activation.Outcome{Kind: activation.OutcomeHang}) // ignored
	ctx := context.Background()
	tests := []struct {
		name string
		key  keystation.ProductKey
		want uint32
	}{
		{"ruled key fails, script untouched", keyB, 0xC004C003},
		{"other key: script step 1", keyA, 0xC004F074},
		{"ruled key again", keyB, 0xC004C003},
		{"other key: script step 2", keyA, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := sim.Install(ctx, tt.key); err != nil {
				t.Fatal(err)
			}
			err := sim.Activate(ctx)
			var got uint32
			var e *activation.Error
			if errors.As(err, &e) {
				got = e.HRESULT
			}
			if got != tt.want {
				t.Errorf("Activate = %v, want %s", err, keystation.FormatHRESULT(tt.want))
			}
		})
	}
}

func TestSimFirmwareAndInstall(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name        string
		spec        string
		install     keystation.ProductKey // "" = none
		wantFW      keystation.ProductKey
		wantInstall uint32
		wantAct     uint32
	}{
		{"no firmware key", "success", "", "", 0, 0xC004F014},
		{"firmware key installed from the start", "firmware", "", activation.SimFirmwareKey, 0, 0},
		{"malformed key", "success", "BCDFG-HJKMN", "", 0xC004F050, 0xC004F014},
		{"lower case key is normalised", "success", "bcdfg-hjkmn-pqrtv-wxy23-46789", "", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sim, err := activation.ParseSim(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			fw, err := sim.FirmwareKey(ctx)
			if err != nil || fw.Key != tt.wantFW || fw.Present() != (tt.wantFW != "") {
				t.Errorf("FirmwareKey = %+v, %v; want %q", fw, err, tt.wantFW)
			}
			if tt.install != "" {
				err := sim.Install(ctx, tt.install)
				if hrOf(err) != tt.wantInstall {
					t.Errorf("Install = %v, want %s", err, keystation.FormatHRESULT(tt.wantInstall))
				}
				if err != nil && strings.Contains(err.Error(), tt.install.Plain()) {
					t.Errorf("error %q repeats the key", err)
				}
			}
			if err := sim.Activate(ctx); hrOf(err) != tt.wantAct {
				t.Errorf("Activate = %v, want %s", err, keystation.FormatHRESULT(tt.wantAct))
			}
		})
	}
}

func hrOf(err error) uint32 {
	var e *activation.Error
	if errors.As(err, &e) {
		if e.HRESULT == 0 {
			return 1 // an error without code; never expected here
		}
		return e.HRESULT
	}
	if err != nil {
		return 1
	}
	return 0
}

func TestSimLabelled(t *testing.T) {
	var d activation.Driver = activation.NewSim()
	if d.Name() != "simulated" || !d.Simulated() {
		t.Errorf("Name() = %q, Simulated() = %v", d.Name(), d.Simulated())
	}
}

func TestSimConcurrent(t *testing.T) {
	sim := activation.NewSim(activation.Outcome{Kind: activation.OutcomeFail, HRESULT: 0xC004C003}, activation.Outcome{})
	sim.SetStepDelay(time.Millisecond)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				_, _ = activation.Run(ctx, sim, keyA)
				_, _ = sim.FirmwareKey(ctx)
			}
		}()
	}
	wg.Wait()
	c := sim.Calls()
	if c.Install != 160 || c.FirmwareKey != 160 || c.Activate != 160 {
		t.Errorf("Calls() = %+v", c)
	}
}
