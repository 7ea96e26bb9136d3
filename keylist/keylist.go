// Package keylist reads the product key lists a key distributor supplies or a
// USB stick carries, and writes the results CSV of batch mode.
//
// A key list is CSV (comma, semicolon or tab separated) or plain text, one key
// a line: the key, then optionally a 13-digit Product Key ID and an edition.
// A header line is optional. Read never fails because of a bad line: every
// line becomes an Entry or a Rejection carrying its 1-based physical line
// number. A Rejection's reason never holds a whole product key.
package keylist

import (
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"iter"
	"maps"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"keystation"
)

// Limits applied when Options leaves them zero, and the longest line read.
const (
	DefaultMaxBytes = 64 << 20
	DefaultMaxLines = 1_000_000
	MaxLineBytes    = 4096
)

// Formats a list is read as.
const (
	FormatCSV  = "csv"
	FormatText = "text"
)

// ReasonNoEdition is the reason of a line that has no edition when no default
// edition is given either.
const ReasonNoEdition = "no edition: give --edition or an edition column"

// Options tune Read.
type Options struct {
	// DefaultEdition is the edition of lines without one, as a slug or a name
	// ("pro", "Home Single Language"); empty for none. A line naming another
	// edition is rejected.
	DefaultEdition string
	// MaxBytes is the largest input accepted; DefaultMaxBytes when <= 0.
	MaxBytes int64
	// MaxLines is the most physical lines accepted; DefaultMaxLines when <= 0.
	MaxLines int
}

// Entry is one accepted key.
type Entry struct {
	Line    int                   // 1-based physical line number
	Key     keystation.ProductKey // normalised
	KeyID   keystation.KeyID      // 0 when the line has none
	Edition string                // slug form: "pro", "home-single-language"
}

// Rejection is a line that was not accepted.
type Rejection struct {
	Line   int    // 1-based physical line number
	Reason string // never holds a whole product key
	Key    string // the key masked (keystation.MaskKey) when it parsed, else ""
}

// List is a key list as read. Lines that repeat a key accepted earlier in the
// file are in Rejected with the reason "duplicate of line N" and counted in
// Duplicates too. Blank lines, lines starting with '#', lines whose fields are
// all empty and the header are neither entries nor rejections.
type List struct {
	Format     string // FormatCSV or FormatText
	SHA256     string // hex digest of the raw bytes read
	Lines      int    // physical lines in the file
	Entries    []Entry
	Rejected   []Rejection
	Duplicates int // how many of Rejected are duplicates
}

// ByEdition counts the entries per edition slug.
func (l *List) ByEdition() map[string]int {
	m := map[string]int{}
	for _, e := range l.Entries {
		m[e.Edition]++
	}
	return m
}

// Summary says what was read, like "12 keys (home 5, pro 7), 3 rejected".
func (l *List) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s", len(l.Entries), plural(len(l.Entries), "key", "keys"))
	by := l.ByEdition()
	for i, ed := range slices.Sorted(maps.Keys(by)) {
		sep := ", "
		if i == 0 {
			sep = " ("
		}
		fmt.Fprintf(&b, "%s%s %d", sep, ed, by[ed])
	}
	if len(by) > 0 {
		b.WriteString(")")
	}
	fmt.Fprintf(&b, ", %d rejected", len(l.Rejected))
	if l.Duplicates > 0 {
		fmt.Fprintf(&b, " (%d %s)", l.Duplicates, plural(l.Duplicates, "duplicate", "duplicates"))
	}
	return b.String()
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// NormalizeEdition turns an edition name into slug form: trimmed, lower case,
// runs of spaces replaced by one '-' ("Home Single Language" →
// "home-single-language").
func NormalizeEdition(s string) string {
	return strings.Join(strings.Fields(strings.ToLower(s)), "-")
}

var slugRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Read reads a key list. It fails only for the input as a whole: larger than
// MaxBytes or MaxLines, a CSV header without a key column, an invalid
// DefaultEdition, or an error from r.
func Read(r io.Reader, opt Options) (*List, error) {
	maxBytes, maxLines := opt.MaxBytes, opt.MaxLines
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxLines <= 0 {
		maxLines = DefaultMaxLines
	}
	def := NormalizeEdition(opt.DefaultEdition)
	if def != "" && (!slugRE.MatchString(def) || looksLikeKey(def)) {
		return nil, keystation.Errorf(keystation.EINVALID, "edition %s is not a valid edition name", echo(opt.DefaultEdition))
	}

	limit := maxBytes
	if limit < math.MaxInt64 {
		limit++
	}
	data, err := io.ReadAll(io.LimitReader(r, limit))
	if err != nil {
		return nil, fmt.Errorf("keylist: reading the key list: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, keystation.Errorf(keystation.ETOOLARGE, "the key list is larger than %d bytes", maxBytes)
	}
	sum := sha256.Sum256(data)

	text := decode(data)
	sep := "\n"
	if !strings.Contains(text, "\n") && strings.Contains(text, "\r") {
		sep = "\r" // old Mac line ends, as Excel for Mac still writes
	}
	n := strings.Count(text, sep)
	if text != "" && !strings.HasSuffix(text, sep) {
		n++
	}
	if n > maxLines {
		return nil, keystation.Errorf(keystation.ETOOLARGE, "the key list has more than %d lines", maxLines)
	}

	rd := &reader{
		list:    &List{SHA256: hex.EncodeToString(sum[:]), Lines: n},
		def:     def,
		cols:    columns{key: 0, id: -1, edition: -1},
		seenKey: map[keystation.ProductKey]int{},
		seenID:  map[keystation.KeyID]int{},
	}
	rd.detect(text, sep)
	if err := rd.read(text, sep); err != nil {
		return nil, err
	}
	return rd.list, nil
}

// decode strips a byte order mark and turns UTF-16 (Excel's "Unicode Text")
// into UTF-8. Anything else is returned as is; invalid UTF-8 is rejected line
// by line.
func decode(b []byte) string {
	var order func([]byte) uint16
	switch {
	case len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF:
		return string(b[3:])
	case len(b) >= 2 && b[0] == 0xFF && b[1] == 0xFE:
		order = func(p []byte) uint16 { return uint16(p[0]) | uint16(p[1])<<8 }
	case len(b) >= 2 && b[0] == 0xFE && b[1] == 0xFF:
		order = func(p []byte) uint16 { return uint16(p[1]) | uint16(p[0])<<8 }
	default:
		return string(b)
	}
	b = b[2:]
	u := make([]uint16, 0, len(b)/2+1)
	for ; len(b) >= 2; b = b[2:] {
		u = append(u, order(b))
	}
	if len(b) == 1 {
		u = append(u, utf8.RuneError) // odd length: keep the damage visible
	}
	return string(utf16.Decode(u))
}

// lines yields the physical lines of s with their 1-based numbers, without
// the line end.
func lines(s, sep string) iter.Seq2[int, string] {
	return func(yield func(int, string) bool) {
		for n := 1; s != ""; n++ {
			var line string
			line, s, _ = strings.Cut(s, sep)
			if !yield(n, strings.TrimSuffix(line, "\r")) {
				return
			}
		}
	}
}

// content reports whether a line holds data: not blank, not a comment.
func content(line string) bool {
	t := strings.TrimSpace(line)
	return t != "" && t[0] != '#'
}

// columns are the field indexes of key, keyId and edition; -1 when absent.
type columns struct{ key, id, edition int }

type reader struct {
	list    *List
	def     string
	comma   rune // 0 for plain text
	header  bool // a CSV header mapped the columns
	cols    columns
	seenKey map[keystation.ProductKey]int // key → line
	seenID  map[keystation.KeyID]int      // keyId → line
}

// detect picks CSV with the separator found on most of the first lines, or
// plain text when none has one.
func (rd *reader) detect(text, sep string) {
	var sample []string
	for _, line := range lines(text, sep) {
		if len(sample) == 20 {
			break
		}
		if content(line) && len(line) <= MaxLineBytes && utf8.ValidString(line) {
			sample = append(sample, line)
		}
	}
	best := 0
	for _, c := range []rune{',', ';', '\t'} {
		n := 0
		for _, l := range sample {
			if strings.ContainsRune(l, c) {
				n++
			}
		}
		if n > best {
			best, rd.comma = n, c
		}
	}
	rd.list.Format = FormatText
	if rd.comma != 0 {
		rd.list.Format = FormatCSV
	}
}

func (rd *reader) read(text, sep string) error {
	first, header := true, ""
	for n, line := range lines(text, sep) {
		if !content(line) {
			continue
		}
		if len(line) > MaxLineBytes {
			rd.reject(n, fmt.Sprintf("line is longer than %d bytes", MaxLineBytes), "")
			first = false
			continue
		}
		if !utf8.ValidString(line) {
			rd.reject(n, "line is not valid UTF-8; save the file as UTF-8 (CSV UTF-8)", "")
			first = false
			continue
		}
		fields, err := rd.split(line)
		if err != nil {
			rd.reject(n, "malformed CSV line: "+err.Error(), "")
			first = false
			continue
		}
		if !slices.ContainsFunc(fields, func(f string) bool { return f != "" }) {
			continue // ",,," as spreadsheets export empty rows
		}
		if first {
			first = false
			if cols, ok := headerColumns(fields); ok {
				header = strings.TrimSpace(line)
				if rd.comma == 0 {
					continue // plain text: skip the header, read by position
				}
				if cols.key < 0 {
					return keystation.Errorf(keystation.EINVALID, "the header on line %d has no key column; name it \"Product Key\" or \"key\"", n)
				}
				rd.header, rd.cols = true, cols
				continue
			}
		} else if header != "" && strings.TrimSpace(line) == header {
			rd.reject(n, "repeated header line", "")
			continue
		}
		rd.line(n, fields)
	}
	return nil
}

var errCSV = errors.New("unreadable CSV line")

// split cuts a line into trimmed fields. CSV lines without quotes are split
// directly, which is what encoding/csv does with them; the others go through
// encoding/csv, one physical line at a time so that a stray quote cannot
// swallow the lines after it.
func (rd *reader) split(line string) ([]string, error) {
	var f []string
	switch {
	case rd.comma == 0:
		f = strings.Fields(line)
	case !strings.ContainsRune(line, '"'):
		f = strings.Split(line, string(rd.comma))
	default:
		cr := csv.NewReader(strings.NewReader(line))
		cr.Comma, cr.FieldsPerRecord, cr.LazyQuotes = rd.comma, -1, true
		var err error
		if f, err = cr.Read(); err != nil && err != io.EOF {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, pe.Err // its text holds no field content
			}
			return nil, errCSV
		}
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f, nil
}

// headerColumns reports whether fields are a header and maps its columns.
func headerColumns(fields []string) (columns, bool) {
	c, ok := columns{key: -1, id: -1, edition: -1}, false
	if _, err := keystation.ParseProductKey(fields[0]); err == nil {
		return c, false
	}
	for i, f := range fields {
		var p *int
		switch columnName(f) {
		case "key":
			p = &c.key
		case "id":
			p = &c.id
		case "edition":
			p = &c.edition
		default:
			continue
		}
		ok = true
		if *p < 0 {
			*p = i
		}
	}
	return c, ok
}

// columnName maps a header name to "key", "id", "edition" or "".
func columnName(s string) string {
	s = strings.ToLower(s)
	s = strings.NewReplacer(" ", "", "_", "", "-", "", ".", "").Replace(s)
	switch s {
	case "key", "productkey", "licensekey", "cdkey", "密钥", "产品密钥":
		return "key"
	case "keyid", "productkeyid", "pkid", "密钥id", "产品密钥id":
		return "id"
	case "edition", "版本", "sku", "pool":
		return "edition"
	}
	return ""
}

// line validates the fields of one data line and records the outcome.
func (rd *reader) line(n int, fields []string) {
	keyCell, idCell, edCell := rd.cells(fields)

	key, err := keystation.ParseProductKey(keyCell)
	if err != nil {
		rd.reject(n, "invalid key: "+keystation.ErrorMessage(err), "")
		return
	}
	masked := key.Masked()
	if prev, ok := rd.seenKey[key]; ok {
		rd.list.Duplicates++
		rd.reject(n, fmt.Sprintf("duplicate of line %d", prev), masked)
		return
	}

	var id keystation.KeyID
	if idCell != "" {
		if strings.ContainsAny(idCell, "eE") && numeric(idCell) {
			rd.reject(n, "invalid keyId: "+echo(idCell)+" is in scientific notation; format the column as text in the spreadsheet and export again", masked)
			return
		}
		if id, err = keystation.ParseKeyID(idCell); err != nil {
			rd.reject(n, "invalid keyId: "+keystation.ErrorMessage(err), masked)
			return
		}
		if prev, ok := rd.seenID[id]; ok {
			rd.reject(n, fmt.Sprintf("keyId %s is already used by line %d for a different key", id, prev), masked)
			return
		}
	}

	ed := NormalizeEdition(edCell)
	switch {
	case ed == "" && rd.def == "":
		rd.reject(n, ReasonNoEdition, masked)
		return
	case ed == "":
		ed = rd.def
	case looksLikeKey(edCell):
		rd.reject(n, "the edition column holds a product key; check the column order", masked)
		return
	case !slugRE.MatchString(ed):
		rd.reject(n, fmt.Sprintf("edition %s is not a valid edition name (letters, digits, dashes and spaces, at most 40)", echo(edCell)), masked)
		return
	case rd.def != "" && ed != rd.def:
		rd.reject(n, fmt.Sprintf("edition %s differs from --edition %s", echo(ed), echo(rd.def)), masked)
		return
	}

	rd.seenKey[key] = n
	if id != 0 {
		rd.seenID[id] = n
	}
	rd.list.Entries = append(rd.list.Entries, Entry{Line: n, Key: key, KeyID: id, Edition: ed})
}

// cells picks the key, keyId and edition cells of a line: by the header's
// columns, else by position: the key first, then a numeric field is the
// keyId and another non-empty field the edition. In plain text the key may
// be written as five space-separated groups and the edition may be several
// words.
func (rd *reader) cells(f []string) (key, id, edition string) {
	if rd.header {
		return cell(f, rd.cols.key), cell(f, rd.cols.id), cell(f, rd.cols.edition)
	}
	key, rest := f[0], f[1:]
	if rd.comma == 0 && len(f) >= 5 && len(f[0]) == 5 {
		if _, err := keystation.ParseProductKey(strings.Join(f[:5], "-")); err == nil {
			key, rest = strings.Join(f[:5], "-"), f[5:]
		}
	}
	var words []string
	for _, s := range rest {
		switch {
		case s == "":
		case id == "" && numeric(s):
			id = s
		case rd.comma == 0:
			words = append(words, s)
		case edition == "":
			edition = s
		}
	}
	if rd.comma == 0 {
		edition = strings.Join(words, " ")
	}
	return key, id, edition
}

func cell(f []string, i int) string {
	if i < 0 || i >= len(f) {
		return ""
	}
	return f[i]
}

// numeric reports whether s looks like a number, including the scientific
// notation a spreadsheet turns a long number into ("3.30713E+12").
func numeric(s string) bool {
	return s != "" && s[0] >= '0' && s[0] <= '9' && strings.Trim(s, "0123456789.,eE+") == ""
}

// looksLikeKey reports whether s, in any case or dash form, is a product key.
func looksLikeKey(s string) bool {
	_, err := keystation.ParseProductKey(s)
	return err == nil
}

// echo quotes user input for a reason, unless it holds enough key characters
// to be a whole product key.
func echo(s string) string {
	n := 0
	for _, r := range s {
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		if strings.ContainsRune(keystation.KeyAlphabet, r) {
			n++
		}
	}
	if n >= 25 {
		return "(not shown: it may hold a product key)"
	}
	if utf8.RuneCountInString(s) > 40 {
		s = string([]rune(s)[:40]) + "…"
	}
	return strconv.Quote(s)
}

func (rd *reader) reject(n int, reason, masked string) {
	rd.list.Rejected = append(rd.list.Rejected, Rejection{Line: n, Reason: reason, Key: masked})
}
