package addressbook

import (
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/encoding/unicode"
)

func decodeUTF16(data []byte) string {
	out, err := unicode.UTF16(unicode.LittleEndian, unicode.ExpectBOM).NewDecoder().Bytes(data)
	if err != nil {
		return string(data)
	}
	return string(out)
}

// decodeCharset turns b, in the named charset, into UTF-8. Without a charset,
// or with one that is unknown, b is taken as UTF-8 if it is valid and as
// Windows-1252 (a superset of ISO-8859-1's printable characters, and what
// Outlook and old phones write) if it is not.
func decodeCharset(b []byte, charset string) string {
	if charset != "" && !strings.EqualFold(charset, "utf-8") && !strings.EqualFold(charset, "utf8") {
		if enc, err := htmlindex.Get(charset); err == nil {
			if out, err := enc.NewDecoder().Bytes(b); err == nil {
				return string(out)
			}
		}
	}
	return fromLegacy(string(b))
}

// fromLegacy returns s if it is valid UTF-8, else s read as Windows-1252.
func fromLegacy(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	out, err := charmap.Windows1252.NewDecoder().String(s)
	if err != nil {
		return strings.ToValidUTF8(s, "\uFFFD")
	}
	return out
}

// qpDecode decodes quoted-printable text leniently: a broken escape is kept
// as written, and a soft line break left at the end is dropped.
func qpDecode(s string) []byte {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '=' && i+2 < len(s) {
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if ok1 && ok2 {
				out = append(out, hi<<4|lo)
				i += 2
				continue
			}
		}
		if c == '=' && i == len(s)-1 {
			continue // soft line break
		}
		out = append(out, c)
	}
	return out
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// unescape undoes vCard text escaping: \n, \N, \, \; and \\.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var sb strings.Builder
	sb.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' && i+1 < len(s) {
			i++
			switch s[i] {
			case 'n', 'N':
				sb.WriteByte('\n')
			case ',', ';', '\\', ':':
				sb.WriteByte(s[i])
			default:
				sb.WriteByte('\\')
				sb.WriteByte(s[i])
			}
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

// components splits a structured vCard value (N, ORG) at the semicolons that
// are not escaped, and unescapes each part.
func components(s string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case ';':
			parts = append(parts, unescape(s[start:i]))
			start = i + 1
		}
	}
	return append(parts, unescape(s[start:]))
}
