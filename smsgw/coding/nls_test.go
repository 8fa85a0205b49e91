package coding

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestNationalLanguage decodes short messages (UDH and all) whose UDH
// selects national language tables, as SplitUDH, LanguageShift and
// DecodeShift read them from a deliver_sm.
func TestNationalLanguage(t *testing.T) {
	esc := byte(gsmEscape)
	for _, tc := range []struct {
		name    string
		sm      []byte
		want    string
		unknown bool // a language without a table: decoded with the default one
	}{
		// The probe's cases: Turkish locking shift, then single shift.
		{"Turkish locking shift", []byte{0x03, 0x25, 0x01, 0x01, 0x41, 0x07, 0x6B, 0x60}, "Aıkç", false},
		{"Turkish single shift", append([]byte{0x03, 0x24, 0x01, 0x01}, "Turkish \x1b\x47"...), "Turkish Ğ", false},
		{"Turkish single shift, code it leaves undefined", []byte{0x03, 0x24, 0x01, 0x01, esc, 0x41, esc, 0x07}, "Aì", false},
		{"Spanish single shift", append([]byte{0x03, 0x24, 0x01, 0x02}, "Canci\x1bon est\x1ba aqu\x1bi, \x1b\x09a va"...), "Canción está aquí, ça va", false},
		{"Portuguese locking shift", []byte{0x03, 0x25, 0x01, 0x03, 0x41, 0x74, 0x65, 0x6E, 0x09, 0x7B, 0x6F, 0x20, 0x76, 0x6F, 0x63, 0x04}, "Atenção você", false},
		{"Portuguese locking, Spanish single shift", []byte{0x06, 0x25, 0x01, 0x03, 0x24, 0x01, 0x02, 0x61, 0x09, esc, 0x09, esc, 0x41, esc, 0x3C}, "açç\u00c1[", false},
		{"Hindi locking and single shift", []byte{0x06, 0x25, 0x01, 0x06, 0x24, 0x01, 0x06, 0x2F, 0x42, 0x4C, 0x5F, 0x27, 0x59, 0x20, esc, 0x1D, esc, 0x1E, esc, 0x19}, "नमस्ते १२।", false},
		{"Hindi single shift over the default alphabet", []byte{0x03, 0x24, 0x01, 0x06, 0x41, esc, 0x1C, esc, 0x41, esc, 0x65}, "A०A€", false},
		{"Urdu locking shift", []byte{0x03, 0x25, 0x01, 0x0D, 0x00, 0x02}, "اب", false},
		{"both after concatenation", []byte{0x0B, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x25, 0x01, 0x01, 0x24, 0x01, 0x01, 0x07, esc, 0x73}, "ış", false},
		{"last IE of a kind counts", []byte{0x06, 0x25, 0x01, 0x0E, 0x25, 0x01, 0x01, 0x07}, "ı", false},
		{"IE of the wrong length ignored", []byte{0x04, 0x25, 0x02, 0x01, 0x01, 0x07}, "ì", false},
		{"language 0: the default alphabet", []byte{0x03, 0x25, 0x01, 0x00, 0x07}, "ì", false},
		{"unknown locking shift language", []byte{0x03, 0x25, 0x01, 0x0E, 0x41, 0x07}, "Aì", true},
		{"unknown single shift language", []byte{0x03, 0x24, 0x01, 0xFF, esc, 0x65, esc, 0x47}, "€G", true},
		{"Spanish has no locking shift table", []byte{0x03, 0x25, 0x01, 0x02, 0x7D, 0x07}, "ñì", true},
		{"unknown locking, known single shift", []byte{0x06, 0x25, 0x01, 0x0E, 0x24, 0x01, 0x01, 0x07, esc, 0x69}, "ìı", true},
		{"no national language IE", []byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x41, 0x07, 0x6B, 0x60, esc, 0x47}, "Aìk¿G", false},
		{"escape and lone escape under a locking shift", []byte{0x03, 0x25, 0x01, 0x01, esc, esc, 0x07, esc}, " ı ", false},
		{"code a locking shift table leaves unused", []byte{0x03, 0x25, 0x01, 0x04, 0x0C, 0x03}, " অ", false},
		{"octet above 0x7F", []byte{0x03, 0x25, 0x01, 0x01, 0x80, 0x07}, "\uFFFDı", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, payload, err := SplitUDH(tc.sm)
			if err != nil {
				t.Fatal(err)
			}
			s := LanguageShift(tc.sm)
			got, err := DecodeShift(DCDefault, payload, s)
			if err != nil || got != tc.want {
				t.Errorf("DecodeShift(% X, %+v) = %q, %v; want %q", payload, s, got, err, tc.want)
			}
			if err := s.Check(); errors.Is(err, ErrUnknownLanguage) != tc.unknown {
				t.Errorf("%+v.Check() = %v; want an unknown language: %v", s, err, tc.unknown)
			}
			dc, u, err := Unshift(DCDefault, payload, s)
			if errors.Is(err, ErrUnknownLanguage) != tc.unknown {
				t.Errorf("Unshift error %v; want an unknown language: %v", err, tc.unknown)
			}
			if got, err := Decode(dc, u); err != nil || got != tc.want {
				t.Errorf("Unshift gave 0x%02X % X, which decodes to %q, %v; want %q", dc, u, got, err, tc.want)
			}
		})
	}
}

