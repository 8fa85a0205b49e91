package dlr

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// ParseText parses "id:IIIII sub:SSS dlvrd:DDD submit date:YYMMDDhhmm done date:YYMMDDhhmm stat:DDDDDDD err:E text: . . ."
// tolerantly: case-insensitive keys, "Text:" or "text:", fields in any order, extra spaces, missing fields, ids with letters/dashes, and
// "text:" swallowing the rest of the line. Unknown stat values become Unknown-ish but are kept in State as given (upper case).
//
// Keys may also be written with underscores ("submit_date") and with spaces
// before the colon; unknown keys (mcc:, imsi:) are skipped. The long state
// spellings DELIVERED, UNDELIVERABLE, ACCEPTED, REJECTED, UNDELIVERED and
// the message_state numbers 1-9 map to the constants. Only the id and the
// state are required; without either the error wraps [ErrMalformed].
func ParseText(s string) (Receipt, error) {
	r := scanText(s)
	return r, r.check()
}

// FormatText renders r in the standard text form with 10-digit UTC dates,
// three-digit counts and the text cut to its first 20 characters, as an SMSC
// would. An empty Err is written as 000, an empty State as UNKNOWN, a zero
// date as 0000000000 (which parses back as zero).
func FormatText(r Receipt) string {
	st := r.State
	if st == "" {
		st = Unknown
	}
	e := r.Err
	if e == "" {
		e = "000"
	}
	text := r.Text
	for i, n := 0, 0; i < len(text); n++ {
		if n == 20 {
			text = text[:i]
			break
		}
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	b := make([]byte, 0, 96+len(r.ID)+len(st)+len(e)+len(text))
	b = append(b, "id:"...)
	b = append(b, r.ID...)
	b = append(b, " sub:"...)
	b = appendCount(b, r.Submitted)
	b = append(b, " dlvrd:"...)
	b = appendCount(b, r.Done)
	b = append(b, " submit date:"...)
	b = appendDate(b, r.SubmitDate)
	b = append(b, " done date:"...)
	b = appendDate(b, r.DoneDate)
	b = append(b, " stat:"...)
	b = append(b, st...)
	b = append(b, " err:"...)
	b = append(b, e...)
	b = append(b, " text:"...)
	b = append(b, text...)
	return string(b)
}

func appendCount(b []byte, n int) []byte {
	if n < 0 {
		n = 0
	}
	if n < 100 {
		b = append(b, '0')
	}
	if n < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, int64(n), 10)
}

func appendDate(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "0000000000"...)
	}
	return t.UTC().AppendFormat(b, "0601021504")
}

// field identifies a key of the text form.
type field int

const (
	fieldNone field = iota
	fieldOther
	fieldID
	fieldSub
	fieldDlvrd
	fieldSubmitDate
	fieldDoneDate
	fieldStat
	fieldErr
	fieldText
)

// fieldOf names the field for a key, ignoring case, '_', '-' and spaces.
func fieldOf(key string) field {
	var buf [12]byte
	n := 0
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c == '_' || c == '-' || isSpace(c) {
			continue
		}
		c = lowerASCII(c)
		if n == len(buf) {
			return fieldOther
		}
		buf[n] = c
		n++
	}
	switch string(buf[:n]) {
	case "id":
		return fieldID
	case "sub":
		return fieldSub
	case "dlvrd":
		return fieldDlvrd
	case "submitdate":
		return fieldSubmitDate
	case "donedate":
		return fieldDoneDate
	case "stat":
		return fieldStat
	case "err":
		return fieldErr
	case "text":
		return fieldText
	}
	return fieldOther
}

func isSpace(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f', 0:
		return true
	}
	return false
}

// isHSpace is isSpace without the line breaks.
func isHSpace(c byte) bool { return c == ' ' || c == '\t' }

