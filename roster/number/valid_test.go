package number

import (
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/nyaruka/phonenumbers"
)

// TestValidAsLibphonenumber: valid says what phonenumbers.IsValidNumber
// says, for every region's and every non-geographical code's example
// numbers of each type, every one-digit change, shortening and lengthening
// of them, and random national numbers of every length under every
// country code. A difference in the metadata's reading (leading digits,
// possible lengths, regions sharing a code) shows up here.
func TestValidAsLibphonenumber(t *testing.T) {
	var examples []*phonenumbers.PhoneNumber
	types := []phonenumbers.PhoneNumberType{phonenumbers.FIXED_LINE, phonenumbers.MOBILE, phonenumbers.TOLL_FREE,
		phonenumbers.PREMIUM_RATE, phonenumbers.SHARED_COST, phonenumbers.VOIP, phonenumbers.PERSONAL_NUMBER,
		phonenumbers.PAGER, phonenumbers.UAN, phonenumbers.VOICEMAIL}
	for r := range phonenumbers.GetSupportedRegions() {
		for _, typ := range types {
			if p := phonenumbers.GetExampleNumberForType(r, typ); p != nil {
				examples = append(examples, p)
			}
		}
	}
	for cc := range phonenumbers.GetSupportedGlobalNetworkCallingCodes() {
		if p := phonenumbers.GetExampleNumberForNonGeoEntity(cc); p != nil {
			examples = append(examples, p)
		}
	}
	if len(examples) < 1000 {
		t.Fatalf("only %d example numbers: the metadata is not what this test expects", len(examples))
	}

	var checked, validSeen, invalidSeen, seen int
	check := func(e164 string) {
		if seen++; !sampled(seen) {
			return
		}
		p, err := phonenumbers.Parse(e164, "ZZ")
		if err != nil {
			return
		}
		checked++
		want := phonenumbers.IsValidNumber(p)
		if got := valid(p); got != want {
			t.Errorf("valid(%s) = %v, IsValidNumber says %v", e164, got, want)
		}
		if want {
			validSeen++
		} else {
			invalidSeen++
		}
	}
	for _, p := range examples {
		cc := strconv.Itoa(int(p.GetCountryCode()))
		nsn := phonenumbers.GetNationalSignificantNumber(p)
		check("+" + cc + nsn)
		for i := range len(nsn) {
			for _, d := range []byte{'0', '1', '5', '9'} {
				if nsn[i] != d {
					check("+" + cc + nsn[:i] + string(d) + nsn[i+1:])
				}
			}
		}
		for n := 1; n < len(nsn); n++ {
			check("+" + cc + nsn[:n])
		}
		check("+" + cc + nsn + "0")
		check("+" + cc + nsn + "7")
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for cc := range phonenumbers.GetSupportedCallingCodes() {
		for l := 2; l <= 15-len(strconv.Itoa(cc)); l++ {
			for range 20 {
				b := make([]byte, l)
				for i := range b {
					b[i] = byte('0' + rng.IntN(10))
				}
				check("+" + strconv.Itoa(cc) + string(b))
			}
		}
	}
	t.Logf("%d numbers compared: %d valid, %d invalid", checked, validSeen, invalidSeen)
	if validSeen < 1000/sampleEvery() || invalidSeen < 1000/sampleEvery() {
		t.Errorf("too few of one kind to tell anything: %d valid, %d invalid", validSeen, invalidSeen)
	}
}

// TestValidConcurrent: regions compiled on first use by several callers at
// once (an address book is parsed on every CPU) give each the library's
// answer; under -race (make test), no data race in the lazy compilation.
func TestValidConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range phonenumbers.GetSupportedRegions() {
				if p := phonenumbers.GetExampleNumber(r); p != nil && valid(p) != phonenumbers.IsValidNumber(p) {
					t.Errorf("valid(%s example %v) differs from IsValidNumber", r, p)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkValid: a new number's check, here and in the library.
func BenchmarkValid(b *testing.B) {
	nums := make([]*phonenumbers.PhoneNumber, 1000)
	for i := range nums {
		p, err := phonenumbers.Parse("+1201"+strconv.Itoa(2000000+i*7919%8000000), "ZZ")
		if err != nil {
			b.Fatal(err)
		}
		nums[i] = p
	}
	b.Run("valid", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !valid(nums[i%len(nums)]) {
				b.Fatal("invalid")
			}
			i++
		}
	})
	b.Run("IsValidNumber", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if !phonenumbers.IsValidNumber(nums[i%len(nums)]) {
				b.Fatal("invalid")
			}
			i++
		}
	})
}

// FuzzValid: for any number libphonenumber parses, valid and
// IsValidNumber agree.
func FuzzValid(f *testing.F) {
	for _, s := range []string{"+12015550123", "+12684601234", "+447400123456", "+80012345678", "+390612345678", "+1800555012", "+8821234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := phonenumbers.Parse(s, "ZZ")
		if err != nil {
			return
		}
		if got, want := valid(p), phonenumbers.IsValidNumber(p); got != want {
			t.Errorf("valid(%q) = %v, IsValidNumber says %v", s, got, want)
		}
	})
}

// FuzzSpaced: an international number written with separators parses to
// what libphonenumber's full parse gives, or fails where it fails.
func FuzzSpaced(f *testing.F) {
	for _, s := range []string{"+1 (201) 555-0123", "+44 (0) 20 7946 0000", "+39 06.1234.5678", "+ 7 916 123-45-67", "+1 800 FLOWERS"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		s = strings.TrimSpace(s) // as parse does first
		if !strings.HasPrefix(s, "+") || len(s) > 64 {
			return // parse's own rules (a region, the length) come first
		}
		var want E164
		if p, err := phonenumbers.Parse(s, "ZZ"); err == nil && phonenumbers.IsValidNumber(p) {
			want = E164(phonenumbers.Format(p, phonenumbers.E164))
		}
		got, err := parse(s, "")
		if want == "" && err == nil || want != "" && got != want {
			t.Errorf("parse(%q) = %q, %v; the full parse gives %q", s, got, err, want)
		}
	})
}

// sampled tells whether the n-th input of a comparison test is checked:
// every one, or under the race detector every sampleEvery-th.
func sampled(n int) bool { return n%sampleEvery() == 0 }

func sampleEvery() int {
	if raceEnabled {
		return 8
	}
	return 1
}
