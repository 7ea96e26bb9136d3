package keystation_test

import (
	"strings"
	"testing"

	"keystation"
)

func TestHumanBytes(t *testing.T) {
	const (
		KiB = 1 << 10
		MiB = 1 << 20
		GiB = 1 << 30
		TiB = 1 << 40
	)
	tests := []struct {
		in   uint64
		want string
	}{
		{0, "0 B"},
		{1, "1 B"},
		{1023, "1023 B"},
		{KiB, "1 KB"},
		{1536, "1.5 KB"},
		{100 * KiB, "100 KB"},
		{MiB, "1 MB"},
		{8 * GiB, "8 GB"},
		{16 * GiB, "16 GB"},
		{15.5 * GiB, "15.5 GB"},
		{512 * GiB, "512 GB"},
		{TiB, "1 TB"},
		{1_000_204_886_016, "932 GB"}, // a "1 TB" disk
		{500_107_862_016, "466 GB"},   // a "500 GB" disk
		{256_060_514_304, "238 GB"},   // a "256 GB" disk
		{1 << 50, "1 PB"},
		{1 << 60, "1024 PB"},
		{^uint64(0), "16384 PB"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := keystation.HumanBytes(tc.in); got != tc.want {
				t.Fatalf("HumanBytes(%d) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestHardwareSummary(t *testing.T) {
	h := keystation.Hardware{
		SerialNumber: "SN-PLAIN-12345", Model: "N151", UUID: "4C4C4544-0042", Baseboard: "ASUS PRIME B365",
		CPU: "Intel Core i7-9700K",
		Memory: []keystation.MemoryModule{
			{ID: 0, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"},
			{ID: 1, Size: 8 << 30, Speed: "3200", Manufacturer: "Samsung"},
		},
		Disks: []keystation.Disk{
			{ID: 0, Size: 1 << 40, InterfaceType: "SCSI", Model: "NVMe KINGSTON SNV2S1000G", Serial: "DISK-SERIAL-9"},
			{ID: 1, Size: 512 << 30},
		},
		MACs: []string{"00:11:22:33:44:55"},
	}
	if h.MemoryTotal() != 16<<30 {
		t.Fatalf("MemoryTotal = %d", h.MemoryTotal())
	}
	s := h.Summary()
	want := keystation.Summary{CPU: "Intel Core i7-9700K", Memory: "16 GB", Disk: "1 TB SCSI, 512 GB", Motherboard: "ASUS PRIME B365"}
	if s.CPU != want.CPU || s.Memory != want.Memory || s.Disk != want.Disk || s.Motherboard != want.Motherboard || len(s.NetworkAdapters) != 0 {
		t.Fatalf("Summary = %+v, want %+v", s, want)
	}
	all := strings.Join([]string{s.CPU, s.Memory, s.Disk, s.Motherboard, s.Graphics, s.BIOS, strings.Join(s.NetworkAdapters, ",")}, "|")
	for _, secret := range []string{"SN-PLAIN-12345", "Samsung", "KINGSTON", "DISK-SERIAL-9", "00:11:22:33:44:55", "4C4C4544"} {
		if strings.Contains(all, secret) {
			t.Errorf("summary %q contains the detail %q", all, secret)
		}
	}
}

func TestMachineValidate(t *testing.T) {
	tests := []struct {
		name   string
		m      keystation.Machine
		fields map[string]string
	}{
		{"ok", keystation.Machine{SN: "a234354564234", Model: "N151"}, nil},
		{"missing both", keystation.Machine{}, map[string]string{"sn": "required", "model": "required"}},
		{"blank sn", keystation.Machine{SN: "  ", Model: "N151"}, map[string]string{"sn": "required"}},
		{"sn too long", keystation.Machine{SN: strings.Repeat("x", keystation.MaxSNLen+1), Model: "N151"}, map[string]string{"sn": "too long"}},
		{"bad utf-8", keystation.Machine{SN: "a\xff", Model: "N151"}, map[string]string{"sn": "not valid UTF-8"}},
		{"newline", keystation.Machine{SN: "a", Model: "N1\n51"}, map[string]string{"model": "contains control characters"}},
		{"nul", keystation.Machine{SN: "a\x00", Model: "N151"}, map[string]string{"sn": "contains control characters"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := map[string]string{}
			tc.m.Validate(f)
			if len(f) != len(tc.fields) {
				t.Fatalf("fields = %v, want %v", f, tc.fields)
			}
			for k, v := range tc.fields {
				if f[k] != v {
					t.Errorf("field %s = %q, want %q", k, f[k], v)
				}
			}
		})
	}
	if id := (keystation.Machine{SN: "S1", Model: "N151"}).ID(); id != "N151/S1" {
		t.Errorf("ID = %q", id)
	}
}

func TestErrorHelpers(t *testing.T) {
	fe := keystation.FieldError(map[string]string{"sn": "required", "model": "required"})
	if got := fe.Error(); got != "invalid request (model: required; sn: required)" {
		t.Errorf("Error() = %q", got)
	}
	tests := []struct {
		name string
		err  error
		code string
		msg  string
	}{
		{"nil", nil, "", ""},
		{"domain", keystation.Errorf(keystation.EPOOLEMPTY, "the %s pool is empty", "Home"), keystation.EPOOLEMPTY, "the Home pool is empty"},
		{"other", errString("disk I/O error /var/x"), keystation.EINTERNAL, "internal error"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if c := keystation.ErrorCode(tc.err); c != tc.code {
				t.Errorf("code = %q, want %q", c, tc.code)
			}
			if m := keystation.ErrorMessage(tc.err); m != tc.msg {
				t.Errorf("message = %q, want %q", m, tc.msg)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }
