// Package hwinfo reads the hardware of the PC a station runs on: WMI and the
// registry on Windows, sysfs and procfs on Linux. Fields that cannot be read
// are left empty and named, with the reason, in Hardware.Warnings; a reader
// never passes an unread value on silently.
//
// The mapping from WMI rows to keystation.Hardware (FromWMI) and the sysfs
// reader (LinuxReader) are plain Go without build tags, so both are tested on
// any OS against recorded rows and fixture trees in testdata/.
package hwinfo

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"keystation"
)

// Reader reads the hardware of a PC.
type Reader interface {
	Read(ctx context.Context) (keystation.Hardware, error)
}

// ReaderFunc adapts a function, such as Read, to a Reader.
type ReaderFunc func(ctx context.Context) (keystation.Hardware, error)

// Read calls f(ctx).
func (f ReaderFunc) Read(ctx context.Context) (keystation.Hardware, error) { return f(ctx) }

// Fixed is a Reader that returns the same Hardware (or Err) on every call,
// for tests and demos.
type Fixed struct {
	Hardware keystation.Hardware
	Err      error
}

// Read returns a copy of f.Hardware, or f.Err, or the context's error.
func (f Fixed) Read(ctx context.Context) (keystation.Hardware, error) {
	if err := ctx.Err(); err != nil {
		return keystation.Hardware{}, err
	}
	if f.Err != nil {
		return keystation.Hardware{}, f.Err
	}
	h := f.Hardware
	h.Memory = slices.Clone(h.Memory)
	h.Disks = slices.Clone(h.Disks)
	h.MACs = slices.Clone(h.MACs)
	h.Warnings = slices.Clone(h.Warnings)
	return h, nil
}

// Override holds values an operator passes on the command line (the
// station's --sn, --model and --os-version flags, mainly for demo mode on
// Linux).
// Empty values leave the read value alone.
type Override struct {
	SN        string
	Model     string
	OSVersion string // becomes the OS caption and so the osVersion sent
}

// Apply returns h with o's non-empty values set and the warnings about those
// fields removed. Setting OSVersion clears the EditionID and SKU so that
// h.OS.OSVersion() returns it.
func (o Override) Apply(h keystation.Hardware) keystation.Hardware {
	var drop []string
	if v := strings.TrimSpace(o.SN); v != "" {
		h.SerialNumber = v
		drop = append(drop, fieldSerial)
	}
	if v := strings.TrimSpace(o.Model); v != "" {
		h.Model = v
		drop = append(drop, fieldModel)
	}
	if v := strings.TrimSpace(o.OSVersion); v != "" {
		h.OS.Caption = v
		h.OS.EditionID = ""
		h.OS.SKU = 0
		drop = append(drop, fieldOS, fieldEdition)
	}
	if len(drop) == 0 {
		return h
	}
	var kept []string
	for _, w := range h.Warnings {
		if !slices.ContainsFunc(drop, func(f string) bool { return strings.HasPrefix(w, f+":") }) {
			kept = append(kept, w)
		}
	}
	h.Warnings = kept
	return h
}

// Flags named in warnings as the way to supply a value by hand (see Override).
const (
	flagSN    = "--sn"
	flagModel = "--model"
	flagOS    = "--os-version"
)

// Field names that start warnings ("serial number: ..."); Override matches
// on them.
const (
	fieldSerial       = "serial number"
	fieldModel        = "model"
	fieldUUID         = "uuid"
	fieldManufacturer = "manufacturer"
	fieldBaseboard    = "baseboard"
	fieldBIOS         = "bios"
	fieldCPU          = "cpu"
	fieldMemory       = "memory"
	fieldDisks        = "disks"
	fieldGraphics     = "graphics"
	fieldMACs         = "macs"
	fieldOS           = "os"
	fieldEdition      = "os edition"
)

// warnings collects "field: reason" messages.
type warnings []string

func (w *warnings) add(field, format string, args ...any) {
	*w = append(*w, field+": "+fmt.Sprintf(format, args...))
}

// placeholders are the values firmware ships when the OEM did not fill a
// field in, compared case-insensitively.
var placeholders = map[string]bool{
	"to be filled by o.e.m.":               true,
	"to be filled by o.e.m":                true,
	"to be filled by oem":                  true,
	"default string":                       true,
	"default":                              true,
	"system serial number":                 true,
	"system product name":                  true,
	"system manufacturer":                  true,
	"system version":                       true,
	"chassis serial number":                true,
	"base board serial number":             true,
	"type1productconfigid":                 true,
	"serial number":                        true,
	"serial":                               true,
	"not specified":                        true,
	"not applicable":                       true,
	"not available":                        true,
	"none":                                 true,
	"null":                                 true,
	"n/a":                                  true,
	"na":                                   true,
	"unknown":                              true,
	"oem":                                  true,
	"o.e.m.":                               true,
	"invalid":                              true,
	"empty":                                true,
	"123456789":                            true,
	"0123456789":                           true,
	"1234567890":                           true,
	"03000200-0400-0500-0006-000700080009": true, // common default SMBIOS UUID
}

// IsPlaceholder reports whether s is empty or a value firmware ships when the
// OEM left a field unset ("To be filled by O.E.M.", "Default string",
// "System Serial Number", all zeros, all Fs, ...). Such a value does not
// identify a machine and must be treated as unreadable.
func IsPlaceholder(s string) bool {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || placeholders[s] {
		return true
	}
	// "00000000", "FFFFFFFF-FFFF-...", "........": one repeated character.
	var first rune
	for _, r := range s {
		if r == '-' || r == ' ' || r == ':' {
			continue
		}
		if first == 0 {
			first = r
		} else if r != first {
			return false
		}
	}
	return true
}

// clean trims s and collapses runs of white space to one space.
func clean(s string) string { return strings.Join(strings.Fields(s), " ") }

// join joins the non-placeholder parts with a space.
func join(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = clean(p); !IsPlaceholder(p) {
			out = append(out, p)
		}
	}
	return strings.Join(out, " ")
}

// normMAC returns a MAC address in upper case with colons, or "" for an
// empty or all-zero address.
func normMAC(s string) string {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", ":"))
	if strings.Trim(s, "0:") == "" {
		return ""
	}
	return s
}
