package addressbook

import (
	"encoding/base64"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-vcard"
)

// go-vcard's Decoder reads RFC 6350 syntax only. On the 2.1 cards Android,
// iPhone and Nokia export it loses data without an error: a bare type
// parameter ("TEL;CELL;PREF:+1…") swallows the value, a quoted-printable soft
// line break ("=" at the end of a line) turns the rest of the value into a
// property of its own, and it cannot tell where one card's malformed lines
// are. So the lines are read here, for every version alike, into go-vcard's
// Params, and only the properties a contact needs are kept.

// lineScanner hands out physical lines with their 1-based numbers.
type lineScanner struct {
	s    string
	pos  int
	line int
}

func (sc *lineScanner) next() (string, int, bool) {
	if sc.pos >= len(sc.s) {
		return "", 0, false
	}
	l := sc.s[sc.pos:]
	if i := strings.IndexByte(l, '\n'); i >= 0 {
		l = l[:i]
		sc.pos += i + 1
	} else {
		sc.pos = len(sc.s)
	}
	sc.line++
	return strings.TrimSuffix(l, "\r"), sc.line, true
}

func (sc *lineScanner) peek() (string, bool) {
	if sc.pos >= len(sc.s) {
		return "", false
	}
	rest := sc.s[sc.pos:]
	if i := strings.IndexByte(rest, '\n'); i >= 0 {
		rest = rest[:i]
	}
	return strings.TrimSuffix(rest, "\r"), true
}

// prop is one vCard property a contact needs.
type prop struct {
	line   int
	group  string
	name   string // upper case
	params vcard.Params
	value  string // as written, unfolded
	bad    bool   // a TEL line that could not be read
}

type card struct {
	start int
	props []prop
}

func readVCards(s string, b *book) {
	sc := &lineScanner{s: s}
	begin := 0 // line of a BEGIN:VCARD already read
	var props []prop
	for !b.tooMany {
		if begin == 0 {
			l, n, ok := sc.next()
			if !ok {
				return
			}
			t := strings.TrimSpace(l)
			switch {
			case t == "":
				continue
			case !strings.EqualFold(t, "BEGIN:VCARD"):
				b.problem(n, t, "", ReasonOutside)
				continue
			}
			begin = n
		}
		c := card{start: begin, props: props[:0]}
		begin = readCard(sc, &c)
		c.emit(b)
		props = c.props // the next card reuses the slice; emit keeps no prop
	}
}

// readCard reads properties up to END:VCARD. A card cut short by the end of
// the file or by the next BEGIN:VCARD is read as far as it goes; the line of
// that BEGIN is returned.
func readCard(sc *lineScanner, c *card) (nextBegin int) {
	for {
		l, n, ok := sc.next()
		if !ok {
			return 0
		}
		t := strings.TrimSpace(l)
		switch {
		case t == "":
			continue
		case strings.EqualFold(t, "END:VCARD"):
			return 0
		case strings.EqualFold(t, "BEGIN:VCARD"):
			return n
		}
		p, ok := parseProp(unfold(sc, l), n)
		if p.name != "" && wanted(p.name) {
			p.bad = !ok
			if ok || p.name == vcard.FieldTelephone {
				c.props = append(c.props, p)
			}
		}
	}
}

// unfold joins the physical lines that continue first: lines that start
// with white space (RFC 6350 folding, and 2.1 base64 blocks), lines after a
// quoted-printable soft line break, and bare base64 lines after a 2.1
// base64 property (ended by an empty line or the next property, whose colon
// base64 never holds).
func unfold(sc *lineScanner, first string) string {
	head := first
	if i := strings.IndexByte(first, ':'); i >= 0 {
		head = first[:i]
	}
	qp := containsFold(head, "QUOTED-PRINTABLE")
	b64 := containsFold(head, "BASE64") || containsFold(head, "ENCODING=B")
	if !qp && !b64 && !sc.continues() {
		return first
	}
	buf := make([]byte, 0, 2*len(first))
	buf = append(buf, first...)
	last := first
	for {
		nl, ok := sc.peek()
		if !ok {
			break
		}
		switch {
		case qp && strings.HasSuffix(last, "="):
			buf = buf[:len(buf)-1]
			if strings.EqualFold(strings.TrimSpace(nl), "END:VCARD") {
				return string(buf)
			}
			buf = append(buf, nl...)
		case nl != "" && (nl[0] == ' ' || nl[0] == '\t'):
			if b64 {
				buf = append(buf, nl...)
			} else {
				buf = append(buf, nl[1:]...)
			}
		case b64 && isBase64Line(nl):
			buf = append(buf, nl...)
		default:
			return string(buf)
		}
		last = nl
		sc.next()
	}
	return string(buf)
}