// TestUnshift: only GSM 7-bit text with a national table changes, to UCS-2.
func TestUnshift(t *testing.T) {
	tr := Shift{Locking: Turkish}
	b := []byte{0x41, 0x07}
	if dc, u, err := Unshift(DCDefault, b, tr); dc != DCUCS2 || !bytes.Equal(u, []byte{0x00, 0x41, 0x01, 0x31}) || err != nil {
		t.Errorf("Turkish: 0x%02X % X, %v; want UCS-2 00 41 01 31", dc, u, err)
	}
	for _, tc := range []struct {
		name string
		dc   byte
		s    Shift
	}{
		{"default tables", DCDefault, Shift{}},
		{"unknown language", DCDefault, Shift{Locking: 14}},
		{"Latin-1", DCLatin1, tr},
		{"UCS-2", DCUCS2, tr},
		{"8-bit", 0x04, Shift{Single: 99}},
	} {
		dc, u, err := Unshift(tc.dc, b, tc.s)
		if dc != tc.dc || &u[0] != &b[0] || len(u) != len(b) {
			t.Errorf("%s: 0x%02X % X; want 0x%02X % X as it was", tc.name, dc, u, tc.dc, b)
		}
		if wantErr := tc.name == "unknown language"; (err != nil) != wantErr {
			t.Errorf("%s: error %v", tc.name, err)
		}
	}
	if got, err := DecodeShift(DCUCS2, []byte{0x00, 0x07}, tr); got != "\a" || err != nil {
		t.Errorf("UCS-2 with a Turkish shift: %q, %v; want the UCS-2 text", got, err)
	}
}

func TestShiftCheck(t *testing.T) {
	for _, tc := range []struct {
		s    Shift
		want string // "" for nil
	}{
		{Shift{}, ""},
		{Shift{Locking: Turkish, Single: Spanish}, ""},
		{Shift{Locking: Urdu, Single: Urdu}, ""},
		{Shift{Locking: Spanish}, "coding: no table for national language: Spanish (locking shift)"},
		{Shift{Single: 14}, "coding: no table for national language: language 14 (single shift)"},
		{Shift{Locking: 200, Single: 14}, "coding: no table for national language: language 200 (locking shift), language 14 (single shift)"},
	} {
		err := tc.s.Check()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want || !errors.Is(err, ErrUnknownLanguage)) {
			t.Errorf("%+v.Check() = %v; want %q", tc.s, err, tc.want)
		}
	}
}

