package coding

import "unicode/utf8"

// Alphabet is what data_coding 0, SMPP 3.4's "SMSC default alphabet", means
// on a bind. Most SMSCs take it as GSM 03.38; some as Latin-1 or IA5 (what
// Kannel calls alt-charset). The SMSC converts such text to GSM 03.38 for
// the handset, so the choice between data coding 0 and UCS-2, and the parts,
// follow GSM 03.38 (an extension table character counts two septets) on any
// bind; only the octets differ. Text with a character the bind's alphabet
// lacks (Greek capitals or € for Latin-1, anything beyond ASCII for IA5)
// goes as UCS-2.
//
// Each alphabet writes fewer characters as data coding 0 than the one
// before it, so of several binds' alphabets the greatest plans text that
// every one of them can carry, in the same parts.
type Alphabet uint8

const (
	GSM    Alphabet = iota // GSM 03.38, one septet per octet (the default)
	Latin1                 // ISO-8859-1, one octet per character
	ASCII                  // IA5 / ASCII, one octet per character
)

// limit is the first rune the alphabet has not.
func (a Alphabet) limit() rune {
	switch a {
	case Latin1:
		return 0x100
	case ASCII:
		return 0x80
	}
	return utf8.MaxRune + 1
}

// ParseAlphabet reads an alphabet's name: "gsm", "latin1" or "ascii".
func ParseAlphabet(s string) (Alphabet, bool) {
	switch s {
	case "gsm":
		return GSM, true
	case "latin1":
		return Latin1, true
	case "ascii":
		return ASCII, true
	}
	return GSM, false
}

// String returns the name ParseAlphabet reads.
func (a Alphabet) String() string {
	switch a {
	case Latin1:
		return "latin1"
	case ASCII:
		return "ascii"
	}
	return "gsm"
}

// Segment is Segment for a bind whose data coding 0 is a: text every
// character of which GSM 03.38 and a both have goes as DCDefault, in the
// parts GSM 03.38 would make, each written in a; other text as UCS-2.
func (a Alphabet) Segment(text string, ref uint8, maxParts int) (dc byte, parts [][]byte, err error) {
	dc, parts, err = segment(text, planIn(a, text), ref, maxParts)
	if err == nil && dc == DCDefault && a != GSM {
		toLatin1(parts)
	}
	return dc, parts, err
}

// toLatin1 turns parts of GSM septets whose characters are all below 0x100
// into Latin-1 (which ASCII is part of), in place: each character an octet.
// The UDH, if any, stays as it is.
func toLatin1(parts [][]byte) {
	for i, p := range parts {
		j := 0
		if len(parts) > 1 {
			j = udhLen
		}
		k := j
		for ; j < len(p); j++ {
			r := gsmBase[p[j]]
			if p[j] == gsmEscape {
				j++
				r = gsmExt[p[j]]
			}
			p[k] = byte(r)
			k++
		}
		parts[i] = p[:k:k]
	}
}

// Count is Count for a bind whose data coding 0 is a (see Alphabet.Segment).
func (a Alphabet) Count(text string) (dc byte, parts int) {
	p := planIn(a, text)
	return p.dc, p.parts
}

// Canonical returns the data_coding that names dc's character set on any
// bind: on a Latin-1 bind 0 is DCLatin1, on an ASCII bind DCIA5. Other
// values, and every value on a GSM bind, are returned as they are.
func (a Alphabet) Canonical(dc byte) byte {
	if dc == DCDefault {
		switch a {
		case Latin1:
			return DCLatin1
		case ASCII:
			return DCIA5
		}
	}
	return dc
}

// Decode is Decode for a short_message that came on a bind whose data
// coding 0 is a.
func (a Alphabet) Decode(dc byte, b []byte) (string, error) {
	return Decode(a.Canonical(dc), b)
}
