// Package number normalises telephone numbers to E.164 (ITU-T E.164, with the
// libphonenumber rules of github.com/nyaruka/phonenumbers) and maps them to and
// from the JIDs Switchboard gives them (+12015550123@sms.example.com).
package number

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"github.com/nyaruka/phonenumbers"
	"mellium.im/xmpp/jid"

	"switchboard/internal/memo"
)

// Errors returned by Parse. Each is wrapped with the offending input.
var (
	ErrEmpty   = errors.New("number: empty")
	ErrInvalid = errors.New("number: not a valid phone number")
	ErrRegion  = errors.New("number: no country code and no default region")
)

// E164 is a normalised phone number in E.164 form, with the leading "+".
type E164 string

// Digits returns the number without the leading "+", as SMPP carries it with
// TON 1 / NPI 1.
func (n E164) Digits() string { return strings.TrimPrefix(string(n), "+") }

// String returns the number with its leading "+".
func (n E164) String() string { return string(n) }

// Region returns the ISO 3166 region the number belongs to ("US", "GB"…), or
// "" when it cannot be told. For a number Parse would refuse it may tell
// its country code's region.
//
// An E.164 number needs no parsing: its country code is the one of its
// first three digits that libphonenumber knows (country codes are prefix
// free), and only a code several regions share (+1, +7, +44…) is matched
// against their number patterns — a quarter of the time of a full parse,
// which matters as the SMS limits ask for every number of an address book.
//
// Results are remembered: for a number of a country code several regions
// share (+1: the United States, Canada and 23 others), libphonenumber
// tries each region's patterns in turn (4.5 µs and 26 allocations for a
// United States number, the first it tries; more for the others), and the
// SMS limits ask it of every SMS.
func (n E164) Region() string {
	if r, ok := regionMemo.Get(n); ok {
		return r
	}
	r := n.region()
	regionMemo.Put(n, r)
	return r
}

var regionMemo = memo.New[E164, string](cacheMax)

func (n E164) region() string {
	p, regions := split(n.Digits())
	switch {
	case len(regions) == 1:
		return regions[0]
	case p == nil:
		return ""
	}
	return phonenumbers.GetRegionCodeForNumber(p)
}

// split reads the digits of an E.164 number (without the "+") as
// libphonenumber's Parse would: the country code, the one of its first
// three digits that libphonenumber knows (country codes are prefix free),
// with the regions that share it, and the national number after it. p is
// nil when the digits are no such number.
func split(digits string) (p *phonenumbers.PhoneNumber, regions []string) {
	if len(digits) < 2 || len(digits) > 17 || digits[0] == '0' || strings.TrimLeft(digits, "0123456789") != "" {
		return nil, nil // no country code starts with 0
	}
	for l := 1; l <= 3 && l < len(digits); l++ {
		cc, _ := strconv.Atoi(digits[:l])
		regions := phonenumbers.GetRegionCodesForCountryCode(cc)
		if len(regions) == 0 {
			continue
		}
		national := digits[l:]
		nn, err := strconv.ParseUint(national, 10, 64)
		if err != nil {
			return nil, regions
		}
		p := &phonenumbers.PhoneNumber{CountryCode: ptr(int32(cc)), NationalNumber: &nn}
		if zeros := len(national) - len(strings.TrimLeft(national, "0")); zeros > 0 {
			// As Parse keeps them (+39 06…): at least one digit is not a zero.
			zeros = min(zeros, len(national)-1)
			p.ItalianLeadingZero, p.NumberOfLeadingZeros = ptr(true), ptr(int32(zeros))
		}
		return p, regions
	}
	return nil, nil
}

// canonical reads s when it is an E.164 number already ("+" and digits):
// the form of every number JID the gateway hands out, so the usual one a
// message is addressed to. It checks it as Parse does, without Parse's
// regular expressions over the whole string (a fifth of the time). ok is
// false when s is not in that form or not valid as it stands; Parse then
// reads it the long way (a national prefix written after the country
// code, say).
func canonical(s string) (n E164, ok bool) {
	digits, plus := strings.CutPrefix(s, "+")
	if !plus {
		return "", false
	}
	p, _ := split(digits)
	if p == nil || !valid(p) {
		return "", false
	}
	return E164(s), true
}

