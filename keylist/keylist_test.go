package keylist_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"

	"keystation"
	"keystation/keylist"
)

// keyShaped finds anything that could be a whole product key in a reason.
var keyShaped = regexp.MustCompile(`(?i)[BCDFGHJKMNPQRTVWXY2346789]{5}([- ]?[BCDFGHJKMNPQRTVWXY2346789]{5}){4}`)

func entry(line int, key string, id keystation.KeyID, edition string) keylist.Entry {
	return keylist.Entry{Line: line, Key: keystation.ProductKey(key), KeyID: id, Edition: edition}
}

func rejected(line int, reason, key string) keylist.Rejection {
	r := keylist.Rejection{Line: line, Reason: reason}
	if key != "" {
		r.Key = keystation.MaskKey(key)
	}
	return r
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkList asserts what every list must satisfy, whatever the input: no
// reason holds anything key-shaped but the alphabet ParseProductKey names.
func checkList(t *testing.T, l *keylist.List) {
	t.Helper()
	for _, r := range l.Rejected {
		if keyShaped.MatchString(r.Reason) {
			t.Errorf("line %d: reason %q may hold a whole product key", r.Line, r.Reason)
		}
	}
}

func TestRead(t *testing.T) {
	tests := []struct {
		name     string
		file     string // under testdata; or
		input    string
		opt      keylist.Options
		format   string
		lines    int
		entries  []keylist.Entry
		rejected []keylist.Rejection
		dups     int
		summary  string
	}{
		{
			name:   "distributor CSV with header",
			file:   "distributor.csv",
			format: "csv",
			lines:  5,
			entries: []keylist.Entry{
				entry(2, "YRV9W-XCQQ9-4KBTX-FXF3R-F7HFT", 3307135000001, "pro"),
				entry(3, "3T9DH-BRBM6-PWTRT-BW34K-DJBKR", 3307135000002, "home"),
				entry(4, "PPT4D-W3NXN-78GMT-H3FJ9-CBKWK", 3307135000003, "pro"),
				entry(5, "99MHF-DPYWX-PJDDX-HGNN2-3KVXV", 3307135000004, "home-single-language"),
			},
			summary: "4 keys (home 1, home-single-language 1, pro 2), 0 rejected",
		},
		{
			name:   "distributor CSV, default edition conflicts",
			file:   "distributor.csv",
			opt:    keylist.Options{DefaultEdition: "Pro"},
			format: "csv",
			lines:  5,
			entries: []keylist.Entry{
				entry(2, "YRV9W-XCQQ9-4KBTX-FXF3R-F7HFT", 3307135000001, "pro"),
				entry(4, "PPT4D-W3NXN-78GMT-H3FJ9-CBKWK", 3307135000003, "pro"),
			},
			rejected: []keylist.Rejection{
				rejected(3, `edition "home" differs from --edition "pro"`, "3T9DH-BRBM6-PWTRT-BW34K-DJBKR"),
				rejected(5, `edition "home-single-language" differs from --edition "pro"`, "99MHF-DPYWX-PJDDX-HGNN2-3KVXV"),
			},
			summary: "2 keys (pro 2), 2 rejected",
		},
		{
			name:   "semicolon CSV with a keyId in scientific notation",
			file:   "semicolon.csv",
			format: "csv",
			lines:  4,
			entries: []keylist.Entry{
				entry(2, "YXF8F-J3GQP-JF67T-82Y4D-YP2NP", 3307135000011, "pro"),
				entry(4, "YRFM6-6K7V8-Y4YPD-2XR2B-RPWKV", 0, "pro"),
			},
			rejected: []keylist.Rejection{
				rejected(3, `invalid keyId: "3,30714E+12" is in scientific notation; format the column as text in the spreadsheet and export again`, "GDB6N-4XNRB-9GN64-RFBGV-XJW67"),
			},
			summary: "2 keys (pro 2), 1 rejected",
		},
		{
			name:   "plain text, lower case, no dashes",
			file:   "plain.txt",
			opt:    keylist.Options{DefaultEdition: "pro"},
			format: "text",
			lines:  5,
			entries: []keylist.Entry{
				entry(2, "K6M23-JVXJ6-NCRRX-CVTMH-Q7W49", 0, "pro"),
				entry(3, "6KF6C-8F9G6-83G8P-PX287-GC6PY", 0, "pro"),
				entry(5, "JVV2W-8D8MJ-NV892-979C2-JPF3W", 0, "pro"),
			},
			summary: "3 keys (pro 3), 0 rejected",
		},
		{
			name:   "plain text without an edition",
			file:   "plain.txt",
			format: "text",
			lines:  5,
			rejected: []keylist.Rejection{
				rejected(2, keylist.ReasonNoEdition, "K6M23-JVXJ6-NCRRX-CVTMH-Q7W49"),
				rejected(3, keylist.ReasonNoEdition, "6KF6C-8F9G6-83G8P-PX287-GC6PY"),
				rejected(5, keylist.ReasonNoEdition, "JVV2W-8D8MJ-NV892-979C2-JPF3W"),
			},
			summary: "0 keys, 3 rejected",
		},
		{
			name:   "BOM and CRLF, no header",
			file:   "bom_crlf.csv",
			opt:    keylist.Options{DefaultEdition: "home"},
			format: "csv",
			lines:  3,
			entries: []keylist.Entry{
				entry(1, "DWF4K-G2YBC-4G8J8-TWG3H-KHCV8", 3307135000021, "home"),
				entry(3, "BJ23X-PW694-KPRVJ-KK8PW-D328Q", 3307135000022, "home"),
			},
			summary: "2 keys (home 2), 0 rejected",
		},
		{
			name:   "invalid lines",
			file:   "invalid.csv",
			format: "csv",
			lines:  13,
			entries: []keylist.Entry{
				entry(2, "2RC3K-727XB-2QYX8-VVW88-J6N6M", 3307135000031, "pro"),
				entry(13, "RNQ8K-P7FRY-7FPD7-KDM7F-MVYKN", 3307135000041, "home"),
			},
			rejected: []keylist.Rejection{
				rejected(3, "invalid key: character 'A' at position 29 is not allowed in a product key", ""),
				rejected(4, "invalid key: a product key has 25 characters, this one has 24", ""),
				rejected(5, "invalid keyId: a keyId has 13 digits, this one has 5 characters", "BMJGG-2JJPV-CRH7X-N6KFN-MV2W6"),
				rejected(6, keylist.ReasonNoEdition, "GKJQF-DC4G2-X3H6P-W8JKY-DVF3V"),
				rejected(7, "duplicate of line 2", "2RC3K-727XB-2QYX8-VVW88-J6N6M"),
				rejected(8, "keyId 3307135000031 is already used by line 2 for a different key", "B38FH-P36BT-Q9MX9-GH49G-TPBP3"),
				rejected(9, `edition "Home (China)" is not a valid edition name (letters, digits, dashes and spaces, at most 40)`, "6TMDX-8RWFB-HMVP2-W8YKW-F979R"),
				rejected(10, "repeated header line", ""),
				rejected(11, "the edition column holds a product key; check the column order", "NRX3Y-XGBTD-HXTFN-RGYBF-BTHXT"),
			},
			dups:    1,
			summary: "2 keys (home 1, pro 1), 9 rejected (1 duplicate)",
		},
		{
			name:   "Chinese header with an extra column",
			file:   "chinese.csv",
			format: "csv",
			lines:  4,
			entries: []keylist.Entry{
				entry(2, "JYHQ8-XTC8C-NM639-6KY8B-QXB7W", 3307135000051, "pro"),
				entry(3, "NP9WC-VWHQG-6DCNP-VJBMR-62M9R", 3307135000052, "home"),
			},
			rejected: []keylist.Rejection{
				rejected(4, `edition "专业版" is not a valid edition name (letters, digits, dashes and spaces, at most 40)`, "PVRY4-TPW6K-H2CYN-QB38K-TXJNK"),
			},
			summary: "2 keys (home 1, pro 1), 1 rejected",
		},
		{
			name:   "whitespace-separated text with keyId and multi-word edition",
			input:  "key keyId edition\nW7PY2 N837X 89C72 4PPXP D69QR 3307135000061 Home Single Language\r\nK6M23-JVXJ6-NCRRX-CVTMH-Q7W49 Pro\n",
			format: "text",
			lines:  3,
			entries: []keylist.Entry{
				entry(2, "W7PY2-N837X-89C72-4PPXP-D69QR", 3307135000061, "home-single-language"),
				entry(3, "K6M23-JVXJ6-NCRRX-CVTMH-Q7W49", 0, "pro"),
			},
			summary: "2 keys (home-single-language 1, pro 1), 0 rejected",
		},
		{
			name:   "tab-separated, headerless, edition before keyId",
			input:  "W7PY2-N837X-89C72-4PPXP-D69QR\tpro\t3307135000071\n\tpro\n,\t\t\n",
			format: "csv",
			lines:  3,
			entries: []keylist.Entry{
				entry(1, "W7PY2-N837X-89C72-4PPXP-D69QR", 3307135000071, "pro"),
			},
			rejected: []keylist.Rejection{
				rejected(2, "invalid key: product key is empty", ""),
				rejected(3, "invalid key: character ',' at position 1 is not allowed in a product key", ""),
			},
			summary: "1 key (pro 1), 2 rejected",
		},
		{
			name:   "invalid UTF-8, long line, stray quote, CR line ends",
			input:  "W7PY2-N837X-89C72-4PPXP-D69QR,pro\r\xff,pro\r" + strings.Repeat("x", 4097) + "\r\"K6M23-JVXJ6-NCRRX-CVTMH-Q7W49,pro\r",
			format: "csv",
			lines:  4,
			entries: []keylist.Entry{
				entry(1, "W7PY2-N837X-89C72-4PPXP-D69QR", 0, "pro"),
			},
			rejected: []keylist.Rejection{
				rejected(2, "line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)", ""),
				rejected(3, "line is longer than 4096 bytes", ""),
				rejected(4, "invalid key: character ',' at position 30 is not allowed in a product key", ""),
			},
			summary: "1 key (pro 1), 3 rejected",
		},
		{
			name:   "UTF-16 as Excel saves Unicode text",
			input:  utf16le("\ufeffProduct Key\tEdition\r\nW7PY2-N837X-89C72-4PPXP-D69QR\tPro\r\n"),
			format: "csv",
			lines:  2,
			entries: []keylist.Entry{
				entry(2, "W7PY2-N837X-89C72-4PPXP-D69QR", 0, "pro"),
			},
			summary: "1 key (pro 1), 0 rejected",
		},
		{
			name:    "empty",
			input:   "",
			format:  "text",
			summary: "0 keys, 0 rejected",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []byte(tt.input)
			if tt.file != "" {
				in = fixture(t, tt.file)
			}
			l, err := keylist.Read(strings.NewReader(string(in)), tt.opt)
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			checkList(t, l)
			sum := sha256.Sum256(in)
			if l.SHA256 != hex.EncodeToString(sum[:]) {
				t.Errorf("SHA256 = %s, want the digest of the input", l.SHA256)
			}
			if l.Format != tt.format {
				t.Errorf("Format = %q, want %q", l.Format, tt.format)
			}
			if l.Lines != tt.lines {
				t.Errorf("Lines = %d, want %d", l.Lines, tt.lines)
			}
			if !reflect.DeepEqual(l.Entries, tt.entries) {
				t.Errorf("Entries:\n got %+v\nwant %+v", l.Entries, tt.entries)
			}
			if !reflect.DeepEqual(l.Rejected, tt.rejected) {
				t.Errorf("Rejected:\n got %+v\nwant %+v", l.Rejected, tt.rejected)
			}
			if l.Duplicates != tt.dups {
				t.Errorf("Duplicates = %d, want %d", l.Duplicates, tt.dups)
			}
			if got := l.Summary(); got != tt.summary {
				t.Errorf("Summary() = %q, want %q", got, tt.summary)
			}
		})
	}
}

