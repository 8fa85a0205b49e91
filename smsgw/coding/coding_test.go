package coding

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGSMTable(t *testing.T) {
	tests := []struct {
		r    rune
		want []byte
	}{
		{'@', []byte{0x00}}, {'£', []byte{0x01}}, {'$', []byte{0x02}}, {'¥', []byte{0x03}},
		{'è', []byte{0x04}}, {'é', []byte{0x05}}, {'ù', []byte{0x06}}, {'ì', []byte{0x07}},
		{'ò', []byte{0x08}}, {'Ç', []byte{0x09}}, {'\n', []byte{0x0A}}, {'Ø', []byte{0x0B}},
		{'ø', []byte{0x0C}}, {'\r', []byte{0x0D}}, {'Å', []byte{0x0E}}, {'å', []byte{0x0F}},
		{'\u0394', []byte{0x10}}, {'_', []byte{0x11}}, {'\u03A6', []byte{0x12}}, {'\u0393', []byte{0x13}},
		{'\u039B', []byte{0x14}}, {'\u03A9', []byte{0x15}}, {'\u03A0', []byte{0x16}}, {'\u03A8', []byte{0x17}},
		{'\u03A3', []byte{0x18}}, {'\u0398', []byte{0x19}}, {'\u039E', []byte{0x1A}}, {'Æ', []byte{0x1C}},
		{'æ', []byte{0x1D}}, {'ß', []byte{0x1E}}, {'É', []byte{0x1F}}, {' ', []byte{0x20}},
		{'¤', []byte{0x24}}, {'0', []byte{0x30}}, {'?', []byte{0x3F}}, {'¡', []byte{0x40}},
		{'A', []byte{0x41}}, {'Z', []byte{0x5A}}, {'Ä', []byte{0x5B}}, {'Ö', []byte{0x5C}},
		{'Ñ', []byte{0x5D}}, {'Ü', []byte{0x5E}}, {'§', []byte{0x5F}}, {'¿', []byte{0x60}},
		{'a', []byte{0x61}}, {'z', []byte{0x7A}}, {'ä', []byte{0x7B}}, {'ö', []byte{0x7C}},
		{'ñ', []byte{0x7D}}, {'ü', []byte{0x7E}}, {'à', []byte{0x7F}},
		{'\f', []byte{0x1B, 0x0A}}, {'^', []byte{0x1B, 0x14}}, {'{', []byte{0x1B, 0x28}},
		{'}', []byte{0x1B, 0x29}}, {'\\', []byte{0x1B, 0x2F}}, {'[', []byte{0x1B, 0x3C}},
		{'~', []byte{0x1B, 0x3D}}, {']', []byte{0x1B, 0x3E}}, {'|', []byte{0x1B, 0x40}},
		{'€', []byte{0x1B, 0x65}},
	}
	for _, tt := range tests {
		got, ok := EncodeGSM(string(tt.r))
		if !ok || !bytes.Equal(got, tt.want) {
			t.Errorf("EncodeGSM(%q) = % X, %v; want % X", tt.r, got, ok, tt.want)
		}
		if s := DecodeGSM(tt.want); s != string(tt.r) {
			t.Errorf("DecodeGSM(% X) = %q; want %q", tt.want, s, tt.r)
		}
	}
}

func TestGSMAllCodesRoundTrip(t *testing.T) {
	for c := 0; c < 0x80; c++ {
		if c == 0x1B {
			continue
		}
		s := DecodeGSM([]byte{byte(c)})
		b, ok := EncodeGSM(s)
		if !ok || !bytes.Equal(b, []byte{byte(c)}) {
			t.Errorf("septet 0x%02X decodes to %q, which encodes to % X, %v", c, s, b, ok)
		}
	}
}

func TestEncodeGSMUnrepresentable(t *testing.T) {
	for _, s := range []string{"ç", "hello ж", "😀", "\x00", "\t", "`", "\u2126", "é\u0301", "\xff"} {
		if b, ok := EncodeGSM(s); ok {
			t.Errorf("EncodeGSM(%q) = % X, true; want false", s, b)
		}
	}
}

