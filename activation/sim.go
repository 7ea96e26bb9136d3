package activation

import (
	"context"
	"strings"
	"sync"
	"time"

	"keystation"
)

// SimPrefix starts every message the simulated driver produces.
const SimPrefix = "[SIMULATED] "

// SimFirmwareKey is the firmware key of a simulated PC that has one. It is
// well-formed but not a real key.
const SimFirmwareKey keystation.ProductKey = "DDDDD-DDDDD-DDDDD-DDDDD-FW234"

// OutcomeKind is what a simulated activation does.
type OutcomeKind uint8

const (
	// OutcomeSuccess: Activate succeeds, LicenseStatus becomes Licensed.
	OutcomeSuccess OutcomeKind = iota
	// OutcomeFail: Activate fails with Outcome.HRESULT.
	OutcomeFail
	// OutcomeHang: Activate blocks until its context ends.
	OutcomeHang
	// OutcomeNotLicensed: Activate reports success but LicenseStatus stays
	// Outcome.Status (so Run fails at StepVerify).
	OutcomeNotLicensed
	// OutcomeFirmware: the PC has a firmware key (SimFirmwareKey), which is
	// installed from the start; Activate succeeds.
	OutcomeFirmware
)

// Outcome is one scripted result of the simulated driver's Activate.
type Outcome struct {
	Kind    OutcomeKind
	HRESULT uint32        // OutcomeFail
	Status  LicenseStatus // OutcomeNotLicensed
	// Delay is waited before the outcome, cut short by the context
	// ("slow:3s" is a success after Delay).
	Delay time.Duration
}

// Named failures ParseOutcome knows, and their HRESULTs.
var simNamed = map[string]uint32{
	"key-fault":    0xC004C003, // blocked
	"invalid-key":  0xC004F050,
	"used-up":      0xC004C020,
	"pc-fault":     0xC004F074, // no KMS
	"no-kms":       0xC004F074,
	"dns":          0x8007232B,
	"clock":        0x80072F8F,
	"not-elevated": 0x80070005,
	"no-internet":  0x80072EE7,
	"unknown":      0xC004F00F, // real code, not in keystation's table
}

// Texts of simulated failures (modelled on Windows' own).
var simMessages = map[uint32]string{
	0xC004C001: "The activation server determined the specified product key is invalid.",
	0xC004C003: "The activation server determined the specified product key has been blocked.",
	0xC004C008: "The activation server determined that the specified product key could not be used.",
	0xC004C020: "The activation server reported that the Multiple Activation Key has exceeded its limit.",
	0xC004C060: "The activation server determined that the specified product key is no longer supported.",
	0xC004F050: "The Software Licensing Service reported that the product key is invalid.",
	0xC004F014: "The Software Licensing Service reported that the product key is not available.",
	0xC004F074: "The Software Licensing Service reported that the computer could not be activated. No Key Management Service (KMS) could be contacted.",
	0xC004F00F: "The Software Licensing Server reported that the hardware ID binding is beyond level of tolerance.",
	0x8007232B: "DNS name does not exist.",
	0x80072F8F: "A security error occurred.",
	0x80070005: "Access is denied.",
	0x80072EE7: "The server name or address could not be resolved.",
}

// String returns the outcome in ParseOutcome's syntax (a failure's delay is
// not shown).
func (o Outcome) String() string {
	switch o.Kind {
	case OutcomeFail:
		return "hresult:" + keystation.FormatHRESULT(o.HRESULT)
	case OutcomeHang:
		return "hang"
	case OutcomeNotLicensed:
		return "status:" + o.Status.String()
	case OutcomeFirmware:
		return "firmware"
	}
	if o.Delay > 0 {
		return "slow:" + o.Delay.String()
	}
	return "success"
}

