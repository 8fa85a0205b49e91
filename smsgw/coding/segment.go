package coding

import (
	"errors"
	"fmt"
	"unicode/utf8"
)

// SMPP data_coding values this package produces or understands directly.
const (
	DCDefault byte = 0x00 // SMSC default alphabet: GSM 03.38, one septet per octet (unpacked), as SMPP carries it; see Alphabet
	DCIA5     byte = 0x01 // IA5/ASCII (treat as GSM-compatible ASCII on decode)
	DCLatin1  byte = 0x03 // ISO-8859-1
	DCUCS2    byte = 0x08 // UCS-2 big-endian (decode accepts UTF-16 surrogate pairs)
)

// ESMClassUDHI is the esm_class bit (UDH indicator) to set when parts carry a UDH,
// that is when Segment returns more than one part.
const ESMClassUDHI byte = 0x40

// ErrTooLong is returned by Segment when text needs more parts than allowed.
var ErrTooLong = errors.New("coding: message needs more parts than allowed")

// Limits per 3GPP TS 23.040: 140 octets of user data, less a 6-octet UDH when concatenated.
const (
	gsmSingle  = 160 // septets
	gsmPart    = 153 // septets
	ucs2Single = 70  // UTF-16 code units
	ucs2Part   = 67  // UTF-16 code units
	udhLen     = 6   // UDHL, IEI 0x00, IEDL 3, ref, total, seq
	maxTotal   = 255
)

// plan is what one pass over the text learns: the coding, the payload size in
// septets (GSM) or UTF-16 code units (UCS-2), and the number of parts.
type plan struct {
	dc    byte
	units int
	parts int
}

// planFor plans text for a GSM bind: p. ucs2 is its plan as UCS-2 (p
// itself when the text is not all GSM), for a bind whose alphabet lacks a
// character of it.
func planFor(text string) (p, ucs2 plan) {
	gsm := true
	var septets, gParts, gFill int
	var units, uParts, uFill int
	for _, r := range text {
		if gsm {
			if _, n := gsmLookup(r); n == 0 {
				gsm = false
			} else {
				septets += n
				gParts, gFill = fill(gParts, gFill, n, gsmPart)
			}
		}
		n := 1
		if r > 0xFFFF {
			n = 2
		}
		units += n
		uParts, uFill = fill(uParts, uFill, n, ucs2Part)
	}
	ucs2 = plan{DCUCS2, units, uParts}
	if units <= ucs2Single {
		ucs2.parts = 1
	}
	if gsm {
		if septets <= gsmSingle {
			return plan{DCDefault, septets, 1}, ucs2
		}
		return plan{DCDefault, septets, gParts}, ucs2
	}
	return ucs2, ucs2
}

// planIn is planFor for a bind whose data coding 0 is a: GSM text with a
// character a lacks goes as UCS-2.
func planIn(a Alphabet, text string) plan {
	p, ucs2 := planFor(text)
	if p.dc == DCDefault && a != GSM {
		lim := a.limit()
		for _, r := range text {
			if r >= lim {
				return ucs2
			}
		}
	}
	return p
}

// fill adds a character of n units to the current part, opening a new one when it
// does not fit, so that escape and surrogate pairs stay whole.
func fill(parts, used, n, limit int) (int, int) {
	if parts == 0 || used+n > limit {
		return parts + 1, n
	}
	return parts, used + n
}

// Parts is Count's number of parts, for a destination dest that does not
// change it: the default of the parts counters the router and the verifier
// take (with several SMSCs the gateway's counts by destination).
func Parts(dest, text string) int {
	_, n := Count(text)
	return n
}

// Count reports data coding and number of parts Segment would produce, without allocating the parts.
func Count(text string) (dc byte, parts int) {
	p, _ := planFor(text)
	return p.dc, p.parts
}

// Segment splits text into SMPP short_message payloads. It uses GSM 03.38 (DCDefault, unpacked septets)
// when every character is in the default alphabet or extension table, otherwise UCS-2 (DCUCS2, UTF-16BE).
// Single message limits: 160 septets / 70 UTF-16 units; when longer, each part carries a 6-byte UDH
// (IE 0x00, 8-bit ref) and at most 153 septets / 67 units. An escape pair (0x1B + ext char) and a UTF-16
// surrogate pair are never split across parts. maxParts<=0 means 255. ref is the concatenation reference.
// Returns ErrTooLong (wrapped with the count) if more than maxParts parts are needed.
//
// When more than one part is returned the caller sets ESMClassUDHI in esm_class.
// Empty text gives one empty part. Invalid UTF-8 is sent as U+FFFD.
// All parts share one backing array; each is capped at its own length.
// It is GSM.Segment: for an SMSC whose data coding 0 is not GSM 03.38, see Alphabet.
func Segment(text string, ref uint8, maxParts int) (dc byte, parts [][]byte, err error) {
	p, _ := planFor(text)
	return segment(text, p, ref, maxParts)
}

// segment makes the parts of text as p plans them, in GSM septets or UCS-2.
func segment(text string, p plan, ref uint8, maxParts int) (dc byte, parts [][]byte, err error) {
	if maxParts <= 0 || maxParts > maxTotal {
		maxParts = maxTotal
	}
	if p.parts > maxParts {
		return p.dc, nil, fmt.Errorf("%w: %d parts, limit %d", ErrTooLong, p.parts, maxParts)
	}
	size := p.units
	limit := gsmPart
	if p.dc == DCUCS2 {
		size *= 2
		limit = ucs2Part
	}
	multi := p.parts > 1
	if multi {
		size += udhLen * p.parts
	} else {
		limit = p.units // everything fits; never cut
	}
	buf := make([]byte, 0, size)
	parts = make([][]byte, 0, p.parts)

	seq := 1
	start, used := 0, 0
	if multi {
		buf = appendUDH(buf, ref, uint8(p.parts), 1)
	}
	// cut closes the current part and opens the next one.
	cut := func() {
		parts = append(parts, buf[start:len(buf):len(buf)])
		start, used = len(buf), 0
		seq++
		buf = appendUDH(buf, ref, uint8(p.parts), uint8(seq))
	}
	if p.dc == DCDefault {
		for _, r := range text {
			c, n := gsmLookup(r)
			if used+n > limit {
				cut()
			}
			used += n
			if n == 2 {
				buf = append(buf, gsmEscape)
			}
			buf = append(buf, c)
		}
	} else {
		for _, r := range text {
			n := 1
			if r > 0xFFFF {
				n = 2
			}
			if used+n > limit {
				cut()
			}
			used += n
			buf = appendUTF16BE(buf, r)
		}
	}
	parts = append(parts, buf[start:len(buf):len(buf)])
	return p.dc, parts, nil
}

func appendUDH(b []byte, ref, total, seq uint8) []byte {
	return append(b, udhLen-1, ieConcat8, 3, ref, total, seq)
}

func appendUTF16BE(b []byte, r rune) []byte {
	if r > 0xFFFF {
		r -= 0x10000
		hi, lo := 0xD800+(r>>10)&0x3FF, 0xDC00+r&0x3FF
		return append(b, byte(hi>>8), byte(hi), byte(lo>>8), byte(lo))
	}
	if r < 0 || (r >= 0xD800 && r < 0xE000) {
		r = utf8.RuneError
	}
	return append(b, byte(r>>8), byte(r))
}