func TestDecodeGSM(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, ""},
		{"hello", []byte("hello"), "hello"},
		{"at sign", []byte{0x00}, "@"},
		{"euro", []byte{0x1B, 0x65}, "€"},
		{"unknown escape shows base", []byte{0x1B, 0x41}, "A"},
		{"escape escape shows space", []byte{0x1B, 0x1B, 0x61}, " a"},
		{"trailing escape", []byte{0x61, 0x1B}, "a "},
		{"escape CR2", []byte{0x1B, 0x0D}, "\r"},
		{"high octet", []byte{0x61, 0x80, 0xFF}, "a\uFFFD\uFFFD"},
		{"escape high octet", []byte{0x1B, 0xC1}, "\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DecodeGSM(tt.in); got != tt.want {
				t.Errorf("DecodeGSM(% X) = %q; want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSegment(t *testing.T) {
	a := strings.Repeat
	tests := []struct {
		name   string
		text   string
		dc     byte
		sizes  []int // payload octets per part, after the UDH
		encode func(string) []byte
	}{
		{"empty", "", DCDefault, []int{0}, nil},
		{"plain ASCII", "Hello, world!", DCDefault, []int{13}, nil},
		{"GSM 160 single", a("a", 160), DCDefault, []int{160}, nil},
		{"GSM 161 two parts", a("a", 161), DCDefault, []int{153, 8}, nil},
		{"GSM 306 two full parts", a("a", 306), DCDefault, []int{153, 153}, nil},
		{"GSM 307 three parts", a("a", 307), DCDefault, []int{153, 153, 1}, nil},
		{"Greek stays GSM", "ΔΦΓΛΩΠΨΣΘΞ", DCDefault, []int{10}, nil},
		{"80 euro is 160 septets", a("€", 80), DCDefault, []int{160}, nil},
		{"81 euro", a("€", 81), DCDefault, []int{152, 10}, nil},
		{"79 euro plus 2", a("€", 79) + "ab", DCDefault, []int{160}, nil},
		{"79 euro plus 3", a("€", 79) + "abc", DCDefault, []int{152, 9}, nil},
		{"escape at 153 boundary", a("a", 152) + "€" + a("a", 10), DCDefault, []int{152, 12}, nil},
		{"escape just after boundary", a("a", 153) + "€" + a("a", 10), DCDefault, []int{153, 12}, nil},
		{"escape fits at end of part", a("a", 151) + "[" + a("a", 10), DCDefault, []int{153, 10}, nil},
		{"extension chars", "{[~]}|\\^\f", DCDefault, []int{18}, nil},
		{"Cyrillic 70 single", a("ж", 70), DCUCS2, []int{140}, nil},
		{"Cyrillic 71 two parts", a("ж", 71), DCUCS2, []int{134, 8}, nil},
		{"UCS-2 67 single", a("ж", 67), DCUCS2, []int{134}, nil},
		{"UCS-2 134 two full parts", a("ж", 134), DCUCS2, []int{134, 134}, nil},
		{"UCS-2 135 three parts", a("ж", 135), DCUCS2, []int{134, 134, 2}, nil},
		{"one non-GSM char makes UCS-2", a("a", 100) + "ç", DCUCS2, []int{134, 68}, nil},
		{"35 emoji single", a("😀", 35), DCUCS2, []int{140}, nil},
		{"36 emoji", a("😀", 36), DCUCS2, []int{132, 12}, nil},
		{"surrogate pair at 67 boundary", a("ж", 66) + "😀" + a("ж", 10), DCUCS2, []int{132, 24}, nil},
		{"surrogate pair ending a part", a("ж", 65) + "😀" + a("ж", 10), DCUCS2, []int{134, 20}, nil},
		{"invalid UTF-8 becomes U+FFFD", "a\xffb", DCUCS2, []int{6}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const ref = 0x2A
			dc, parts, err := Segment(tt.text, ref, 0)
			if err != nil {
				t.Fatalf("Segment: %v", err)
			}
			if dc != tt.dc {
				t.Errorf("dc = 0x%02X; want 0x%02X", dc, tt.dc)
			}
			if cdc, n := Count(tt.text); cdc != dc || n != len(parts) {
				t.Errorf("Count = 0x%02X, %d; Segment gave 0x%02X, %d", cdc, n, dc, len(parts))
			}
			if len(parts) != len(tt.sizes) {
				t.Fatalf("got %d parts; want %d", len(parts), len(tt.sizes))
			}
			for i, p := range parts {
				payload := p
				if len(parts) > 1 {
					want := []byte{5, 0, 3, ref, byte(len(parts)), byte(i + 1)}
					if !bytes.HasPrefix(p, want) {
						t.Fatalf("part %d UDH = % X; want % X", i+1, p[:min(6, len(p))], want)
					}
					payload = p[6:]
				}
				if len(payload) != tt.sizes[i] {
					t.Errorf("part %d payload is %d octets; want %d", i+1, len(payload), tt.sizes[i])
				}
				if max := maxOctets(dc); len(p) > max {
					t.Errorf("part %d is %d octets, over %d", i+1, len(p), max)
				}
				if dc == DCDefault && len(payload) > 0 && payload[len(payload)-1] == gsmEscape {
					t.Errorf("part %d ends in an escape", i+1)
				}
				if dc == DCUCS2 && len(payload) >= 2 {
					u := uint16(payload[len(payload)-2])<<8 | uint16(payload[len(payload)-1])
					if u >= 0xD800 && u < 0xDC00 {
						t.Errorf("part %d ends in a high surrogate", i+1)
					}
				}
			}
			want := tt.text
			if !utf8.ValidString(want) {
				want = strings.ToValidUTF8(want, "\uFFFD")
			}
			if got := reassemble(t, dc, parts); got != want {
				t.Errorf("round trip = %q; want %q", got, want)
			}
		})
	}
}

