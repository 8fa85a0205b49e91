package coding

import (
	"strings"
	"unicode/utf8"
)

const gsmEscape = 0x1B

// gsmBase is the GSM 03.38 default alphabet (3GPP TS 23.038 §6.2.1), indexed by septet.
// The escape code 0x1B is shown as a space, as the spec asks of a lone escape.
var gsmBase = [128]rune{
	'@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
	'\u0394', '_', '\u03A6', '\u0393', '\u039B', '\u03A9', '\u03A0', '\u03A8',
	'\u03A3', '\u0398', '\u039E', ' ', 'Æ', 'æ', 'ß', 'É',
	' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
	'0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
	'¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
	'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
	'¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
}

// gsmExt is the GSM 03.38 extension table (TS 23.038 §6.2.1.1), reached by 0x1B;
// zero means the code is not defined there.
var gsmExt = [128]rune{
	0x0A: '\f',
	0x14: '^',
	0x28: '{',
	0x29: '}',
	0x2F: '\\',
	0x3C: '[',
	0x3D: '~',
	0x3E: ']',
	0x40: '|',
	0x65: '€',
}

// Entries of gsmLatin: the septet in the low byte, plus flags.
const (
	gsmOK   = 0x100 // representable
	gsmExt2 = 0x200 // needs the escape (two septets)
)

// gsmLatin maps runes below U+0100 to their GSM encoding.
var gsmLatin = func() (t [256]uint16) {
	for c, r := range gsmBase {
		if c != gsmEscape && r < 256 {
			t[r] = gsmOK | uint16(c)
		}
	}
	for c, r := range gsmExt {
		if r != 0 && r < 256 {
			t[r] = gsmOK | gsmExt2 | uint16(c)
		}
	}
	return t
}()

// gsmLookup returns the septet for r and how many septets it takes (0 if r is not representable,
// 2 for an extension table character, which is sent as 0x1B followed by the returned septet).
func gsmLookup(r rune) (septet byte, n int) {
	if r < 256 {
		if r < 0 {
			return 0, 0
		}
		e := gsmLatin[r]
		switch {
		case e&gsmOK == 0:
			return 0, 0
		case e&gsmExt2 != 0:
			return byte(e), 2
		default:
			return byte(e), 1
		}
	}
	switch r {
	case '\u0394':
		return 0x10, 1
	case '\u03A6':
		return 0x12, 1
	case '\u0393':
		return 0x13, 1
	case '\u039B':
		return 0x14, 1
	case '\u03A9':
		return 0x15, 1
	case '\u03A0':
		return 0x16, 1
	case '\u03A8':
		return 0x17, 1
	case '\u03A3':
		return 0x18, 1
	case '\u0398':
		return 0x19, 1
	case '\u039E':
		return 0x1A, 1
	case '€':
		return 0x65, 2
	}
	return 0, 0
}

// EncodeGSM encodes s in the GSM 03.38 default alphabet as unpacked septets, one per octet,
// writing extension table characters as 0x1B followed by their code.
// It returns ok=false (and no bytes) if a rune of s is not representable.
func EncodeGSM(s string) ([]byte, bool) {
	n := 0
	for _, r := range s {
		_, k := gsmLookup(r)
		if k == 0 {
			return nil, false
		}
		n += k
	}
	b := make([]byte, 0, n)
	for _, r := range s {
		b = appendGSM(b, r)
	}
	return b, true
}

// appendGSM appends the septets of r, which the caller has checked is representable.
func appendGSM(b []byte, r rune) []byte {
	c, n := gsmLookup(r)
	if n == 2 {
		return append(b, gsmEscape, c)
	}
	return append(b, c)
}

// DecodeGSM decodes unpacked GSM 03.38 septets. Following TS 23.038, an escape followed by a
// code the extension table does not define shows the default alphabet character for that code,
// and a lone escape (or an escape to the undefined second extension, 0x1B 0x1B) shows a space.
// Octets above 0x7F are not septets and become U+FFFD.
func DecodeGSM(b []byte) string {
	return decodeGSM(b, &gsmBase, &gsmExt)
}

// DecodeGSMShift is DecodeGSM with the national language tables s selects:
// its locking shift table in place of the default alphabet, its single shift
// table in place of the extension table (a code the single shift table does
// not define shows the character of the alphabet in use). A language without
// a table (see Shift.Check) leaves the default one in use.
func DecodeGSMShift(b []byte, s Shift) string {
	base, ext := &gsmBase, &gsmExt
	if t := lockingTable(s.Locking); t != nil {
		base = t
	}
	if t := singleTable(s.Single); t != nil {
		ext = t
	}
	return decodeGSM(b, base, ext)
}

// decodeGSM decodes septets with the alphabet base and the extension table ext.
func decodeGSM(b []byte, base, ext *[128]rune) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c == gsmEscape && i+1 < len(b) {
			i++
			c = b[i]
			if c < 0x80 && ext[c] != 0 {
				sb.WriteRune(ext[c])
				continue
			}
		}
		if c >= 0x80 {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		sb.WriteRune(base[c])
	}
	return sb.String()
}
