package component

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmlstream"
)

// stanzaTokens reads stream (a component stream's content: stanzas at the
// top) as mellium's session does, and returns its first stanza's start
// element and a reader of the tokens after it: its inner tokens and its end
// element, then EOF.
func stanzaTokens(stream string) (xml.StartElement, xml.TokenReader, bool) {
	start, d, ok := firstStanza(stream)
	if !ok {
		return xml.StartElement{}, nil, false
	}
	return start, xmlstream.InnerElement(d), true
}

// decodeAsBefore is how handle read a stanza before readStanza: a second
// decoder over the stream's tokens, filling inStanza by its tags; then,
// as readStanza does, only the stanza's own bodies are kept.
func decodeAsBefore(start xml.StartElement, r xml.TokenReader) (inStanza, error) {
	var s inStanza
	err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start.Copy()), r)).Decode(&s)
	if err == nil {
		s.ownBodies()
	}
	return s, err
}

// sameAsDecode reports how readStanza and the reflective decode differ on
// stream, or "" when they agree: the same stanza, or both an error (the
// same when it is errTooLarge). ok is false when stream has no stanza.
func sameAsDecode(stream string) (diff string, ok bool) {
	start, r, ok := stanzaTokens(stream)
	if !ok {
		return "", false
	}
	want, wantErr := decodeAsBefore(start, r)
	start, r, _ = stanzaTokens(stream)
	var got inStanza
	gotErr := readStanza(start, r, &got)
	switch {
	case (gotErr == nil) != (wantErr == nil):
		return fmt.Sprintf("error %v, want %v", gotErr, wantErr), true
	case errors.Is(gotErr, errTooLarge) != errors.Is(wantErr, errTooLarge):
		return fmt.Sprintf("error %v, want %v", gotErr, wantErr), true
	case gotErr == nil && !reflect.DeepEqual(got, want):
		return fmt.Sprintf("read\n%+v\nwant\n%+v", got, want), true
	}
	return "", true
}

