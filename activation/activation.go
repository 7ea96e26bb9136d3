// Package activation installs and activates a Windows product key on the PC
// the station runs on, behind one small Driver interface.
//
// Two drivers exist: the Windows driver (WMI, SoftwareLicensingService /
// SoftwareLicensingProduct; built on Windows only, see NewWindowsDriver) and
// the simulated driver (Sim) used on Linux, in demos and in tests. The
// simulated driver is always visibly labelled: Name() is "simulated",
// Simulated() is true and every message it produces starts with SimPrefix.
//
// Every failure the activation service reports is an *Error carrying the raw
// HRESULT and the service's message verbatim. A cancelled context is not an
// activation outcome: drivers then return ctx.Err() itself (possibly wrapped
// in a *StepError by Run), and the key must not be treated as burnt.
//
// Nothing in this package logs or formats a full product key.
package activation

import (
	"context"
	"errors"
	"fmt"

	"keystation"
)

// ErrNotWindows is returned by NewWindowsDriver on systems other than
// Windows.
var ErrNotWindows = errors.New("activation: the Windows driver needs Windows; use the simulated driver (NewSim)")

// Driver installs and activates product keys on this PC.
type Driver interface {
	// Name is "windows" or "simulated".
	Name() string
	// Simulated reports whether nothing real happens (the simulated driver).
	Simulated() bool
	// FirmwareKey returns the OA3 key embedded in the PC's firmware
	// (SoftwareLicensingService.OA3xOriginalProductKey). A PC that has one
	// must not consume a pool key.
	FirmwareKey(ctx context.Context) (FirmwareKey, error)
	// Install installs key (SoftwareLicensingService.InstallProductKey).
	Install(ctx context.Context, key keystation.ProductKey) error
	// Activate activates the installed Windows key online
	// (SoftwareLicensingProduct.Activate).
	Activate(ctx context.Context) error
	// Status returns the LicenseStatus of the Windows product; 1 is licensed.
	Status(ctx context.Context) (LicenseStatus, error)
}

// FirmwareKey is the OA3 product key found in the PC's firmware, if any.
// Its Key prints masked (keystation.ProductKey.String).
type FirmwareKey struct {
	// Key is the firmware key, normalised when well-formed; "" when the PC
	// has none.
	Key keystation.ProductKey
}

// Present reports whether the PC has a firmware key.
func (f FirmwareKey) Present() bool { return f.Key != "" }

// String describes f without revealing the key.
func (f FirmwareKey) String() string {
	if !f.Present() {
		return "no firmware key"
	}
	return "firmware key " + f.Key.Masked()
}

// Error is a failure of the activation service.
type Error struct {
	// HRESULT is the raw code as the service gave it; 0 when the failure
	// came with no code (the station's own checks, e.g. a license status
	// other than Licensed after activation).
	HRESULT uint32
	// Message is the service's message, verbatim.
	Message string
}

// NewError returns an *Error with the raw code and message.
func NewError(hr uint32, message string) *Error { return &Error{HRESULT: hr, Message: message} }

// Error returns "0xC004C003: <message>".
func (e *Error) Error() string {
	switch {
	case e.HRESULT == 0:
		return e.Message
	case e.Message == "":
		return e.Code()
	default:
		return e.Code() + ": " + e.Message
	}
}

// Code returns the HRESULT as 0xXXXXXXXX, or "" when there is none.
func (e *Error) Code() string {
	if e.HRESULT == 0 {
		return ""
	}
	return keystation.FormatHRESULT(e.HRESULT)
}

// Classify says whose fault the failure was (keystation.ClassifyFailure).
func (e *Error) Classify() keystation.Failure {
	return keystation.ClassifyFailure(e.Code(), e.Message)
}

// Classify classifies any error a Driver or Run returned. ok is false for nil
// and for a cancelled or expired context: those are no activation outcome
// and must not burn a key. Errors that are not an *Error are classified by
// their text (an unknown failure, flagged for review, unless it names a
// known HRESULT).
func Classify(err error) (f keystation.Failure, ok bool) {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return keystation.Failure{}, false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Classify(), true
	}
	return keystation.ClassifyFailure("", err.Error()), true
}

// StepError is returned by Run: the step that failed and why.
type StepError struct {
	Step Step
	Err  error
}

func (e *StepError) Error() string { return fmt.Sprintf("%s: %v", e.Step, e.Err) }

func (e *StepError) Unwrap() error { return e.Err }
