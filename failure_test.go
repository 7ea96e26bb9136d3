package keystation_test

import (
	"strconv"
	"testing"

	"keystation"
)

// decimal returns the signed decimal form of an HRESULT, as PowerShell and
// .NET print it (e.g. -1073418237).
func decimal(v uint32) string { return strconv.Itoa(int(int32(v))) }

func TestClassifyFailure(t *testing.T) {
	tests := []struct {
		name    string
		code    string
		message string
		hresult string
		class   keystation.FaultClass
		review  bool
		hint    string
	}{
		// DESIGN.md: the key is bad.
		{name: "blocked C003", code: "0xC004C003", hresult: "0xC004C003", class: keystation.FaultKey, hint: "key_blocked"},
		{name: "invalid C001", code: "0xC004C001", hresult: "0xC004C001", class: keystation.FaultKey, hint: "key_invalid"},
		{name: "invalid F050", code: "0xC004F050", hresult: "0xC004F050", class: keystation.FaultKey, hint: "key_invalid"},
		{name: "used up C008", code: "0xC004C008", hresult: "0xC004C008", class: keystation.FaultKey, hint: "key_used_up"},
		{name: "used up C020", code: "0xC004C020", hresult: "0xC004C020", class: keystation.FaultKey, hint: "key_used_up"},
		{name: "blocked C060", code: "0xC004C060", hresult: "0xC004C060", class: keystation.FaultKey, hint: "key_blocked"},
		// DESIGN.md: the PC or its network is at fault.
		{name: "no KMS F074", code: "0xC004F074", hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "DNS 232B", code: "0x8007232B", hresult: "0x8007232B", class: keystation.FaultPC, hint: "dns"},
		{name: "clock B011", code: "0xC004B011", hresult: "0xC004B011", class: keystation.FaultPC, hint: "clock"},
		{name: "not elevated 0005", code: "0x80070005", hresult: "0x80070005", class: keystation.FaultPC, hint: "not_elevated"},
		{name: "no internet 2EE7", code: "0x80072EE7", hresult: "0x80072EE7", class: keystation.FaultPC, hint: "no_internet"},
		{name: "no internet 2EFD", code: "0x80072EFD", hresult: "0x80072EFD", class: keystation.FaultPC, hint: "no_internet"},
		{name: "timeout 2EE2", code: "0x80072EE2", hresult: "0x80072EE2", class: keystation.FaultPC, hint: "no_internet"},
		{name: "interrupted 2EFE", code: "0x80072EFE", hresult: "0x80072EFE", class: keystation.FaultPC, hint: "no_internet"},
		// Forms of the code.
		{name: "lower case hex", code: "0xc004c003", hresult: "0xC004C003", class: keystation.FaultKey, hint: "key_blocked"},
		{name: "upper case prefix", code: "0XC004F074", hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "hex without prefix", code: "C004F074", hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "surrounding spaces", code: "  0x8007232B ", hresult: "0x8007232B", class: keystation.FaultPC, hint: "dns"},
		{name: "negative decimal key fault", code: decimal(0xC004C003), hresult: "0xC004C003", class: keystation.FaultKey, hint: "key_blocked"},
		{name: "negative decimal PC fault", code: decimal(0xC004F074), hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "negative decimal not elevated", code: "-2147024891", hresult: "0x80070005", class: keystation.FaultPC, hint: "not_elevated"},
		{name: "positive decimal", code: "3221536771", hresult: "0xC004C003", class: keystation.FaultKey, hint: "key_blocked"},
		// Code found in the message only.
		{name: "code in message only, key fault",
			message: "Error: 0xC004C003 The activation server determined the specified product key is blocked.",
			hresult: "0xC004C003", class: keystation.FaultKey, hint: "key_blocked"},
		{name: "code in message only, PC fault",
			message: "错误: 0xC004F074 软件授权服务报告无法激活计算机。",
			hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "code in message, lower case", message: "failed (0x8007232b)", hresult: "0x8007232B", class: keystation.FaultPC, hint: "dns"},
		{name: "code wins over message", code: "0xC004F074", message: "0xC004C003", hresult: "0xC004F074", class: keystation.FaultPC, hint: "no_kms"},
		{name: "unparsable code falls back to message", code: "n/a", message: "code 0xC004C008", hresult: "0xC004C008", class: keystation.FaultKey, hint: "key_used_up"},
		// Unknown: the key's fault, flagged for review.
		{name: "unknown code", code: "0xC004FFFF", hresult: "0xC004FFFF", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "unknown negative decimal", code: decimal(0xDEADBEEF), hresult: "0xDEADBEEF", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "unknown code in message", message: "failed with 0x12345678", hresult: "0x12345678", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "no code at all", message: "something went wrong", hresult: "", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "nothing", hresult: "", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "code too long", code: "0x1C004C003", hresult: "", class: keystation.FaultKey, review: true, hint: "unknown"},
		{name: "decimal out of range", code: "99999999999", hresult: "", class: keystation.FaultKey, review: true, hint: "unknown"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := keystation.ClassifyFailure(tc.code, tc.message)
			if f.HRESULT != tc.hresult || f.Class != tc.class || f.Review != tc.review || f.Hint != tc.hint {
				t.Fatalf("ClassifyFailure(%q, %q) = %+v; want hresult %q class %s review %v hint %s",
					tc.code, tc.message, f, tc.hresult, tc.class, tc.review, tc.hint)
			}
			if f.Meaning == "" || f.Fix == "" {
				t.Errorf("no explanation: %+v", f)
			}
			if f.Class == keystation.FaultPC && f.Review {
				t.Errorf("a PC fault flagged for review: %+v", f)
			}
		})
	}
}

func TestParseHRESULT(t *testing.T) {
	tests := []struct {
		name, code, message string
		want                uint32
		ok                  bool
	}{
		{"hex", "0xC004C003", "", 0xC004C003, true},
		{"bare hex", "8007232B", "", 0x8007232B, true},
		{"negative decimal", "-1073418237", "", 0xC004F003, true},
		{"min int32", "-2147483648", "", 0x80000000, true},
		{"max uint32", "4294967295", "", 0xFFFFFFFF, true},
		{"too big", "4294967296", "", 0, false},
		{"too small", "-2147483649", "", 0, false},
		{"garbage", "xyz", "", 0, false},
		{"message", "", "… 0xC004F074 …", 0xC004F074, true},
		{"short hex in message", "", "0xC004", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := keystation.ParseHRESULT(tc.code, tc.message)
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ParseHRESULT(%q, %q) = %#x, %v; want %#x, %v", tc.code, tc.message, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestFormatHRESULT(t *testing.T) {
	if got := keystation.FormatHRESULT(0x5); got != "0x00000005" {
		t.Errorf("FormatHRESULT(5) = %q", got)
	}
	if got := keystation.FormatHRESULT(0xc004c003); got != "0xC004C003" {
		t.Errorf("FormatHRESULT = %q", got)
	}
}
