package coding

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestParseAlphabet(t *testing.T) {
	for _, a := range []Alphabet{GSM, Latin1, ASCII} {
		if got, ok := ParseAlphabet(a.String()); !ok || got != a {
			t.Errorf("ParseAlphabet(%q) = %v, %v", a.String(), got, ok)
		}
	}
	for _, s := range []string{"", "GSM", "iso-8859-1", "ia5", "ucs2"} {
		if a, ok := ParseAlphabet(s); ok {
			t.Errorf("ParseAlphabet(%q) = %v, true", s, a)
		}
	}
}

// TestAlphabetSegment: on a Latin-1 or ASCII bind, GSM text is written an
// octet per character and cut where GSM septets would be; text with a
// character the alphabet lacks goes as UCS-2.
func TestAlphabetSegment(t *testing.T) {
	a := strings.Repeat
	for _, tt := range []struct {
		name  string
		alpha Alphabet
		text  string
		dc    byte
		sizes []int  // payload octets per part, after the UDH
		bytes []byte // the payload of a single part, if given
	}{
		{"Latin-1 accents", Latin1, "café @ 5£", DCDefault, []int{9}, []byte{'c', 'a', 'f', 0xE9, ' ', '@', ' ', '5', 0xA3}},
		{"Latin-1 extension chars one octet", Latin1, "{[~]}|\\^\f", DCDefault, []int{9}, []byte("{[~]}|\\^\f")},
		{"Latin-1 Greek capital: UCS-2", Latin1, "Δ", DCUCS2, []int{2}, []byte{0x03, 0x94}},
		{"Latin-1 euro: UCS-2", Latin1, "5€", DCUCS2, []int{4}, []byte{0x00, '5', 0x20, 0xAC}},
		{"Latin-1 but not GSM: UCS-2", Latin1, "ç", DCUCS2, []int{2}, []byte{0x00, 0xE7}},
		{"Latin-1 160 single", Latin1, a("é", 160), DCDefault, []int{160}, nil},
		{"Latin-1 161 two parts", Latin1, a("é", 161), DCDefault, []int{153, 8}, nil},
		// An extension character takes two septets on the air: 80 fill a part.
		{"Latin-1 80 braces single", Latin1, a("{", 80), DCDefault, []int{80}, nil},
		{"Latin-1 81 braces", Latin1, a("{", 81), DCDefault, []int{76, 5}, nil},
		{"Latin-1 brace at 153 boundary", Latin1, a("a", 152) + "{" + a("a", 10), DCDefault, []int{152, 11}, nil},
		// One GSM text that the alphabet lacks takes UCS-2's parts.
		{"Latin-1 one Greek capital", Latin1, a("a", 100) + "Ω", DCUCS2, []int{134, 68}, nil},
		{"ASCII plain", ASCII, "Hi @ {x} $5_", DCDefault, []int{12}, []byte("Hi @ {x} $5_")},
		{"ASCII accent: UCS-2", ASCII, "café", DCUCS2, []int{8}, []byte{0, 'c', 0, 'a', 0, 'f', 0, 0xE9}},
		{"ASCII pound: UCS-2", ASCII, a("a", 100) + "£", DCUCS2, []int{134, 68}, nil},
		{"ASCII 161 two parts", ASCII, a("a", 161), DCDefault, []int{153, 8}, nil},
		{"GSM as Segment", GSM, "café Δ", DCDefault, []int{6}, []byte{'c', 'a', 'f', 0x05, ' ', 0x10}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			const ref = 0x2A
			dc, parts, err := tt.alpha.Segment(tt.text, ref, 0)
			if err != nil {
				t.Fatal(err)
			}
			if dc != tt.dc {
				t.Errorf("dc = 0x%02X; want 0x%02X", dc, tt.dc)
			}
			if cdc, n := tt.alpha.Count(tt.text); cdc != dc || n != len(parts) {
				t.Errorf("Count = 0x%02X, %d; Segment gave 0x%02X, %d", cdc, n, dc, len(parts))
			}
			if len(parts) != len(tt.sizes) {
				t.Fatalf("got %d parts; want %d", len(parts), len(tt.sizes))
			}
			for i, p := range parts {
				if len(parts) > 1 {
					if want := []byte{5, 0, 3, ref, byte(len(parts)), byte(i + 1)}; !bytes.HasPrefix(p, want) {
						t.Fatalf("part %d UDH = % X; want % X", i+1, p[:min(6, len(p))], want)
					}
					p = p[6:]
				}
				if len(p) != tt.sizes[i] {
					t.Errorf("part %d payload is %d octets; want %d", i+1, len(p), tt.sizes[i])
				}
			}
			if tt.bytes != nil && !bytes.Equal(parts[0], tt.bytes) {
				t.Errorf("payload % X; want % X", parts[0], tt.bytes)
			}
			if got := reassembleIn(t, tt.alpha, dc, parts); got != tt.text {
				t.Errorf("round trip = %q; want %q", got, tt.text)
			}
		})
	}
}

