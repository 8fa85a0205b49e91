package addressbook_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"switchboard/roster/addressbook"
	"switchboard/roster/number"
)

type wantContact struct {
	name   string
	number number.E164
	label  string
	photo  bool // a JPEG, FF D8, typed image/jpeg
}

var fixtures = []struct {
	file     string
	region   string
	format   addressbook.Format
	contacts []wantContact
	problems []addressbook.Problem
}{
	{
		file: "android_v21.vcf", region: "US", format: addressbook.VCard,
		contacts: []wantContact{
			{"Иван Иванов", "+79123456789", "cell", true},
			{"Иван Иванов", "+12015550100", "home", true},
			{"John Smith", "+12015550101", "work", false},
			{"John Smith", "+12015550102", "работа", false},
			{"José García", "+12015550103", "cell", false},
		},
		problems: []addressbook.Problem{
			{Line: 39, Entry: "12345", Name: "Voicemail", Reason: addressbook.ReasonInvalid},
			{Line: 41, Entry: "Nina Nophone", Name: "Nina Nophone", Reason: addressbook.ReasonNoNumber},
		},
	},
	{
		file: "iphone_v30.vcf", region: "US", format: addressbook.VCard,
		contacts: []wantContact{
			{"Late Name", "+12015550109", "cell", false}, // first card had no name
			{"Johnny Appleseed", "+12015550104", "mobile", true},
			{"Johnny Appleseed", "+12015550105", "office line", true},
			{"Johnny Appleseed", "+12015550106", "home", true},
			{"Jane Doe", "+442079460958", "work", false}, // her +12015550104 merged into Johnny's
			{"Pizza Napoli", "+12015550107", "work", false},
			{"O'Brien, Pat", "+12015550108", "cell", false},
		},
	},
	{
		file: "v40.vcf", region: "US", format: addressbook.VCard,
		contacts: []wantContact{
			{"Émilie Dubois", "+33612345678", "cell", true},
			{"Émilie Dubois", "+12015550110", "work", true},
			{"Remote Photo", "+12015550111", "home", false},
		},
		problems: []addressbook.Problem{
			{Line: 20, Entry: "Book club", Name: "Book club", Reason: addressbook.ReasonNoNumber},
		},
	},
	{
		file: "nokia_v21.vcf", region: "DE", format: addressbook.VCard,
		contacts: []wantContact{
			{"Jürgen Müller", "+4915123456789", "cell", false},
			{"Jürgen Müller", "+493012345678", "work", false},
			{"Петр Петров", "+79123456780", "cell", false},
			{"Short Cut", "+442079460959", "", false}, // no END:VCARD
			{"One Last", "+442079460960", "", false},
		},
		problems: []addressbook.Problem{
			{Line: 15, Entry: "TEL;CELL", Name: "Card Garbage", Reason: addressbook.ReasonLine},
			{Line: 26, Entry: "stray text line", Reason: addressbook.ReasonOutside},
		},
	},
	{
		file: "google.csv", region: "US", format: addressbook.CSV,
		contacts: []wantContact{
			{"Alice Example", "+12015550120", "mobile", false},
			{"Alice Example", "+12015550121", "mobile", false},
			{"Alice Example", "+12015550122", "work", false},
			{"Carol Király", "+12015550123", "home", false},
			{"Acme Corp", "+12015550124", "work", false},
		},
		problems: []addressbook.Problem{
			{Line: 4, Entry: "Bob Nophone", Name: "Bob Nophone", Reason: addressbook.ReasonNoNumber},
			{Line: 6, Entry: "555 0199", Name: "Dave Invalid", Reason: addressbook.ReasonInvalid},
		},
	},
	{
		file: "google_new.csv", region: "US", format: addressbook.CSV,
		contacts: []wantContact{
			{"Frank Ocean", "+12015550130", "mobile", false},
			{"Frank Ocean", "+12015550131", "home", false},
			{"Frank Ocean", "+12015550132", "home", false},
			{"Dr. Grace Brewster Hopper", "+12015550133", "work", false},
			{"Heidi", "+12015550134", "other", false},
			{"Ivy", "+12015550135", "mobile", false},
		},
	},
	{
		file: "outlook.csv", region: "US", format: addressbook.CSV,
		contacts: []wantContact{
			{"René Lefèvre", "+12015550140", "business", false},
			{"René Lefèvre", "+33612345679", "mobile", false},
			{"Zoë Smith", "+12015550141", "home", false},
			{"Zoë Smith", "+12015550142", "business fax", false},
			{"Ünited Widgets", "+12015550143", "company main", false},
		},
		problems: []addressbook.Problem{
			{Line: 5, Entry: "Nobody", Name: "Nobody", Reason: addressbook.ReasonNoNumber},
		},
	},
	{
		file: "outlook_utf16.csv", region: "US", format: addressbook.CSV,
		contacts: []wantContact{
			{"Łukasz Nowak", "+12015550160", "mobile", false},
			{"Søren Kierkegaard", "+12015550161", "mobile", false},
		},
	},
	{
		file: "excel_semicolon.csv", region: "DE", format: addressbook.CSV,
		contacts: []wantContact{
			{"Jürgen Weiß", "+4915123456789", "mobiltelefon", false},
			{"Jürgen Weiß", "+493012345678", "telefon privat", false},
			{"Anna Schmidt; Meier", "+4915123456780", "mobiltelefon", false},
		},
		problems: []addressbook.Problem{
			{Line: 5, Entry: "12", Name: "Kurt Kaputt", Reason: addressbook.ReasonInvalid},
		},
	},
	{
		file: "plain.txt", region: "US", format: addressbook.Lines,
		contacts: []wantContact{
			{"Alice Example", "+12015550150", "", false}, // "Alice Again" merged
			{"Bob", "+12015550151", "", false},
			{"Carol", "+12015550152", "", false},
			{"", "+12015550153", "", false},
			{"Dan", "+12015550154", "", false},
			{"Erin", "+12015550155", "", false},
			{"Frank Old", "+12015550156", "", false},
			{"Hugo Müller", "+493012345678", "", false},
			{"Ivy", "+12015550157", "", false},
			{"Jack", "+12015550158", "", false},
			{"Kim", "+12015550159", "", false}, // two numbers on one line: both hers
			{"Kim", "+12015550160", "", false},
		},
		problems: []addressbook.Problem{
			{Line: 9, Entry: "12", Name: "Gina", Reason: addressbook.ReasonInvalid},
			{Line: 10, Entry: "Just a name", Name: "Just a name", Reason: addressbook.ReasonNoNumber},
		},
	},
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseFixtures(t *testing.T) {
	for _, tc := range fixtures {
		t.Run(tc.file, func(t *testing.T) {
			data := readFixture(t, tc.file)
			contacts, problems, format, err := addressbook.Parse(data, tc.region, addressbook.Limits{})
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if format != tc.format {
				t.Errorf("format = %q, want %q", format, tc.format)
			}
			if len(contacts) != len(tc.contacts) {
				t.Errorf("%d contacts, want %d", len(contacts), len(tc.contacts))
			}
			for i, c := range contacts {
				if i >= len(tc.contacts) {
					t.Errorf("extra contact %+v", c)
					continue
				}
				w := tc.contacts[i]
				if c.Name != w.name || c.Number != w.number || c.Label != w.label {
					t.Errorf("contact %d = {%q %s %q}, want {%q %s %q}", i, c.Name, c.Number, c.Label, w.name, w.number, w.label)
				}
				switch {
				case w.photo && (len(c.Photo) < 2 || c.Photo[0] != 0xFF || c.Photo[1] != 0xD8 || c.PhotoType != "image/jpeg"):
					t.Errorf("contact %d (%s): photo %d bytes %q, want a JPEG", i, c.Number, len(c.Photo), c.PhotoType)
				case !w.photo && (c.Photo != nil || c.PhotoType != ""):
					t.Errorf("contact %d (%s): photo %d bytes %q, want none", i, c.Number, len(c.Photo), c.PhotoType)
				}
			}
			if len(problems) != len(tc.problems) {
				t.Errorf("%d problems, want %d: %+v", len(problems), len(tc.problems), problems)
			}
			for i, p := range problems {
				if i < len(tc.problems) && p != tc.problems[i] {
					t.Errorf("problem %d = %+v, want %+v", i, p, tc.problems[i])
				}
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range fixtures {
		if got := addressbook.Detect(readFixture(t, tc.file)); got != tc.format {
			t.Errorf("Detect(%s) = %q, want %q", tc.file, got, tc.format)
		}
	}
	for _, tc := range []struct {
		in   string
		want addressbook.Format
	}{
		{"", addressbook.Lines},
		{"\n\n  begin:vcard\nend:vcard\n", addressbook.VCard},
		{"Exported 2026-11-01\r\nBEGIN:VCARD\r\nEND:VCARD\r\n", addressbook.VCard},
		{"Name,Phone\nAlice,+12015550100\n", addressbook.CSV},
		{"Name;Mobile\nAlice;+12015550100\n", addressbook.CSV},
		{"Name\tTelephone\nAlice\t+12015550100\n", addressbook.CSV},
		{"Alice, +12015550100\nBob, +12015550101\n", addressbook.Lines},
		{"# my list\nName, Surname\n", addressbook.Lines},
	} {
		if got := addressbook.Detect([]byte(tc.in)); got != tc.want {
			t.Errorf("Detect(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNumbersAsWritten(t *testing.T) {
	for _, tc := range []struct {
		line string
		want number.E164
	}{
		{"tel:+1-201-555-0100;ext=102", "+12015550100"},
		{"+1 201 555 0100 x123", "+12015550100"},
		{"(201) 555-0100 ext. 7", "+12015550100"},
		{"201-555-0100,,4#", "+12015550100"},
		{"+1 201 555 0100 (mobile)", "+12015550100"},
		{"+44 (0)20 7946 0958", "+442079460958"},
		{"+1\u00a0201\u2011555\u20110100", "+12015550100"},
		{"０２０１５５５０１００", ""}, // a national number with a leading 0 is not a US number
		{"+１ ２０１ ５５５ ０１００", "+12015550100"},
	} {
		contacts, problems, _, err := addressbook.Parse([]byte("Someone\t"+tc.line+"\n"), "US", addressbook.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case tc.want == "" && len(problems) != 1:
			t.Errorf("%q: contacts %+v, problems %+v, want one problem", tc.line, contacts, problems)
		case tc.want != "" && (len(contacts) != 1 || contacts[0].Number != tc.want || contacts[0].Name != "Someone"):
			t.Errorf("%q: contacts %+v, problems %+v, want %s", tc.line, contacts, problems, tc.want)
		}
	}
}

func TestNoRegion(t *testing.T) {
	contacts, problems, _, err := addressbook.Parse([]byte("Alice, 201-555-0100\nBob, +1 201 555 0101\n"), "", addressbook.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(contacts) != 1 || contacts[0].Number != "+12015550101" {
		t.Errorf("contacts = %+v", contacts)
	}
	want := addressbook.Problem{Line: 1, Entry: "201-555-0100", Name: "Alice", Reason: addressbook.ReasonNoCountry}
	if len(problems) != 1 || problems[0] != want {
		t.Errorf("problems = %+v, want %+v", problems, want)
	}
}

func TestLimits(t *testing.T) {
	data := readFixture(t, "iphone_v30.vcf") // 9 TEL, 7 distinct numbers

	_, _, _, err := addressbook.Parse(data, "US", addressbook.Limits{MaxBytes: len(data) - 1})
	if !errors.Is(err, addressbook.ErrTooLarge) {
		t.Errorf("MaxBytes %d: err = %v, want ErrTooLarge", len(data)-1, err)
	}
	if _, _, _, err := addressbook.Parse(data, "US", addressbook.Limits{MaxBytes: len(data)}); err != nil {
		t.Errorf("MaxBytes %d: %v", len(data), err)
	}

	contacts, _, _, err := addressbook.Parse(data, "US", addressbook.Limits{MaxContacts: 7})
	if err != nil || len(contacts) != 7 {
		t.Errorf("MaxContacts 7: %d contacts, err %v; want 7 and no error (duplicates count once)", len(contacts), err)
	}
	contacts, problems, _, err := addressbook.Parse(data, "US", addressbook.Limits{MaxContacts: 6})
	if !errors.Is(err, addressbook.ErrTooMany) || contacts != nil || problems != nil {
		t.Errorf("MaxContacts 6: %d contacts, err %v; want ErrTooMany and nothing else", len(contacts), err)
	}
	// Reading is bounded too: 9 numbers read is more than 4×2.
	if _, _, _, err := addressbook.Parse(data, "US", addressbook.Limits{MaxContacts: 2}); !errors.Is(err, addressbook.ErrTooMany) {
		t.Errorf("MaxContacts 2: err %v, want ErrTooMany", err)
	}

	// 5 MiB is the default.
	big := bytes.Repeat([]byte("Alice, +1 201 555 0100\n"), (5<<20)/23+1)
	if _, _, _, err := addressbook.Parse(big, "US", addressbook.Limits{}); !errors.Is(err, addressbook.ErrTooLarge) {
		t.Errorf("%d bytes: err %v, want ErrTooLarge", len(big), err)
	}
}

func TestProblemsAreCapped(t *testing.T) {
	var sb strings.Builder
	for i := range 30 {
		fmt.Fprintf(&sb, "not a contact %d\n", i)
	}
	_, problems, _, err := addressbook.Parse([]byte(sb.String()), "US", addressbook.Limits{MaxContacts: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) != 11 {
		t.Fatalf("%d problems, want 10 and a summary", len(problems))
	}
	if last := problems[10]; last.Line != 11 || !strings.HasPrefix(last.Reason, "20 more") {
		t.Errorf("summary = %+v", last)
	}
}

func TestPhotoTooLarge(t *testing.T) {
	img := append([]byte{0xFF, 0xD8, 0xFF, 0xE0}, make([]byte, addressbook.MaxPhoto)...)
	card := "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Big Photo\r\nTEL:+1 201 555 0100\r\nPHOTO;ENCODING=b;TYPE=JPEG:" +
		base64Fold(img) + "\r\nEND:VCARD\r\n"
	contacts, problems, _, err := addressbook.Parse([]byte(card), "US", addressbook.Limits{})
	if err != nil || len(problems) != 0 || len(contacts) != 1 {
		t.Fatalf("contacts %d, problems %+v, err %v", len(contacts), problems, err)
	}
	if contacts[0].Photo != nil || contacts[0].Name != "Big Photo" {
		t.Errorf("contact = %q with a %d-byte photo, want no photo", contacts[0].Name, len(contacts[0].Photo))
	}
}

func TestEntryIsClipped(t *testing.T) {
	long := strings.Repeat("я", 200)
	_, problems, _, err := addressbook.Parse([]byte(long+"\n"), "US", addressbook.Limits{})
	if err != nil || len(problems) != 1 {
		t.Fatalf("problems %+v, err %v", problems, err)
	}
	if got := []rune(problems[0].Entry); len(got) != 80 {
		t.Errorf("entry has %d characters, want 80", len(got))
	}
}
