package addressbook_test

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"switchboard/roster/addressbook"
	"switchboard/roster/number"
)

var fuzzRegions = []string{"US", "", "DE", "GB", "RU", "FR", "ZZ", "us"}

// FuzzParse checks that Parse never panics, only returns valid E.164
// numbers, and keeps its output within its limits. Seeds are the fixtures,
// in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.*"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
	}
	lim := addressbook.Limits{MaxBytes: 1 << 16, MaxContacts: 50}
	f.Fuzz(func(t *testing.T, data []byte, r uint8) {
		region := fuzzRegions[int(r)%len(fuzzRegions)]
		contacts, problems, format, err := addressbook.Parse(data, region, lim)
		if format != addressbook.Detect(data) && len(data) <= lim.MaxBytes {
			t.Errorf("Parse read %q, Detect says %q", format, addressbook.Detect(data))
		}
		if err != nil {
			if contacts != nil || problems != nil {
				t.Errorf("error %v with %d contacts and %d problems", err, len(contacts), len(problems))
			}
			return
		}
		if len(contacts) > lim.MaxContacts || len(problems) > lim.MaxContacts+1 {
			t.Errorf("%d contacts, %d problems: over the limit of %d", len(contacts), len(problems), lim.MaxContacts)
		}
		seen := make(map[number.E164]bool)
		for _, c := range contacts {
			if n, err := number.Parse(string(c.Number), ""); err != nil || n != c.Number {
				t.Errorf("contact number %q is not E.164: %q, %v", c.Number, n, err)
			}
			if seen[c.Number] {
				t.Errorf("number %s given twice", c.Number)
			}
			seen[c.Number] = true
			if len(c.Photo) > addressbook.MaxPhoto {
				t.Errorf("photo of %d bytes", len(c.Photo))
			}
			if !utf8.ValidString(c.Name) || !utf8.ValidString(c.Label) {
				t.Errorf("name %q or label %q is not UTF-8", c.Name, c.Label)
			}
			if len(c.Name) > 4*len(data) {
				t.Errorf("name of %d bytes from %d bytes of input", len(c.Name), len(data))
			}
		}
		for i, p := range problems {
			if n := utf8.RuneCountInString(p.Entry); n > 80 {
				t.Errorf("problem entry of %d characters", n)
			}
			if p.Reason == "" || p.Reason == "number could not be read" {
				t.Errorf("problem %+v: the number library failed or no reason", p)
			}
			if i > 0 && p.Line < problems[i-1].Line && i < len(problems)-1 {
				t.Errorf("problems out of line order: %+v after %+v", p, problems[i-1])
			}
		}
	})
}
