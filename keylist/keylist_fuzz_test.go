package keylist_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"keystation"
	"keystation/keylist"
)

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

func FuzzRead(f *testing.F) {
	seeds := []struct{ data, edition string }{
		{"Product Key,Product Key ID,Edition\nW7PY2-N837X-89C72-4PPXP-D69QR,3307135000001,Pro\n", ""},
		{"key;keyid;edition\nW7PY2-N837X-89C72-4PPXP-D69QR;3,30714E+12;home\n", "home"},
		{"w7py2n837x89c724ppxpd69qr\n# comment\n\nk6m23jvxj6ncrrxcvtmhq7w49\n", "pro"},
		{"\ufeffW7PY2-N837X-89C72-4PPXP-D69QR,3307135000001,Home\r\nW7PY2-N837X-89C72-4PPXP-D69QR,3307135000002,Home\r\n", ""},
		{"序号,密钥,密钥ID,版本\n1,W7PY2-N837X-89C72-4PPXP-D69QR,3307135000051,专业版\n", ""},
		{"W7PY2 N837X 89C72 4PPXP D69QR 3307135000061 Home Single Language\n", "Home Single Language"},
		{"\"W7PY2-N837X-89C72-4PPXP-D69QR\t\"pro\"\t\n\t,,\n", ""},
		{"key,keyId,edition\nW7PY2-N837X-89C72-4PPXP-D69QR,,w7py2-n837x-89c72-4ppxp-d69qr\nkey,keyId,edition\n", ""},
		{"\xff\xfeW\x007\x00P\x00Y\x002\x00\r", "pro"},
		{"\xff\n" + strings.Repeat("K", 5000) + "\r", ""},
	}
	for _, s := range seeds {
		f.Add([]byte(s.data), s.edition)
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "*.*"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b, "")
		}
	}

	f.Fuzz(func(t *testing.T, data []byte, edition string) {
		l, err := keylist.Read(bytes.NewReader(data), keylist.Options{DefaultEdition: edition})
		if err != nil {
			if l != nil {
				t.Fatalf("Read returned a list and the error %v", err)
			}
			return
		}
		checkList(t, l)
		sum := sha256.Sum256(data)
		if l.SHA256 != hex.EncodeToString(sum[:]) {
			t.Errorf("SHA256 is not the digest of the input")
		}
		if l.Format != "csv" && l.Format != "text" {
			t.Errorf("Format = %q", l.Format)
		}
		if n := len(l.Entries) + len(l.Rejected); n > l.Lines {
			t.Errorf("%d entries and rejections from %d lines", n, l.Lines)
		}
		if l.Duplicates > len(l.Rejected) {
			t.Errorf("%d duplicates but %d rejected", l.Duplicates, len(l.Rejected))
		}
		used := map[int]bool{}
		keys := map[keystation.ProductKey]bool{}
		ids := map[keystation.KeyID]bool{}
		prev := 0
		for _, e := range l.Entries {
			if k, err := keystation.ParseProductKey(e.Key.Plain()); err != nil || k != e.Key {
				t.Errorf("line %d: entry key %s does not re-parse to itself: %v", e.Line, e.Key, err)
			}
			if e.Line <= prev || e.Line > l.Lines {
				t.Errorf("entry line %d out of order or range (previous %d, %d lines)", e.Line, prev, l.Lines)
			}
			prev = e.Line
			used[e.Line] = true
			if keys[e.Key] {
				t.Errorf("line %d: key %s accepted twice", e.Line, e.Key)
			}
			keys[e.Key] = true
			if e.KeyID != 0 {
				if !e.KeyID.Valid() || ids[e.KeyID] {
					t.Errorf("line %d: keyId %s invalid or accepted twice", e.Line, e.KeyID)
				}
				ids[e.KeyID] = true
			}
			if !slugRE.MatchString(e.Edition) {
				t.Errorf("line %d: edition %q is not a slug", e.Line, e.Edition)
			}
		}
		prev = 0
		for _, r := range l.Rejected {
			if r.Line <= prev || r.Line > l.Lines || used[r.Line] {
				t.Errorf("rejected line %d out of order or range or also an entry (previous %d, %d lines)", r.Line, prev, l.Lines)
			}
			prev = r.Line
			if r.Reason == "" {
				t.Errorf("line %d rejected without a reason", r.Line)
			}
		}
	})
}
