package hwinfo_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"keystation"
	"keystation/hwinfo"
)

func TestIsPlaceholder(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"   ", true},
		{"To be filled by O.E.M.", true},
		{" Default string ", true},
		{"System Serial Number", true},
		{"SYSTEM PRODUCT NAME", true},
		{"0000000000", true},
		{"FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"03000200-0400-0500-0006-000700080009", true},
		{"PF3ABCDE", false},
		{"21CB0077CD", false},
		{"4C4C4544-0042-3510-8052-B4C04F4D3332", false},
		{"0.0.0", false},
	}
	for _, tt := range tests {
		if got := hwinfo.IsPlaceholder(tt.in); got != tt.want {
			t.Errorf("IsPlaceholder(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestFixed(t *testing.T) {
	hw := keystation.Hardware{SerialNumber: "SN1", Model: "M1", MACs: []string{"AA:BB:CC:DD:EE:FF"}}
	boom := errors.New("boom")
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name    string
		r       hwinfo.Reader
		ctx     context.Context
		want    keystation.Hardware
		wantErr error
	}{
		{"returns the hardware", hwinfo.Fixed{Hardware: hw}, context.Background(), hw, nil},
		{"returns the error", hwinfo.Fixed{Hardware: hw, Err: boom}, context.Background(), keystation.Hardware{}, boom},
		{"honours the context", hwinfo.Fixed{Hardware: hw}, cancelled, keystation.Hardware{}, context.Canceled},
		{"adapts a function", hwinfo.ReaderFunc(hwinfo.Fixed{Hardware: hw}.Read), context.Background(), hw, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.r.Read(tt.ctx)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			equalHardware(t, got, tt.want)
		})
	}

	t.Run("returns a copy", func(t *testing.T) {
		f := hwinfo.Fixed{Hardware: hw}
		got, _ := f.Read(context.Background())
		got.MACs[0] = "changed"
		again, _ := f.Read(context.Background())
		if again.MACs[0] != "AA:BB:CC:DD:EE:FF" {
			t.Errorf("a caller changed the fixed hardware: %v", again.MACs)
		}
	})
}

func TestOverride(t *testing.T) {
	read := keystation.Hardware{
		Model: "Standard PC",
		OS:    keystation.OSInfo{Caption: "Ubuntu 24.04.1 LTS", EditionID: "Core", SKU: 101},
		Warnings: []string{
			"serial number: /sys/class/dmi/id/product_serial is readable only by root; run the station as root or pass --sn",
			"model: something",
			"uuid: /sys/class/dmi/id/product_uuid is readable only by root; run the station as root",
			"os edition: unknown",
		},
	}
	tests := []struct {
		name         string
		o            hwinfo.Override
		wantSN       string
		wantModel    string
		wantOS       string
		wantWarnings []string
	}{
		{
			name:         "nothing set",
			wantModel:    "Standard PC",
			wantOS:       "Windows Home",
			wantWarnings: read.Warnings,
		},
		{
			name:         "serial number",
			o:            hwinfo.Override{SN: " DEMO-0001 "},
			wantSN:       "DEMO-0001",
			wantModel:    "Standard PC",
			wantOS:       "Windows Home",
			wantWarnings: []string{read.Warnings[1], read.Warnings[2], read.Warnings[3]},
		},
		{
			name:         "all three",
			o:            hwinfo.Override{SN: "DEMO-0001", Model: "N151", OSVersion: "Windows 11 Pro"},
			wantSN:       "DEMO-0001",
			wantModel:    "N151",
			wantOS:       "Windows 11 Pro",
			wantWarnings: []string{read.Warnings[2]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := read
			in.Warnings = slices.Clone(read.Warnings)
			got := tt.o.Apply(in)
			if got.SerialNumber != tt.wantSN || got.Model != tt.wantModel || got.OS.OSVersion() != tt.wantOS {
				t.Errorf("got sn %q model %q osVersion %q, want %q %q %q",
					got.SerialNumber, got.Model, got.OS.OSVersion(), tt.wantSN, tt.wantModel, tt.wantOS)
			}
			if !slices.Equal(got.Warnings, tt.wantWarnings) {
				t.Errorf("warnings = %q, want %q", got.Warnings, tt.wantWarnings)
			}
		})
	}
}
