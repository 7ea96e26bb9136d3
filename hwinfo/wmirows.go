package hwinfo

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"keystation"
)

// The row types below are the WMI classes the Windows reader queries. Their
// field names are the WMI property names: the Windows reader selects exactly
// these fields, and recorded rows in testdata/wmi/*.json use the same names.

// ComputerSystemProduct is a row of Win32_ComputerSystemProduct.
type ComputerSystemProduct struct {
	IdentifyingNumber string // serial number
	Name              string // model
	UUID              string // SMBIOS UUID
	Vendor            string // manufacturer
}

// BIOS is a row of Win32_BIOS.
type BIOS struct {
	Manufacturer      string
	SMBIOSBIOSVersion string
	SerialNumber      string // fallback when the product serial is a placeholder
}

// BaseBoard is a row of Win32_BaseBoard.
type BaseBoard struct {
	Manufacturer string
	Product      string
}

// Processor is a row of Win32_Processor.
type Processor struct {
	Name string
}

// PhysicalMemory is a row of Win32_PhysicalMemory.
type PhysicalMemory struct {
	DeviceLocator        string
	Capacity             uint64 // bytes
	Speed                uint32 // MHz
	ConfiguredClockSpeed uint32 // MHz
	Manufacturer         string
}

// DiskDrive is a row of Win32_DiskDrive.
type DiskDrive struct {
	Index         uint32
	Size          uint64 // bytes
	InterfaceType string
	Model         string
	SerialNumber  string
}

// VideoController is a row of Win32_VideoController.
type VideoController struct {
	Name string
}

// OperatingSystem is a row of Win32_OperatingSystem.
type OperatingSystem struct {
	Caption            string
	Version            string
	BuildNumber        string
	OSArchitecture     string
	OperatingSystemSKU uint32
}

// NetworkAdapter is a row of Win32_NetworkAdapter.
type NetworkAdapter struct {
	Name            string
	MACAddress      string
	PhysicalAdapter bool
}

// CurrentVersion holds the values read from the registry key
// HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion.
type CurrentVersion struct {
	EditionID      string // "Core", "Professional", ...
	DisplayVersion string // "23H2"
	UBR            uint32 // update build revision: the 4460 of 22631.4460
}

// WMI class names, also the keys of WMIRows.Errors.
const (
	classProduct   = "Win32_ComputerSystemProduct"
	classBIOS      = "Win32_BIOS"
	classBaseBoard = "Win32_BaseBoard"
	classProcessor = "Win32_Processor"
	classMemory    = "Win32_PhysicalMemory"
	classDisk      = "Win32_DiskDrive"
	classVideo     = "Win32_VideoController"
	classOS        = "Win32_OperatingSystem"
	classNetwork   = "Win32_NetworkAdapter"
	// registryKey is the Errors key for a failed registry read.
	registryKey = `HKLM\SOFTWARE\Microsoft\Windows NT\CurrentVersion`
)

// WMIRows is everything the Windows reader queries, as returned by WMI and
// the registry. Recorded as JSON it is the test fixture for FromWMI.
type WMIRows struct {
	ComputerSystemProduct []ComputerSystemProduct `json:"Win32_ComputerSystemProduct"`
	BIOS                  []BIOS                  `json:"Win32_BIOS"`
	BaseBoard             []BaseBoard             `json:"Win32_BaseBoard"`
	Processor             []Processor             `json:"Win32_Processor"`
	PhysicalMemory        []PhysicalMemory        `json:"Win32_PhysicalMemory"`
	DiskDrive             []DiskDrive             `json:"Win32_DiskDrive"`
	VideoController       []VideoController       `json:"Win32_VideoController"`
	OperatingSystem       []OperatingSystem       `json:"Win32_OperatingSystem"`
	NetworkAdapter        []NetworkAdapter        `json:"Win32_NetworkAdapter"`
	CurrentVersion        CurrentVersion          `json:"CurrentVersion"`
	// Errors maps a WMI class name (or the registry key) to the error its
	// query returned.
	Errors map[string]string `json:"Errors,omitempty"`
}

