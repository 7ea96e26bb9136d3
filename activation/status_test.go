package activation_test

import (
	"testing"

	"keystation/activation"
)

func TestLicenseStatus(t *testing.T) {
	tests := []struct {
		name     string
		st       activation.LicenseStatus
		want     string
		licensed bool
		known    bool
	}{
		{"0", 0, "Unlicensed", false, true},
		{"1", 1, "Licensed", true, true},
		{"2", 2, "OOBGrace", false, true},
		{"3", 3, "OOTGrace", false, true},
		{"4", 4, "NonGenuineGrace", false, true},
		{"5", 5, "Notification", false, true},
		{"6", 6, "ExtendedGrace", false, true},
		{"undocumented", 7, "Unknown(7)", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.st.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
			if tt.st.Licensed() != tt.licensed || tt.st.Known() != tt.known {
				t.Errorf("Licensed() = %v, Known() = %v", tt.st.Licensed(), tt.st.Known())
			}
			if tt.known {
				back, err := activation.ParseLicenseStatus(tt.want)
				if err != nil || back != tt.st {
					t.Errorf("ParseLicenseStatus(%q) = %v, %v", tt.want, back, err)
				}
			}
		})
	}
}

func TestParseLicenseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    activation.LicenseStatus
		wantErr bool
	}{
		{"number", "5", activation.StatusNotification, false},
		{"name any case", "oobgrace", activation.StatusOOBGrace, false},
		{"spaces", " Licensed ", activation.StatusLicensed, false},
		{"garbage", "activated", 0, true},
		{"negative", "-1", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := activation.ParseLicenseStatus(tt.in)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("ParseLicenseStatus(%q) = %v, %v", tt.in, got, err)
			}
		})
	}
}