// readStanzaCases are stanzas of every shape the handlers read.
var readStanzaCases = []string{
	`<message to='+12015550123@sms.example.com' from='a@example.com/x' id='1' type='chat'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>`,
	`<message><body/></message>`,
	`<message/>`,
	`<message xml:lang='de'><body xml:lang='en'>hi</body><body xml:lang='de'>hallo</body><body>plain</body></message>`,
	`<message><body>a<![CDATA[<b>]]>c &amp; d &#x1F600;</body></message>`,
	`<message><body>before<b>bold <i>x</i></b>after<br/></body></message>`,
	`<message><body>  spaced
lines  </body><!-- a comment --><body>two</body></message>`,
	`<message><body xmlns='urn:other'>other namespace</body></message>`,
	`<message><request xmlns='urn:xmpp:receipts'><inner/>text</request><request xmlns='urn:xmpp:receipts'/></message>`,
	`<message><request xmlns='urn:other'/></message>`,
	`<message><received xmlns='urn:xmpp:receipts' id='x'/><store xmlns='urn:xmpp:hints'/></message>`,
	`<message type='error'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>gone</text></error></message>`,
	`<message><x xmlns='jabber:x:oob'><url>http://example.com/a.jpg</url></x><body>http://example.com/a.jpg</body></message>`,
	`<message><a:foo xmlns:a='urn:a' a:attr='1' plain='2'><a:bar>t</a:bar><baz xmlns='urn:b'/></a:foo></message>`,
	`<iq type='get' id='q'><query xmlns='http://jabber.org/protocol/disco#info' node='n'/></iq>`,
	`<iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='+12015550123@sms.example.com' name='Bob'><group>Friends</group></item></query></iq>`,
	`<iq type='set' id='m'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>+12015550123@sms.example.com</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max></set></query></iq>`,
	`<presence type='subscribe' to='+12015550123@sms.example.com'><nick xmlns='http://jabber.org/protocol/nick'>Al</nick></presence>`,
	`<presence><show>away</show><status>out</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
	`<message>text at the top<body>b</body>more</message>`,
	`<message><?pi x?><body>with a processing instruction</body></message>`,
	// Cut short: the stream ends inside the stanza.
	`<message><body>cut`,
	`<message><body>b</body><x xmlns='urn:x'><y>`,
	`<message><request xmlns='urn:xmpp:receipts'>`,
	`<iq type='get'><query xmlns='urn:q'>`,
	// Malformed: the stream's decoder refuses these inside the stanza.
	`<message><body>b</bod></message>`,
	`<message><x xmlns='urn:x'><y></x></message>`,
	`<message><body>&bogus;</body></message>`,
}

// TestReadStanzaAsDecode: readStanza reads every stanza as encoding/xml's
// Decode into inStanza did, errors included.
func TestReadStanzaAsDecode(t *testing.T) {
	for _, in := range readStanzaCases {
		diff, ok := sameAsDecode(in)
		if !ok {
			t.Errorf("no stanza in %q", in)
			continue
		}
		if diff != "" {
			t.Errorf("%s:\n%s", in, diff)
		}
	}
}

// TestReadStanzaTooLarge: a child of more than maxElementTokens tokens is
// refused with errTooLarge, as Decode refused it, and the stanza is not
// read further.
func TestReadStanzaTooLarge(t *testing.T) {
	in := `<iq type='set' id='big'><query xmlns='urn:q'>` + strings.Repeat("<i/>", maxElementTokens) + `</query></iq>`
	start, r, ok := stanzaTokens(in)
	if !ok {
		t.Fatal("no stanza")
	}
	var s inStanza
	if err := readStanza(start, r, &s); !errors.Is(err, errTooLarge) {
		t.Fatalf("readStanza = %v, want errTooLarge", err)
	}
	if diff, _ := sameAsDecode(in); diff != "" {
		t.Fatal(diff)
	}
	// Within the bound it is read whole.
	in = `<iq type='set' id='big'><query xmlns='urn:q'>` + strings.Repeat("<i/>", maxElementTokens/2-2) + `</query></iq>`
	start, r, _ = stanzaTokens(in)
	s = inStanza{}
	if err := readStanza(start, r, &s); err != nil || len(s.Payload) != 1 || len(s.Payload[0].toks) != maxElementTokens-2 {
		t.Fatalf("readStanza = %v, %d payloads", err, len(s.Payload))
	}
	if _, err := r.Token(); err != io.EOF {
		t.Fatalf("after the stanza: %v, want EOF", err)
	}
}

// FuzzReadStanza: on any input, readStanza and the reflective decode agree.
func FuzzReadStanza(f *testing.F) {
	for _, in := range readStanzaCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if prefixAsURI(in) {
			t.Skip()
		}
		if diff, ok := sameAsDecode(in); ok && diff != "" {
			t.Fatal(diff)
		}
	})
}

// prefixAsURI reports whether in declares a namespace whose URI is also a
// prefix it declares (xmlns:a='b' xmlns:b='c'). encoding/xml's second
// decoder took such a URI, already resolved by the first, for the prefix
// and resolved it again (to 'c'); readStanza keeps the stream decoder's
// names.
func prefixAsURI(in string) bool {
	d := xml.NewDecoder(strings.NewReader(in))
	prefixes, uris := map[string]bool{"xml": true, "xmlns": true}, map[string]bool{}
	for {
		t, err := d.RawToken()
		if err != nil {
			break
		}
		if s, ok := t.(xml.StartElement); ok {
			for _, a := range s.Attr {
				if a.Name.Space == "xmlns" {
					prefixes[a.Name.Local] = true
				}
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					uris[a.Value] = true
				}
			}
		}
	}
	for u := range uris {
		if prefixes[u] {
			return true
		}
	}
	return false
}

// BenchmarkReadStanza reads a user's message to a number as handle does
// (readStanza) and as it did before (a second decoder and Decode), from
// the stream's tokens.
func BenchmarkReadStanza(b *testing.B) {
	const msg = `<message to='+12015550123@sms.example.com' from='alice@example.com/phone' id='a1b2c3' type='chat'><body>Running ten minutes late, start without me</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`
	stream := strings.Repeat(msg, 1000)
	for _, bc := range []struct {
		name string
		read func(xml.StartElement, xml.TokenReader) error
	}{
		{"readStanza", func(start xml.StartElement, r xml.TokenReader) error {
			var s inStanza
			return readStanza(start, r, &s)
		}},
		{"Decode", func(start xml.StartElement, r xml.TokenReader) error {
			_, err := decodeAsBefore(start, r)
			return err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var d *xml.Decoder
			for i := 0; i < b.N; i++ {
				if i%1000 == 0 {
					d = xml.NewDecoder(strings.NewReader(stream))
				}
				t, err := d.Token()
				if err != nil {
					b.Fatal(err)
				}
				if err := bc.read(t.(xml.StartElement), xmlstream.InnerElement(d)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
