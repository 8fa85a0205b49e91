package number

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestRegionAsParsed: Region, which reads the country code off the digits,
// tells the same region as a full parse for every valid number in E.164 — the
// example numbers of every region and type, and random numbers of every
// country code and length (leading zeros included) that are valid. For an
// invalid one it tells nothing or its country code's region.
func TestRegionAsParsed(t *testing.T) {
	nums := corpus()
	valid := 0
	for _, n := range nums {
		p, err := phonenumbers.Parse(string(n), "")
		if err == nil && phonenumbers.IsValidNumber(p) {
			valid++
			// As Parse gives it ("+44 0…" loses its national prefix).
			n = E164(phonenumbers.Format(p, phonenumbers.E164))
			if got, want := n.Region(), phonenumbers.GetRegionCodeForNumber(p); got != want {
				t.Errorf("%s: Region = %q, parsed %q", n, got, want)
			}
			continue
		}
		got := n.Region()
		if got == "" {
			continue
		}
		if cc := ccOf(n); !slices.Contains(phonenumbers.GetRegionCodesForCountryCode(cc), got) {
			t.Errorf("%s (invalid): Region = %q, not a region of +%d", n, got, cc)
		}
	}
	t.Logf("%d valid numbers of %d", valid, len(nums))
	if valid < 1000 {
		t.Fatalf("only %d valid numbers tried", valid)
	}
}

// TestCanonicalAsParsed: canonical accepts a number only when libphonenumber's
// full parse gives it valid and the same, and accepts every valid number
// written as the full parse writes it: over the corpus of TestRegionAsParsed.
func TestCanonicalAsParsed(t *testing.T) {
	fast := 0
	for _, n := range corpus() {
		var slow E164
		if p, err := phonenumbers.Parse(string(n), "ZZ"); err == nil && phonenumbers.IsValidNumber(p) {
			slow = E164(phonenumbers.Format(p, phonenumbers.E164))
		}
		got, ok := canonical(string(n))
		switch {
		case ok && got != slow:
			t.Errorf("canonical(%q) = %q; the full parse gives %q", n, got, slow)
		case !ok && slow != "" && slow == n:
			t.Errorf("canonical(%q) refused a valid number in E.164", n)
		case ok:
			fast++
		}
	}
	if fast < 1000 {
		t.Fatalf("only %d numbers read by canonical", fast)
	}
}

// corpus is numbers in E.164 form and near it: the example numbers of
// every region and type, random numbers of every country code and length
// (leading zeros included), and a few odd ones.
func corpus() []E164 {
	var nums []E164
	for region := range phonenumbers.GetSupportedRegions() {
		for _, typ := range []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
			phonenumbers.PREMIUM_RATE, phonenumbers.VOIP, phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.PERSONAL_NUMBER} {
			if p := phonenumbers.GetExampleNumberForType(region, typ); p != nil {
				nums = append(nums, E164(phonenumbers.Format(p, phonenumbers.E164)))
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for cc := range 1000 {
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) == 0 {
			continue
		}
		for l := 2; l <= 14; l++ {
			for range 3 {
				d := fmt.Sprintf("+%d", cc)
				for i := range l {
					if i < 2 && rng.IntN(4) == 0 {
						d += "0"
					} else {
						d += fmt.Sprint(rng.IntN(10))
					}
				}
				nums = append(nums, E164(d))
			}
		}
	}
	return append(nums, "+12015550123", "+14165550123", "+18765550123", "+442071234567", "+441481234567",
		"+390612345678", "+79161234567", "+77011234567", "+19005551234", "+80012345678", "+", "+1", "", "12015550123", "+1201x550123",
		"+012015550123", "+0044207123456", "+4402071234567", "+3906123456789", "+11201555012", "+1 2015550123", "+12015550123 ")
}

func ccOf(n E164) int {
	d := n.Digits()
	if d == "" || d[0] == '0' {
		return 0 // no country code starts with 0
	}
	for l := 1; l <= 3 && l <= len(d); l++ {
		var cc int
		fmt.Sscan(d[:l], &cc)
		if len(phonenumbers.GetRegionCodesForCountryCode(cc)) > 0 {
			return cc
		}
	}
	return 0
}

func BenchmarkRegion(b *testing.B) {
	nums := make([]E164, 1000)
	for i := range nums {
		nums[i] = E164(fmt.Sprintf("+12013%06d", i))
	}
	// new: what a number not seen before costs; again: one remembered.
	for _, bc := range []struct {
		name   string
		region func(E164) string
	}{{"new", E164.region}, {"again", E164.Region}} {
		b.Run(bc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				_ = bc.region(nums[i%len(nums)])
				i++
			}
		})
	}
}

