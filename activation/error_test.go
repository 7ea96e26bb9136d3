package activation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	ole "github.com/go-ole/go-ole"

	"keystation"
	"keystation/activation"
)

func TestErrorText(t *testing.T) {
	tests := []struct {
		name string
		err  *activation.Error
		want string
		code string
	}{
		{"code and message", activation.NewError(0xC004C003, "The key is blocked."), "0xC004C003: The key is blocked.", "0xC004C003"},
		{"code only", activation.NewError(0x80070005, ""), "0x80070005", "0x80070005"},
		{"message only", activation.NewError(0, "not licensed"), "not licensed", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			if got := tt.err.Code(); got != tt.code {
				t.Errorf("Code() = %q, want %q", got, tt.code)
			}
		})
	}
}

func TestErrorClassify(t *testing.T) {
	tests := []struct {
		name   string
		err    *activation.Error
		class  keystation.FaultClass
		review bool
		hr     string
	}{
		{"blocked key", activation.NewError(0xC004C003, "blocked"), keystation.FaultKey, false, "0xC004C003"},
		{"no KMS", activation.NewError(0xC004F074, "no KMS"), keystation.FaultPC, false, "0xC004F074"},
		{"not elevated", activation.NewError(0x80070005, "Access is denied."), keystation.FaultPC, false, "0x80070005"},
		{"unknown code", activation.NewError(0xC004F00F, "binding"), keystation.FaultKey, true, "0xC004F00F"},
		{"code in message only", activation.NewError(0, "failed with 0x8007232B"), keystation.FaultPC, false, "0x8007232B"},
		{"no code at all", activation.NewError(0, "not licensed"), keystation.FaultKey, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.err.Classify()
			if f.Class != tt.class || f.Review != tt.review || f.HRESULT != tt.hr {
				t.Errorf("Classify() = %+v, want class %s review %v hresult %q", f, tt.class, tt.review, tt.hr)
			}
		})
	}
}

func TestClassifyHelper(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		ok    bool
		class keystation.FaultClass
		hr    string
	}{
		{"nil", nil, false, "", ""},
		{"canceled", context.Canceled, false, "", ""},
		{"deadline in step", &activation.StepError{Step: activation.StepActivate, Err: context.DeadlineExceeded}, false, "", ""},
		{"wrapped activation error", &activation.StepError{Step: activation.StepActivate, Err: activation.NewError(0x80072F8F, "x")}, true, keystation.FaultPC, "0x80072F8F"},
		{"plain error", errors.New("boom"), true, keystation.FaultKey, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, ok := activation.Classify(tt.err)
			if ok != tt.ok || f.Class != tt.class || f.HRESULT != tt.hr {
				t.Errorf("Classify = %+v, %v; want class %q hresult %q, %v", f, ok, tt.class, tt.hr, tt.ok)
			}
		})
	}
}

func TestFromOLE(t *testing.T) {
	tests := []struct {
		name        string
		code, scode uint32
		wcode       uint16
		desc        string
		wantHR      uint32
		wantMsg     string
	}{
		{"exception with scode", activation.DispEException, 0xC004C003, 0, "  The key is blocked.\r\n", 0xC004C003, "The key is blocked."},
		{"exception with scode, no description", activation.DispEException, 0xC004F074, 0, "<nil>", 0xC004F074, ""},
		{"exception, code only in description", activation.DispEException, 0, 0, "Activation failed: 0x8007232B", 0x8007232B, "Activation failed: 0x8007232B"},
		{"exception with wCode", activation.DispEException, 0, 42, "", activation.DispEException, "exception code 42"},
		{"plain HRESULT", 0x80070005, 0, 0, "Access is denied.", 0x80070005, "Access is denied."},
		{"plain HRESULT, no description", 0x80041003, 0, 0, "", 0x80041003, ""},
		{"scode wins over code", 0x80004005, 0xC004C020, 0, "limit", 0xC004C020, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := activation.FromOLE(tt.code, tt.scode, tt.wcode, tt.desc)
			if e.HRESULT != tt.wantHR || e.Message != tt.wantMsg {
				t.Errorf("FromOLE = {%s %q}, want {%s %q}", e.Code(), e.Message, keystation.FormatHRESULT(tt.wantHR), tt.wantMsg)
			}
		})
	}
}