// TestNationalTables checks the shape of every table: what TS 23.038 keeps
// in place in all of them, and that each has what its language needs.
func TestNationalTables(t *testing.T) {
	for l := Turkish; l <= Urdu; l++ {
		if l != Spanish {
			lt := lockingTable(l)
			if lt == nil {
				t.Fatalf("%s: no locking shift table", l)
			}
			for c, want := range map[byte]rune{0x0A: '\n', 0x0D: '\r', 0x1B: ' ', 0x20: ' ', 0x21: '!', 0x30: '0', 0x39: '9', 0x61: 'a', 0x7A: 'z'} {
				if lt[c] != want {
					t.Errorf("%s locking shift 0x%02X = %q, want %q", l, c, lt[c], want)
				}
			}
		}
		st := singleTable(l)
		if st == nil {
			t.Fatalf("%s: no single shift table", l)
		}
		for c, want := range map[byte]rune{0x0A: '\f', 0x14: '^', 0x28: '{', 0x29: '}', 0x2F: '\\', 0x3C: '[', 0x3D: '~', 0x3E: ']', 0x40: '|', 0x65: '€', 0x1B: 0} {
			if st[c] != want {
				t.Errorf("%s single shift 0x%02X = %q, want %q", l, c, st[c], want)
			}
		}
		if l >= Bengali && (st[0x41] != 'A' || st[0x5A] != 'Z') {
			t.Errorf("%s single shift lacks the Latin capitals", l)
		}
	}
	if lockingTable(Spanish) != nil || lockingTable(0) != nil || singleTable(0) != nil || lockingTable(14) != nil || singleTable(255) != nil {
		t.Error("a table where TS 23.038 defines none")
	}
	// Every character of a table but the Latin ones is of its script.
	scripts := map[Language][2]rune{Bengali: {0x980, 0x9FF}, Gujarati: {0xA80, 0xAFF}, Hindi: {0x900, 0x97F},
		Kannada: {0xC80, 0xCFF}, Malayalam: {0xD00, 0xD7F}, Oriya: {0xB00, 0xB7F}, Punjabi: {0xA00, 0xA7F},
		Tamil: {0xB80, 0xBFF}, Telugu: {0xC00, 0xC7F}, Urdu: {0x600, 0x6FF}}
	for l, r := range scripts {
		for c, ch := range lockingTable(l) {
			if ch >= 0x80 && (ch < r[0] || ch > r[1]) {
				t.Errorf("%s locking shift 0x%02X = %U, not of its script", l, c, ch)
			}
		}
		for c, ch := range singleTable(l) {
			if ch >= 0x80 && (ch < r[0] || ch > r[1]) && !strings.ContainsRune("£¥¿¤¡€।॥", ch) {
				t.Errorf("%s single shift 0x%02X = %U, not of its script", l, c, ch)
			}
		}
	}
}

func TestLanguageShift(t *testing.T) {
	for _, tc := range []struct {
		sm   []byte
		want Shift
	}{
		{[]byte{0x03, 0x25, 0x01, 0x01, 'x'}, Shift{Locking: Turkish}},
		{[]byte{0x03, 0x24, 0x01, 0x03}, Shift{Single: Portuguese}},
		{[]byte{0x08, 0x00, 0x03, 0x01, 0x02, 0x01, 0x24, 0x01, 0x06}, Shift{Single: Hindi}},
		{[]byte{0x05, 0x00, 0x03, 0x2A, 0x02, 0x01, 0x25}, Shift{}}, // 0x25 is text, past the UDH
		{[]byte{0x06, 0x24, 0x01, 0x01, 0x25, 0x02, 0x01}, Shift{Single: Turkish}},
		{[]byte{0x09, 0x24, 0x01}, Shift{}}, // UDH longer than the message
		{[]byte{}, Shift{}},
	} {
		if got := LanguageShift(tc.sm); got != tc.want {
			t.Errorf("LanguageShift(% X) = %+v; want %+v", tc.sm, got, tc.want)
		}
	}
}

func TestLanguageString(t *testing.T) {
	for l, want := range map[Language]string{0: "default", Turkish: "Turkish", Spanish: "Spanish", Urdu: "Urdu", 14: "language 14"} {
		if got := l.String(); got != want {
			t.Errorf("Language(%d).String() = %q; want %q", l, got, want)
		}
	}
}

// TestDecodeGSMShiftAllCodes: every septet, alone and after an escape,
// decodes to one valid character under every table pair.
func TestDecodeGSMShiftAllCodes(t *testing.T) {
	for lock := Language(0); lock <= 14; lock++ {
		for single := Language(0); single <= 14; single++ {
			s := Shift{Locking: lock, Single: single}
			for c := 0; c < 0x80; c++ {
				for _, b := range [][]byte{{byte(c)}, {gsmEscape, byte(c)}} {
					got := DecodeGSMShift(b, s)
					if utf8.RuneCountInString(got) != 1 || strings.ContainsRune(got, utf8.RuneError) || strings.ContainsRune(got, 0xFFFF) || strings.ContainsRune(got, 0) {
						t.Fatalf("DecodeGSMShift(% X, %+v) = %q", b, s, got)
					}
				}
			}
		}
	}
	if DecodeGSMShift([]byte("hi\x1b\x65"), Shift{}) != DecodeGSM([]byte("hi\x1b\x65")) {
		t.Error("the zero Shift decodes otherwise than DecodeGSM")
	}
}
