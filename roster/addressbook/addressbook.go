// Package addressbook reads the address books people export from their phones and mail programs — vCard 2.1, 3.0 and 4.0, CSV from Google Contacts and Outlook, and plain "Name, number" lines — into contacts with E.164 numbers.
package addressbook

import (
	"bytes"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"switchboard/roster/number"
)

// Contact is one phone number from an address book, with what the address
// book says about its owner.
type Contact struct {
	// Name is the display name: the vCard FN, else its N assembled ("Given
	// Additional Family"), else NICKNAME, else ORG; in CSV the name columns;
	// in a plain list the text beside the number. "" when there is none.
	Name string
	// Number is the number normalised to E.164.
	Number number.E164
	// Label is the TEL type or label ("cell", "home", "mobile", an iPhone
	// custom label), lower-cased, without "pref"; "" when there is none.
	Label string
	// Photo is the decoded inline PHOTO of the card the number came from, if
	// it was present and at most 256 KiB; else nil. PHOTO URIs are ignored.
	// Contacts from the same card share the slice.
	Photo []byte
	// PhotoType is the photo's MIME type ("image/jpeg"), if known.
	PhotoType string
}

// Problem is an entry that could not be read. Nothing is dropped silently:
// every card, row or line that yields no contact, and every number that does
// not normalise, is reported as a Problem.
type Problem struct {
	Line   int    // 1-based line of the entry (the TEL line, or the card's or row's first line)
	Entry  string // the raw number or text, at most 80 characters
	Name   string // the contact's name, if known
	Reason string // in plain words: "not a valid phone number", "no number", …
}

// Reasons given in Problems.
const (
	ReasonInvalid   = "not a valid phone number"
	ReasonNoNumber  = "no number"
	ReasonNoCountry = "number has no country code"
	ReasonOutside   = "text outside any vCard"
	ReasonLine      = "unreadable vCard line"
	ReasonRecord    = "unreadable CSV record"
)

// Format names an address book format.
type Format string

// Formats Detect tells apart.
const (
	VCard Format = "vcard"
	CSV   Format = "csv"
	Lines Format = "lines"
)

// Limits bound the work one upload can cause. Zero values mean the defaults.
type Limits struct {
	// MaxBytes is the largest upload read, in bytes; default 5 MiB. A larger
	// one gets ErrTooLarge before any parsing.
	MaxBytes int
	// MaxContacts is the most distinct numbers one upload may hold; default
	// 10,000. Beyond it Parse returns ErrTooMany. To bound the work before
	// any number is normalised, at most 4×MaxContacts numbers may be read
	// (duplicates and unreadable ones included), and at most MaxContacts
	// Problems are listed; the rest are summed up in one last Problem.
	MaxContacts int
}

// Defaults for Limits.
const (
	DefaultMaxBytes    = 5 << 20
	DefaultMaxContacts = 10_000
	// MaxPhoto is the largest decoded photo kept, in bytes.
	MaxPhoto = 256 << 10
)

// Errors returned by Parse, wrapped with the limit that was passed.
var (
	ErrTooLarge = errors.New("addressbook: address book too large")
	ErrTooMany  = errors.New("addressbook: too many contacts")
)

const maxEntry = 80