func TestSegmentBytes(t *testing.T) {
	dc, parts, err := Segment("Hi €", 7, 0)
	if err != nil || dc != DCDefault || len(parts) != 1 {
		t.Fatalf("Segment = 0x%02X, %d parts, %v", dc, len(parts), err)
	}
	if want := []byte{0x48, 0x69, 0x20, 0x1B, 0x65}; !bytes.Equal(parts[0], want) {
		t.Errorf("GSM payload % X; want % X", parts[0], want)
	}
	dc, parts, err = Segment("Привет 😀", 7, 0)
	if err != nil || dc != DCUCS2 || len(parts) != 1 {
		t.Fatalf("Segment = 0x%02X, %d parts, %v", dc, len(parts), err)
	}
	want := []byte{0x04, 0x1F, 0x04, 0x40, 0x04, 0x38, 0x04, 0x32, 0x04, 0x35, 0x04, 0x42, 0x00, 0x20, 0xD8, 0x3D, 0xDE, 0x00}
	if !bytes.Equal(parts[0], want) {
		t.Errorf("UCS-2 payload % X; want % X", parts[0], want)
	}
}

func TestSegmentPartsIndependent(t *testing.T) {
	_, parts, err := Segment(strings.Repeat("x", 400), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	second := bytes.Clone(parts[1])
	_ = append(parts[0], 0xEE)
	if !bytes.Equal(parts[1], second) {
		t.Error("appending to one part changed the next")
	}
}

func TestSegmentTooLong(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		maxParts int
		wantN    int
		wantErr  bool
	}{
		{"3 parts allowed", strings.Repeat("a", 3*153), 3, 3, false},
		{"4 parts needed", strings.Repeat("a", 3*153+1), 3, 0, true},
		{"single part limit", strings.Repeat("a", 161), 1, 0, true},
		{"single part fits", strings.Repeat("a", 160), 1, 1, false},
		{"UCS-2 over", strings.Repeat("ж", 2*67+1), 2, 0, true},
		{"255 by default", strings.Repeat("a", 255*153), 0, 255, false},
		{"256 by default", strings.Repeat("a", 255*153+1), 0, 0, true},
		{"over 255 clamps", strings.Repeat("a", 255*153+1), 1000, 0, true},
		{"negative means 255", strings.Repeat("a", 200*153), -1, 200, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, parts, err := Segment(tt.text, 0, tt.maxParts)
			if tt.wantErr {
				if !errors.Is(err, ErrTooLong) {
					t.Fatalf("err = %v; want ErrTooLong", err)
				}
				if parts != nil {
					t.Errorf("got %d parts with the error", len(parts))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(parts) != tt.wantN {
				t.Errorf("got %d parts; want %d", len(parts), tt.wantN)
			}
		})
	}
}

var roundTripInputs = []string{
	"",
	"a",
	"Hello, world! @£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ÄÖÑÜ§¿äöñüà",
	"{}[]~|\\^€\f",
	strings.Repeat("€", 200),
	strings.Repeat("a€", 300),
	strings.Repeat("The quick brown fox jumps over the lazy dog. ", 30),
	strings.Repeat("Съешь же ещё этих мягких французских булок. ", 10),
	strings.Repeat("😀", 500),
	strings.Repeat("ж😀", 200),
	"日本語のテキスト、絵文字🎉と混在",
	strings.Repeat("é", 159) + "ç",
	"\x00\t\u007f\u0080\uFFFD\U0010FFFF",
	strings.Repeat("x", 152) + "€" + strings.Repeat("€", 152),
}

func TestRoundTrip(t *testing.T) {
	for i, in := range roundTripInputs {
		for _, ref := range []uint8{0, 255} {
			dc, parts, err := Segment(in, ref, 0)
			if err != nil {
				t.Fatalf("input %d: %v", i, err)
			}
			if got := reassemble(t, dc, parts); got != in {
				t.Errorf("input %d: round trip = %q; want %q", i, got, in)
			}
		}
	}
}

// TestRoundTripRandom mixes one- and two-septet characters, and one- and two-unit
// characters, at lengths around the part boundaries.
func TestRoundTripRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	gsm := []rune("a Z0@€[]{}|~^\\\fΔß\n")
	ucs := []rune("aж€😀🎉[日")
	for i := 0; i < 2000; i++ {
		alphabet := gsm
		if i%2 == 1 {
			alphabet = ucs
		}
		n := rng.IntN(700)
		rs := make([]rune, n)
		for j := range rs {
			rs[j] = alphabet[rng.IntN(len(alphabet))]
		}
		in := string(rs)
		dc, parts, err := Segment(in, uint8(i), 0)
		if err != nil {
			t.Fatalf("Segment(%q): %v", in, err)
		}
		if cdc, cn := Count(in); cdc != dc || cn != len(parts) {
			t.Fatalf("Count(%q) = 0x%02X, %d; Segment gave 0x%02X, %d", in, cdc, cn, dc, len(parts))
		}
		for j, p := range parts {
			if len(p) > maxOctets(dc) {
				t.Fatalf("Segment(%q): part %d is %d octets", in, j+1, len(p))
			}
		}
		if got := reassemble(t, dc, parts); got != in {
			t.Fatalf("round trip = %q; want %q", got, in)
		}
	}
}

