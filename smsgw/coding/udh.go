package coding

import (
	"errors"
	"fmt"
)

// ErrMalformedUDH is returned, wrapped with the reason, by SplitUDH.
var ErrMalformedUDH = errors.New("coding: malformed UDH")

// Information element identifiers, 3GPP TS 23.040 §9.2.3.24.
const (
	ieConcat8  = 0x00 // concatenated short messages, 8-bit reference
	ieConcat16 = 0x08 // concatenated short messages, 16-bit reference
	iePort8    = 0x04 // application port addressing, 8-bit ports
	iePort16   = 0x05 // application port addressing, 16-bit ports
	ieSingle   = 0x24 // national language single shift
	ieLocking  = 0x25 // national language locking shift
)

// Concat is the concatenation info from a UDH (IE 0x00 8-bit ref or 0x08 16-bit ref).
// Seq counts from 1 to Total.
type Concat struct {
	Ref   uint16
	Total uint8
	Seq   uint8
}

// SplitUDH parses the UDH at the start of sm (when the caller saw esm_class&0x40). It returns the concatenation IE
// if present (nil otherwise) and the payload after the UDH. Malformed UDH → error (never panic, never read out of range).
//
// The UDH is malformed when its length or an IE's length runs past its end, when a concatenation IE
// has the wrong length, or when it carries a zero total, a zero sequence number, or one above the total.
// If several concatenation IEs are present the last one counts (TS 23.040 §9.2.3.24).
// Other IEs are skipped. payload aliases sm.
func SplitUDH(sm []byte) (c *Concat, payload []byte, err error) {
	if len(sm) == 0 {
		return nil, nil, fmt.Errorf("%w: empty short message", ErrMalformedUDH)
	}
	end := 1 + int(sm[0])
	if end > len(sm) {
		return nil, nil, fmt.Errorf("%w: UDH length %d exceeds message length %d", ErrMalformedUDH, sm[0], len(sm)-1)
	}
	var found Concat
	ok := false
	for i := 1; i < end; {
		if i+2 > end {
			return nil, nil, fmt.Errorf("%w: truncated IE header at offset %d", ErrMalformedUDH, i)
		}
		iei, l := sm[i], int(sm[i+1])
		data := i + 2
		if data+l > end {
			return nil, nil, fmt.Errorf("%w: IE 0x%02X length %d runs past UDH", ErrMalformedUDH, iei, l)
		}
		d := sm[data : data+l]
		switch iei {
		case ieConcat8:
			if l != 3 {
				return nil, nil, fmt.Errorf("%w: IE 0x00 length %d, want 3", ErrMalformedUDH, l)
			}
			found, ok = Concat{Ref: uint16(d[0]), Total: d[1], Seq: d[2]}, true
		case ieConcat16:
			if l != 4 {
				return nil, nil, fmt.Errorf("%w: IE 0x08 length %d, want 4", ErrMalformedUDH, l)
			}
			found, ok = Concat{Ref: uint16(d[0])<<8 | uint16(d[1]), Total: d[2], Seq: d[3]}, true
		}
		i = data + l
	}
	if !ok {
		return nil, sm[end:], nil
	}
	if found.Total == 0 || found.Seq == 0 || found.Seq > found.Total {
		return nil, nil, fmt.Errorf("%w: concatenation part %d of %d", ErrMalformedUDH, found.Seq, found.Total)
	}
	return &found, sm[end:], nil
}

// PortAddressed reports whether the UDH at the start of sm (when the caller
// saw esm_class&0x40) carries application port addressing (IE 0x04 or 0x05,
// TS 23.040 §9.2.3.24.3–4): the message is for an application on the phone
// (a WAP push, visual voicemail), not text for a person. A malformed UDH
// reports false (SplitUDH reports it).
func PortAddressed(sm []byte) bool {
	if len(sm) == 0 {
		return false
	}
	end := min(1+int(sm[0]), len(sm))
	for i := 1; i+2 <= end; {
		iei, l := sm[i], int(sm[i+1])
		if iei == iePort8 || iei == iePort16 {
			return true
		}
		i += 2 + l
	}
	return false
}

// LanguageShift returns the national language tables the UDH at the start
// of sm (when the caller saw esm_class&0x40) selects: IE 0x25 (locking
// shift) and IE 0x24 (single shift), TS 23.040 §9.2.3.24.15-16. As with
// concatenation, the last of several IEs of a kind counts; one whose length
// is not 1 is ignored, and a malformed UDH selects what its IEs before the
// fault did (SplitUDH reports it).
func LanguageShift(sm []byte) Shift {
	var s Shift
	if len(sm) == 0 {
		return s
	}
	end := min(1+int(sm[0]), len(sm))
	for i := 1; i+2 <= end; {
		iei, l := sm[i], int(sm[i+1])
		if i+2+l > end {
			break
		}
		if l == 1 {
			switch iei {
			case ieLocking:
				s.Locking = Language(sm[i+2])
			case ieSingle:
				s.Single = Language(sm[i+2])
			}
		}
		i += 2 + l
	}
	return s
}
