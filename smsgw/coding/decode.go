package coding

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// ErrUnknownCoding is returned, wrapped with the value, by Decode for a data_coding it cannot turn into text.
var ErrUnknownCoding = errors.New("coding: unsupported data coding")

type charset int

const (
	csUnknown charset = iota
	csGSM
	csASCII
	csLatin1
	cs8Bit
	csUCS2
)

// charsetOf maps an SMPP data_coding value to a character set. Values 0x00-0x0F have their
// SMPP 3.4 meaning (§5.2.19); from 0x10 up the coding groups of 3GPP TS 23.038 §4 apply:
// general data coding (0x00-0x7F, uncompressed only), message waiting (0xC0-0xEF) and
// data coding/message class (0xF0-0xFF).
func charsetOf(dc byte) charset {
	switch {
	case dc == DCDefault:
		return csGSM
	case dc == DCIA5:
		return csASCII
	case dc == 0x02 || dc == 0x04: // octet unspecified (8-bit binary)
		return cs8Bit
	case dc == DCLatin1:
		return csLatin1
	case dc == DCUCS2:
		return csUCS2
	case dc < 0x10: // JIS, Cyrillic, Hebrew, pictogram, ISO-2022-JP, Kanji, KS C 5601, reserved
		return csUnknown
	case dc < 0x80: // general data coding; bit 6 is automatic deletion, bit 5 compression
		if dc&0x20 != 0 {
			return csUnknown
		}
		switch (dc >> 2) & 3 {
		case 0:
			return csGSM
		case 1:
			return cs8Bit
		case 2:
			return csUCS2
		}
		return csUnknown
	case dc < 0xC0: // reserved groups
		return csUnknown
	case dc < 0xE0: // message waiting, discard or store, GSM 7-bit
		return csGSM
	case dc < 0xF0: // message waiting, store, UCS-2
		return csUCS2
	case dc&0x04 != 0: // data coding/message class: 8-bit data
		return cs8Bit
	default:
		return csGSM
	}
}

// Decode turns a short_message (without UDH) in data coding dc into text. Unknown codings: error. Codings 0, 1, 3, 8 (and
// 0xF0-class/0x00-0x0F general data coding groups mapping to GSM/8bit/UCS2 per TS 23.038 where simple) supported. Invalid bytes are
// replaced, not fatal, where sensible.
//
// GSM text is expected unpacked (see DecodeGSM). IA5 octets above 0x7F, a lone UTF-16 surrogate and
// an odd trailing UCS-2 octet become U+FFFD. 8-bit data (0x02, 0x04 and the TS 23.038 8-bit codings)
// has no defined character set and is decoded octet for octet as Latin-1; the error wraps
// ErrUnknownCoding for compressed, reserved and national codings.
func Decode(dc byte, b []byte) (string, error) {
	switch charsetOf(dc) {
	case csGSM:
		return DecodeGSM(b), nil
	case csASCII:
		return decodeASCII(b), nil
	case csLatin1, cs8Bit:
		return decodeLatin1(b), nil
	case csUCS2:
		return decodeUTF16BE(b), nil
	}
	return "", fmt.Errorf("%w 0x%02X", ErrUnknownCoding, dc)
}

// DecodeShift is Decode for a short_message whose UDH selects the national
// language tables s (see LanguageShift): GSM 7-bit text is decoded with them
// (see DecodeGSMShift); other codings, which have no such tables, as Decode
// does.
func DecodeShift(dc byte, b []byte, s Shift) (string, error) {
	if charsetOf(dc) == csGSM {
		return DecodeGSMShift(b, s), nil
	}
	return Decode(dc, b)
}

// Unshift returns b, a short_message (without UDH) in data coding dc whose
// UDH selects the national language tables s, as a data coding and payload
// that Decode turns into the same text without s: GSM 7-bit text with a
// national table becomes UCS-2 (DCUCS2), so that a part of a concatenated
// message can be kept apart from its UDH until the others come. Anything
// else is returned as it is. When s names a language without a table, and
// dc is GSM 7-bit, the error wraps ErrUnknownLanguage (see Shift.Check):
// the results, still valid, decode with the default table in its place.
func Unshift(dc byte, b []byte, s Shift) (byte, []byte, error) {
	if charsetOf(dc) != csGSM {
		return dc, b, nil
	}
	err := s.Check()
	if !s.national() {
		return dc, b, err
	}
	text := DecodeGSMShift(b, s)
	u := make([]byte, 0, 2*len(text))
	for _, r := range text {
		u = appendUTF16BE(u, r)
	}
	return DCUCS2, u, err
}

// Binary reports whether b, a short_message in data coding dc, is data
// for an application of the phone (a WAP push, a configuration, a ringtone)
// rather than text: 8-bit data (see Decode) with octets that are control
// characters in Latin-1 (other than tab, line feed and carriage return).
// Text some phones send as 8-bit data has none.
func Binary(dc byte, b []byte) bool {
	if charsetOf(dc) != cs8Bit {
		return false
	}
	for _, c := range b {
		if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') || (c >= 0x7F && c < 0xA0) {
			return true
		}
	}
	return false
}

func decodeASCII(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for _, c := range b {
		if c >= utf8.RuneSelf {
			sb.WriteRune(utf8.RuneError)
			continue
		}
		sb.WriteByte(c)
	}
	return sb.String()
}

func decodeLatin1(b []byte) string {
	n := len(b)
	for _, c := range b {
		if c >= utf8.RuneSelf {
			n++
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, c := range b {
		sb.WriteRune(rune(c))
	}
	return sb.String()
}

func decodeUTF16BE(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b) + len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		u := rune(b[i])<<8 | rune(b[i+1])
		if utf16.IsSurrogate(u) {
			if u < 0xDC00 && i+3 < len(b) {
				lo := rune(b[i+2])<<8 | rune(b[i+3])
				if r := utf16.DecodeRune(u, lo); r != utf8.RuneError {
					sb.WriteRune(r)
					i += 2
					continue
				}
			}
			u = utf8.RuneError
		}
		sb.WriteRune(u)
	}
	if len(b)%2 != 0 {
		sb.WriteRune(utf8.RuneError)
	}
	return sb.String()
}