// TestAlphabetSameParts: text a Latin-1 or ASCII bind carries as data
// coding 0 is cut into the parts GSM 03.38 makes, each the same text, so a
// message may change binds between parts.
func TestAlphabetSameParts(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, tc := range []struct {
		alpha Alphabet
		runes []rune
	}{
		{Latin1, []rune("a Z0@{}[]~|^\\\f\nééäßÆ£¥§¿")},
		{ASCII, []rune("a Z0@{}[]~|^\\\f\n$_!?")},
	} {
		for i := range 1000 {
			rs := make([]rune, rng.IntN(700))
			for j := range rs {
				rs[j] = tc.runes[rng.IntN(len(tc.runes))]
			}
			in := string(rs)
			gdc, gsm, err := Segment(in, uint8(i), 0)
			if err != nil {
				t.Fatal(err)
			}
			dc, parts, err := tc.alpha.Segment(in, uint8(i), 0)
			if err != nil {
				t.Fatal(err)
			}
			if dc != DCDefault || gdc != DCDefault || len(parts) != len(gsm) {
				t.Fatalf("%v: 0x%02X, %d parts; GSM 0x%02X, %d parts", tc.alpha, dc, len(parts), gdc, len(gsm))
			}
			for j := range parts {
				p, g := parts[j], gsm[j]
				if len(parts) > 1 {
					if !bytes.Equal(p[:6], g[:6]) {
						t.Fatalf("%v: part %d UDH % X; GSM % X", tc.alpha, j+1, p[:6], g[:6])
					}
					p, g = p[6:], g[6:]
				}
				if s, _ := tc.alpha.Decode(dc, p); s != DecodeGSM(g) {
					t.Fatalf("%v: part %d is %q; GSM's is %q", tc.alpha, j+1, s, DecodeGSM(g))
				}
			}
			if got := reassembleIn(t, tc.alpha, dc, parts); got != in {
				t.Fatalf("%v: round trip = %q; want %q", tc.alpha, got, in)
			}
		}
	}
}

func TestAlphabetDecode(t *testing.T) {
	for _, tt := range []struct {
		alpha Alphabet
		dc    byte
		in    []byte
		want  string
	}{
		{GSM, DCDefault, []byte{'c', 'a', 'f', 0x05, 0x00}, "café@"},
		{Latin1, DCDefault, []byte{'c', 'a', 'f', 0xE9, '@', 0xA4}, "café@¤"},
		{ASCII, DCDefault, []byte{'H', 'i', ' ', '@', 0xE9}, "Hi @\uFFFD"},
		// Other codings mean what they say on any bind.
		{Latin1, DCUCS2, []byte{0x03, 0x94}, "Δ"},
		{ASCII, DCLatin1, []byte{0xE9}, "é"},
		{Latin1, 0xF0, []byte{0x05}, "é"}, // GSM 7-bit by TS 23.038, named as such
	} {
		got, err := tt.alpha.Decode(tt.dc, tt.in)
		if err != nil || got != tt.want {
			t.Errorf("%v.Decode(0x%02X, % X) = %q, %v; want %q", tt.alpha, tt.dc, tt.in, got, err, tt.want)
		}
	}
	for _, tt := range []struct {
		alpha Alphabet
		dc    byte
		want  byte
	}{
		{GSM, DCDefault, DCDefault},
		{Latin1, DCDefault, DCLatin1},
		{ASCII, DCDefault, DCIA5},
		{Latin1, DCUCS2, DCUCS2},
		{ASCII, 0x04, 0x04},
	} {
		if got := tt.alpha.Canonical(tt.dc); got != tt.want {
			t.Errorf("%v.Canonical(0x%02X) = 0x%02X; want 0x%02X", tt.alpha, tt.dc, got, tt.want)
		}
	}
}

func TestAlphabetAllocs(t *testing.T) {
	long := strings.Repeat("Meet at 7 [room 2] {bring £}. ", 14)
	if n := testing.AllocsPerRun(50, func() { Latin1.Segment(long, 1, 0) }); n > 2 {
		t.Errorf("Latin1.Segment made %v allocations; want at most 2", n)
	}
	if n := testing.AllocsPerRun(50, func() { ASCII.Count(long) }); n != 0 {
		t.Errorf("ASCII.Count made %v allocations; want 0", n)
	}
}
