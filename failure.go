package keystation

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// FaultClass says whose fault a failed activation was.
type FaultClass string

const (
	// FaultKey: the key is bad; it is burnt and another one is issued.
	FaultKey FaultClass = "key"
	// FaultPC: the PC or its network is at fault; the key goes back and the
	// worker is told how to fix the PC.
	FaultPC FaultClass = "pc"
)

// Failure is the classification of an activation error.
type Failure struct {
	// HRESULT is the raw code as 0xXXXXXXXX, or "" when none was found.
	HRESULT string     `json:"hresult"`
	Class   FaultClass `json:"class"`
	// Review is set for codes the table does not know: treated as the key's
	// fault, flagged for a supervisor to look at.
	Review bool `json:"review"`
	// Hint is a stable identifier of the explanation, for translation tables.
	Hint string `json:"hint"`
	// Meaning and Fix are the English explanation and what to do.
	Meaning string `json:"meaning"`
	Fix     string `json:"fix"`
}

type failureInfo struct {
	class   FaultClass
	hint    string
	meaning string
	fix     string
}

var failures = map[uint32]failureInfo{
	// The key is bad.
	0xC004C003: {FaultKey, "key_blocked", "The activation server says this product key is blocked.", "Nothing to fix on the PC: a new key is issued."},
	0xC004C001: {FaultKey, "key_invalid", "The activation server says this product key is invalid.", "Nothing to fix on the PC: a new key is issued."},
	0xC004F050: {FaultKey, "key_invalid", "The Software Licensing Service says this product key is invalid.", "Nothing to fix on the PC: a new key is issued."},
	0xC004C008: {FaultKey, "key_used_up", "This product key has been used up on other PCs.", "Nothing to fix on the PC: a new key is issued."},
	0xC004C020: {FaultKey, "key_used_up", "This product key has reached its activation limit.", "Nothing to fix on the PC: a new key is issued."},
	0xC004C060: {FaultKey, "key_blocked", "This product key is no longer supported or is blocked.", "Nothing to fix on the PC: a new key is issued."},
	0xC004C004: {FaultKey, "key_invalid", "The activation server could not validate this product key.", "Nothing to fix on the PC: a new key is issued."},
	// The PC or its network is at fault.
	0xC004F074: {FaultPC, "no_kms", "No Key Management Service could be contacted.", "Check the PC's network cable and that it reaches the internet, then try again with the same key."},
	0x8007232B: {FaultPC, "dns", "The activation server's name could not be resolved (DNS).", "Check the PC's network and DNS settings, then try again with the same key."},
	0x8007232A: {FaultPC, "dns", "The DNS server failed.", "Check the PC's network and DNS settings, then try again with the same key."},
	0x8007267C: {FaultPC, "dns", "No DNS servers are configured on the PC.", "Check the PC's network settings (DHCP, DNS), then try again with the same key."},
	0xC004B011: {FaultPC, "clock", "The PC's clock differs too much from the activation server's.", "Set the PC's date, time and time zone correctly, then try again with the same key."},
	0x80072F8F: {FaultPC, "clock", "A secure connection failed; usually the PC's clock is wrong.", "Set the PC's date, time and time zone correctly, then try again with the same key."},
	0x80070005: {FaultPC, "not_elevated", "Access denied: the station is not running as administrator.", "Close the station and start it again with \"Run as administrator\"."},
	0x80072EE7: {FaultPC, "no_internet", "The activation server could not be reached (no internet).", "Connect the PC to the internet, then try again with the same key."},
	0x80072EFD: {FaultPC, "no_internet", "The connection to the activation server failed (no internet).", "Connect the PC to the internet, then try again with the same key."},
	0x80072EE2: {FaultPC, "no_internet", "The connection to the activation server timed out.", "Check the PC's internet connection, then try again with the same key."},
	0x80072EFE: {FaultPC, "no_internet", "The connection to the activation server was interrupted.", "Check the PC's internet connection, then try again with the same key."},
	0x80070422: {FaultPC, "service_disabled", "The Software Protection service is disabled.", "Enable the Software Protection service (sppsvc) on the PC, then try again with the same key."},
	0xC004F069: {FaultPC, "wrong_edition", "The installed Windows edition does not accept this kind of key.", "Check that the PC has the Windows edition ordered for it, then try again."},
}

var hresultRE = regexp.MustCompile(`(?i)0x[0-9a-f]{8}`)

// ParseHRESULT finds an HRESULT in code or, failing that, in message. It
// accepts 0xC004C003, C004C003, and negative or positive decimal forms.
func ParseHRESULT(code, message string) (uint32, bool) {
	c := strings.TrimSpace(code)
	if c != "" {
		if v, ok := parseCode(c); ok {
			return v, true
		}
	}
	if m := hresultRE.FindString(message); m != "" {
		v, err := strconv.ParseUint(m[2:], 16, 32)
		return uint32(v), err == nil
	}
	return 0, false
}

func parseCode(c string) (uint32, bool) {
	if strings.HasPrefix(strings.ToLower(c), "0x") {
		v, err := strconv.ParseUint(c[2:], 16, 32)
		return uint32(v), err == nil
	}
	if len(c) == 8 {
		if v, err := strconv.ParseUint(c, 16, 32); err == nil {
			return uint32(v), true
		}
	}
	if v, err := strconv.ParseInt(c, 10, 64); err == nil && v >= -1<<31 && v < 1<<32 {
		return uint32(v), true
	}
	return 0, false
}

// FormatHRESULT writes a code as 0xXXXXXXXX.
func FormatHRESULT(v uint32) string { return fmt.Sprintf("0x%08X", v) }

// ClassifyFailure classifies an activation error by its raw code (or an
// HRESULT found in the message). Unknown codes are treated as the key's fault
// and flagged for review.
func ClassifyFailure(code, message string) Failure {
	v, ok := ParseHRESULT(code, message)
	if !ok {
		return Failure{Class: FaultKey, Review: true, Hint: "unknown",
			Meaning: "The activation failed with no error code the station recognises.",
			Fix:     "A new key is issued; a supervisor will review this failure."}
	}
	f := Failure{HRESULT: FormatHRESULT(v)}
	info, known := failures[v]
	if !known {
		f.Class, f.Review, f.Hint = FaultKey, true, "unknown"
		f.Meaning = "The activation failed with an error code the station does not know."
		f.Fix = "A new key is issued; a supervisor will review this failure."
		return f
	}
	f.Class, f.Hint, f.Meaning, f.Fix = info.class, info.hint, info.meaning, info.fix
	return f
}