// maxOctets is the most a short_message may hold: 140 octets of user data, except that
// SMPP carries GSM septets unpacked, one per octet, so 160 of them take 160 octets.
func maxOctets(dc byte) int {
	if dc == DCDefault {
		return 160
	}
	return 140
}

// reassemble is what a receiver does with the parts Segment made.
func reassemble(t testing.TB, dc byte, parts [][]byte) string {
	t.Helper()
	return reassembleIn(t, GSM, dc, parts)
}

// reassembleIn is what a receiver does with the parts a.Segment made.
func reassembleIn(t testing.TB, a Alphabet, dc byte, parts [][]byte) string {
	t.Helper()
	if len(parts) == 1 {
		s, err := a.Decode(dc, parts[0])
		if err != nil {
			t.Fatalf("Decode: %v", err)
		}
		return s
	}
	var sb strings.Builder
	for i, p := range parts {
		c, payload, err := SplitUDH(p)
		if err != nil {
			t.Fatalf("part %d: SplitUDH: %v", i+1, err)
		}
		if c == nil || int(c.Seq) != i+1 || int(c.Total) != len(parts) {
			t.Fatalf("part %d: concat = %+v", i+1, c)
		}
		s, err := a.Decode(dc, payload)
		if err != nil {
			t.Fatalf("part %d: Decode: %v", i+1, err)
		}
		sb.WriteString(s)
	}
	return sb.String()
}