// Parse detects the format and reads every contact. Numbers are normalised
// with region as default (the uploader's own number's region).
//
// A card with several TEL gives one Contact per number. Duplicate numbers are
// merged: the first name wins, and a later non-empty name (label, photo) fills
// an empty one. Contacts keep the order in which their numbers first appear.
// Entries that cannot be read are reported as Problems, ordered by line, never
// dropped silently. Only ErrTooLarge and ErrTooMany (wrapped) are errors; with
// an error no contacts are returned.
func Parse(data []byte, region string, lim Limits) (contacts []Contact, problems []Problem, format Format, err error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = DefaultMaxBytes
	}
	if lim.MaxContacts <= 0 {
		lim.MaxContacts = DefaultMaxContacts
	}
	if len(data) > lim.MaxBytes {
		return nil, nil, "", fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(data), lim.MaxBytes)
	}
	s := toUTF8(data)
	format = detect(s)

	b := &book{maxEntries: 4 * lim.MaxContacts, maxProblems: lim.MaxContacts, keys: make(map[string]int)}
	switch format {
	case VCard:
		readVCards(s, b)
	case CSV:
		readCSV(s, b)
	default:
		readLines(s, b)
	}
	if b.tooMany {
		return nil, nil, format, fmt.Errorf("%w: more than %d numbers read (4×MaxContacts)", ErrTooMany, b.maxEntries)
	}

	results := normalise(b.raws, region)
	index := make(map[number.E164]int, len(b.raws))
	for _, e := range b.entries {
		r := results[e.key]
		if r.reason != "" {
			b.problems = append(b.problems, Problem{Line: e.line, Entry: clip(e.raw), Name: e.name, Reason: r.reason})
			continue
		}
		if i, ok := index[r.n]; ok {
			c := &contacts[i]
			if c.Name == "" {
				c.Name = e.name
			}
			if c.Label == "" {
				c.Label = e.label
			}
			if c.Photo == nil && e.photo != nil {
				c.Photo, c.PhotoType = e.photo, e.photoType
			}
			continue
		}
		if len(contacts) == lim.MaxContacts {
			return nil, nil, format, fmt.Errorf("%w: more than %d numbers", ErrTooMany, lim.MaxContacts)
		}
		index[r.n] = len(contacts)
		contacts = append(contacts, Contact{Name: e.name, Number: r.n, Label: e.label, Photo: e.photo, PhotoType: e.photoType})
	}

	problems = b.problems
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Line < problems[j].Line })
	if more := len(problems) - lim.MaxContacts + b.dropped; more > 0 {
		line := b.droppedLine // the first line not listed
		if len(problems) > lim.MaxContacts {
			if l := problems[lim.MaxContacts].Line; line == 0 || l < line {
				line = l
			}
			problems = problems[:lim.MaxContacts]
		}
		problems = append(problems, Problem{Line: line, Reason: fmt.Sprintf("%d more entries could not be read (not listed)", more)})
	}
	return contacts, problems, format, nil
}

// Detect tells which format data is in: VCard if a line starts with
// BEGIN:VCARD, CSV if the first line is a header with a phone column
// (separated by commas, semicolons or tabs), else Lines.
func Detect(data []byte) Format {
	return detect(toUTF8(data))
}

func detect(s string) Format {
	first := ""
	for rest := s; rest != ""; {
		var l string
		l, rest, _ = strings.Cut(rest, "\n")
		l = strings.TrimSpace(l)
		if hasPrefixFold(l, "BEGIN:VCARD") {
			return VCard
		}
		if first == "" && l != "" && !strings.HasPrefix(l, "#") {
			first = l
			if !containsFold(s, "BEGIN:VCARD") {
				break
			}
		}
	}
	if first != "" && isCSVHeader(first) {
		return CSV
	}
	return Lines
}

// toUTF8 returns data as UTF-8 text without a byte order mark. UTF-16 with a
// BOM (Outlook's "Unicode" exports) is converted; other text that is not valid UTF-8 is
// read per format (vCard CHARSET, else Windows-1252).
// Lines ended by CR alone (classic Mac OS) are turned into LF lines.
func toUTF8(data []byte) string {
	var s string
	switch {
	case bytes.HasPrefix(data, []byte{0xEF, 0xBB, 0xBF}):
		s = string(data[3:])
	case bytes.HasPrefix(data, []byte{0xFF, 0xFE}), bytes.HasPrefix(data, []byte{0xFE, 0xFF}):
		s = decodeUTF16(data)
	default:
		s = string(data)
	}
	if !strings.Contains(s, "\n") && strings.Contains(s, "\r") {
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	return s
}

// book collects what the format readers find, before numbers are normalised.
type book struct {
	entries  []entry
	raws     []string       // distinct cleaned numbers, normalised later
	keys     map[string]int // cleaned number → index in raws
	problems []Problem

	maxEntries, maxProblems int
	dropped, droppedLine    int
	tooMany                 bool
}

type entry struct {
	line      int
	key       int // index in book.raws
	raw       string
	name      string
	label     string
	photo     []byte
	photoType string
}

// number records a number as written, with the name and label beside it.
func (b *book) number(line int, raw, name, label string, photo []byte, photoType string) {
	if len(b.entries) >= b.maxEntries {
		b.tooMany = true
		return
	}
	clean := cleanNumber(raw)
	k, ok := b.keys[clean]
	if !ok {
		k = len(b.raws)
		b.keys[clean] = k
		b.raws = append(b.raws, clean)
	}
	b.entries = append(b.entries, entry{line: line, key: k, raw: raw, name: tidy(name), label: label, photo: photo, photoType: photoType})
}

// problem records an entry that yields no number.
func (b *book) problem(line int, text, name, reason string) {
	if len(b.problems) >= b.maxProblems {
		if b.dropped == 0 {
			b.droppedLine = line
		}
		b.dropped++
		return
	}
	b.problems = append(b.problems, Problem{Line: line, Entry: clip(text), Name: tidy(name), Reason: reason})
}

type result struct {
	n      number.E164
	reason string
}

// normalise runs number.Parse over raws, spread over the available CPUs:
// libphonenumber's regular expressions make it the dominant cost.
func normalise(raws []string, region string) []result {
	out := make([]result, len(raws))
	number.Each(len(raws), 128, func(i int) { out[i] = normaliseOne(raws[i], region) })
	return out
}

// reasonFailed is given when the number library panics; fuzzing treats it as a bug.
const reasonFailed = "number could not be read"

func normaliseOne(clean, region string) (r result) {
	if clean == "" {
		return result{reason: ReasonNoNumber}
	}
	defer func() {
		// A panic in the number library must not take the gateway down
		// with it (it would, from a worker goroutine).
		if recover() != nil {
			r = result{reason: reasonFailed}
		}
	}()
	n, err := number.Parse(clean, region)
	switch {
	case err == nil:
		return result{n: n}
	case errors.Is(err, number.ErrEmpty):
		return result{reason: ReasonNoNumber}
	case errors.Is(err, number.ErrRegion):
		return result{reason: ReasonNoCountry}
	default:
		return result{reason: ReasonInvalid}
	}
}

// cleanNumber strips a tel: prefix, the extension or dial string after the
// number (";ext=12", "x12", "ext. 12", ",,12", "#12"), and every visual
// separator, leaving a leading "+" and digits.
func cleanNumber(raw string) string {
	s := strings.TrimSpace(raw)
	if hasPrefixFold(s, "tel:") {
		s = s[4:]
	}
	var sb strings.Builder
	sb.Grow(len(s))
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			sb.WriteRune(r)
			digits++
		case unicode.IsDigit(r):
			sb.WriteRune(r) // libphonenumber folds other scripts' digits
			digits++
		case r == '+' || r == '＋':
			if sb.Len() == 0 {
				sb.WriteByte('+')
			}
		case digits > 0 && (r == ',' || r == ';' || r == '#' || r == '*' || unicode.IsLetter(r)):
			// An extension, a dial string or a note follows the number.
			return sb.String()
		}
	}
	return sb.String()
}