// ParseOutcome parses one outcome (case-insensitive):
//
//	success                    activation succeeds
//	slow:3s                    succeeds after 3s (cut short by the context)
//	hang                       blocks until the context ends
//	firmware                   the PC has a firmware key; activation succeeds
//	key-fault[:0xC004C020]     a key fault; default 0xC004C003 (blocked)
//	pc-fault[:0x8007232B]      a PC fault; default 0xC004F074 (no KMS)
//	invalid-key, used-up, no-kms, dns, clock, not-elevated, no-internet
//	unknown                    a real code keystation does not know (0xC004F00F)
//	hresult:0xC004C020         any code
//	not-licensed, status:5     activation "succeeds" but LicenseStatus stays 5
//
// key-fault and pc-fault check that their code is classified that way.
func ParseOutcome(s string) (Outcome, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	name, arg, hasArg := strings.Cut(t, ":")
	arg = strings.TrimSpace(arg)
	noArg := func(o Outcome) (Outcome, error) {
		if hasArg {
			return Outcome{}, keystation.Errorf(keystation.EINVALID, "simulated outcome %q takes no argument", name)
		}
		return o, nil
	}
	switch name {
	case "success", "ok":
		return noArg(Outcome{})
	case "hang":
		return noArg(Outcome{Kind: OutcomeHang})
	case "firmware":
		return noArg(Outcome{Kind: OutcomeFirmware})
	case "not-licensed":
		return noArg(Outcome{Kind: OutcomeNotLicensed, Status: StatusNotification})
	case "slow":
		d, err := time.ParseDuration(arg)
		if err != nil || d <= 0 {
			return Outcome{}, keystation.Errorf(keystation.EINVALID, "simulated outcome slow needs a positive duration, e.g. slow:3s, not %q", arg)
		}
		return Outcome{Delay: d}, nil
	case "status":
		st, err := ParseLicenseStatus(arg)
		if err != nil {
			return Outcome{}, err
		}
		if st.Licensed() {
			return Outcome{}, nil
		}
		return Outcome{Kind: OutcomeNotLicensed, Status: st}, nil
	case "hresult":
		hr, err := parseSimHRESULT(arg)
		if err != nil {
			return Outcome{}, err
		}
		return Outcome{Kind: OutcomeFail, HRESULT: hr}, nil
	case "key-fault", "pc-fault":
		hr := simNamed[name]
		if hasArg {
			var err error
			if hr, err = parseSimHRESULT(arg); err != nil {
				return Outcome{}, err
			}
			want := keystation.FaultKey
			if name == "pc-fault" {
				want = keystation.FaultPC
			}
			if f := keystation.ClassifyFailure(keystation.FormatHRESULT(hr), ""); f.Class != want || f.Review {
				return Outcome{}, keystation.Errorf(keystation.EINVALID, "%s is not a known %s fault; use hresult:%s for any code", keystation.FormatHRESULT(hr), want, keystation.FormatHRESULT(hr))
			}
		}
		return Outcome{Kind: OutcomeFail, HRESULT: hr}, nil
	}
	if hr, ok := simNamed[name]; ok {
		return noArg(Outcome{Kind: OutcomeFail, HRESULT: hr})
	}
	return Outcome{}, keystation.Errorf(keystation.EINVALID,
		"unknown simulated outcome %q (want success, slow:3s, hang, firmware, key-fault[:code], pc-fault[:code], hresult:code, not-licensed, status:N, invalid-key, used-up, no-kms, dns, clock, not-elevated, no-internet, unknown)", s)
}

func parseSimHRESULT(s string) (uint32, error) {
	hr, ok := keystation.ParseHRESULT(s, "")
	if !ok || hr == 0 {
		return 0, keystation.Errorf(keystation.EINVALID, "%q is not an error HRESULT (want e.g. 0xC004C020)", s)
	}
	return hr, nil
}

// ParseScript parses comma-separated outcomes ("key-fault,success"), one per
// Activate call. "" is an empty script (every activation succeeds).
func ParseScript(s string) ([]Outcome, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]Outcome, 0, len(parts))
	for i, p := range parts {
		o, err := ParseOutcome(p)
		if err != nil {
			return nil, keystation.Errorf(keystation.EINVALID, "simulated outcome %d: %s", i+1, keystation.ErrorMessage(err))
		}
		out = append(out, o)
	}
	return out, nil
}

// SimCalls counts the calls a Sim received.
type SimCalls struct {
	FirmwareKey, Install, Activate, Status int
}

type simKeyRule struct {
	suffix  string
	outcome Outcome
}

// Sim is the simulated driver: nothing real happens. Its Activate plays a
// script of outcomes, one per call, the last one repeating (an empty script
// always succeeds); per-key rules (SetKeyOutcome) take precedence and do not
// consume the script. A Sim is safe for concurrent use.
type Sim struct {
	mu        sync.Mutex
	script    []Outcome
	pos       int
	rules     []simKeyRule
	firmware  keystation.ProductKey
	installed keystation.ProductKey
	status    LicenseStatus
	stepDelay time.Duration
	calls     SimCalls
}

var _ Driver = (*Sim)(nil)

// NewSim returns a simulated driver playing script. A PC starts unactivated
// (StatusOOBGrace) with no key installed, or with SimFirmwareKey installed
// when the script holds OutcomeFirmware.
func NewSim(script ...Outcome) *Sim {
	s := &Sim{status: StatusOOBGrace}
	s.SetScript(script...)
	return s
}

