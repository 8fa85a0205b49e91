package number_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmpp/jid"

	"switchboard/roster/number"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, region string
		want       number.E164
		err        error
	}{
		{"+12015550123", "", "+12015550123", nil},
		{"+1 (201) 555-0123", "", "+12015550123", nil},
		{"201-555-0123", "US", "+12015550123", nil},
		{"(201) 555 0123", "us", "+12015550123", nil},
		{"0044 20 7946 0000", "US", "", nil}, // not a valid dialling prefix from the US
		{"00 44 20 7946 0000", "DE", "+442079460000", nil},
		{"020 7946 0000", "GB", "+442079460000", nil},
		{"+49 30 901820", "US", "+4930901820", nil},
		{"8 (912) 345-67-89", "RU", "+79123456789", nil},
		{"+15555550123", "", "", number.ErrInvalid}, // 555 exchange codes are invalid
		{"2015550123", "", "", number.ErrRegion},
		{"", "US", "", number.ErrEmpty},
		{"   ", "US", "", number.ErrEmpty},
		{"hello", "US", "", number.ErrInvalid},
		{"+1201555012345678901234567890123456789012345678901234567890123456789", "", "", number.ErrInvalid},
	}
	for _, tc := range tests {
		got, err := number.Parse(tc.in, tc.region)
		if tc.want == "" && tc.err == nil {
			// Either outcome is acceptable as long as it is an error or valid E.164.
			if err == nil && got[0] != '+' {
				t.Errorf("Parse(%q, %q) = %q, not E.164", tc.in, tc.region, got)
			}
			continue
		}
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("Parse(%q, %q) error = %v, want %v", tc.in, tc.region, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q, %q) = %q, %v; want %q", tc.in, tc.region, got, err, tc.want)
		}
	}
}

// TestParseSaysWhy: a number refused says why in plain words, not in
// libphonenumber's ("the phone number supplied is not a number" of "+12").
func TestParseSaysWhy(t *testing.T) {
	for in, why := range map[string]string{
		"+12":              "it has too few digits for a phone number",
		"+99912345678":     "it does not start with a country code",
		"+12015550":        "it has too few digits for a number with the country code +1",
		"+44123":           "it has too few digits for a number with the country code +44",
		"+120155501234567": "it has too many digits for a number with the country code +1",
		"+15555550123":     "no number with the country code +1 is in that range",
		"hello":            "it holds no digits",
	} {
		_, err := number.Parse(in, "US")
		var ie *number.InvalidError
		if !errors.Is(err, number.ErrInvalid) || !errors.As(err, &ie) || ie.Why != why || !strings.HasSuffix(err.Error(), fmt.Sprintf("%q: %s", in, why)) {
			t.Errorf("Parse(%q) = %v; want an InvalidError saying %q", in, err, why)
		}
	}
}

func TestJIDRoundTrip(t *testing.T) {
	comp := jid.MustParse("sms.example.com")
	n := number.E164("+12015550123")
	j := n.JID(comp)
	if got := j.String(); got != "+12015550123@sms.example.com" {
		t.Fatalf("JID = %s", got)
	}
	back, err := number.FromJID(j, "")
	if err != nil || back != n {
		t.Fatalf("FromJID = %q, %v", back, err)
	}
	back, err = number.FromJID(jid.MustParse("2015550123@sms.example.com"), "US")
	if err != nil || back != n {
		t.Fatalf("FromJID national = %q, %v", back, err)
	}
	if _, err := number.FromJID(comp, "US"); !errors.Is(err, number.ErrEmpty) {
		t.Fatalf("FromJID(domain) error = %v", err)
	}
	if n.Digits() != "12015550123" || n.Region() != "US" {
		t.Fatalf("Digits/Region = %q %q", n.Digits(), n.Region())
	}
}

