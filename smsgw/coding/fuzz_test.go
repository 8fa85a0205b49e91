package coding

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func FuzzSplitUDH(f *testing.F) {
	f.Add([]byte{5, 0, 3, 0x2A, 3, 2, 'h', 'i'})
	f.Add([]byte{6, 8, 4, 0x12, 0x34, 2, 2, 'h', 'i'})
	f.Add([]byte{11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 9, 2, 1, 0xAA})
	f.Add([]byte{4, 0, 3, 1, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sm []byte) {
		c, payload, err := SplitUDH(sm)
		if err != nil {
			if c != nil || payload != nil {
				t.Fatalf("error %v with results %+v, % X", err, c, payload)
			}
			return
		}
		if n := 1 + int(sm[0]); len(payload) != len(sm)-n {
			t.Fatalf("payload is %d octets; UDH of %d leaves %d", len(payload), n, len(sm)-n)
		}
		if c != nil && (c.Total == 0 || c.Seq == 0 || c.Seq > c.Total) {
			t.Fatalf("invalid concat accepted: %+v", c)
		}
	})
}

func FuzzDecode(f *testing.F) {
	f.Add(DCDefault, []byte{0x48, 0x69, 0x1B, 0x65, 0x1B})
	f.Add(DCIA5, []byte("hello\xff"))
	f.Add(DCLatin1, []byte("caf\xe9"))
	f.Add(DCUCS2, []byte{0xD8, 0x3D, 0xDE, 0x00, 0xDC})
	f.Add(byte(0xF4), []byte{0, 1, 2})
	f.Add(byte(0x80), []byte("x"))
	f.Fuzz(func(t *testing.T, dc byte, b []byte) {
		s, err := Decode(dc, b)
		if err != nil {
			if s != "" {
				t.Fatalf("error %v with text %q", err, s)
			}
			return
		}
		if !utf8.ValidString(s) {
			t.Fatalf("Decode(0x%02X, % X) gave invalid UTF-8 %q", dc, b, s)
		}
	})
}

// FuzzUnshift: text under national language tables decodes to valid UTF-8,
// and Unshift keeps it as it is, tables or no tables.
func FuzzUnshift(f *testing.F) {
	f.Add(uint8(1), uint8(1), []byte{0x41, 0x07, 0x6B, 0x60, 0x1B, 0x47})
	f.Add(uint8(6), uint8(6), []byte{0x2F, 0x42, 0x1B, 0x1D, 0x1B})
	f.Add(uint8(2), uint8(14), []byte{0x1B, 0x1B, 0x80, 0x7F})
	f.Fuzz(func(t *testing.T, lock, single uint8, b []byte) {
		s := Shift{Locking: Language(lock), Single: Language(single)}
		want := DecodeGSMShift(b, s)
		if !utf8.ValidString(want) {
			t.Fatalf("DecodeGSMShift(% X, %+v) gave invalid UTF-8 %q", b, s, want)
		}
		dc, u, _ := Unshift(DCDefault, b, s)
		if got, err := Decode(dc, u); err != nil || got != want {
			t.Fatalf("Unshift(% X, %+v) = 0x%02X % X, decoding to %q, %v; want %q", b, s, dc, u, got, err, want)
		}
	})
}

func FuzzSegmentRoundTrip(f *testing.F) {
	for _, s := range roundTripInputs {
		f.Add(s, uint8(7))
	}
	f.Add(strings.Repeat("a", 152)+"€b", uint8(0))
	f.Add(strings.Repeat("ж", 66)+"😀", uint8(1))
	f.Fuzz(func(t *testing.T, text string, ref uint8) {
		if !utf8.ValidString(text) {
			t.Skip("invalid UTF-8 is replaced, not round-tripped")
		}
		dc, parts, err := Segment(text, ref, 0)
		if err != nil {
			// Only length can fail; 255 parts hold at least 255*67/2 runes.
			if utf8.RuneCountInString(text) < 255*67/2 {
				t.Fatalf("Segment(%d runes): %v", utf8.RuneCountInString(text), err)
			}
			return
		}
		if cdc, n := Count(text); cdc != dc || n != len(parts) {
			t.Fatalf("Count = 0x%02X, %d; Segment gave 0x%02X, %d", cdc, n, dc, len(parts))
		}
		for i, p := range parts {
			if len(p) > maxOctets(dc) {
				t.Fatalf("part %d is %d octets", i+1, len(p))
			}
			if len(parts) > 1 && p[3] != ref {
				t.Fatalf("part %d ref %d; want %d", i+1, p[3], ref)
			}
		}
		if got := reassemble(t, dc, parts); got != text {
			t.Fatalf("round trip = %q; want %q", got, text)
		}
		// A bind whose data coding 0 is not GSM: GSM's parts, or UCS-2's.
		gsmParts := len(parts)
		for _, a := range []Alphabet{Latin1, ASCII} {
			dc, parts, err := a.Segment(text, ref, 0)
			if err != nil {
				return // longer in UCS-2 than GSM allowed
			}
			if cdc, n := a.Count(text); cdc != dc || n != len(parts) {
				t.Fatalf("%v: Count = 0x%02X, %d; Segment gave 0x%02X, %d", a, cdc, n, dc, len(parts))
			}
			if dc == DCDefault && len(parts) != gsmParts {
				t.Fatalf("%v: %d parts; GSM makes %d", a, len(parts), gsmParts)
			}
			for i, p := range parts {
				if len(p) > maxOctets(dc) {
					t.Fatalf("%v: part %d is %d octets", a, i+1, len(p))
				}
			}
			if got := reassembleIn(t, a, dc, parts); got != text {
				t.Fatalf("%v: round trip = %q; want %q", a, got, text)
			}
		}
	})
}