// ParseSim returns NewSim(ParseScript(spec)).
func ParseSim(spec string) (*Sim, error) {
	script, err := ParseScript(spec)
	if err != nil {
		return nil, err
	}
	return NewSim(script...), nil
}

// SetScript replaces the script and restarts it. An OutcomeFirmware in it
// gives the PC a firmware key (SimFirmwareKey), installed if no key is.
func (s *Sim) SetScript(script ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append([]Outcome(nil), script...)
	s.pos = 0
	for _, o := range script {
		if o.Kind == OutcomeFirmware {
			s.firmware = SimFirmwareKey
			if s.installed == "" {
				s.installed = SimFirmwareKey
			}
		}
	}
}

// SetKeyOutcome makes Activate of any key ending with suffix
// (case-insensitive, e.g. its last group) give o, whatever the script says.
// The first matching rule wins. An empty suffix is ignored.
func (s *Sim) SetKeyOutcome(suffix string, o Outcome) {
	suffix = strings.ToUpper(strings.TrimSpace(suffix))
	if suffix == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, simKeyRule{suffix, o})
}

// SetFirmwareKey sets (or with "" removes) the PC's firmware key.
func (s *Sim) SetFirmwareKey(k keystation.ProductKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.firmware = k
}

// SetStepDelay makes Install and Activate each take d (for demos); the
// context cuts it short.
func (s *Sim) SetStepDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stepDelay = d
}

// Calls returns how often each method was called.
func (s *Sim) Calls() SimCalls {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Installed returns the key installed on the simulated PC ("" for none).
func (s *Sim) Installed() keystation.ProductKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.installed
}

func (s *Sim) Name() string    { return "simulated" }
func (s *Sim) Simulated() bool { return true }

// FirmwareKey returns the simulated PC's firmware key, if any.
func (s *Sim) FirmwareKey(ctx context.Context) (FirmwareKey, error) {
	if err := ctx.Err(); err != nil {
		return FirmwareKey{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.FirmwareKey++
	return FirmwareKey{Key: s.firmware}, nil
}

// Install installs key; a malformed key fails with 0xC004F050 as on Windows.
// Installing another key makes the PC unactivated again.
func (s *Sim) Install(ctx context.Context, key keystation.ProductKey) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.calls.Install++
	d := s.stepDelay
	s.mu.Unlock()
	if err := sleepCtx(ctx, d); err != nil {
		return err
	}
	k, err := keystation.ParseProductKey(key.Plain())
	if err != nil {
		return simError(0xC004F050)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if k != s.installed {
		s.installed = k
		s.status = StatusOOBGrace
	}
	return nil
}

// Activate plays the next outcome (or the installed key's rule).
func (s *Sim) Activate(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.calls.Activate++
	key := s.installed
	if key == "" {
		s.mu.Unlock()
		return simError(0xC004F014)
	}
	o, ruled := s.rule(key)
	if !ruled {
		o = s.next()
	}
	d := s.stepDelay + o.Delay
	s.mu.Unlock()

	if err := sleepCtx(ctx, d); err != nil {
		return err
	}
	switch o.Kind {
	case OutcomeHang:
		<-ctx.Done()
		return ctx.Err()
	case OutcomeFail:
		return simError(o.HRESULT)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.installed == key {
		if o.Kind == OutcomeNotLicensed {
			s.status = o.Status
		} else {
			s.status = StatusLicensed
		}
	}
	return nil
}

// Status returns the simulated PC's LicenseStatus.
func (s *Sim) Status(ctx context.Context) (LicenseStatus, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls.Status++
	return s.status, nil
}

// rule returns the outcome of the first rule matching key; s.mu is held.
func (s *Sim) rule(key keystation.ProductKey) (Outcome, bool) {
	k := strings.ToUpper(key.Plain())
	for _, r := range s.rules {
		if strings.HasSuffix(k, r.suffix) {
			return r.outcome, true
		}
	}
	return Outcome{}, false
}

// next consumes the script; the last outcome repeats. s.mu is held.
func (s *Sim) next() Outcome {
	if len(s.script) == 0 {
		return Outcome{}
	}
	o := s.script[s.pos]
	if s.pos < len(s.script)-1 {
		s.pos++
	}
	return o
}

// simError is a simulated failure: the message starts with SimPrefix and
// names the HRESULT, so it classifies on its own.
func simError(hr uint32) *Error {
	text, ok := simMessages[hr]
	if !ok {
		text = "The activation service reported an error."
	}
	return &Error{HRESULT: hr, Message: SimPrefix + text + " (" + keystation.FormatHRESULT(hr) + ")"}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