// FromWMI maps WMI rows to the Hardware they describe. Placeholder serials
// fall back to Win32_BIOS.SerialNumber; fields that stay unreadable are left
// empty and explained in Warnings. Memory module IDs are the rows' positions
// (slot order as WMI lists them); disk IDs are Win32_DiskDrive.Index. USB
// disks (such as a station's own stick) and disks without media are not the
// PC's disks and are left out. The OS version is the registry's
// DisplayVersion ("23H2") when present, else Win32_OperatingSystem.Version.
func FromWMI(rows WMIRows) keystation.Hardware {
	var h keystation.Hardware
	var w warnings

	p := first(rows.ComputerSystemProduct)
	b := first(rows.BIOS)
	switch {
	case !IsPlaceholder(p.IdentifyingNumber):
		h.SerialNumber = clean(p.IdentifyingNumber)
	case !IsPlaceholder(b.SerialNumber):
		h.SerialNumber = clean(b.SerialNumber)
	default:
		w.add(fieldSerial, "%s and %s; pass %s",
			rows.why(classProduct, len(rows.ComputerSystemProduct), "IdentifyingNumber", p.IdentifyingNumber),
			rows.why(classBIOS, len(rows.BIOS), "SerialNumber", b.SerialNumber), flagSN)
	}
	if !IsPlaceholder(p.Name) {
		h.Model = clean(p.Name)
	} else {
		w.add(fieldModel, "%s; pass %s", rows.why(classProduct, len(rows.ComputerSystemProduct), "Name", p.Name), flagModel)
	}
	if !IsPlaceholder(p.UUID) {
		h.UUID = strings.ToUpper(clean(p.UUID))
	} else {
		w.add(fieldUUID, "%s", rows.why(classProduct, len(rows.ComputerSystemProduct), "UUID", p.UUID))
	}
	if !IsPlaceholder(p.Vendor) {
		h.Manufacturer = clean(p.Vendor)
	} else {
		w.add(fieldManufacturer, "%s", rows.why(classProduct, len(rows.ComputerSystemProduct), "Vendor", p.Vendor))
	}

	bb := first(rows.BaseBoard)
	if h.Baseboard = join(bb.Manufacturer, bb.Product); h.Baseboard == "" {
		w.add(fieldBaseboard, "%s", rows.why(classBaseBoard, len(rows.BaseBoard), "Product", bb.Product))
	}
	if h.BIOS = join(b.Manufacturer, b.SMBIOSBIOSVersion); h.BIOS == "" {
		w.add(fieldBIOS, "%s", rows.why(classBIOS, len(rows.BIOS), "SMBIOSBIOSVersion", b.SMBIOSBIOSVersion))
	}
	cpu := first(rows.Processor)
	if h.CPU = clean(cpu.Name); h.CPU == "" {
		w.add(fieldCPU, "%s", rows.why(classProcessor, len(rows.Processor), "Name", cpu.Name))
	}

	for i, m := range rows.PhysicalMemory {
		speed := m.Speed
		if speed == 0 {
			speed = m.ConfiguredClockSpeed
		}
		mod := keystation.MemoryModule{ID: i, Size: m.Capacity, Manufacturer: clean(m.Manufacturer)}
		if speed > 0 {
			mod.Speed = fmt.Sprintf("%d MHz", speed)
		}
		h.Memory = append(h.Memory, mod)
	}
	if len(h.Memory) == 0 {
		w.add(fieldMemory, "%s", rows.why(classMemory, 0, "", ""))
	}

	disks := slices.SortedFunc(slices.Values(rows.DiskDrive), func(a, b DiskDrive) int { return cmp.Compare(a.Index, b.Index) })
	for _, d := range disks {
		if strings.EqualFold(clean(d.InterfaceType), "USB") || d.Size == 0 {
			continue
		}
		h.Disks = append(h.Disks, keystation.Disk{
			ID:            int(d.Index),
			Size:          d.Size,
			InterfaceType: clean(d.InterfaceType),
			Model:         clean(d.Model),
			Serial:        clean(d.SerialNumber),
		})
	}
	if len(h.Disks) == 0 {
		reason := rows.why(classDisk, len(rows.DiskDrive), "", "")
		if len(rows.DiskDrive) > 0 {
			reason = classDisk + " lists only USB disks or disks without media"
		}
		w.add(fieldDisks, "%s", reason)
	}

	for _, v := range rows.VideoController {
		if h.Graphics = clean(v.Name); h.Graphics != "" {
			break
		}
	}
	if h.Graphics == "" {
		w.add(fieldGraphics, "%s", rows.why(classVideo, len(rows.VideoController), "Name", ""))
	}

	for _, n := range rows.NetworkAdapter {
		if mac := normMAC(n.MACAddress); n.PhysicalAdapter && mac != "" && !slices.Contains(h.MACs, mac) {
			h.MACs = append(h.MACs, mac)
		}
	}
	if len(h.MACs) == 0 {
		reason := rows.why(classNetwork, len(rows.NetworkAdapter), "", "")
		if len(rows.NetworkAdapter) > 0 {
			reason = classNetwork + " lists no physical adapter with a MAC address"
		}
		w.add(fieldMACs, "%s", reason)
	}

	h.OS, w = osFromWMI(rows, w)
	h.Warnings = w
	return h
}

