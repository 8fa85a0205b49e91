package number

import (
	"regexp"
	"slices"
	"sync"

	"github.com/nyaruka/phonenumbers"
)

// valid reports what phonenumbers.IsValidNumber reports, from the same
// metadata, at a fraction of its cost. Every message to a number JID checks
// its number, and a new number (one the Parse cache does not hold) cost
// about 12 µs there: IsValidNumber finds the number's region by testing its
// types, then tests them again for that region, and each test builds its
// pattern's text, looks it up in a locked map and matches it twice.
// Here each region's patterns are compiled once and each is matched once.
// TestValidAsLibphonenumber compares the two over every region's examples
// and many numbers around them.
func valid(p *phonenumbers.PhoneNumber) bool {
	cc := int(p.GetCountryCode())
	regions := phonenumbers.GetRegionCodesForCountryCode(cc)
	if len(regions) == 0 {
		return false
	}
	nsn := phonenumbers.GetNationalSignificantNumber(p)
	if len(regions) == 1 {
		m := regionMeta(cc, regions[0])
		return m != nil && m.known(nsn)
	}
	// As GetRegionCodeForNumber: the first region whose leading digits
	// match, or, for a region without any, whose types know the number.
	for _, r := range regions {
		m := regionMeta(cc, r)
		if m == nil {
			continue
		}
		if m.leading != nil {
			if m.leading.MatchString(nsn) {
				return m.known(nsn)
			}
		} else if m.known(nsn) {
			return true
		}
	}
	return false
}

// meta is a region's patterns, compiled.
type meta struct {
	leading *regexp.Regexp // its leading digits; nil if it has none
	general desc
	types   []desc // every type IsValidNumber accepts a number of
}

// desc is a number description: possible lengths (none: any) and a pattern
// the whole national significant number matches.
type desc struct {
	lengths []int32
	re      *regexp.Regexp
}

func (d desc) match(nsn string) bool {
	if len(d.lengths) > 0 && !slices.Contains(d.lengths, int32(len(nsn))) {
		return false
	}
	return d.re.MatchString(nsn)
}

// known is getNumberTypeHelper(nsn) != UNKNOWN: the general description
// matches and so does one of the types.
func (m *meta) known(nsn string) bool {
	if !m.general.match(nsn) {
		return false
	}
	for _, d := range m.types {
		if d.match(nsn) {
			return true
		}
	}
	return false
}

var metas struct {
	once    sync.Once
	regions map[string]*lazyMeta // by region code
	nongeo  map[int]*lazyMeta    // by country code, for region "001"
}

// lazyMeta compiles a region's patterns when a number first needs them, as
// the library does: most deployments see a few regions of about 250 (all
// 245 compiled hold about 8 MB).
type lazyMeta struct {
	once sync.Once
	md   *phonenumbers.PhoneMetadata
	m    *meta
}

// regionMeta returns region r's patterns (of country code cc, for the
// non-geographical region "001"), or nil if the metadata has none.
func regionMeta(cc int, r string) *meta {
	metas.once.Do(loadMetas)
	l := metas.regions[r]
	if r == "001" {
		l = metas.nongeo[cc]
	}
	if l == nil {
		return nil
	}
	l.once.Do(func() { l.m = compileMeta(l.md) })
	return l.m
}

// loadMetas indexes the metadata phonenumbers itself uses.
func loadMetas() {
	metas.regions, metas.nongeo = make(map[string]*lazyMeta), make(map[int]*lazyMeta)
	coll, err := phonenumbers.MetadataCollection()
	if err != nil {
		return // every number invalid (the library's own init would have panicked)
	}
	for _, md := range coll.GetMetadata() {
		if md.GetId() == "001" {
			metas.nongeo[int(md.GetCountryCode())] = &lazyMeta{md: md}
		} else {
			metas.regions[md.GetId()] = &lazyMeta{md: md}
		}
	}
}

func compileMeta(md *phonenumbers.PhoneMetadata) *meta {
	m := &meta{general: newDesc(md.GetGeneralDesc())}
	if ld := md.GetLeadingDigits(); ld != "" {
		m.leading = regexp.MustCompile("^(?:" + ld + ")")
	}
	for _, d := range []*phonenumbers.PhoneNumberDesc{md.GetPremiumRate(), md.GetTollFree(), md.GetSharedCost(),
		md.GetVoip(), md.GetPersonalNumber(), md.GetPager(), md.GetUan(), md.GetVoicemail(), md.GetFixedLine()} {
		m.types = append(m.types, newDesc(d))
	}
	if !md.GetSameMobileAndFixedLinePattern() {
		m.types = append(m.types, newDesc(md.GetMobile()))
	}
	return m
}

func newDesc(d *phonenumbers.PhoneNumberDesc) desc {
	var lengths []int32
	if d != nil {
		lengths = d.PossibleLength
	}
	return desc{lengths: lengths, re: regexp.MustCompile("^(?:" + d.GetNationalNumberPattern() + ")$")}
}
