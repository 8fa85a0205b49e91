package addressbook

import (
	"encoding/csv"
	"errors"
	"io"
	"strings"
)

// csvColumns says which columns of a CSV export hold what.
type csvColumns struct {
	full                                []int // "Name", "Display Name", "Full Name"
	prefix, first, middle, last, suffix int
	nick, org                           int
	phones                              []phoneColumn
}

// phoneColumn is a column of numbers. Its label comes from a companion
// column (Google's "Phone 1 - Type" / "Phone 1 - Label") or from its header
// (Outlook's "Mobile Phone" → "mobile").
type phoneColumn struct {
	value, typ int // typ is -1 without a companion column
	label      string
}

// Header names, lower case. Google Contacts (old: "Name,Given Name,…,Phone 1
// - Type,Phone 1 - Value"; since 2023: "First Name,Middle Name,Last
// Name,…,Phone 1 - Label,Phone 1 - Value"), Outlook ("First Name,…,Mobile
// Phone,Home Phone,Business Phone"), and the usual European spellings.
var (
	fullNames   = []string{"name", "full name", "display name", "contact name", "contact", "fn", "nom complet", "vollständiger name"}
	prefixNames = []string{"name prefix", "prefix"}
	firstNames  = []string{"given name", "first name", "first", "firstname", "vorname", "prénom", "prenom", "nombre", "nome", "voornaam", "имя"}
	middleNames = []string{"additional name", "middle name", "middle", "weitere vornamen", "отчество"}
	lastNames   = []string{"family name", "last name", "surname", "last", "lastname", "nachname", "nom", "nom de famille", "apellido", "apellidos", "cognome", "achternaam", "фамилия"}
	suffixNames = []string{"name suffix", "suffix"}
	nickNames   = []string{"nickname", "short name", "spitzname"}
	orgNames    = []string{"organization name", "organization 1 - name", "organisation name", "company", "organization", "organisation", "firma", "société", "empresa"}

	// Words that make a header a phone column, and words that rule it out.
	phoneWords   = []string{"phone", "mobile", "cell", "fax", "pager", "telefon", "téléphone", "telephone", "teléfono", "telefono", "telefone", "handy", "mobil", "portable", "móvil", "movil", "celular", "isdn", "callback", "телефон"}
	phoneExact   = []string{"tel", "tel.", "number", "numéro", "nummer", "número"}
	notPhoneWord = []string{"phonetic", "yomi", "telex", "mail", " - type", " - label"}
)

func oneOf(h string, names []string) bool {
	for _, n := range names {
		if h == n {
			return true
		}
	}
	return false
}

func containsAny(h string, words []string) bool {
	for _, w := range words {
		if strings.Contains(h, w) {
			return true
		}
	}
	return false
}

func isPhoneHeader(h string) bool {
	if containsAny(h, notPhoneWord) {
		return false
	}
	return oneOf(h, phoneExact) || containsAny(h, phoneWords)
}

func classify(header []string) csvColumns {
	c := csvColumns{prefix: -1, first: -1, middle: -1, last: -1, suffix: -1, nick: -1, org: -1}
	lower := make([]string, len(header))
	for i, h := range header {
		lower[i] = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\uFEFF")))
	}
	companion := func(prefix string) int {
		for j, o := range lower {
			if o == prefix+" - type" || o == prefix+" - label" {
				return j
			}
		}
		return -1
	}
	set := func(p *int, i int) {
		if *p < 0 {
			*p = i
		}
	}
	for i, h := range lower {
		switch {
		case strings.HasSuffix(h, " - value"):
			prefix := strings.TrimSuffix(h, " - value")
			if strings.HasPrefix(prefix, "phone") {
				c.phones = append(c.phones, phoneColumn{value: i, typ: companion(prefix)})
			}
		case oneOf(h, fullNames):
			c.full = append(c.full, i)
		case oneOf(h, prefixNames):
			set(&c.prefix, i)
		case oneOf(h, firstNames):
			set(&c.first, i)
		case oneOf(h, middleNames):
			set(&c.middle, i)
		case oneOf(h, lastNames):
			set(&c.last, i)
		case oneOf(h, suffixNames):
			set(&c.suffix, i)
		case oneOf(h, nickNames):
			set(&c.nick, i)
		case oneOf(h, orgNames):
			set(&c.org, i)
		case isPhoneHeader(h):
			c.phones = append(c.phones, phoneColumn{value: i, typ: -1, label: headerLabel(h)})
		}
	}
	return c
}