func TestSplitUDH(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    *Concat
		payload []byte
	}{
		{"8-bit ref", []byte{5, 0, 3, 0x2A, 3, 2, 'h', 'i'}, &Concat{Ref: 0x2A, Total: 3, Seq: 2}, []byte("hi")},
		{"16-bit ref", []byte{6, 8, 4, 0x12, 0x34, 2, 2, 'h', 'i'}, &Concat{Ref: 0x1234, Total: 2, Seq: 2}, []byte("hi")},
		{"empty UDH", []byte{0, 'x'}, nil, []byte("x")},
		{"only UDH", []byte{5, 0, 3, 1, 1, 1}, &Concat{Ref: 1, Total: 1, Seq: 1}, []byte{}},
		{"port addressing only", []byte{6, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0xAA}, nil, []byte{0xAA}},
		{"port then concat", []byte{11, 5, 4, 0x0B, 0x84, 0x23, 0xF0, 0, 3, 9, 2, 1, 0xAA}, &Concat{Ref: 9, Total: 2, Seq: 1}, []byte{0xAA}},
		{"last concat wins", []byte{11, 0, 3, 9, 2, 1, 8, 4, 1, 0, 4, 3, 'z'}, &Concat{Ref: 0x100, Total: 4, Seq: 3}, []byte("z")},
		{"unknown IE with zero length", []byte{2, 0x70, 0, 'q'}, nil, []byte("q")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, payload, err := SplitUDH(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if (c == nil) != (tt.want == nil) || (c != nil && *c != *tt.want) {
				t.Errorf("concat = %+v; want %+v", c, tt.want)
			}
			if !bytes.Equal(payload, tt.payload) {
				t.Errorf("payload = % X; want % X", payload, tt.payload)
			}
		})
	}
}

func TestSplitUDHMalformed(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"UDHL past end", []byte{5, 0, 3, 1}},
		{"UDHL 255 short message", []byte{255, 0}},
		{"truncated IE header", []byte{1, 0}},
		{"IE runs past UDH", []byte{4, 0, 3, 1, 1, 'x', 'y'}},
		{"IE 0x00 too short", []byte{4, 0, 2, 1, 1}},
		{"IE 0x00 too long", []byte{6, 0, 4, 1, 1, 1, 1}},
		{"IE 0x08 too short", []byte{5, 8, 3, 1, 1, 1}},
		{"total zero", []byte{5, 0, 3, 1, 0, 0}},
		{"seq zero", []byte{5, 0, 3, 1, 2, 0}},
		{"seq above total", []byte{5, 0, 3, 1, 2, 3}},
		{"16-bit seq above total", []byte{6, 8, 4, 0, 1, 2, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, payload, err := SplitUDH(tt.in)
			if !errors.Is(err, ErrMalformedUDH) {
				t.Fatalf("SplitUDH(% X) = %+v, % X, %v; want ErrMalformedUDH", tt.in, c, payload, err)
			}
		})
	}
}

