package activation_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"keystation"
	"keystation/activation"
)

// statusFails is a Sim whose Status fails.
type statusFails struct{ *activation.Sim }

func (statusFails) Status(context.Context) (activation.LicenseStatus, error) {
	return 0, activation.NewError(0x80041010, "Invalid class")
}

func TestRun(t *testing.T) {
	tests := []struct {
		name      string
		driver    func() activation.Driver
		key       keystation.ProductKey
		cancelled bool
		wantSteps []activation.Step
		failStep  activation.Step // 0: success
		wantHR    uint32
		wantCtx   bool
		status    activation.LicenseStatus
		msg       string
	}{
		{
			name:      "success",
			driver:    func() activation.Driver { return activation.NewSim() },
			key:       keyA,
			wantSteps: []activation.Step{activation.StepInstall, activation.StepActivate, activation.StepVerify},
			status:    activation.StatusLicensed,
		},
		{
			name:      "install fails",
			driver:    func() activation.Driver { return activation.NewSim() },
			key:       "BCDFG",
			wantSteps: []activation.Step{activation.StepInstall},
			failStep:  activation.StepInstall,
			wantHR:    0xC004F050,
		},
		{
			name:      "activate fails with a key fault",
			driver:    func() activation.Driver { s, _ := activation.ParseSim("key-fault"); return s },
			key:       keyA,
			wantSteps: []activation.Step{activation.StepInstall, activation.StepActivate},
			failStep:  activation.StepActivate,
			wantHR:    0xC004C003,
		},
		{
			name:      "verify: not licensed names the status",
			driver:    func() activation.Driver { s, _ := activation.ParseSim("status:5"); return s },
			key:       keyA,
			wantSteps: []activation.Step{activation.StepInstall, activation.StepActivate, activation.StepVerify},
			failStep:  activation.StepVerify,
			status:    activation.StatusNotification,
			msg:       "LicenseStatus 5 (Notification)",
		},
		{
			name:      "verify: status cannot be read",
			driver:    func() activation.Driver { return statusFails{activation.NewSim()} },
			key:       keyA,
			wantSteps: []activation.Step{activation.StepInstall, activation.StepActivate, activation.StepVerify},
			failStep:  activation.StepVerify,
			wantHR:    0x80041010,
		},
		{
			name:      "context cancelled before the first step",
			driver:    func() activation.Driver { return activation.NewSim() },
			key:       keyA,
			cancelled: true,
			failStep:  activation.StepInstall,
			wantCtx:   true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelled {
				cancel()
			}
			d := tt.driver()
			var steps []activation.Step
			res, err := activation.Run(ctx, d, tt.key, func(s activation.Step) { steps = append(steps, s) }, nil)

			if !reflect.DeepEqual(steps, tt.wantSteps) {
				t.Errorf("progress %v, want %v", steps, tt.wantSteps)
			}
			if res.Driver != "simulated" || !res.Simulated || res.PartialKey != tt.key.LastFive() {
				t.Errorf("Result = %+v", res)
			}
			if res.Status != tt.status {
				t.Errorf("Result.Status = %v, want %v", res.Status, tt.status)
			}
			if tt.failStep == 0 {
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if res.Step != activation.StepVerify {
					t.Errorf("Result.Step = %v", res.Step)
				}
				return
			}
			var se *activation.StepError
			if !errors.As(err, &se) {
				t.Fatalf("Run = %T %v, want *StepError", err, err)
			}
			if se.Step != tt.failStep {
				t.Errorf("failed step %v, want %v", se.Step, tt.failStep)
			}
			if !strings.HasPrefix(err.Error(), tt.failStep.String()+": ") {
				t.Errorf("Error() = %q does not name the step", err.Error())
			}
			if tt.wantCtx {
				if !errors.Is(err, context.Canceled) {
					t.Errorf("error %v, want context.Canceled", err)
				}
				return
			}
			var e *activation.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v carries no *activation.Error", err)
			}
			if e.HRESULT != tt.wantHR {
				t.Errorf("HRESULT %s, want %s", e.Code(), keystation.FormatHRESULT(tt.wantHR))
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.msg)
			}
			if d.Simulated() && !strings.HasPrefix(e.Message, activation.SimPrefix) && tt.wantHR != 0x80041010 {
				t.Errorf("simulated message %q lacks %q", e.Message, activation.SimPrefix)
			}
			if strings.Contains(err.Error(), keyA.Plain()) {
				t.Errorf("error %q contains the full key", err)
			}
		})
	}
}

func TestRunRetryWithNewKey(t *testing.T) {
	sim, err := activation.ParseSim("key-fault,success")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = activation.Run(ctx, sim, keyA)
	f, ok := activation.Classify(err)
	if !ok || f.Class != keystation.FaultKey || f.Review {
		t.Fatalf("first run: %v classified %+v", err, f)
	}
	res, err := activation.Run(ctx, sim, keyB)
	if err != nil || !res.Status.Licensed() {
		t.Fatalf("retry: %+v, %v", res, err)
	}
	if sim.Installed() != keyB {
		t.Errorf("installed %v, want %v", sim.Installed(), keyB)
	}
}

func TestStepString(t *testing.T) {
	tests := []struct {
		step activation.Step
		want string
	}{
		{activation.StepInstall, "install"},
		{activation.StepActivate, "activate"},
		{activation.StepVerify, "verify"},
		{0, "step(?)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.step.String(); got != tt.want {
				t.Errorf("String() = %q", got)
			}
		})
	}
}

func TestNewWindowsDriverOffWindows(t *testing.T) {
	d, err := activation.NewWindowsDriver()
	if err == nil {
		if d.Name() != "windows" || d.Simulated() {
			t.Errorf("Name() = %q, Simulated() = %v", d.Name(), d.Simulated())
		}
		return
	}
	if !errors.Is(err, activation.ErrNotWindows) || d != nil {
		t.Errorf("NewWindowsDriver = %v, %v", d, err)
	}
}