func osFromWMI(rows WMIRows, w warnings) (keystation.OSInfo, warnings) {
	o := first(rows.OperatingSystem)
	cv := rows.CurrentVersion
	info := keystation.OSInfo{
		Caption:      clean(o.Caption),
		Version:      clean(cv.DisplayVersion),
		Build:        clean(o.BuildNumber),
		Architecture: winArch(o.OSArchitecture),
		EditionID:    clean(cv.EditionID),
		SKU:          o.OperatingSystemSKU,
	}
	if info.Version == "" {
		info.Version = clean(o.Version)
	}
	if info.Build != "" && cv.UBR > 0 {
		info.Build += fmt.Sprintf(".%d", cv.UBR)
	}
	if info.Caption == "" {
		w.add(fieldOS, "%s", rows.why(classOS, len(rows.OperatingSystem), "Caption", o.Caption))
	}
	if info.EditionID == "" {
		reason := "the registry value EditionID is empty"
		if err := rows.Errors[registryKey]; err != "" {
			reason = "reading " + registryKey + " failed: " + err
		}
		if s := keystation.OSVersionFromEdition("", info.SKU); s != "" {
			w.add(fieldEdition, "%s; using OperatingSystemSKU %d (%s)", reason, info.SKU, s)
		} else {
			w.add(fieldEdition, "%s and OperatingSystemSKU %d is unknown; using the caption %q", reason, info.SKU, info.Caption)
		}
	}
	return info, w
}

// why explains an unreadable value: the query failed, returned no rows, or
// the property is empty or a placeholder.
func (r WMIRows) why(class string, n int, prop, value string) string {
	switch {
	case n == 0 && r.Errors[class] != "":
		return "querying " + class + " failed: " + r.Errors[class]
	case n == 0:
		return class + " returned no rows"
	case strings.TrimSpace(value) == "":
		return class + "." + prop + " is empty"
	default:
		return fmt.Sprintf("%s.%s is the placeholder %q", class, prop, clean(value))
	}
}

func first[T any](s []T) T {
	var v T
	if len(s) > 0 {
		v = s[0]
	}
	return v
}

// winArch maps Win32_OperatingSystem.OSArchitecture ("64-bit", localized
// as "64 位" and so on) to x64, x86 or arm64.
func winArch(s string) string {
	l := strings.ToLower(s)
	switch {
	case strings.Contains(l, "arm") && strings.Contains(l, "64"):
		return "arm64"
	case strings.Contains(l, "64"):
		return "x64"
	case strings.Contains(l, "32"):
		return "x86"
	}
	return clean(s)
}
