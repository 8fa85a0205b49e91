package coding

import (
	"strings"
	"testing"
)

func BenchmarkSegmentGSM(b *testing.B) {
	for _, bc := range []struct {
		name string
		text string
	}{
		{"short", "Your code is 123456. Do not share it."},
		{"400", strings.Repeat("Meet at 7 [room 2] {bring €}. ", 14)[:400]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Segment(bc.text, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSegmentUCS2(b *testing.B) {
	for _, bc := range []struct {
		name string
		text string
	}{
		{"short", "Привет! Как дела? 😀"},
		{"400", strings.Repeat("Съешь же ещё этих булок 🎉 ", 16)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Segment(bc.text, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSegmentLatin1 is GSM text for a bind whose data coding 0 is Latin-1.
func BenchmarkSegmentLatin1(b *testing.B) {
	for _, bc := range []struct {
		name string
		text string
	}{
		{"short", "Your code is 123456. Do not share it."},
		{"400", strings.Repeat("Meet at 7 [room 2] {bring £}. ", 14)[:400]},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Latin1.Segment(bc.text, 1, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCount(b *testing.B) {
	text := strings.Repeat("The quick brown fox. ", 20)
	b.ReportAllocs()
	for b.Loop() {
		Count(text)
	}
}

func BenchmarkDecode(b *testing.B) {
	_, gsm, _ := Segment(strings.Repeat("Meet at 7 [room 2] {bring €}. ", 5), 0, 0)
	_, ucs, _ := Segment(strings.Repeat("Привет 😀 ", 7), 0, 0)
	for _, bc := range []struct {
		name string
		dc   byte
		b    []byte
	}{
		{"GSM", DCDefault, gsm[0]},
		{"UCS2", DCUCS2, ucs[0]},
		{"Latin1", DCLatin1, []byte(strings.Repeat("caf\xe9 ", 28))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.b)))
			for b.Loop() {
				if _, err := Decode(bc.dc, bc.b); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