// headerLabel turns "Mobile Phone" into "mobile", "Business Phone 2" into
// "business 2", and a bare "Phone" into "".
func headerLabel(h string) string {
	for _, w := range []string{" phone number", " phone", "phone number", "phone", " number"} {
		h = strings.Replace(h, w, "", 1)
	}
	return strings.Join(strings.Fields(h), " ")
}

// sniffComma picks the separator that occurs most in the header line, outside
// quotes: ',' (Google, Outlook), ';' (Excel in most of Europe) or tab.
func sniffComma(line string) rune {
	var commas, semis, tabs int
	quoted := false
	for _, r := range line {
		switch r {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				commas++
			}
		case ';':
			if !quoted {
				semis++
			}
		case '\t':
			if !quoted {
				tabs++
			}
		}
	}
	switch {
	case semis > commas && semis >= tabs:
		return ';'
	case tabs > commas && tabs > semis:
		return '\t'
	}
	return ','
}

func newCSVReader(s string, comma rune) *csv.Reader {
	r := csv.NewReader(strings.NewReader(s))
	r.Comma = comma
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	return r
}

// isCSVHeader reports whether line is the header of a CSV export: two or more
// fields, none of them holding a number, one of them a phone column.
func isCSVHeader(line string) bool {
	rec, err := newCSVReader(line, sniffComma(line)).Read()
	if err != nil || len(rec) < 2 {
		return false
	}
	for _, f := range rec {
		if numberish(f) || asciiDigits(f) >= 3 {
			return false // a row of data, not a header
		}
	}
	return len(classify(rec).phones) > 0
}

func readCSV(s string, b *book) {
	s = fromLegacy(s) // Outlook writes Windows-1252
	headerLine := ""
	for rest := s; rest != "" && headerLine == ""; {
		headerLine, rest, _ = strings.Cut(rest, "\n")
		headerLine = strings.TrimSpace(headerLine)
	}
	r := newCSVReader(s, sniffComma(headerLine))
	var cols csvColumns
	header := true
	for !b.tooMany {
		rec, err := r.Read()
		if err == io.EOF {
			return
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				b.problem(pe.StartLine, "", "", ReasonRecord)
				continue
			}
			return
		}
		if header {
			cols, header = classify(rec), false
			continue
		}
		line, _ := r.FieldPos(0)
		readRow(rec, line, cols, b)
	}
}

func readRow(rec []string, line int, cols csvColumns, b *book) {
	field := func(i int) string {
		if i < 0 || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	name := ""
	for _, i := range cols.full {
		if name = field(i); name != "" {
			break
		}
	}
	if name == "" {
		name = joinNonEmpty(" ", field(cols.prefix), field(cols.first), field(cols.middle), field(cols.last), field(cols.suffix))
	}
	if name == "" {
		name = field(cols.nick)
	}
	if name == "" {
		name = field(cols.org)
	}
	numbers := 0
	for _, pc := range cols.phones {
		label := pc.label
		if pc.typ >= 0 {
			label = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(field(pc.typ), "* ")))
		}
		for _, v := range strings.Split(field(pc.value), ":::") {
			if v = strings.TrimSpace(v); v == "" {
				continue
			}
			numbers++
			b.number(line, v, name, label, nil, "")
		}
	}
	if numbers > 0 {
		return
	}
	entry := name
	for _, f := range rec {
		if entry != "" {
			break
		}
		entry = strings.TrimSpace(f)
	}
	if entry == "" {
		return // an empty row, such as Excel's trailing ";;;;"
	}
	b.problem(line, entry, name, ReasonNoNumber)
}

func asciiDigits(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if '0' <= s[i] && s[i] <= '9' {
			n++
		}
	}
	return n
}