// numberish reports whether s looks like a phone number as people write one:
// at least three digits and separators, perhaps an extension, and after
// seven digits or more perhaps a note.
func numberish(s string) bool {
	s = strings.TrimSpace(s)
	if hasPrefixFold(s, "tel:") {
		s = s[4:]
	}
	digits := 0
	for i, r := range s {
		switch {
		case unicode.IsDigit(r):
			digits++
		case isSeparator(r) || r == '+' || r == '＋':
		case digits >= 3 && isExtension(s[i:]):
			return true
		default:
			// A whole number followed by a note: "+1 201 555 0100 (mobile)".
			return digits >= 7 && !unicode.IsDigit(r)
		}
	}
	return digits >= 3
}

func isSeparator(r rune) bool {
	switch r {
	case ' ', '-', '.', '(', ')', '/', '\u00a0', '\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2212', '\u202f', '\u3000', '－':
		return true
	}
	return false
}

// isExtension reports whether s starts an extension or dial string.
func isExtension(s string) bool {
	for _, p := range []string{";ext=", "ext.", "ext", "x", "#", ",", ";"} {
		if hasPrefixFold(s, p) {
			rest := strings.TrimLeft(s[len(p):], " .:=,")
			return rest != "" && strings.TrimLeft(rest, "0123456789,;#*") == ""
		}
	}
	return false
}

// clip returns s for a Problem: control characters as spaces, at most
// maxEntry characters.
func clip(s string) string {
	s = strings.TrimSpace(s)
	n := 0
	clean := true
	for _, r := range s {
		n++
		if unicode.IsControl(r) || r == utf8.RuneError {
			clean = false
		}
	}
	if clean && n <= maxEntry {
		return s
	}
	var sb strings.Builder
	n = 0
	for _, r := range s {
		if n == maxEntry {
			break
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// containsFold reports whether s holds sub (ASCII) in any case.
func containsFold(s, sub string) bool {
	first := sub[0]
	for i := 0; i+len(sub) <= len(s); i++ {
		c := s[i]
		if c|0x20 == first|0x20 && strings.EqualFold(s[i:i+len(sub)], sub) {
			return true
		}
	}
	return false
}

// tidy puts a name on one line: the line breaks of a CSV cell or an escaped
// vCard "\n", and other control characters, become single spaces.
func tidy(name string) string {
	if strings.IndexFunc(name, unicode.IsControl) < 0 {
		return name
	}
	return strings.Join(strings.FieldsFunc(name, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }), " ")
}
