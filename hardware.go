package keystation

import (
	"fmt"
	"strings"
)

// Hardware is what a station reads of the PC in front of it. Its JSON names
// follow seed 000's success report (cpu, memory[], disk[]); the rest feeds seed
// 001's hardware_summary and os_info.
type Hardware struct {
	SerialNumber string         `json:"sn"`
	Model        string         `json:"model"`
	Manufacturer string         `json:"manufacturer,omitempty"`
	UUID         string         `json:"uuid,omitempty"`
	Baseboard    string         `json:"baseboard,omitempty"`
	BIOS         string         `json:"bios,omitempty"`
	CPU          string         `json:"cpu"`
	Memory       []MemoryModule `json:"memory"`
	Disks        []Disk         `json:"disk"`
	Graphics     string         `json:"graphics,omitempty"`
	MACs         []string       `json:"macs,omitempty"`
	OS           OSInfo         `json:"os"`
	// Warnings name the fields that could not be read and why (for example
	// root-only DMI fields on Linux). A station never passes an unread field
	// on silently as an empty string.
	Warnings []string `json:"warnings,omitempty"`
}

// MemoryModule is one installed memory module (seed 000: memory[]).
type MemoryModule struct {
	ID           int    `json:"id"`   // slot index
	Size         uint64 `json:"size"` // bytes
	Speed        string `json:"speed"`
	Manufacturer string `json:"manufacturer"`
}

// Disk is one installed disk (seed 000: disk[]).
type Disk struct {
	ID            int    `json:"id"`   // index of the disk on this PC
	Size          uint64 `json:"size"` // bytes
	InterfaceType string `json:"interfaceType"`
	Model         string `json:"model"`
	Serial        string `json:"serial,omitempty"`
}

// OSInfo describes the installed operating system (seed 001: os_info).
type OSInfo struct {
	Caption      string `json:"name"`
	Version      string `json:"version"`
	Build        string `json:"build"`
	Architecture string `json:"architecture"`
	// EditionID and SKU come from the registry / Win32_OperatingSystem on
	// Windows and decide the edition pool ahead of the localized caption.
	EditionID string `json:"editionId,omitempty"`
	SKU       uint32 `json:"sku,omitempty"`
	Kernel    string `json:"kernel,omitempty"`
}

// OSVersion is the string sent as seed 000's osVersion: derived from the
// EditionID/SKU when known, else the caption.
func (o OSInfo) OSVersion() string {
	if s := OSVersionFromEdition(o.EditionID, o.SKU); s != "" {
		return s
	}
	return o.Caption
}

// MemoryTotal is the sum of the modules' sizes in bytes.
func (h Hardware) MemoryTotal() uint64 {
	var t uint64
	for _, m := range h.Memory {
		t += m.Size
	}
	return t
}

// Summary is seed 001's hardware_summary: plain, short, no serial numbers.
type Summary struct {
	CPU             string   `json:"cpu"`
	Memory          string   `json:"memory"`
	Disk            string   `json:"disk"`
	Motherboard     string   `json:"motherboard"`
	Graphics        string   `json:"graphics,omitempty"`
	BIOS            string   `json:"bios,omitempty"`
	NetworkAdapters []string `json:"network_adapters,omitempty"`
}

// Summary builds the plain hardware summary shown in listings.
func (h Hardware) Summary() Summary {
	disks := make([]string, 0, len(h.Disks))
	for _, d := range h.Disks {
		s := HumanBytes(d.Size)
		if d.InterfaceType != "" {
			s += " " + d.InterfaceType
		}
		disks = append(disks, s)
	}
	return Summary{
		CPU:         h.CPU,
		Memory:      HumanBytes(h.MemoryTotal()),
		Disk:        strings.Join(disks, ", "),
		Motherboard: h.Baseboard,
		Graphics:    h.Graphics,
		BIOS:        h.BIOS,
	}
}

// HumanBytes formats a size as "16 GB", "512 GB", "1 TB" (powers of 1024 for
// memory-like sizes are rounded to the nearest unit).
func HumanBytes(n uint64) string {
	if n == 0 {
		return "0 B"
	}
	units := []string{"B", "KB", "MB", "GB", "TB", "PB"}
	f := float64(n)
	i := 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	if f >= 100 || f == float64(int64(f)) {
		return fmt.Sprintf("%.0f %s", f, units[i])
	}
	return fmt.Sprintf("%.1f %s", f, units[i])
}
