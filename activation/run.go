package activation

import (
	"context"
	"strconv"

	"keystation"
)

// Step is a step of Run.
type Step int

// The steps of Run, in order.
const (
	StepInstall Step = iota + 1
	StepActivate
	StepVerify
)

func (s Step) String() string {
	switch s {
	case StepInstall:
		return "install"
	case StepActivate:
		return "activate"
	case StepVerify:
		return "verify"
	}
	return "step(?)"
}

// Result is what Run did.
type Result struct {
	// Driver is the driver's Name(); Simulated its Simulated().
	Driver    string
	Simulated bool
	// PartialKey is the key's last group, as Windows reports it.
	PartialKey string
	// Step is the last step started: StepVerify on success, the failed step
	// otherwise, 0 when nothing was started.
	Step Step
	// Status is the license status read by StepVerify (valid when Step is
	// StepVerify and the status could be read).
	Status LicenseStatus
}

// Run installs key, activates it and checks that Windows then reports
// LicenseStatus 1 (Licensed). progress, if given, is called as each step
// starts. The context is checked before each step.
//
// A failure is a *StepError naming the step; its Err is the driver's *Error,
// ctx.Err() when the context ended, or for StepVerify an *Error without
// HRESULT naming the status ("... LicenseStatus 5 (Notification)").
//
// When the context ends during StepActivate the Windows driver cannot stop
// the call under way: the key's outcome is then unknown (see Classify).
func Run(ctx context.Context, d Driver, key keystation.ProductKey, progress ...func(Step)) (Result, error) {
	res := Result{Driver: d.Name(), Simulated: d.Simulated(), PartialKey: key.LastFive()}
	do := func(s Step, fn func() error) error {
		if err := ctx.Err(); err != nil {
			return &StepError{Step: s, Err: err}
		}
		res.Step = s
		for _, p := range progress {
			if p != nil {
				p(s)
			}
		}
		if err := fn(); err != nil {
			return &StepError{Step: s, Err: err}
		}
		return nil
	}
	if err := do(StepInstall, func() error { return d.Install(ctx, key) }); err != nil {
		return res, err
	}
	if err := do(StepActivate, func() error { return d.Activate(ctx) }); err != nil {
		return res, err
	}
	err := do(StepVerify, func() error {
		st, err := d.Status(ctx)
		if err != nil {
			return err
		}
		res.Status = st
		if !st.Licensed() {
			return notLicensedError(d, st)
		}
		return nil
	})
	return res, err
}

func notLicensedError(d Driver, st LicenseStatus) *Error {
	msg := "Windows is not activated after activation: LicenseStatus " + strconv.FormatUint(uint64(st), 10) + " (" + st.String() + ")"
	if d.Simulated() {
		msg = SimPrefix + msg
	}
	return &Error{Message: msg}
}
