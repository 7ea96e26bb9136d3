package activation

import (
	"errors"
	"strings"

	"keystation"
)

// The platform-independent parts of the Windows driver (windows.go): WQL,
// choice of the Windows product, conversion of WMI values.

// WindowsApplicationID is SoftwareLicensingProduct.ApplicationID of Windows.
const WindowsApplicationID = "55c92734-d682-4d71-983e-d6ec3f16059f"

// WQL the Windows driver runs.
const (
	QueryService     = "SELECT Version FROM SoftwareLicensingService"
	QueryFirmwareKey = "SELECT OA3xOriginalProductKey FROM SoftwareLicensingService"
	QueryProducts    = "SELECT ID, Name, PartialProductKey, LicenseStatus FROM SoftwareLicensingProduct" +
		" WHERE ApplicationID = '" + WindowsApplicationID + "' AND PartialProductKey IS NOT NULL"
)

// ParseFirmwareKey turns OA3xOriginalProductKey into a FirmwareKey: empty
// (or blank) means none; a well-formed key is normalised; anything else is
// kept as given (trimmed) so that the PC still counts as having one.
func ParseFirmwareKey(raw string) FirmwareKey {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return FirmwareKey{}
	}
	if k, err := keystation.ParseProductKey(raw); err == nil {
		return FirmwareKey{Key: k}
	}
	return FirmwareKey{Key: keystation.ProductKey(raw)}
}

// product is a row of QueryProducts.
type product struct {
	ID, Name, PartialProductKey string
	LicenseStatus               LicenseStatus
}

// pickProduct chooses among the Windows products that have a key: the one
// whose partial key is lastFive when the driver installed a key, else the
// first. It fails when there is none, or when lastFive is not among them.
func pickProduct(ps []product, lastFive string) (int, error) {
	if len(ps) == 0 {
		return -1, &Error{Message: "no Windows product with an installed product key was found (SoftwareLicensingProduct)"}
	}
	if lastFive == "" {
		return 0, nil
	}
	partial := make([]string, len(ps))
	for i, p := range ps {
		if strings.EqualFold(p.PartialProductKey, lastFive) {
			return i, nil
		}
		partial[i] = p.PartialProductKey
	}
	return -1, &Error{Message: "the installed key " + keystation.MaskKey("xxxxx-xxxxx-xxxxx-xxxxx-"+lastFive) +
		" is not among the Windows products (partial keys found: " + strings.Join(partial, ", ") + ")"}
}

// uint32Of converts a VARIANT's Go value (WMI uint32 arrives as int32).
func uint32Of(v any) (uint32, bool) {
	switch n := v.(type) {
	case int8:
		return uint32(n), true
	case int16:
		return uint32(n), true
	case int32:
		return uint32(n), true
	case int64:
		return uint32(n), true
	case int:
		return uint32(n), true
	case uint8:
		return uint32(n), true
	case uint16:
		return uint32(n), true
	case uint32:
		return n, true
	case uint64:
		return uint32(n), true
	case uint:
		return uint32(n), true
	}
	return 0, false
}

// stringOf converts a VARIANT's Go value; NULL gives "".
func stringOf(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}

// scrubKey masks key wherever it appears in the message of err, so that a
// service message quoting the key cannot leak it into reports or logs.
func scrubKey(err error, key keystation.ProductKey) error {
	var e *Error
	if key == "" || !errors.As(err, &e) {
		return err
	}
	for _, form := range []string{key.Plain(), strings.ReplaceAll(key.Plain(), "-", "")} {
		if form != "" {
			e.Message = strings.ReplaceAll(e.Message, form, key.Masked())
		}
	}
	return err
}
