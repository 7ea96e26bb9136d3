package hwinfo_test

import (
	"slices"
	"strings"
	"testing"

	"keystation"
	"keystation/hwinfo"
)

func TestFromWMIRecorded(t *testing.T) {
	tests := []struct {
		name string
		file string
		want keystation.Hardware
	}{
		{
			name: "lenovo laptop",
			file: "lenovo-laptop",
			want: keystation.Hardware{
				SerialNumber: "PF3ABCDE",
				Model:        "21CB0077CD",
				Manufacturer: "LENOVO",
				UUID:         "4C4C4544-0042-3510-8052-B4C04F4D3332",
				Baseboard:    "LENOVO 21CB0077CD",
				BIOS:         "LENOVO N3AET72W (1.37 )",
				CPU:          "12th Gen Intel(R) Core(TM) i7-1260P",
				Memory: []keystation.MemoryModule{
					{ID: 0, Size: 8 << 30, Speed: "5200 MHz", Manufacturer: "Samsung"},
					{ID: 1, Size: 8 << 30, Speed: "5200 MHz", Manufacturer: "Samsung"},
				},
				Disks: []keystation.Disk{ // the USB stick is left out
					{ID: 0, Size: 1024203640320, InterfaceType: "SCSI", Model: "SAMSUNG MZVL21T0HCLR-00BL2", Serial: "0025_3881_2140_5A41."},
				},
				Graphics: "Intel(R) Iris(R) Xe Graphics",
				MACs:     []string{"A4:C3:F0:AA:BB:CC", "8C:8C:AA:01:02:03", "A4:C3:F0:AA:BB:D0"},
				OS: keystation.OSInfo{
					Caption:      "Microsoft Windows 11 Pro",
					Version:      "23H2",
					Build:        "22631.4460",
					Architecture: "x64",
					EditionID:    "Professional",
					SKU:          48,
				},
			},
		},
		{
			name: "desktop with placeholder serial, model and uuid",
			file: "desktop-placeholder",
			want: keystation.Hardware{
				Baseboard: "ASUSTeK COMPUTER INC. PRIME B660M-A D4",
				BIOS:      "American Megatrends Inc. 3010",
				CPU:       "12th Gen Intel(R) Core(TM) i5-12400",
				Memory: []keystation.MemoryModule{
					{ID: 0, Size: 16 << 30, Speed: "3200 MHz", Manufacturer: "Kingston"},
					{ID: 1, Size: 16 << 30, Speed: "2666 MHz", Manufacturer: "Kingston"},
				},
				Disks: []keystation.Disk{
					{ID: 0, Size: 1000202273280, InterfaceType: "SCSI", Model: "NVMe KINGSTON SNV2S1000G", Serial: "50026B7686B1A2C3"},
					{ID: 1, Size: 2000396321280, InterfaceType: "IDE", Model: "ST2000DM008-2FR102", Serial: "ZFL1ABCD"},
				},
				Graphics: "Intel(R) UHD Graphics 730",
				MACs:     []string{"04:7C:16:AB:CD:EF"},
				OS: keystation.OSInfo{
					Caption:      "Microsoft Windows 11 家庭中文版",
					Version:      "23H2",
					Build:        "22631.4460",
					Architecture: "x64",
					EditionID:    "CoreCountrySpecific",
					SKU:          99,
				},
				Warnings: []string{
					`serial number: Win32_ComputerSystemProduct.IdentifyingNumber is the placeholder "System Serial Number" and Win32_BIOS.SerialNumber is the placeholder "To be filled by O.E.M."; pass --sn`,
					`model: Win32_ComputerSystemProduct.Name is the placeholder "System Product Name"; pass --model`,
					`uuid: Win32_ComputerSystemProduct.UUID is the placeholder "03000200-0400-0500-0006-000700080009"`,
					`manufacturer: Win32_ComputerSystemProduct.Vendor is the placeholder "System manufacturer"`,
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			equalHardware(t, hwinfo.FromWMI(loadRows(t, tt.file)), tt.want)
		})
	}
}

func TestFromWMIEdits(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		edit  func(*hwinfo.WMIRows)
		check func(*testing.T, keystation.Hardware)
	}{
		{
			name: "placeholder product serial falls back to the BIOS serial",
			file: "desktop-placeholder",
			edit: func(r *hwinfo.WMIRows) { r.BIOS[0].SerialNumber = " MB2345ABCDE " },
			check: func(t *testing.T, h keystation.Hardware) {
				if h.SerialNumber != "MB2345ABCDE" {
					t.Errorf("sn = %q, want the BIOS serial", h.SerialNumber)
				}
				hasNoWarning(t, h, "serial number:")
			},
		},
		{
			name: "empty serials",
			file: "lenovo-laptop",
			edit: func(r *hwinfo.WMIRows) {
				r.ComputerSystemProduct[0].IdentifyingNumber = ""
				r.BIOS[0].SerialNumber = "  "
			},
			check: func(t *testing.T, h keystation.Hardware) {
				if h.SerialNumber != "" {
					t.Errorf("sn = %q, want empty", h.SerialNumber)
				}
				hasWarning(t, h, "serial number: Win32_ComputerSystemProduct.IdentifyingNumber is empty and Win32_BIOS.SerialNumber is empty; pass --sn")
			},
		},
		{
			name: "failed queries and registry",
			file: "lenovo-laptop",
			edit: func(r *hwinfo.WMIRows) {
				r.ComputerSystemProduct, r.BIOS, r.PhysicalMemory = nil, nil, nil
				r.CurrentVersion = hwinfo.CurrentVersion{}
				r.Errors = map[string]string{
					"Win32_ComputerSystemProduct":                       "Exception occurred. (Invalid class)",
					`HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`: "Access is denied.",
				}
			},
			check: func(t *testing.T, h keystation.Hardware) {
				hasWarning(t, h, "serial number: querying Win32_ComputerSystemProduct failed: Exception occurred. (Invalid class) and Win32_BIOS returned no rows; pass --sn")
				hasWarning(t, h, "model: querying Win32_ComputerSystemProduct failed: Exception occurred. (Invalid class); pass --model")
				hasWarning(t, h, "memory: Win32_PhysicalMemory returned no rows")
				hasWarning(t, h, `os edition: reading HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion failed: Access is denied.; using OperatingSystemSKU 48 (Windows Pro)`)
				if h.OS.OSVersion() != "Windows Pro" || h.OS.Build != "22631" || h.OS.Version != "10.0.22631" {
					t.Errorf("os = %+v, osVersion %q", h.OS, h.OS.OSVersion())
				}
			},
		},
		{
			name: "only USB disks and virtual adapters",
			file: "lenovo-laptop",
			edit: func(r *hwinfo.WMIRows) {
				r.DiskDrive = r.DiskDrive[:1]
				r.NetworkAdapter = []hwinfo.NetworkAdapter{{Name: "Hyper-V", MACAddress: "00:15:5D:01:02:03"}}
			},
			check: func(t *testing.T, h keystation.Hardware) {
				if len(h.Disks) != 0 || len(h.MACs) != 0 {
					t.Errorf("disks %v macs %v, want none", h.Disks, h.MACs)
				}
				hasWarning(t, h, "disks: Win32_DiskDrive lists only USB disks or disks without media")
				hasWarning(t, h, "macs: Win32_NetworkAdapter lists no physical adapter with a MAC address")
			},
		},
		{
			name: "localized caption: the edition comes from the registry",
			file: "desktop-placeholder",
			check: func(t *testing.T, h keystation.Hardware) {
				if got := h.OS.OSVersion(); got != "Windows Home China" {
					t.Errorf("osVersion = %q, want Windows Home China", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rows := loadRows(t, tt.file)
			if tt.edit != nil {
				tt.edit(&rows)
			}
			tt.check(t, hwinfo.FromWMI(rows))
		})
	}
}

// hasWarning fails t unless h carries exactly the warning w.
func hasWarning(t *testing.T, h keystation.Hardware, w string) {
	t.Helper()
	if !slices.Contains(h.Warnings, w) {
		t.Errorf("missing warning %q\nin %q", w, h.Warnings)
	}
}

// hasNoWarning fails t if a warning of h starts with prefix.
func hasNoWarning(t *testing.T, h keystation.Hardware, prefix string) {
	t.Helper()
	for _, w := range h.Warnings {
		if strings.HasPrefix(w, prefix) {
			t.Errorf("unexpected warning %q", w)
		}
	}
}
