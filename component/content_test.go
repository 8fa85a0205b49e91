package component

import (
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"switchboard/router"
	"switchboard/smsgw/coding"
)

// TestPayloadXML checks what is relayed of a stanza, and that the reused
// encoder leaves nothing of one stanza in the next one's payload.
func TestPayloadXML(t *testing.T) {
	tests := []struct{ in, want string }{
		{
			in:   `<message><body>a &lt; b &amp; "c"</body><request xmlns='urn:xmpp:receipts'/></message>`,
			want: `<body>a &lt; b &amp; &#34;c&#34;</body>`,
		},
		{
			in: `<message><body xml:lang='de'>Hallo</body><body>Hello</body><x xmlns='jabber:x:oob'><url>https://x.example/a?b=1&amp;c=2</url></x></message>`,
			// encoding/xml writes the element's namespace and its xmlns
			// attribute both; payloadTokens drops xmlns attributes when
			// the payload is read back.
			want: `<body xml:lang="de">Hallo</body><body>Hello</body><x xmlns="jabber:x:oob" xmlns="jabber:x:oob"><url xmlns="jabber:x:oob">https://x.example/a?b=1&amp;c=2</url></x>`,
		},
		{
			in:   `<message><body>short</body></message>`,
			want: `<body>short</body>`,
		},
	}
	var got [][]byte
	for range 3 { // every stanza again, after the others used the encoder
		for _, tc := range tests {
			var s inStanza
			if err := xml.Unmarshal([]byte(tc.in), &s); err != nil {
				t.Fatalf("%s: %v", tc.in, err)
			}
			got = append(got, payloadXML(&s))
		}
	}
	for i, b := range got {
		if want := tests[i%len(tests)].want; string(b) != want {
			t.Errorf("payload %d of %s:\n got %s\nwant %s", i, tests[i%len(tests)].in, b, want)
		}
	}
}

// TestParseSender: a sender is taken in its normalised form when that
// form parses back to it, whether it was written so or not; one whose
// normalised form normalises again into another (mellium turns "0.." into
// "0.", then into "0") is refused, for an answer would reach another
// address.
func TestParseSender(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@example.com/phone", "alice@example.com/phone"},
		{"Alice@Example.COM/Phone", "alice@example.com/Phone"},
		{"alice@example.com.", "alice@example.com"},
		{"alice@0.", "alice@0"},
		{"alice@0..", ""},
		{"alice@..", ""},
		{"@example.com", ""},
	} {
		j, err := parseSender(tc.in)
		if tc.want == "" {
			if err == nil {
				t.Errorf("parseSender(%q) = %q, want an error", tc.in, j)
			}
			continue
		}
		if err != nil || j.String() != tc.want {
			t.Errorf("parseSender(%q) = %q, %v; want %q", tc.in, j, err, tc.want)
		}
	}
}

func BenchmarkParseSender(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseSender("alice@example.com/phone-ab12"); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReplyText: a reply's SMS quotes the start of the message replied to,
// not the whole quote the client put in its body; a fallback range that
// does not fit the body, or no reply element, leaves the body as it is.
func TestReplyText(t *testing.T) {
	quoted := "> Running late, see you at the station in twenty minutes or so\n"
	n := len([]rune(quoted))
	for _, tc := range []struct{ name, in, want string }{
		{"reply",
			`<message><reply xmlns='urn:xmpp:reply:0' to='+12015550199@sms.example.com' id='sms-5'/>` +
				`<fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='` + fmt.Sprint(n) + `'/></fallback>` +
				`<body>` + quoted + `On my way</body></message>`,
			`Reply to "Running late, see you at the station in...": On my way`},
		{"quote of two lines, with a name, after the text",
			`<message><reply xmlns='urn:xmpp:reply:0' id='x'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='3' end='19'/></fallback>` +
				`<body>Ok ` + "> Bob:\n> at 8 ü\n" + `</body></message>`,
			`Reply to "Bob: at 8 ü": Ok`},
		{"range past the body",
			`<message><reply xmlns='urn:xmpp:reply:0' id='x'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='99'/></fallback><body>&gt; hi
yes</body></message>`,
			"> hi\nyes"},
		{"no reply element",
			`<message><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='0' end='5'/></fallback><body>&gt; hi
yes</body></message>`,
			"> hi\nyes"},
		{"a fallback for something else",
			`<message><reply xmlns='urn:xmpp:reply:0' id='x'/><fallback xmlns='urn:xmpp:fallback:0' for='urn:xmpp:other:0'><body start='0' end='5'/></fallback><body>&gt; hi
yes</body></message>`,
			"> hi\nyes"},
	} {
		var s inStanza
		if err := xml.Unmarshal([]byte(tc.in), &s); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := smsText(&s, reactionOf(&s)); got != tc.want {
			t.Errorf("%s: SMS %q, want %q", tc.name, got, tc.want)
		}
	}
	// What the gateway adds keeps a reply of GSM characters in GSM.
	if _, gsm := coding.EncodeGSM(router.ReplyText(strings.Repeat("See you at the bridge ", 3), "On my way")); !gsm {
		t.Error("a reply of plain letters needs UCS-2")
	}
}

// TestSMSContent: what of a message an SMS carries, beyond the body: the
// subject first; a location once, when the body is its geo: URI already;
// nothing for a body of invisible characters, or for an element named
// body in another namespace.
func TestSMSContent(t *testing.T) {
	geo := `<geoloc xmlns='http://jabber.org/protocol/geoloc'><lat>45.44</lat><lon>12.33</lon></geoloc>`
	for _, tc := range []struct{ name, in, want string }{
		{"subject and body", `<message><subject>Meeting</subject><body>at 5</body></message>`, "Meeting\nat 5"},
		{"subject alone", `<message><subject>Just a subject</subject></message>`, "Just a subject"},
		{"subject as the body", `<message><subject>Hi</subject><body>Hi</body></message>`, "Hi"},
		{"subject in the stanza's language", `<message xml:lang='de'><subject xml:lang='en'>Hello</subject><subject xml:lang='de'>Hallo</subject><body>x</body></message>`, "Hallo\nx"},
		{"blank subject", `<message><subject> </subject><body>x</body></message>`, "x"},
		{"location as the body", `<message><body>geo:45.44,12.33</body>` + geo + `</message>`,
			"geo:45.44,12.33\nhttps://www.openstreetmap.org/?mlat=45.44&mlon=12.33"},
		{"location beside text", `<message><body>here</body>` + geo + `</message>`,
			"here\ngeo:45.44,12.33 https://www.openstreetmap.org/?mlat=45.44&mlon=12.33"},
		{"zero-width space", "<message><body>\u200b\ufeff \u2060</body></message>", ""},
		{"emoji with a joiner", "<message><body>\U0001F469\u200d\U0001F4BB</body></message>", "\U0001F469\u200d\U0001F4BB"},
		{"body of another namespace", `<message><body xmlns='urn:example:x'>secret data</body></message>`, ""},
		{"body of jabber:client", `<message xmlns='jabber:component:accept'><body xmlns='jabber:client'>hi</body></message>`, "hi"},
	} {
		// As the handler reads a stanza.
		d := xml.NewDecoder(strings.NewReader(tc.in))
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		start := tok.(xml.StartElement)
		var s inStanza
		s.setAttrs(start.Attr)
		if err := readStanza(start, d, &s); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if got := smsText(&s, reactionOf(&s)); got != tc.want {
			t.Errorf("%s: SMS %q, want %q", tc.name, got, tc.want)
		}
	}
}
