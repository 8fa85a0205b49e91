package component

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"

	"switchboard/router"
)

var update = flag.Bool("update", false, "rewrite testdata/fuzz/FuzzHandleStanza from the transcript table")

const corpusDir = "testdata/fuzz/FuzzHandleStanza"

// TestFuzzCorpus keeps the fuzz seeds in step with the transcript table.
func TestFuzzCorpus(t *testing.T) {
	if *update {
		if err := os.MkdirAll(corpusDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, tc := range transcripts() {
			name := filepath.Join(corpusDir, fmt.Sprintf("transcript-%02d", i))
			data := "go test fuzz v1\nstring(" + strconv.Quote(tc.in) + ")\n"
			if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i, tc := range transcripts() {
		b, err := os.ReadFile(filepath.Join(corpusDir, fmt.Sprintf("transcript-%02d", i)))
		if err != nil {
			t.Errorf("seed missing (run go test -run TestFuzzCorpus ./component -args -update): %v", err)
			continue
		}
		if want := "go test fuzz v1\nstring(" + strconv.Quote(tc.in) + ")\n"; string(b) != want {
			t.Errorf("seed transcript-%02d is not transcript %q (run go test -run TestFuzzCorpus ./component -args -update)", i, tc.name)
		}
	}
}

// FuzzHandleStanza feeds one stanza to the component's handler the way
// mellium's Serve does. For every well-formed stanza the handler must not
// panic and must not return an error (that would end the session); it must
// answer an IQ get or set exactly once, with its id; it must never answer an
// error; and everything it sends for a stanza addressed to its domain must
// come from its domain (the server disconnects a component that sends from
// elsewhere).
func FuzzHandleStanza(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		start, d, ok := wellFormedStanza(in)
		if !ok {
			t.Skip()
		}
		// Serve blanks a from equal to the component's own address.
		for i, a := range start.Attr {
			if a.Name.Local == "from" {
				if a.Value == testDomain {
					start.Attr[i].Value = ""
				}
				break
			}
		}

		var logs, sent bytes.Buffer
		c := New(Config{JID: jid.MustParse(testDomain), Version: testVersion, DefaultRegion: "US", Logger: zerolog.New(&logs)}, fuzzRouter{})
		c.sess = bufferSession(t, &sent)
		rec := &recorder{}
		rec.enc = xml.NewEncoder(&rec.buf)
		rw := struct {
			xml.TokenReader
			xmlstream.Encoder
		}{xmlstream.InnerElement(d), rec}

		if err := c.handle(rw, &start); err != nil {
			t.Fatalf("handle returned %v", err)
		}
		if err := rec.enc.Flush(); err != nil {
			t.Fatalf("the answer is not well-formed XML: %v", err)
		}
		if strings.Contains(logs.String(), "handler failed") {
			t.Fatalf("handler panicked: %s", logs.String())
		}
		out := append(parseStanzas(t, rec.buf.String()), parseStanzas(t, sent.String())...)

		from, to, id, typ := stanzaAttrs(start.Attr)
		if typ == "error" && len(out) > 0 {
			t.Fatalf("answered an error: %v", out)
		}
		if start.Name.Local == "iq" && (typ == "get" || typ == "set") {
			if len(out) != 1 || out[0].XMLName.Local != "iq" || out[0].attr("id") != id ||
				(out[0].attr("type") != "result" && out[0].attr("type") != "error") {
				t.Fatalf("IQ %s id=%q answered with %v", typ, id, out)
			}
		}
		if j, err := jid.Parse(to); err == nil && j.Domainpart() != testDomain {
			return // the server routes only stanzas for the component's domain
		}
		for _, n := range out {
			j, err := jid.Parse(n.attr("from"))
			if local, ok := strings.CutSuffix(n.attr("from"), "@"+testDomain); err != nil && ok && foreignDigits(local) {
				continue // a number in other digits, answered from the address as written
			}
			if err != nil || j.Domainpart() != testDomain {
				t.Fatalf("sent from %q, outside the component domain: %s", n.attr("from"), n)
			}
			got := n.attr("to")
			if n.XMLName.Local == "presence" {
				// Presence answers go to the sender's bare JID.
				if f, err := jid.Parse(from); err == nil {
					from = f.Bare().String()
				}
			}
			if got != from && !sameJID(got, from) {
				t.Errorf("sent to %q, not to the sender %q", got, from)
			}
		}
	})
}

func sameJID(a, b string) bool {
	ja, errA := jid.Parse(a)
	jb, errB := jid.Parse(b)
	return errA == nil && errB == nil && ja.Equal(jb)
}

// bufferSession is an XMPP session that writes to w and reads nothing.
func bufferSession(t *testing.T, w io.Writer) *xmpp.Session {
	rw := struct {
		io.Reader
		io.Writer
	}{strings.NewReader(""), w}
	s, err := xmpp.NewSession(context.Background(), jid.MustParse(testDomain), jid.MustParse(testDomain), rw, 0,
		func(_ context.Context, in, out *stream.Info, _ *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
			in.XMLNS, out.XMLNS = nsAccept, nsAccept
			return xmpp.Ready | xmpp.Authn, nil, nil, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// parseStanzas reads the top-level elements of a stream fragment.
func parseStanzas(t *testing.T, s string) []node {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(`<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>` + s + `</stream:stream>`))
	if _, err := nextStart(d); err != nil {
		t.Fatal(err)
	}
	var out []node
	for {
		tok, err := d.Token()
		if err != nil {
			t.Fatalf("the component wrote malformed XML: %v: %s", err, s)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var n node
			if err := d.DecodeElement(&n, &tok); err != nil {
				t.Fatalf("the component wrote malformed XML: %v: %s", err, s)
			}
			out = append(out, n)
		case xml.EndElement:
			return out
		}
	}
}

// wellFormedStanza parses in as the single top-level element of a component
// stream, and returns its start element and a decoder positioned after it.
func wellFormedStanza(in string) (xml.StartElement, *xml.Decoder, bool) {
	const head = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`
	if !utf8.ValidString(in) {
		return xml.StartElement{}, nil, false
	}
	// First pass: the whole stream must parse, with exactly one element at
	// the top and nothing but whitespace around it.
	d := xml.NewDecoder(strings.NewReader(head + in + `</stream:stream>`))
	depth, tops := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return xml.StartElement{}, nil, false
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 {
				tops++
				if tok.Name.Space == nsStream {
					return xml.StartElement{}, nil, false
				}
			}
			seen := map[xml.Name]bool{}
			for _, a := range tok.Attr {
				if seen[a.Name] {
					return xml.StartElement{}, nil, false // duplicate attribute
				}
				seen[a.Name] = true
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 1 && len(bytes.TrimLeft(tok, " \t\r\n")) != 0 {
				return xml.StartElement{}, nil, false
			}
		case xml.ProcInst, xml.Directive:
			return xml.StartElement{}, nil, false
		case xml.Comment:
			if depth == 1 {
				return xml.StartElement{}, nil, false
			}
		}
	}
	if tops != 1 {
		return xml.StartElement{}, nil, false
	}
	// Second pass: stop after the stanza's start element.
	return firstStanza(in + `</stream:stream>`)
}

// firstStanza reads a component stream whose content is stream up to its
// first stanza's start element, and returns that and the decoder, which
// goes on after it.
func firstStanza(stream string) (xml.StartElement, *xml.Decoder, bool) {
	const head = `<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams'>`
	d := xml.NewDecoder(strings.NewReader(head + stream))
	if _, err := d.Token(); err != nil { // the stream's start
		return xml.StartElement{}, nil, false
	}
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, nil, false
		}
		if s, ok := tok.(xml.StartElement); ok {
			return s.Copy(), d, true
		}
	}
}

// recorder stands in for the writer Serve hands the handler.
type recorder struct {
	buf bytes.Buffer
	enc *xml.Encoder
}

func (r *recorder) EncodeToken(t xml.Token) error { return r.enc.EncodeToken(t) }

func (r *recorder) Encode(v any) error { return r.enc.Encode(v) }

func (r *recorder) EncodeElement(v any, start xml.StartElement) error {
	return r.enc.EncodeElement(v, start)
}

// fuzzRouter refuses some messages, so that both answers are exercised.
type fuzzRouter struct{}

func (fuzzRouter) Outbound(_ context.Context, m router.Message) error {
	switch {
	case strings.Contains(m.Body, "refuse"):
		return stanza.Error{Type: stanza.Auth, Condition: stanza.RegistrationRequired}
	case strings.Contains(m.Body, "fail"):
		return errors.New("fuzz: failure")
	}
	return nil
}
