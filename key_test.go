package keystation_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"unicode/utf8"

	"keystation"
)

// seedKey is the example key of seed 000.
const seedKey = "W7PY2-N837X-89C72-4PPXP-D69QR"

func TestParseProductKeyAccepts(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"canonical", seedKey},
		{"lower case", strings.ToLower(seedKey)},
		{"mixed case", "w7Py2-n837X-89c72-4pPxP-d69Qr"},
		{"no dashes", "W7PY2N837X89C724PPXPD69QR"},
		{"no dashes lower", "w7py2n837x89c724ppxpd69qr"},
		{"spaces instead of dashes", "W7PY2 N837X 89C72 4PPXP D69QR"},
		{"surrounding whitespace", "  \tW7PY2-N837X-89C72-4PPXP-D69QR \t"},
		{"spaces around dashes", "W7PY2 - N837X - 89C72 - 4PPXP - D69QR"},
		{"spaces inside groups without dashes", "W7 PY2N8 37X89C 724PPXPD69QR"},
		{"tabs", "W7PY2\tN837X\t89C72\t4PPXP\tD69QR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keystation.ParseProductKey(tc.in)
			if err != nil {
				t.Fatalf("ParseProductKey(%q): %v", tc.in, err)
			}
			if k.Plain() != seedKey {
				t.Fatalf("ParseProductKey(%q) = %q, want %q", tc.in, k.Plain(), seedKey)
			}
		})
	}
}

func TestParseProductKeyRejects(t *testing.T) {
	tests := []struct {
		name string
		in   string
		why  string // part of the error message
	}{
		{"empty", "", "empty"},
		{"only dashes and spaces", " - - ", "empty"},
		{"too short", "W7PY2-N837X-89C72-4PPXP-D69Q", "this one has 24"},
		{"one group", "W7PY2", "this one has 5"},
		{"too long", "W7PY2-N837X-89C72-4PPXP-D69QRB", "this one has more"},
		{"six groups", "W7PY2-N837X-89C72-4PPXP-D69QR-BBBBB", "this one has more"},
		{"vowel", "A7PY2-N837X-89C72-4PPXP-D69QR", "'A' at position 1"},
		{"letter O", "W7PY2-N837X-89C72-4PPXP-D69QO", "'O' at position 29"},
		{"digit 0", "W7PY2-N837X-09C72-4PPXP-D69QR", "'0' at position 13"},
		{"digit 1", "W7PY2-N837X-89C72-4PPXP-D691R", "'1'"},
		{"digit 5", "W7PY2-N837X-89C72-4PPXP-D695R", "'5'"},
		{"letter L lower", "W7PY2-N837X-89C72-4PPXP-D69lR", "'L'"},
		{"underscore", "W7PY2_N837X_89C72_4PPXP_D69QR", "'_' at position 6"},
		{"unicode", "W7PY2-N837X-89C72-4PPXP-D69QÉ", "'É'"},
		{"newline", "W7PY2-N837X-89C72-4PPXP-D69QR\n", `'\n'`},
		{"dash misplaced", "W7PY-2N837X-89C72-4PPXP-D69QR", "group 1 of the product key has 4 characters"},
		{"dash misplaced in last group", "W7PY2-N837X-89C72-4PPXPD-69QR", "group 4 of the product key has 6 characters"},
		{"too few dashes", "W7PY2-N837X89C72-4PPXP-D69QR", "5 dash-separated groups, this one has 4"},
		{"double dash", "W7PY2--N837X-89C72-4PPXP-D69QR", "5 dash-separated groups, this one has 6"},
		{"leading dash", "-W7PY2-N837X-89C72-4PPXP-D69QR", "this one has 6"},
		{"trailing dash", "W7PY2-N837X-89C72-4PPXP-D69QR-", "this one has 6"},
		{"single dash", "W7PY2N837X89C724PPXPD69Q-R", "this one has 2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := keystation.ParseProductKey(tc.in)
			if err == nil {
				t.Fatalf("ParseProductKey(%q) = %q, want an error", tc.in, k.Plain())
			}
			if c := keystation.ErrorCode(err); c != keystation.EINVALID {
				t.Errorf("code = %s, want %s", c, keystation.EINVALID)
			}
			if !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
			assertNoKeyRun(t, err.Error())
			if compact := strings.NewReplacer("-", "", " ", "").Replace(strings.ToUpper(tc.in)); len(compact) >= 20 &&
				strings.Contains(strings.ToUpper(err.Error()), compact[:20]) {
				t.Errorf("error %q repeats the input", err)
			}
		})
	}
}