// TestRegionRemembered: Region answers what the uncached lookup answers,
// the first time and from memory, for every corpus number, valid or not.
func TestRegionRemembered(t *testing.T) {
	nums := corpus()
	for round := range 2 {
		for _, n := range nums {
			if got, want := n.Region(), n.region(); got != want {
				t.Fatalf("round %d: %s: Region = %q, uncached %q", round, n, got, want)
			}
		}
	}
	if regionMemo.Len() == 0 {
		t.Fatal("nothing remembered")
	}
}

// TestSpacedAsParsed: a number written with separators ("+1 (201)
// 555-0123", "+44 (0) 20 7946 0000", "+ 39.06…") parses to what
// libphonenumber's full parse gives, or fails where it fails: every
// corpus number in its international format and with separators, a
// national prefix in parentheses and stray brackets put in at random.
func TestSpacedAsParsed(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seps := []string{" ", "-", ".", "(", ")", " (", ") ", "  ", "--", " (0) ", "(0)", "()", ". "}
	var inputs []string
	for _, n := range corpus() {
		if p, err := phonenumbers.Parse(string(n), "ZZ"); err == nil {
			inputs = append(inputs, phonenumbers.Format(p, phonenumbers.INTERNATIONAL))
		}
		d := string(n)
		if !strings.HasPrefix(d, "+") {
			continue
		}
		for range 4 {
			var b strings.Builder
			b.WriteString("+")
			for i, c := range d[1:] {
				if i == 0 && rng.IntN(4) == 0 {
					b.WriteString(" ")
				}
				if i > 0 && rng.IntN(3) == 0 {
					b.WriteString(seps[rng.IntN(len(seps))])
				}
				b.WriteRune(c)
			}
			if rng.IntN(5) == 0 {
				b.WriteString(seps[rng.IntN(len(seps))])
			}
			inputs = append(inputs, b.String())
		}
	}
	generated := len(inputs)
	inputs = append(inputs, "+1 800 FLOWERS", "+1 201 555 0123 ext. 5", "+1 201 555 0123 x5", "+1 201 555 0123;ext=5",
		"+1/201/555/0123", "+1 201 555 0123 #", "+1 (201) 555-0123)", "+1 201 555 0123\u00a0",
		"++1 201 555 0123", "+1 201 555 01230", "+ ", "+()", "+1 (201) 555-0123 (home)")
	fast := 0
	for k, in := range inputs {
		if k < generated && !sampled(k+1) {
			continue // the fixed ones always
		}
		var want E164
		if p, err := phonenumbers.Parse(in, "ZZ"); err == nil && phonenumbers.IsValidNumber(p) {
			want = E164(phonenumbers.Format(p, phonenumbers.E164))
		}
		got, err := parse(in, "")
		switch {
		case want == "" && err == nil:
			t.Errorf("parse(%q) = %q; the full parse refuses it", in, got)
		case want != "" && got != want:
			t.Errorf("parse(%q) = %q, %v; the full parse gives %q", in, got, err, want)
		}
		if d, ok := spaced(strings.TrimSpace(in)); ok {
			if _, ok := canonical(d); ok {
				fast++
			}
		}
	}
	t.Logf("%d inputs, %d read without the full parse", len(inputs), fast)
	if fast < 1000/sampleEvery() {
		t.Fatalf("only %d inputs took the short way", fast)
	}
}
