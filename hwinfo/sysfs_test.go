package hwinfo_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"keystation"
	"keystation/hwinfo"
)

func TestLinuxReader(t *testing.T) {
	memoryWarning := "memory: per-module details (slots, speed, manufacturer) need root and dmidecode; reporting MemTotal from /proc/meminfo as one module"
	laptop := keystation.Hardware{
		SerialNumber: "PF3ABCDE",
		Model:        "21CB0077CD",
		Manufacturer: "LENOVO",
		UUID:         "4C4C4544-0042-3510-8052-B4C04F4D3332",
		Baseboard:    "LENOVO 21CB0077CD",
		BIOS:         "LENOVO N3AET72W (1.37 )",
		CPU:          "12th Gen Intel(R) Core(TM) i7-1260P",
		Memory:       []keystation.MemoryModule{{ID: 0, Size: 32492716 * 1024}},
		Disks: []keystation.Disk{ // loop0, dm-0, zram0 and the USB stick sdb are left out
			{ID: 0, Size: 2000409264 * 512, InterfaceType: "NVMe", Model: "SAMSUNG MZVL21T0HCLR-00BL2", Serial: "S64PNX0T123456"},
			{ID: 1, Size: 976773168 * 512, InterfaceType: "SATA", Model: "Samsung SSD 870 EVO 500GB"},
		},
		MACs: []string{"8C:8C:AA:01:02:03", "A4:C3:F0:AA:BB:CC"}, // not lo, not docker0
		OS: keystation.OSInfo{
			Caption:      "Ubuntu 24.04.1 LTS",
			Version:      "24.04",
			Architecture: arch(),
			Kernel:       "6.8.0-48-generic",
		},
		Warnings: []string{memoryWarning},
	}

	placeholder := laptop
	placeholder.SerialNumber = ""
	placeholder.Warnings = []string{
		`serial number: /sys/class/dmi/id/product_serial holds the placeholder "To be filled by O.E.M."; pass --sn`,
		memoryWarning,
	}

	tests := []struct {
		name    string
		dir     string
		deny    []string          // system paths that fail with EACCES, as for a non-root user
		replace map[string]string // system paths read with other content
		want    keystation.Hardware
	}{
		{name: "laptop with NVMe, SATA, wifi and ethernet", dir: "laptop", want: laptop},
		{
			name:    "placeholder serial",
			dir:     "laptop",
			replace: map[string]string{"/sys/class/dmi/id/product_serial": "To be filled by O.E.M.\n"},
			want:    placeholder,
		},
		{
			name: "vm with virtio disk, not root",
			dir:  "vm",
			deny: []string{"/sys/class/dmi/id/product_serial", "/sys/class/dmi/id/product_uuid"},
			want: keystation.Hardware{
				Model:        "Standard PC (Q35 + ICH9, 2009)",
				Manufacturer: "QEMU",
				BIOS:         "EFI Development Kit II / OVMF 0.0.0",
				CPU:          "AMD EPYC 7B13 64-Core Processor",
				Memory:       []keystation.MemoryModule{{ID: 0, Size: 4012344 * 1024}},
				Disks:        []keystation.Disk{{ID: 0, Size: 67108864 * 512, InterfaceType: "SCSI"}}, // sr0 left out
				MACs:         []string{"52:54:00:12:34:56"},
				OS: keystation.OSInfo{
					Caption:      "Debian GNU/Linux 12 (bookworm)",
					Version:      "12",
					Architecture: arch(),
					Kernel:       "6.1.0-26-amd64",
				},
				Warnings: []string{
					"serial number: /sys/class/dmi/id/product_serial is readable only by root; run the station as root or pass --sn",
					"uuid: /sys/class/dmi/id/product_uuid is readable only by root; run the station as root",
					"baseboard: /sys/class/dmi/id/board_vendor does not exist and /sys/class/dmi/id/board_name does not exist",
					memoryWarning,
				},
			},
		},
		{
			name: "missing files",
			dir:  "missing",
			want: keystation.Hardware{
				OS: keystation.OSInfo{Caption: "Alpine Linux", Version: "3.20.3", Architecture: arch()},
				Warnings: []string{
					"serial number: /sys/class/dmi/id/product_serial does not exist; pass --sn",
					"model: /sys/class/dmi/id/product_name does not exist; pass --model",
					"uuid: /sys/class/dmi/id/product_uuid does not exist",
					"manufacturer: /sys/class/dmi/id/sys_vendor does not exist",
					"baseboard: /sys/class/dmi/id/board_vendor does not exist and /sys/class/dmi/id/board_name does not exist",
					"bios: /sys/class/dmi/id/bios_vendor does not exist and /sys/class/dmi/id/bios_version does not exist",
					`cpu: /proc/cpuinfo has no "model name" line`,
					"memory: /proc/meminfo does not exist",
					"disks: /sys/block does not exist",
					"macs: /sys/class/net does not exist",
					"kernel: /proc/sys/kernel/osrelease does not exist",
				},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := hwinfo.LinuxReader{
				Root:     filepath.Join("testdata", "linux", tt.dir),
				ReadFile: fakeReadFile(t, tt.deny, tt.replace),
			}
			got, err := r.Read(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			equalHardware(t, got, tt.want)
		})
	}
}

func TestLinuxReaderErrors(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		root string
		ctx  context.Context
	}{
		{"missing root", filepath.Join(t.TempDir(), "nope"), context.Background()},
		{"cancelled context", filepath.Join("testdata", "linux", "laptop"), cancelled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := (hwinfo.LinuxReader{Root: tt.root}).Read(tt.ctx); err == nil {
				t.Error("Read succeeded, want an error")
			}
		})
	}
}

func TestReadThisMachine(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the live reader is tested on Linux only")
	}
	h, err := hwinfo.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if h.OS.Architecture != arch() {
		t.Errorf("architecture = %q, want %q", h.OS.Architecture, arch())
	}
}

// fakeReadFile wraps os.ReadFile: the system paths in deny fail with a
// permission error, those in replace return the given content.
func fakeReadFile(t *testing.T, deny []string, replace map[string]string) func(string) ([]byte, error) {
	t.Helper()
	return func(name string) ([]byte, error) {
		slash := filepath.ToSlash(name)
		for _, p := range deny {
			if strings.HasSuffix(slash, p) {
				return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrPermission}
			}
		}
		for p, content := range replace {
			if strings.HasSuffix(slash, p) {
				return []byte(content), nil
			}
		}
		b, err := os.ReadFile(name)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("reading %s: %v", name, err)
		}
		return b, err
	}
}

// arch is the architecture name the readers report for this build.
func arch() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x64"
	case "386":
		return "x86"
	}
	return runtime.GOARCH
}
