package dlr

import "strconv"

// maxIDLen is the longest id IDForms converts; longer ones are only trimmed.
const maxIDLen = 64

// IDForms returns the forms under which an SMSC message id may be compared: the id as given (trimmed, lower-cased, leading zeros
// stripped), plus the decimal rendering when it parses as hex, plus the hex rendering when it parses as decimal. Carriers return ids
// in hex in submit_sm_resp and decimal in receipts (or the reverse). Deterministic order, no duplicates, at most 3 entries.
// Ids longer than 64 chars are returned as-is only.
//
// Trimming removes blanks and NULs; lower-casing is ASCII only; an id of
// zeros becomes "0". Conversions apply to values that fit in 64 bits. An id
// that is empty after trimming has no forms (nil). The forms are symmetric:
// for every f in IDForms(x), IDForms(f) contains f and Canonical(x).
// "Longer than 64" is measured after trimming, and such an id is returned
// trimmed but otherwise unchanged.
func IDForms(id string) []string {
	id = trimSpace(id)
	if id == "" {
		return nil
	}
	if len(id) > maxIDLen {
		return []string{id}
	}
	// Build every form in one buffer and cut the strings from one allocation.
	var buf [maxIDLen + 20 + 16]byte
	b := appendCanonical(buf[:0], id)
	c := len(b)
	hexVal, isHex := parseUint(b, 16)
	decVal, isDec := parseUint(b, 10)
	var d, h int
	if isHex {
		b = strconv.AppendUint(b, hexVal, 10)
		d = len(b)
	}
	if isDec {
		b = strconv.AppendUint(b, decVal, 16)
		h = len(b)
	}
	s := string(b)
	forms := make([]string, 1, 3)
	forms[0] = s[:c]
	if isHex {
		forms = addForm(forms, s[c:d])
	}
	if isDec {
		start := c
		if isHex {
			start = d
		}
		forms = addForm(forms, s[start:h])
	}
	return forms
}

func addForm(forms []string, f string) []string {
	for _, g := range forms {
		if g == f {
			return forms
		}
	}
	return append(forms, f)
}

// Canonical returns IDForms(id)[0], or "" for an id that is blank.
func Canonical(id string) string {
	id = trimSpace(id)
	if len(id) > maxIDLen {
		return id
	}
	c := stripZeros(id)
	for i := 0; i < len(c); i++ {
		if 'A' <= c[i] && c[i] <= 'Z' {
			var buf [maxIDLen]byte
			return string(appendCanonical(buf[:0], c))
		}
	}
	return c
}

// stripZeros drops leading zeros from a trimmed id, leaving "0" for an id of
// zeros and leaving the id alone when that would expose a blank.
func stripZeros(id string) string {
	i := 0
	for i < len(id) && id[i] == '0' {
		i++
	}
	switch {
	case i == len(id):
		if i == 0 {
			return id
		}
		return "0"
	case isSpace(id[i]):
		return id
	}
	return id[i:]
}

func appendCanonical(b []byte, id string) []byte {
	for _, c := range []byte(stripZeros(id)) {
		b = append(b, lowerASCII(c))
	}
	return b
}

// parseUint parses b, already lower-cased, in base 10 or 16 without
// overflowing 64 bits.
func parseUint(b []byte, base uint64) (uint64, bool) {
	if len(b) == 0 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		var d uint64
		switch {
		case '0' <= c && c <= '9':
			d = uint64(c - '0')
		case base == 16 && 'a' <= c && c <= 'f':
			d = uint64(c-'a') + 10
		default:
			return 0, false
		}
		if n > (^uint64(0)-d)/base {
			return 0, false
		}
		n = n*base + d
	}
	return n, true
}