// continues reports whether the next line is a folded continuation.
func (sc *lineScanner) continues() bool {
	nl, ok := sc.peek()
	return ok && nl != "" && (nl[0] == ' ' || nl[0] == '\t')
}

func isBase64Line(s string) bool {
	s = strings.TrimRight(s, " \t")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return false
		}
	}
	return true
}

func wanted(name string) bool {
	switch name {
	case vcard.FieldTelephone, vcard.FieldFormattedName, vcard.FieldName, vcard.FieldPhoto,
		vcard.FieldNickname, vcard.FieldOrganization, "X-ABLABEL":
		return true
	}
	return false
}

// parseProp reads "[group.]NAME[;param…]:value". Parameters are read only for
// the properties a contact needs. ok is false when the line has no value.
func parseProp(l string, n int) (p prop, ok bool) {
	i := strings.IndexAny(l, ";:")
	if i <= 0 {
		name := strings.TrimSpace(l)
		if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
			name = name[dot+1:]
		}
		if hasPrefixFold(name, "TEL") {
			return prop{line: n, name: vcard.FieldTelephone, value: l}, false
		}
		return prop{}, false
	}
	p.line = n
	name := strings.TrimSpace(l[:i])
	if dot := strings.LastIndexByte(name, '.'); dot >= 0 {
		p.group, name = name[:dot], name[dot+1:]
	}
	p.name = strings.ToUpper(name)
	if !wanted(p.name) {
		return p, true
	}
	rest := l[i:]
	for rest[0] == ';' {
		rest = rest[1:]
		j := paramEnd(rest)
		if j < 0 {
			p.value = l
			return p, false
		}
		if p.params == nil {
			p.params = make(vcard.Params, 2)
		}
		addParam(p.params, rest[:j])
		rest = rest[j:]
	}
	p.value = rest[1:]
	return p, true
}

// paramEnd returns the index of the ';' or ':' that ends the parameter at the
// start of s, outside double quotes, or -1.
func paramEnd(s string) int {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ';', ':':
			if !quoted {
				return i
			}
		}
	}
	return -1
}

// addParam adds one parameter. vCard 2.1 writes types and encodings bare
// ("TEL;CELL;PREF", "PHOTO;ENCODING=BASE64;JPEG"); those become TYPE and
// ENCODING. Android's custom labels ("X-CUSTOM(CHARSET=UTF-8,…,label)") stay
// whole as a TYPE.
func addParam(params vcard.Params, tok string) {
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return
	}
	k, v, hasValue := strings.Cut(tok, "=")
	if !hasValue || hasPrefixFold(tok, "X-CUSTOM(") {
		switch u := strings.ToUpper(tok); u {
		case "QUOTED-PRINTABLE", "BASE64", "B", "8BIT", "7BIT":
			params.Add("ENCODING", u)
		default:
			params.Add(vcard.ParamType, tok)
		}
		return
	}
	k = strings.ToUpper(strings.TrimSpace(k))
	v = strings.TrimSpace(v)
	if k != vcard.ParamType {
		params.Add(k, strings.Trim(v, `"`))
		return
	}
	for _, t := range strings.Split(v, ",") {
		if t = strings.TrimSpace(strings.Trim(strings.TrimSpace(t), `"`)); t != "" {
			params.Add(k, t)
		}
	}
}

// text returns the value decoded from quoted-printable and its CHARSET into
// UTF-8, still escaped.
func (p *prop) text() string {
	charset := p.params.Get("CHARSET")
	if strings.EqualFold(p.params.Get("ENCODING"), "QUOTED-PRINTABLE") {
		return decodeValue(qpDecode(p.value), charset)
	}
	if charset == "" {
		return fromLegacy(p.value)
	}
	return decodeValue([]byte(p.value), charset)
}

