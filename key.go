// Package keystation holds the domain of the product: product keys, editions,
// key states, failure classification, hardware and reports, and the error codes
// every adapter (store, api, queue, ui) speaks. It depends on nothing but the
// standard library.
package keystation

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// KeyAlphabet is the set of characters a Windows product key is made of.
const KeyAlphabet = "BCDFGHJKMNPQRTVWXY2346789"

// ProductKey is a normalised Windows product key: 5 groups of 5 characters of
// KeyAlphabet, dash-separated, upper case.
type ProductKey string

// ParseProductKey normalises s (case, spaces, missing dashes) and checks it is a
// well-formed product key. The error says why it is not; it never repeats the
// whole input, which may be a real key.
func ParseProductKey(s string) (ProductKey, error) {
	var b strings.Builder
	b.Grow(29)
	n := 0
	for i, r := range s {
		switch {
		case r == '-' || r == ' ' || r == '\t':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		if !strings.ContainsRune(KeyAlphabet, r) {
			return "", Errorf(EINVALID, "character %q at position %d is not allowed in a product key", r, i+1)
		}
		if n == 25 {
			return "", Errorf(EINVALID, "a product key has 25 characters, this one has more")
		}
		if n > 0 && n%5 == 0 {
			b.WriteByte('-')
		}
		b.WriteRune(r)
		n++
	}
	if n == 0 {
		return "", Errorf(EINVALID, "product key is empty")
	}
	if n != 25 {
		return "", Errorf(EINVALID, "a product key has 25 characters, this one has %d", n)
	}
	// Dashes, where given, must sit between the groups.
	if strings.Contains(s, "-") {
		groups := strings.Split(strings.TrimSpace(s), "-")
		if len(groups) != 5 {
			return "", Errorf(EINVALID, "a product key has 5 dash-separated groups, this one has %d", len(groups))
		}
		for i, g := range groups {
			if l := len(strings.Join(strings.Fields(g), "")); l != 5 {
				return "", Errorf(EINVALID, "group %d of the product key has %d characters, want 5", i+1, l)
			}
		}
	}
	return ProductKey(b.String()), nil
}

// String returns the key masked; use Plain for the real value. This keeps a key
// that slips into a log line or a %v from being printed whole.
func (k ProductKey) String() string { return k.Masked() }

// LogValue keeps structured logs (slog's JSON handler ignores String) from
// printing the whole key.
func (k ProductKey) LogValue() slog.Value { return slog.StringValue(k.Masked()) }

// Plain returns the full key. Call it only where the key must reach the
// activation service, the worker's screen or an encrypted column.
func (k ProductKey) Plain() string { return string(k) }

// Masked hides all but the last group, as Windows shows a partial product key.
func (k ProductKey) Masked() string { return MaskKey(string(k)) }

// Preview is seed 001's license_key_preview: first 5 + "..." + last 5.
func (k ProductKey) Preview() string { return KeyPreview(string(k)) }

// LastFive is the partial product key Windows reports for an installed key.
func (k ProductKey) LastFive() string {
	if len(k) < 5 {
		return ""
	}
	return string(k[len(k)-5:])
}

// MaskKey masks any key-like string for logs and screens.
func MaskKey(s string) string {
	if len(s) <= 5 {
		return strings.Repeat("*", len(s))
	}
	return "*****-*****-*****-*****-" + s[len(s)-5:]
}

// KeyPreview returns first 5 + "..." + last 5 of a key (seed 001).
func KeyPreview(s string) string {
	if len(s) < 10 {
		return strings.Repeat("*", len(s))
	}
	return s[:5] + "..." + s[len(s)-5:]
}

// KeyID is the 13-digit Product Key ID a distributor supplies with each key.
type KeyID int64

const (
	minKeyID = 1_000_000_000_000
	maxKeyID = 9_999_999_999_999
)

// ParseKeyID parses a 13-digit Product Key ID.
func ParseKeyID(s string) (KeyID, error) {
	s = strings.TrimSpace(s)
	if len(s) != 13 {
		return 0, Errorf(EINVALID, "a keyId has 13 digits, this one has %d characters", len(s))
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < minKeyID {
		return 0, Errorf(EINVALID, "a keyId is 13 digits, not %q", s)
	}
	return KeyID(v), nil
}

// Valid reports whether id is a 13-digit Product Key ID.
func (id KeyID) Valid() bool { return id >= minKeyID && id <= maxKeyID }

func (id KeyID) String() string { return fmt.Sprintf("%013d", int64(id)) }