func trimSpace[T string | []byte](s T) T {
	for len(s) > 0 && isSpace(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && isSpace(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

func skipSpace(s string, i int) int {
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	return i
}

func skipHSpace(s string, i int) int {
	for i < len(s) && isHSpace(s[i]) {
		i++
	}
	return i
}

// wordEnd returns the end of the word starting at i: the next space or ':'.
func wordEnd(s string, i int) int {
	for i < len(s) && !isSpace(s[i]) && s[i] != ':' {
		i++
	}
	return i
}

// keyAt reports whether a key starts at i: a word, optional blanks and a
// colon, or the two-word "submit date"/"done date" followed by a colon. It
// returns the field and the index just past the colon.
func keyAt(s string, i int) (field, int) {
	end := wordEnd(s, i)
	if end == i && (end >= len(s) || s[end] != ':') {
		return fieldNone, i
	}
	j := skipHSpace(s, end)
	if j < len(s) && s[j] == ':' {
		if end == i {
			return fieldOther, j + 1
		}
		return fieldOf(s[i:end]), j + 1
	}
	if w := s[i:end]; equalFoldASCII(w, "submit") || equalFoldASCII(w, "done") {
		k := skipHSpace(s, end)
		kend := wordEnd(s, k)
		if k > end && equalFoldASCII(s[k:kend], "date") {
			if c := skipHSpace(s, kend); c < len(s) && s[c] == ':' {
				return fieldOf(s[i:kend]), c + 1
			}
		}
	}
	return fieldNone, i
}

// scanText reads whatever fields s has; check tells whether enough were found.
func scanText(s string) Receipt {
	var r Receipt
	var seen [fieldText + 1]bool
	for i := skipSpace(s, 0); i < len(s); i = skipSpace(s, i) {
		f, next := keyAt(s, i)
		if f == fieldNone {
			// A stray word: skip it.
			i = wordEnd(s, i)
			if i < len(s) && s[i] == ':' {
				i++
			}
			continue
		}
		i = next
		if f == fieldText {
			r.Text = trimSpace(s[i:])
			break
		}
		i = skipHSpace(s, i)
		var v string
		if vf, _ := keyAt(s, i); vf == fieldNone || vf == fieldOther {
			// The value runs to the next blank; a known key here means
			// the value was left out.
			start := i
			for i < len(s) && !isSpace(s[i]) {
				i++
			}
			v = s[start:i]
		}
		if seen[f] || v == "" {
			continue
		}
		seen[f] = true
		switch f {
		case fieldID:
			r.ID = v
		case fieldSub:
			r.Submitted = atoi(v)
		case fieldDlvrd:
			r.Done = atoi(v)
		case fieldSubmitDate:
			r.SubmitDate = parseDate(v)
		case fieldDoneDate:
			r.DoneDate = parseDate(v)
		case fieldStat:
			r.State = parseState(v)
		case fieldErr:
			r.Err = v
		}
	}
	return r
}

// atoi parses a count of up to 9 digits; anything else is 0.
func atoi(s string) int {
	if len(s) == 0 || len(s) > 9 {
		return 0
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// parseDate reads YYMMDDhhmm or YYMMDDhhmmss as UTC in 2000-2099; anything
// else, or a date that does not exist, is the zero time.
func parseDate(s string) time.Time {
	if len(s) != 10 && len(s) != 12 {
		return time.Time{}
	}
	var d [6]int
	for k := 0; k < len(s)/2; k++ {
		hi, lo := s[2*k], s[2*k+1]
		if hi < '0' || hi > '9' || lo < '0' || lo > '9' {
			return time.Time{}
		}
		d[k] = int(hi-'0')*10 + int(lo-'0')
	}
	year, month, day, hour, min, sec := 2000+d[0], time.Month(d[1]), d[2], d[3], d[4], d[5]
	if month < 1 || month > 12 || day < 1 || hour > 23 || min > 59 || sec > 59 {
		return time.Time{}
	}
	t := time.Date(year, month, day, hour, min, sec, 0, time.UTC)
	if t.Day() != day { // 31 April, 29 February in a common year
		return time.Time{}
	}
	return t
}

var states = [...]State{Enroute, Delivered, Expired, Deleted, Undeliverable, Accepted, Unknown, Rejected, Skipped}

// parseState maps a stat: value to a State without allocating for the
// known spellings.
func parseState(v string) State {
	for _, st := range states {
		if equalFoldASCII(v, string(st)) {
			return st
		}
	}
	switch {
	case equalFoldASCII(v, "DELIVERED"):
		return Delivered
	case equalFoldASCII(v, "UNDELIVERABLE"), equalFoldASCII(v, "UNDELIVERED"):
		return Undeliverable
	case equalFoldASCII(v, "ACCEPTED"):
		return Accepted
	case equalFoldASCII(v, "REJECTED"):
		return Rejected
	case len(v) == 1 && '1' <= v[0] && v[0] <= '9':
		return StateFromTLV(v[0] - '0')
	}
	return State(upperASCII(v))
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

// upperASCII upper-cases ASCII letters only, allocating only when it must.
func upperASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'a' <= s[i] && s[i] <= 'z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'a' <= b[j] && b[j] <= 'z' {
					b[j] -= 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