func TestFromOLEError(t *testing.T) {
	own := activation.NewError(0xC004C003, "mine")
	tests := []struct {
		name    string
		err     error
		wantNil bool
		same    error // returned unchanged
		wantHR  uint32
		wantMsg string
	}{
		{name: "nil", err: nil, wantNil: true},
		{name: "context canceled", err: fmt.Errorf("x: %w", context.Canceled), same: context.Canceled},
		{name: "already an *Error", err: own, same: own},
		{name: "OleError with description", err: ole.NewErrorWithDescription(0x80070005, "Access is denied."), wantHR: 0x80070005, wantMsg: "Access is denied."},
		{name: "OleError wrapped", err: fmt.Errorf("ExecQuery: %w", ole.NewError(0x80041017)), wantHR: 0x80041017},
		{name: "exception without scode", err: ole.NewErrorWithSubError(uintptr(activation.DispEException), "<nil>", ole.EXCEPINFO{}), wantHR: activation.DispEException},
		{name: "exception naming a code", err: ole.NewErrorWithSubError(uintptr(activation.DispEException), "SWbemObjectEx: 0xC004C008", ole.EXCEPINFO{}), wantHR: 0xC004C008, wantMsg: "SWbemObjectEx: 0xC004C008"},
		{name: "other error naming a code", err: errors.New("failed: 0xC004F074"), wantHR: 0xC004F074, wantMsg: "failed: 0xC004F074"},
		{name: "other error", err: errors.New("boom"), wantMsg: "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := activation.FromOLEError(tt.err)
			switch {
			case tt.wantNil:
				if got != nil {
					t.Fatalf("got %v, want nil", got)
				}
				return
			case tt.same != nil:
				if !errors.Is(got, tt.same) {
					t.Fatalf("got %v, want %v unchanged", got, tt.same)
				}
				return
			}
			var e *activation.Error
			if !errors.As(got, &e) {
				t.Fatalf("got %T %v, want *activation.Error", got, got)
			}
			if e.HRESULT != tt.wantHR || e.Message != tt.wantMsg {
				t.Errorf("got {%s %q}, want {%s %q}", e.Code(), e.Message, keystation.FormatHRESULT(tt.wantHR), tt.wantMsg)
			}
		})
	}
}

func TestParseFirmwareKey(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		present bool
		key     keystation.ProductKey
	}{
		{"none", "", false, ""},
		{"blank", "  ", false, ""},
		{"well-formed, lower case", " bcdfg-hjkmn-pqrtv-wxy23-46789 ", true, "BCDFG-HJKMN-PQRTV-WXY23-46789"},
		{"malformed still counts", "ABCDE-12345", true, "ABCDE-12345"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := activation.ParseFirmwareKey(tt.raw)
			if f.Present() != tt.present || f.Key != tt.key {
				t.Errorf("ParseFirmwareKey = %+v (present %v), want %q (present %v)", f, f.Present(), tt.key, tt.present)
			}
			if tt.present && strings.Contains(f.String(), tt.key.Plain()) {
				t.Errorf("String() %q reveals the key", f.String())
			}
		})
	}
}

func TestPickProduct(t *testing.T) {
	ps := []activation.Product{
		{ID: "a", PartialProductKey: "AAAAA", LicenseStatus: activation.StatusLicensed},
		{ID: "b", PartialProductKey: "3V66T", LicenseStatus: activation.StatusNotification},
	}
	tests := []struct {
		name     string
		ps       []activation.Product
		lastFive string
		want     int
		wantErr  bool
	}{
		{"none installed", nil, "", -1, true},
		{"no key remembered: first", ps, "", 0, false},
		{"remembered key", ps, "3v66t", 1, false},
		{"remembered key missing", ps, "XXXXX", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := activation.PickProduct(tt.ps, tt.lastFive)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("PickProduct = %d, %v; want %d, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestScrubKey(t *testing.T) {
	key := keystation.ProductKey("BCDFG-HJKMN-PQRTV-WXY23-46789")
	tests := []struct {
		name string
		msg  string
	}{
		{"dashed", "key BCDFG-HJKMN-PQRTV-WXY23-46789 is blocked"},
		{"undashed", "key BCDFGHJKMNPQRTVWXY2346789 is blocked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := activation.ScrubKey(activation.NewError(0xC004C003, tt.msg), key)
			if strings.Contains(err.Error(), "BCDFG") || !strings.Contains(err.Error(), "46789") {
				t.Errorf("scrubbed message %q", err.Error())
			}
		})
	}
}

func TestUint32Of(t *testing.T) {
	tests := []struct {
		name string
		v    any
		want uint32
		ok   bool
	}{
		{"int32 from VT_I4", int32(1), 1, true},
		{"negative int32 HRESULT", int32(-1073430525), 0xC004C003, true},
		{"uint32", uint32(5), 5, true},
		{"NULL", nil, 0, false},
		{"string", "1", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := activation.Uint32Of(tt.v)
			if got != tt.want || ok != tt.ok {
				t.Errorf("Uint32Of(%v) = %#x, %v; want %#x, %v", tt.v, got, ok, tt.want, tt.ok)
			}
		})
	}
}
