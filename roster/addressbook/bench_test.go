package addressbook_test

import (
	"fmt"
	"strings"
	"testing"

	"switchboard/roster/addressbook"
)

const benchContacts = 10_000

// benchNumber is the i-th of 10,000 distinct valid New Jersey numbers.
func benchNumber(i int) string { return setNumber(0, i) }

// setNumber is the i-th number of the set-th book of 10,000 numbers (80
// books without a number in common).
func setNumber(set, i int) string {
	return fmt.Sprintf("+1 (201) %03d-%04d", 200+(set*10+i/1000)%800, i%10000)
}

// benchVCards is an export of n cards, alternately Android 2.1 (quoted-
// printable UTF-8 names) and iPhone 3.0.
func benchVCards(n int) []byte { return setVCards(0, n) }

// setVCards is benchVCards with the numbers of book set.
func setVCards(set, n int) []byte {
	var sb strings.Builder
	for i := range n {
		if i%2 == 0 {
			fmt.Fprintf(&sb, "BEGIN:VCARD\r\nVERSION:2.1\r\nN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=98=D0=B2=D0=B0=D0=BD=D0=BE=D0=B2;=D0=98=D0=B2=D0=B0=D0=BD %d;;;\r\n"+
				"FN;CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:=D0=98=D0=B2=D0=B0=D0=BD %d =D0=98=D0=B2=D0=B0=D0=BD=D0=BE=\r\n=D0=B2\r\n"+
				"TEL;CELL;PREF:%s\r\nEMAIL;HOME:ivan%d@example.com\r\nEND:VCARD\r\n", i, i, setNumber(set, i), i)
			continue
		}
		fmt.Fprintf(&sb, "BEGIN:VCARD\r\nVERSION:3.0\r\nPRODID:-//Apple Inc.//iPhone OS 17.0//EN\r\nN:Appleseed;Johnny %d;;;\r\nFN:Johnny %d Appleseed\r\n"+
			"ORG:Apple Inc.;\r\nitem1.TEL;type=pref:%s\r\nitem1.X-ABLabel:_$!<Mobile>!$_\r\nEND:VCARD\r\n", i, i, setNumber(set, i))
	}
	return []byte(sb.String())
}

func benchCSV(n int) []byte {
	var sb strings.Builder
	sb.WriteString("First Name,Middle Name,Last Name,Phonetic First Name,Phonetic Middle Name,Phonetic Last Name,Name Prefix,Name Suffix,Nickname,File As,Organization Name,Organization Title,Organization Department,Birthday,Notes,Photo,Labels,E-mail 1 - Label,E-mail 1 - Value,Phone 1 - Label,Phone 1 - Value\n")
	for i := range n {
		fmt.Fprintf(&sb, "Frank,,Ocean %d,,,,,,,,,,,,\"Notes, with a comma\",,* myContacts,* Home,frank%d@example.com,Mobile,%s\n", i, i, benchNumber(i))
	}
	return []byte(sb.String())
}

func benchParse(b *testing.B, data []byte, format addressbook.Format) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		contacts, problems, got, err := addressbook.Parse(data, "US", addressbook.Limits{})
		if err != nil || got != format || len(contacts) != benchContacts || len(problems) != 0 {
			b.Fatalf("%d contacts, %d problems (%+v), format %q, err %v", len(contacts), len(problems), problems[:min(3, len(problems))], got, err)
		}
	}
}

// BenchmarkParseVCard reads 10,000 cards; one op is the whole upload.
func BenchmarkParseVCard(b *testing.B) { benchParse(b, benchVCards(benchContacts), addressbook.VCard) }

// BenchmarkParseVCardNew reads 10,000 cards whose numbers were never seen
// (number.Parse remembers numbers it parsed: BenchmarkParseVCard after its
// first round times that memory), as a new user's first upload.
func BenchmarkParseVCardNew(b *testing.B) {
	b.ReportAllocs()
	set := 0
	for b.Loop() {
		b.StopTimer()
		set++
		data := setVCards(set, benchContacts)
		b.SetBytes(int64(len(data)))
		b.StartTimer()
		contacts, problems, _, err := addressbook.Parse(data, "US", addressbook.Limits{})
		if err != nil || len(contacts) != benchContacts || len(problems) != 0 {
			b.Fatalf("%d contacts, %d problems (%+v), err %v", len(contacts), len(problems), problems[:min(3, len(problems))], err)
		}
	}
}

// BenchmarkParseCSV reads a Google Contacts export of 10,000 rows.
func BenchmarkParseCSV(b *testing.B) { benchParse(b, benchCSV(benchContacts), addressbook.CSV) }