// decodeValue is decodeCharset, except that text declared in a single-byte
// charset that is valid UTF-8 with non-ASCII letters is taken as UTF-8: phones
// that write CHARSET=ISO-8859-1 over UTF-8 text exist, and Latin-1 text that
// happens to be valid UTF-8 hardly does.
func decodeValue(b []byte, charset string) string {
	c := strings.ToLower(charset)
	if (strings.HasPrefix(c, "iso-8859") || strings.HasPrefix(c, "windows-125") || strings.HasPrefix(c, "cp125") || strings.HasPrefix(c, "latin")) &&
		utf8.Valid(b) && !isASCII(b) {
		return string(b)
	}
	return decodeCharset(b, charset)
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func (c *card) emit(b *book) {
	name := c.name()
	photo, photoType := c.photo()
	labels := c.groupLabels()
	tels := 0
	for i := range c.props {
		p := &c.props[i]
		if p.name != vcard.FieldTelephone || b.tooMany {
			continue
		}
		if p.bad {
			tels++
			b.problem(p.line, p.value, name, ReasonLine)
			continue
		}
		v := strings.TrimSpace(unescape(p.text()))
		if v == "" {
			continue
		}
		tels++
		b.number(p.line, v, name, label(p, labels), photo, photoType)
	}
	if tels == 0 {
		entry := name
		if entry == "" {
			entry = "BEGIN:VCARD"
		}
		b.problem(c.start, entry, name, ReasonNoNumber)
	}
}

// name is FN, else N assembled, else NICKNAME, else ORG.
func (c *card) name() string {
	var n, nick, org string
	for i := range c.props {
		p := &c.props[i]
		switch p.name {
		case vcard.FieldFormattedName:
			if fn := strings.TrimSpace(unescape(p.text())); fn != "" {
				return fn
			}
		case vcard.FieldName:
			if n == "" {
				n = assemble(components(p.text()))
			}
		case vcard.FieldNickname:
			if nick == "" {
				nick = strings.TrimSpace(unescape(p.text()))
			}
		case vcard.FieldOrganization:
			if org == "" {
				org = strings.TrimSpace(components(p.text())[0])
			}
		}
	}
	switch {
	case n != "":
		return n
	case nick != "":
		return nick
	}
	return org
}

// assemble writes N (family; given; additional; prefix; suffix) as a name is
// shown: "Prefix Given Additional Family Suffix".
func assemble(parts []string) string {
	at := func(i int) string {
		if i < len(parts) {
			return strings.TrimSpace(strings.ReplaceAll(parts[i], ",", " "))
		}
		return ""
	}
	return joinNonEmpty(" ", at(3), at(1), at(2), at(0), at(4))
}

func joinNonEmpty(sep string, parts ...string) string {
	var sb strings.Builder
	for _, p := range parts {
		if p == "" {
			continue
		}
		if sb.Len() > 0 {
			sb.WriteString(sep)
		}
		sb.WriteString(p)
	}
	return sb.String()
}

// groupLabels maps the groups of a card's iPhone X-ABLabel properties
// ("item1.X-ABLabel:_$!<Mobile>!$_") to their labels, lower-cased.
func (c *card) groupLabels() map[string]string {
	var labels map[string]string
	for i := range c.props {
		p := &c.props[i]
		if p.name != "X-ABLABEL" || p.group == "" {
			continue
		}
		l := strings.TrimSpace(unescape(p.text()))
		l = strings.TrimSuffix(strings.TrimPrefix(l, "_$!<"), ">!$_")
		g := strings.ToLower(p.group)
		if _, ok := labels[g]; l != "" && !ok {
			if labels == nil {
				labels = make(map[string]string)
			}
			labels[g] = strings.ToLower(l)
		}
	}
	return labels
}

// label is the X-ABLabel of the TEL's group, else its types without "pref"
// (and without "voice", the default, when there are others).
func label(tel *prop, labels map[string]string) string {
	if l, ok := labels[strings.ToLower(tel.group)]; ok && tel.group != "" {
		return l
	}
	var types []string
	for _, t := range tel.params[vcard.ParamType] {
		t = strings.ToLower(t)
		if strings.HasPrefix(t, "x-custom(") {
			t = customLabel(t)
		}
		if t == "" || t == "pref" || strings.HasPrefix(t, "pref=") {
			continue
		}
		types = append(types, t)
	}
	if len(types) > 1 {
		kept := types[:0]
		for _, t := range types {
			if t != "voice" {
				kept = append(kept, t)
			}
		}
		types = kept
	}
	return strings.Join(types, ",")
}

// customLabel reads Android's "x-custom(charset=utf-8,encoding=quoted-printable,=d0=a0…)":
// the label is the last item.
func customLabel(t string) string {
	t = strings.TrimSuffix(strings.TrimPrefix(t, "x-custom("), ")")
	items := strings.Split(t, ",")
	label := items[len(items)-1]
	charset := ""
	qp := false
	for _, it := range items[:len(items)-1] {
		k, v, _ := strings.Cut(it, "=")
		switch k {
		case "charset":
			charset = v
		case "encoding":
			qp = v == "quoted-printable"
		}
	}
	if qp {
		label = decodeValue(qpDecode(label), charset)
	}
	return strings.ToLower(strings.TrimSpace(label))
}

// photo returns the first inline photo that decodes and is small enough.
func (c *card) photo() ([]byte, string) {
	for i := range c.props {
		p := &c.props[i]
		if p.name != vcard.FieldPhoto {
			continue
		}
		v := strings.TrimSpace(p.value)
		var data, mime string
		switch enc := strings.ToUpper(p.params.Get("ENCODING")); {
		case enc == "B" || enc == "BASE64":
			data = v
			mime = photoMIME(append(p.params[vcard.ParamType], p.params.Get(vcard.ParamMediaType)))
		case hasPrefixFold(v, "data:"):
			meta, d, ok := strings.Cut(v[len("data:"):], ",")
			if !ok || !hasSuffixFold(meta, ";base64") {
				continue
			}
			data = d
			mime = photoMIME([]string{strings.TrimSpace(meta[:len(meta)-len(";base64")])})
		default:
			continue // a URI, or nothing
		}
		img := decodePhoto(data)
		if img == nil {
			continue
		}
		if mime == "" {
			mime = sniffImage(img)
		}
		return img, mime
	}
	return nil, ""
}

func hasSuffixFold(s, suffix string) bool {
	return len(s) >= len(suffix) && strings.EqualFold(s[len(s)-len(suffix):], suffix)
}

func photoMIME(types []string) string {
	for _, t := range types {
		t = strings.ToLower(strings.TrimSpace(t))
		switch {
		case strings.HasPrefix(t, "image/"):
			if m, _, _ := strings.Cut(t, ";"); m != "image/" {
				return m
			}
		case t == "jpeg" || t == "jpg":
			return "image/jpeg"
		case t == "png", t == "gif", t == "bmp", t == "tiff", t == "webp", t == "heic":
			return "image/" + t
		}
	}
	return ""
}

func sniffImage(b []byte) string {
	switch {
	case len(b) >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF:
		return "image/jpeg"
	case strings.HasPrefix(string(b[:min(len(b), 8)]), "\x89PNG\r\n\x1a\n"):
		return "image/png"
	case strings.HasPrefix(string(b[:min(len(b), 6)]), "GIF8"):
		return "image/gif"
	}
	return ""
}

// decodePhoto decodes base64 written with or without padding and folding
// white space, or returns nil if it does not decode or holds more than
// MaxPhoto bytes.
func decodePhoto(data string) []byte {
	n, space := 0, false
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case ' ', '\t', '\r', '\n':
			space = true
		default:
			n++
		}
	}
	if n == 0 || n/4*3 > MaxPhoto+3 {
		return nil
	}
	if space {
		data = strings.Map(func(r rune) rune {
			switch r {
			case ' ', '\t', '\r', '\n':
				return -1
			}
			return r
		}, data)
	}
	img, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		img, err = base64.RawStdEncoding.DecodeString(strings.TrimRight(data, "="))
	}
	if err != nil || len(img) == 0 || len(img) > MaxPhoto {
		return nil
	}
	return img
}