// assertNoKeyRun fails when s holds 25 consecutive key characters (ignoring
// dashes): what a whole product key would look like.
func assertNoKeyRun(t testing.TB, s string) {
	t.Helper()
	if hasKeyRun(s) {
		t.Fatalf("%q contains a whole product key", s)
	}
}

func hasKeyRun(s string) bool {
	run := 0
	for _, r := range strings.ToUpper(s) {
		switch {
		case r == '-':
		case strings.ContainsRune(keystation.KeyAlphabet, r):
			run++
			if run >= 25 {
				return true
			}
		default:
			run = 0
		}
	}
	return false
}

func TestProductKeyNeverPrintsWhole(t *testing.T) {
	k, err := keystation.ParseProductKey(seedKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, got, want string
	}{
		{"String", k.String(), "*****-*****-*****-*****-D69QR"},
		{"Masked", k.Masked(), "*****-*****-*****-*****-D69QR"},
		{"Preview", k.Preview(), "W7PY2...D69QR"},
		{"LastFive", k.LastFive(), "D69QR"},
		{"%v", fmt.Sprintf("%v", k), "*****-*****-*****-*****-D69QR"},
		{"%s", fmt.Sprintf("%s", k), "*****-*****-*****-*****-D69QR"},
		{"Plain", k.Plain(), seedKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Fatalf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
	if got := keystation.ProductKey("").LastFive(); got != "" {
		t.Errorf("LastFive of empty = %q", got)
	}
}

// TestProductKeyInSlogJSON logs a ProductKey as an attribute through slog's
// JSON handler, which does not call String(): the key must still be masked
// (invariant 7: logs never contain a full key).
func TestProductKeyInSlogJSON(t *testing.T) {
	k, _ := keystation.ParseProductKey(seedKey)
	var text bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("text", "key", k)
	if strings.Contains(text.String(), seedKey) {
		t.Errorf("text handler printed the whole key: %s", text.String())
	}
	var js bytes.Buffer
	slog.New(slog.NewJSONHandler(&js, nil)).Info("json", "key", k)
	if strings.Contains(js.String(), seedKey) {
		t.Fatal("regression: keystation.ProductKey has no LogValue/MarshalText, so slog's JSON handler logs the whole key " +
			"(json.Marshal of a string type ignores String()); add `func (k ProductKey) LogValue() slog.Value " +
			"{ return slog.StringValue(k.Masked()) }` to key.go")
	}
}

func TestMaskKey(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "ABC", "***"},
		{"five", "ABCDE", "*****"},
		{"six", "ABCDEF", "*****-*****-*****-*****-BCDEF"},
		{"full key", seedKey, "*****-*****-*****-*****-D69QR"},
		{"no dashes", "W7PY2N837X89C724PPXPD69QR", "*****-*****-*****-*****-D69QR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keystation.MaskKey(tc.in); got != tc.want {
				t.Fatalf("MaskKey(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestKeyPreview(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"short", "ABCDEFGHJ", "*********"},
		{"ten", "ABCDEFGHJK", "ABCDE...FGHJK"},
		{"full key", seedKey, "W7PY2...D69QR"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := keystation.KeyPreview(tc.in); got != tc.want {
				t.Fatalf("KeyPreview(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseKeyID(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    keystation.KeyID
		wantErr string
	}{
		{"seed 000", "3259666517449", 3259666517449, ""},
		{"smallest", "1000000000000", 1000000000000, ""},
		{"largest", "9999999999999", 9999999999999, ""},
		{"surrounding spaces", " 3259666517449 ", 3259666517449, ""},
		{"empty", "", 0, "this one has 0 characters"},
		{"12 digits", "325966651744", 0, "this one has 12 characters"},
		{"14 digits", "32596665174490", 0, "this one has 14 characters"},
		{"leading zero", "0259666517449", 0, "13 digits"},
		{"letters", "32596665174AB", 0, "13 digits"},
		{"negative", "-325966651744", 0, "13 digits"},
		{"plus sign", "+325966651744", 0, "13 digits"},
		{"decimal point", "3259666517.49", 0, "13 digits"},
		{"zero", "0000000000000", 0, "13 digits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keystation.ParseKeyID(tc.in)
			if tc.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseKeyID(%q) = %d, want an error", tc.in, got)
				}
				if keystation.ErrorCode(err) != keystation.EINVALID || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v (%s), want EINVALID saying %q", err, keystation.ErrorCode(err), tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseKeyID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
			if !got.Valid() || got.String() != strings.TrimSpace(tc.in) {
				t.Fatalf("Valid() = %v, String() = %q", got.Valid(), got.String())
			}
		})
	}
}

func TestKeyIDValid(t *testing.T) {
	tests := []struct {
		id   keystation.KeyID
		want bool
	}{
		{0, false}, {-1, false}, {999_999_999_999, false}, {1_000_000_000_000, true},
		{9_999_999_999_999, true}, {10_000_000_000_000, false},
	}
	for _, tc := range tests {
		if got := tc.id.Valid(); got != tc.want {
			t.Errorf("KeyID(%d).Valid() = %v, want %v", int64(tc.id), got, tc.want)
		}
	}
}

func FuzzParseProductKey(f *testing.F) {
	for _, s := range []string{
		seedKey, strings.ToLower(seedKey), "W7PY2N837X89C724PPXPD69QR", "W7PY2 N837X 89C72 4PPXP D69QR",
		"", "-", "W7PY-2N837X-89C72-4PPXP-D69QR", "W7PY2-N837X-89C72-4PPXP-D69QRB", "A7PY2-N837X-89C72-4PPXP-D69QR",
		"W7PY2--N837X-89C72-4PPXP-D69QR", "\xff\xfe", "W7PY2-N837X-89C72-4PPXP-D69Q\x00", "ÉÉÉ",
		" -W7PY2N837X89C724PPXPD69QR", "W7PY2\tN837X\t89C72\t4PPXP\tD69QR",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := keystation.ParseProductKey(s)
		if err != nil {
			if k != "" {
				t.Fatalf("error %v with a key %q", err, k.Plain())
			}
			if keystation.ErrorCode(err) != keystation.EINVALID {
				t.Fatalf("code %s, want %s", keystation.ErrorCode(err), keystation.EINVALID)
			}
			if hasKeyRun(err.Error()) {
				t.Fatalf("error message %q contains 25 key characters in a row", err)
			}
			return
		}
		p := k.Plain()
		if len(p) != 29 || utf8.RuneCountInString(p) != 29 {
			t.Fatalf("accepted %q as %q, %d bytes", s, p, len(p))
		}
		for i, r := range p {
			if (i+1)%6 == 0 {
				if r != '-' {
					t.Fatalf("accepted key %q has %q at %d, want a dash", p, r, i)
				}
			} else if !strings.ContainsRune(keystation.KeyAlphabet, r) {
				t.Fatalf("accepted key %q has %q, not in the alphabet", p, r)
			}
		}
		again, err := keystation.ParseProductKey(p)
		if err != nil || again != k {
			t.Fatalf("re-parsing %q gave %q, %v", p, again.Plain(), err)
		}
		if strings.Contains(k.String(), p) || strings.Contains(k.Masked(), p[:23]) {
			t.Fatalf("masked form %q shows the key", k.String())
		}
	})
}
