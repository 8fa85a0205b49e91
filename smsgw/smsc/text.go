package smsc

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// GSM 03.38 default alphabet, one septet per rune, unpacked as SMPP carries it.
// fiorix's pdutext.GSM7 returns text it cannot encode as raw UTF-8 instead of
// failing, so the simulator keeps its own table to decide GSM or UCS-2.
var gsmBasic = []rune("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
	"¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")

var gsmExt = map[byte]rune{
	0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\',
	0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€',
}

var gsmEncode = func() map[rune][]byte {
	m := make(map[rune][]byte, 140)
	for i, r := range gsmBasic {
		if i != 0x1B {
			m[r] = []byte{byte(i)}
		}
	}
	for b, r := range gsmExt {
		m[r] = []byte{0x1B, b}
	}
	return m
}()

const (
	gsmSingle  = 160
	gsmPart    = 153
	ucs2Single = 70
	ucs2Part   = 67
	maxParts   = 255
)

// Data coding values used for mobile-originated messages.
const (
	codingGSM  = 0x00
	codingUCS2 = 0x08
)

// encodeGSM returns text as unpacked GSM 03.38 septets, one token (one or two
// septets) per rune, or false if a rune has no GSM representation.
func encodeGSM(text string) ([][]byte, bool) {
	toks := make([][]byte, 0, len(text))
	for _, r := range text {
		t, ok := gsmEncode[r]
		if !ok {
			return nil, false
		}
		toks = append(toks, t)
	}
	return toks, true
}

func decodeGSM(b []byte) string {
	var sb strings.Builder
	sb.Grow(len(b))
	for i := 0; i < len(b); i++ {
		c := b[i] & 0x7F
		if c == 0x1B && i+1 < len(b) {
			i++
			if r, ok := gsmExt[b[i]&0x7F]; ok {
				sb.WriteRune(r)
			} else {
				sb.WriteRune(gsmBasic[b[i]&0x7F]) // 23.038: show the default-alphabet character
			}
			continue
		}
		if c == 0x1B {
			sb.WriteByte(' ')
			continue
		}
		sb.WriteRune(gsmBasic[c])
	}
	return sb.String()
}

func decodeUCS2(b []byte) string {
	u := make([]uint16, len(b)/2)
	for i := range u {
		u[i] = binary.BigEndian.Uint16(b[2*i:])
	}
	return string(utf16.Decode(u))
}

func decodeLatin1(b []byte) string {
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

// decodeText renders short_message text (UDH already removed) best-effort.
func decodeText(dc byte, b []byte) string {
	switch {
	case dc == 0x08:
		return decodeUCS2(b)
	case dc == 0x03:
		return decodeLatin1(b)
	case dc == 0x01:
		return string(b)
	case dc == 0x00 || dc&0xF4 == 0xF0:
		for _, c := range b {
			if c > 0x7F {
				// Not unpacked GSM: probably an ESME sending UTF-8 or Latin-1 under data_coding 0.
				if utf8.Valid(b) {
					return string(b)
				}
				return decodeLatin1(b)
			}
		}
		return decodeGSM(b)
	}
	return hex.EncodeToString(b)
}

// udh splits a user data header off a short_message.
func udh(sm []byte) (hdr, rest []byte, ok bool) {
	if len(sm) == 0 || 1+int(sm[0]) > len(sm) {
		return nil, sm, false
	}
	n := 1 + int(sm[0])
	return sm[1:n], sm[n:], true
}

// concatFromUDH finds an 8-bit (IEI 0x00) or 16-bit (IEI 0x08) concatenation element.
func concatFromUDH(h []byte) *Concat {
	for len(h) >= 2 {
		iei, l := h[0], int(h[1])
		if 2+l > len(h) {
			return nil
		}
		d := h[2 : 2+l]
		switch {
		case iei == 0x00 && l == 3:
			return &Concat{Ref: uint16(d[0]), Total: d[1], Seq: d[2]}
		case iei == 0x08 && l == 4:
			return &Concat{Ref: binary.BigEndian.Uint16(d), Total: d[2], Seq: d[3]}
		}
		h = h[2+l:]
	}
	return nil
}

func concatFromSAR(t map[uint16][]byte) *Concat {
	ref, total, seq := t[TagSarMsgRefNum], t[TagSarTotalSegments], t[TagSarSegmentSeqnum]
	if len(ref) != 2 || len(total) != 1 || len(seq) != 1 {
		return nil
	}
	return &Concat{Ref: binary.BigEndian.Uint16(ref), Total: total[0], Seq: seq[0]}
}

var errTooManyParts = errors.New("smsc: message needs more than 255 parts")

// splitText encodes text as GSM 03.38 when every character has a septet,
// else UCS-2, and cuts it into short_message payloads without UDH. More than
// one payload means the caller must add a concatenation UDH. An escape pair or
// a surrogate pair is never split.
func splitText(text string) (parts [][]byte, coding byte, err error) {
	if toks, ok := encodeGSM(text); ok {
		n := 0
		for _, t := range toks {
			n += len(t)
		}
		if n <= gsmSingle {
			sm := make([]byte, 0, n)
			for _, t := range toks {
				sm = append(sm, t...)
			}
			return [][]byte{sm}, codingGSM, nil
		}
		var cur []byte
		for _, t := range toks {
			if len(cur)+len(t) > gsmPart {
				parts = append(parts, cur)
				cur = nil
			}
			cur = append(cur, t...)
		}
		parts = append(parts, cur)
		coding = codingGSM
	} else {
		units := utf16.Encode([]rune(text))
		if len(units) <= ucs2Single {
			return [][]byte{ucs2Bytes(units)}, codingUCS2, nil
		}
		for len(units) > 0 {
			n := min(ucs2Part, len(units))
			if n < len(units) && utf16.IsSurrogate(rune(units[n-1])) && units[n-1] < 0xDC00 {
				n-- // keep a high surrogate with its low half
			}
			parts = append(parts, ucs2Bytes(units[:n]))
			units = units[n:]
		}
		coding = codingUCS2
	}
	if len(parts) > maxParts {
		return nil, 0, errTooManyParts
	}
	return parts, coding, nil
}

func ucs2Bytes(u []uint16) []byte {
	b := make([]byte, 0, 2*len(u))
	for _, x := range u {
		b = binary.BigEndian.AppendUint16(b, x)
	}
	return b
}

// asciiReceiptText keeps printable ASCII, replacing anything else with '?',
// the way most SMSCs render the text: field of a receipt.
func asciiReceiptText(s string, max int) string {
	var sb strings.Builder
	n := 0
	for _, r := range s {
		if n == max {
			break
		}
		if r < 0x20 || r > 0x7E {
			r = '?'
		}
		sb.WriteRune(r)
		n++
	}
	return sb.String()
}
