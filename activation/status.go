package activation

import (
	"strconv"
	"strings"

	"keystation"
)

// LicenseStatus is SoftwareLicensingProduct.LicenseStatus.
type LicenseStatus uint32

// License statuses as Windows numbers them.
const (
	StatusUnlicensed      LicenseStatus = 0
	StatusLicensed        LicenseStatus = 1
	StatusOOBGrace        LicenseStatus = 2 // out-of-box grace period
	StatusOOTGrace        LicenseStatus = 3 // out-of-tolerance grace (hardware changed)
	StatusNonGenuineGrace LicenseStatus = 4
	StatusNotification    LicenseStatus = 5 // not activated, notification mode
	StatusExtendedGrace   LicenseStatus = 6
)

var statusNames = [...]string{
	StatusUnlicensed:      "Unlicensed",
	StatusLicensed:        "Licensed",
	StatusOOBGrace:        "OOBGrace",
	StatusOOTGrace:        "OOTGrace",
	StatusNonGenuineGrace: "NonGenuineGrace",
	StatusNotification:    "Notification",
	StatusExtendedGrace:   "ExtendedGrace",
}

// String returns the status name ("Licensed", "Notification", ...), or
// "Unknown(7)" for a number Windows does not document.
func (s LicenseStatus) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Unknown(" + strconv.FormatUint(uint64(s), 10) + ")"
}

// Licensed reports whether s is 1 (Licensed).
func (s LicenseStatus) Licensed() bool { return s == StatusLicensed }

// Known reports whether s is one of the documented statuses 0..6.
func (s LicenseStatus) Known() bool { return int(s) < len(statusNames) }

// ParseLicenseStatus accepts a number ("5") or a name ("Notification",
// case-insensitive).
func ParseLicenseStatus(s string) (LicenseStatus, error) {
	t := strings.TrimSpace(s)
	if v, err := strconv.ParseUint(t, 10, 32); err == nil {
		return LicenseStatus(v), nil
	}
	for i, n := range statusNames {
		if strings.EqualFold(n, t) {
			return LicenseStatus(i), nil
		}
	}
	return 0, keystation.Errorf(keystation.EINVALID, "unknown license status %q (want 0-6 or a name such as Licensed, Notification)", s)
}