// spaced reads s when it is an international number written with the usual
// separators ("+1 (201) 555-0123", "+44 20 7946.0000"), as address books
// hold them, and returns it in E.164 for canonical: libphonenumber's parse
// drops those separators too, and runs a dozen regular expressions over the
// string to learn that (about 20 µs a number). ok is false for anything
// else: letters, an extension, other punctuation, no "+", and no separator
// at all (canonical has read that one already).
func spaced(s string) (e164 string, ok bool) {
	if len(s) < 2 || s[0] != '+' {
		return "", false
	}
	b := make([]byte, 1, len(s))
	b[0] = '+'
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			b = append(b, c)
		case c == ' ' || c == '-' || c == '.' || c == '(' || c == ')':
		default:
			return "", false
		}
	}
	return string(b), len(b) > 1 && len(b) < len(s)
}

func ptr[T any](v T) *T { return &v }

// Parse normalises s, written in any common way ("+1 (201) 555-0123",
// "00 44 20 7946 0000", "201-555-0123" with region "US"), to E.164.
// region is the ISO 3166 region used when s has no country code.
//
// Results are remembered (see cache): libphonenumber's parse is regular
// expressions, tens of microseconds, and every message names a number.
func Parse(s, region string) (E164, error) {
	if len(s) > 80 {
		return parse(s, region) // refused as too long; not worth remembering
	}
	k := cacheKey{s, region}
	if r, ok := cache.Get(k); ok {
		return r.n, r.err
	}
	n, err := parse(s, region)
	cache.Put(k, cacheEntry{n, err})
	return n, err
}

// cacheMax bounds the numbers Parse, and Region, remember; when full each
// starts again.
const cacheMax = 1 << 16

type cacheKey struct{ s, region string }

type cacheEntry struct {
	n   E164
	err error
}

var cache = memo.New[cacheKey, cacheEntry](cacheMax)

func parse(s, region string) (E164, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", ErrEmpty
	}
	if len(s) > 64 {
		return "", fmt.Errorf("%w: %.20q… is too long", ErrInvalid, s)
	}
	region = strings.ToUpper(strings.TrimSpace(region))
	if !strings.HasPrefix(s, "+") && !strings.HasPrefix(s, "00") && region == "" {
		// A bare national number cannot be placed without a region.
		digits := strings.IndexFunc(s, func(r rune) bool { return r >= '0' && r <= '9' }) >= 0
		if digits {
			return "", fmt.Errorf("%w: %q", ErrRegion, s)
		}
	}
	if n, ok := canonical(s); ok {
		return n, nil
	}
	if d, ok := spaced(s); ok {
		if n, ok := canonical(d); ok {
			return n, nil
		}
	}
	if region == "" {
		region = "ZZ"
	}
	p, err := phonenumbers.Parse(s, region)
	if err != nil {
		return "", &InvalidError{s, problem(s, p, err)}
	}
	if !valid(p) {
		return "", &InvalidError{s, problem(s, p, nil)}
	}
	return E164(phonenumbers.Format(p, phonenumbers.E164)), nil
}

// InvalidError is Parse's error for a number libphonenumber refuses: Why
// says why, in plain words. It wraps ErrInvalid.
type InvalidError struct{ Input, Why string }

func (e *InvalidError) Error() string { return fmt.Sprintf("%v: %q: %s", ErrInvalid, e.Input, e.Why) }
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// problem says in plain words why libphonenumber's parse of s gave p and
// err rather than a valid number, for the errors a user or an operator
// reads (libphonenumber's own say "the phone number supplied is not a
// number" of "+12").
func problem(s string, p *phonenumbers.PhoneNumber, err error) string {
	switch {
	case err != nil && strings.IndexFunc(s, unicode.IsDigit) < 0:
		return "it holds no digits"
	case errors.Is(err, phonenumbers.ErrInvalidCountryCode):
		return "it does not start with a country code"
	case errors.Is(err, phonenumbers.ErrNumTooLong):
		return "it is too long for a phone number"
	case err != nil:
		return "it has too few digits for a phone number"
	}
	cc := p.GetCountryCode()
	switch phonenumbers.IsPossibleNumberWithReason(p) {
	case phonenumbers.INVALID_COUNTRY_CODE:
		return fmt.Sprintf("no country has the code +%d", cc)
	case phonenumbers.TOO_SHORT, phonenumbers.IS_POSSIBLE_LOCAL_ONLY:
		return fmt.Sprintf("it has too few digits for a number with the country code +%d", cc)
	case phonenumbers.TOO_LONG:
		return fmt.Sprintf("it has too many digits for a number with the country code +%d", cc)
	case phonenumbers.INVALID_LENGTH:
		return fmt.Sprintf("no number with the country code +%d has that many digits", cc)
	}
	return fmt.Sprintf("no number with the country code +%d is in that range", cc)
}