func TestBinary(t *testing.T) {
	for _, tc := range []struct {
		dc   byte
		in   []byte
		want bool
	}{
		{0x04, []byte("Caf\xe9 ok\r\n"), false},                                    // text as 8-bit data
		{0x04, []byte{0x06, 0x05, 0x04, 0x0b, 0x84, 0x23, 0xf0, 0xdc, 0x06}, true}, // WAP push
		{0xF5, []byte{0xde, 0xad, 0xbe, 0xef, 0x00}, true},
		{0x02, []byte{0x81, 0x41}, true},
		{DCLatin1, []byte{0x01, 0x02}, false}, // Latin-1 text is text, whatever it holds
		{DCDefault, []byte{0x00, 0x1B}, false},
	} {
		if got := Binary(tc.dc, tc.in); got != tc.want {
			t.Errorf("Binary(0x%02X, % x) = %v, want %v", tc.dc, tc.in, got, tc.want)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		dc      byte
		in      []byte
		want    string
		wantErr bool
	}{
		{"GSM", DCDefault, []byte{0x48, 0x69, 0x1B, 0x65, 0x00}, "Hi€@", false},
		{"IA5", DCIA5, []byte("Hi @"), "Hi @", false},
		{"IA5 high octet", DCIA5, []byte{'a', 0xE9}, "a\uFFFD", false},
		{"Latin-1", DCLatin1, []byte{'c', 'a', 'f', 0xE9, 0xA4}, "café¤", false},
		{"octet unspecified as Latin-1", 0x04, []byte{0x41, 0xFF}, "Aÿ", false},
		{"UCS-2", DCUCS2, []byte{0x04, 0x36, 0x00, 0x41}, "жA", false},
		{"UTF-16 pair", DCUCS2, []byte{0xD8, 0x3D, 0xDE, 0x00}, "😀", false},
		{"lone high surrogate", DCUCS2, []byte{0xD8, 0x3D, 0x00, 0x41}, "\uFFFDA", false},
		{"lone low surrogate", DCUCS2, []byte{0xDE, 0x00, 0x00, 0x41}, "\uFFFDA", false},
		{"high surrogate at end", DCUCS2, []byte{0x00, 0x41, 0xD8, 0x3D}, "A\uFFFD", false},
		{"odd length", DCUCS2, []byte{0x00, 0x41, 0x00}, "A\uFFFD", false},
		{"empty UCS-2", DCUCS2, nil, "", false},
		{"GSM class 0 (flash)", 0x10, []byte("hi"), "hi", false},
		{"UCS-2 class 0 (flash)", 0x18, []byte{0x04, 0x36}, "ж", false},
		{"general 8-bit class 1", 0x15, []byte{0xE9}, "é", false},
		{"auto-delete GSM", 0x40, []byte("hi"), "hi", false},
		{"message waiting GSM", 0xC8, []byte("hi"), "hi", false},
		{"message waiting store GSM", 0xD0, []byte("hi"), "hi", false},
		{"message waiting UCS-2", 0xE0, []byte{0x04, 0x36}, "ж", false},
		{"class GSM", 0xF0, []byte("hi"), "hi", false},
		{"class 8-bit", 0xF4, []byte{0xE9}, "é", false},
		{"JIS", 0x05, []byte("x"), "", true},
		{"Cyrillic", 0x06, []byte("x"), "", true},
		{"reserved 0x0F", 0x0F, []byte("x"), "", true},
		{"compressed", 0x20, []byte("x"), "", true},
		{"general reserved alphabet", 0x0C | 0x10, []byte("x"), "", true},
		{"reserved group", 0x80, []byte("x"), "", true},
		{"reserved group end", 0xBF, []byte("x"), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode(tt.dc, tt.in)
			if tt.wantErr {
				if !errors.Is(err, ErrUnknownCoding) {
					t.Fatalf("Decode(0x%02X) = %q, %v; want ErrUnknownCoding", tt.dc, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("Decode(0x%02X, % X) = %q, %v; want %q", tt.dc, tt.in, got, err, tt.want)
			}
		})
	}
}

func TestAllocs(t *testing.T) {
	long := strings.Repeat("Meet at 7 [room 2] {bring €}. ", 14)
	if n := testing.AllocsPerRun(50, func() { Segment(long, 1, 0) }); n > 2 {
		t.Errorf("Segment made %v allocations; want at most 2 (one buffer, one slice of parts)", n)
	}
	if n := testing.AllocsPerRun(50, func() { Count(long) }); n != 0 {
		t.Errorf("Count made %v allocations; want 0", n)
	}
}