// TestFromJIDRefuses: an address with an extension or with letters is no
// number to send an SMS to, though Parse reads one from it (the extension
// dropped, the letters read as digits or skipped): answering an
// alphanumeric sender "X2015550177" must not text +12015550177.
func TestFromJIDRefuses(t *testing.T) {
	for _, local := range []string{"+12015550199;ext=12", "+1-201-555-0199ext.12", "2015550199x12", "+12015550199#12", "+12015550199;isub=1",
		"x2015550177", "X2015550177", "+1-201-555-abcd", "201555call", "MyBank"} {
		j, err := jid.New(local, "sms.example.com", "")
		if err != nil {
			t.Fatalf("%q: %v", local, err)
		}
		n, err := number.FromJID(j, "US")
		var invalid *number.InvalidError
		if !errors.As(err, &invalid) {
			t.Errorf("FromJID(%s) = %q, %v; want an InvalidError", j, n, err)
		}
	}
	for s, want := range map[string]bool{"+12015550199;ext=12": true, "2015550199 x 12": true, "(201) 555-0199 #12": true,
		"NEXTBANK": false, "Textile": false, "x2015550177": false, "+12015550199": false, "2015550199": false} {
		if got := number.HasExtension(s); got != want {
			t.Errorf("HasExtension(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestFromDigits(t *testing.T) {
	for in, want := range map[string]number.E164{"12015550123": "+12015550123", "+447700900123": "+447700900123"} {
		if got, err := number.FromDigits(in); err != nil || got != want {
			t.Errorf("FromDigits(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "12a", "1234567890123456", "00447700900123", "+0012015550155", "07700900123"} { // no country code starts with 0
		if _, err := number.FromDigits(in); err == nil {
			t.Errorf("FromDigits(%q) succeeded", in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"+12015550123", "201-555-0123", "00 44 20 7946 0000", "+", "00", "+1 (", "٣٤٥"} {
		f.Add(s, "US")
	}
	f.Fuzz(func(t *testing.T, s, region string) {
		n, err := number.Parse(s, region)
		if err != nil {
			return
		}
		again, err := number.Parse(string(n), "")
		if err != nil || again != n {
			t.Fatalf("Parse(%q) = %q, but reparsing gives %q, %v", s, n, again, err)
		}
	})
}

// BenchmarkParse parses the same number again (remembered) and a new
// number every time (libphonenumber's work).
func BenchmarkParse(b *testing.B) {
	b.Run("again", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := number.Parse("(201) 555-0123", "US"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := number.Parse(fmt.Sprintf("+1 201 %03d %04d", 200+i/10000%800, i%10000), ""); err != nil {
				b.Fatal(err)
			}
		}
	})
	// A new number in E.164, as number JIDs are written.
	b.Run("new E.164", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := number.Parse(fmt.Sprintf("+1201%03d%04d", 200+i/10000%800, i%10000), ""); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestParseRemembers checks that a remembered result, success or error, is
// the one a first parse gives.
func TestParseRemembers(t *testing.T) {
	for _, c := range []struct{ in, region string }{
		{"+1 201 555 0123", ""}, {"(201) 555-0123", "US"}, {"12", "US"}, {"201 555 0123", ""}, {"+999", ""},
	} {
		n1, err1 := number.Parse(c.in, c.region)
		n2, err2 := number.Parse(c.in, c.region)
		if n1 != n2 || (err1 == nil) != (err2 == nil) || (err1 != nil && err1.Error() != err2.Error()) {
			t.Errorf("Parse(%q, %q) = %q, %v; again %q, %v", c.in, c.region, n1, err1, n2, err2)
		}
	}
	if _, err := number.Parse("12", "US"); !errors.Is(err, number.ErrInvalid) {
		t.Errorf("Parse(12) again = %v, want ErrInvalid", err)
	}
}

// TestIsName: a localpart with a letter is a sender's name; digits, with
// or without a plus, are not.
func TestIsName(t *testing.T) {
	for s, want := range map[string]bool{"MyBank": true, "pizza": true, "x12": true, "Ёлка": true, "+12015550123": false, "72345": false, "": false} {
		if got := number.IsName(s); got != want {
			t.Errorf("IsName(%q) = %v, want %v", s, got, want)
		}
	}
}