// FromDigits turns the digits of an SMPP address with TON 1 (international)
// into an E.164 number, keeping numbers libphonenumber does not know (short
// codes and ranges newer than its metadata) rather than refusing them.
func FromDigits(digits string) (E164, error) {
	digits = strings.TrimPrefix(strings.TrimSpace(digits), "+")
	if digits == "" {
		return "", ErrEmpty
	}
	for _, r := range digits {
		if r < '0' || r > '9' {
			return "", fmt.Errorf("%w: %q", ErrInvalid, digits)
		}
	}
	if len(digits) > 15 {
		return "", fmt.Errorf("%w: %q has more than 15 digits", ErrInvalid, digits)
	}
	if digits[0] == '0' {
		// No country code starts with 0: a leading 0 is a national trunk
		// prefix or an international one (00) left in.
		return "", fmt.Errorf("%w: %q starts with 0, which no country code does", ErrInvalid, digits)
	}
	return E164("+" + digits), nil
}

// IsShortCode tells whether s is a short code: 3 to 6 digits, the sender
// a service's SMS show, and no phone number (the gateway reads no shorter
// address as one).
func IsShortCode(s string) bool {
	return len(s) >= 3 && len(s) <= 6 && strings.Trim(s, "0123456789") == ""
}

// IsName tells whether s, the localpart of an address on the component,
// is a name rather than a number: it holds a letter. Services send SMS
// under such names ("MyBank"), which no SMS can be sent to.
func IsName(s string) bool { return strings.IndexFunc(s, unicode.IsLetter) >= 0 }

// JID returns the number's JID on the component domain.
func (n E164) JID(component jid.JID) jid.JID {
	j, err := component.Domain().WithLocal(string(n)) // the domain is checked already
	if err != nil {
		// An E.164 string is always a valid localpart.
		panic(fmt.Sprintf("number: %q is not a localpart: %v", n, err))
	}
	return j
}

// FromJID reads the number from a JID on the component domain. The localpart
// is normalised with region as for Parse, so "2015550123@sms.example.com" with
// region "US" is accepted.
//
// Unlike Parse (an address book's numbers), it refuses a localpart with an
// extension (an SMS reaches no extension: dropping it would send the text
// elsewhere than meant) and one with letters: a sender's name, such as an
// alphanumeric sender ID "X2015550177" a user answers, or a number spelt in
// letters, which libphonenumber would read as the digits of the letters
// (or without them) and so reach a phone nobody wrote to. Those errors
// are *InvalidError.
func FromJID(j jid.JID, region string) (E164, error) {
	local := j.Localpart()
	if local == "" {
		return "", fmt.Errorf("%w: %s has no number before the @", ErrEmpty, j.Bare())
	}
	if HasExtension(local) {
		return "", &InvalidError{Input: local, Why: "it has an extension, which no SMS can reach; write the phone number alone"}
	}
	if IsName(local) {
		return "", &InvalidError{Input: local, Why: "it holds letters, so it is a name, not a number"}
	}
	return Parse(local, region)
}

// HasExtension tells whether s, a number as written, ends in an extension
// (";ext=12", " ext. 12", "x12", "#12") or an ISDN subaddress (";isub=12")
// after its digits.
func HasExtension(s string) bool { return extension.MatchString(strings.TrimSpace(s)) }

var extension = regexp.MustCompile(`(?i)[0-9)]\s*(;\s*ext\s*=|;\s*isub\s*=|ext\.?|x|#)\s*[0-9]+$`)