// utf16le encodes ASCII s as UTF-16LE, a leading U+FEFF as the BOM FF FE.
func utf16le(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteByte(byte(r))
		b.WriteByte(byte(r >> 8))
	}
	return b.String()
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		r    func() *strings.Reader
		opt  keylist.Options
		code string
	}{
		{"too many bytes", reader("W7PY2-N837X-89C72-4PPXP-D69QR\n"), keylist.Options{MaxBytes: 29}, keystation.ETOOLARGE},
		{"too many lines", reader("#\n#\n#\n"), keylist.Options{MaxLines: 2}, keystation.ETOOLARGE},
		{"header without key column", reader("keyId,edition\n3307135000001,pro\n"), keylist.Options{}, keystation.EINVALID},
		{"invalid default edition", reader("W7PY2-N837X-89C72-4PPXP-D69QR\n"), keylist.Options{DefaultEdition: "Home (China)"}, keystation.EINVALID},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := keylist.Read(tt.r(), tt.opt)
			if got := keystation.ErrorCode(err); got != tt.code {
				t.Fatalf("Read error = %v (code %q), want code %q", err, got, tt.code)
			}
			if l != nil {
				t.Errorf("Read returned a list with an error")
			}
		})
	}

	t.Run("limits are inclusive", func(t *testing.T) {
		_, err := keylist.Read(strings.NewReader("W7PY2-N837X-89C72-4PPXP-D69QR\n"), keylist.Options{MaxBytes: 30, MaxLines: 1, DefaultEdition: "pro"})
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		if _, err := keylist.Read(iotest.ErrReader(boom), keylist.Options{}); !errors.Is(err, boom) {
			t.Fatalf("Read error = %v, want %v", err, boom)
		}
	})
}

func reader(s string) func() *strings.Reader {
	return func() *strings.Reader { return strings.NewReader(s) }
}

func TestNormalizeEdition(t *testing.T) {
	for in, want := range map[string]string{
		"Pro":                        "pro",
		" Home Single  Language\t":   "home-single-language",
		"pro-for-workstations":       "pro-for-workstations",
		"":                           "",
		"   ":                        "",
		"Pro for Workstations N":     "pro-for-workstations-n",
		"HOME":                       "home",
		"Windows 11 Pro Education N": "windows-11-pro-education-n",
	} {
		if got := keylist.NormalizeEdition(in); got != want {
			t.Errorf("NormalizeEdition(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestByEdition(t *testing.T) {
	l, err := keylist.Read(strings.NewReader(string(fixture(t, "distributor.csv"))), keylist.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"pro": 2, "home": 1, "home-single-language": 1}
	if got := l.ByEdition(); !reflect.DeepEqual(got, want) {
		t.Errorf("ByEdition() = %v, want %v", got, want)
	}
}
