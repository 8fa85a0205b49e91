package testenv

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/internal/callctx"
)

// Client is a minimal XMPP client for integration tests. It sends raw XML and keeps every
// stanza it receives until a Next call takes it. Its methods are safe for concurrent use.
type Client struct {
	JID jid.JID // the full JID bound by the server

	session *xmpp.Session
	done    chan struct{} // closed when the session has ended
	err     error         // why it ended; valid once done is closed

	mu     sync.Mutex
	buf    []Stanza
	notify chan struct{} // closed and replaced whenever buf grows

	closeOnce sync.Once
}

// Stanza is a received stanza.
type Stanza struct {
	Name string            // "message", "iq" or "presence"
	Attr map[string]string // attributes of the stanza element: from, to, id, type, …
	XML  string            // the whole stanza, re-serialised with minimal xmlns declarations
	Body string            // text of the message's <body/>, if any
}

// ErrorCondition returns the defined condition of an error stanza ("item-not-found",
// "forbidden", …), or "" if s carries no stanza error.
func (s Stanza) ErrorCondition() string {
	var v struct {
		Error struct {
			Inner []struct {
				XMLName xml.Name
			} `xml:",any"`
		} `xml:"error"`
	}
	if s.Decode(&v) != nil {
		return ""
	}
	for _, c := range v.Error.Inner {
		if c.XMLName.Space == stanza.NSError {
			return c.XMLName.Local
		}
	}
	return ""
}

// Decode unmarshals the stanza into v with encoding/xml.
func (s Stanza) Decode(v any) error {
	return xml.Unmarshal([]byte(s.XML), v)
}

// Login connects to addr over plain TCP (no TLS), authenticates j with SCRAM-SHA-256, SCRAM-SHA-1
// or PLAIN, binds a resource (j's resourcepart if set), sends initial presence and serves the
// session in the background until cleanup closes it.
func Login(t testing.TB, addr string, j jid.JID, password string) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := login(ctx, addr, j, password)
	if err != nil {
		t.Fatalf("testenv: login %s at %s: %v", j, addr, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Logf("testenv: close %s: %v", c.JID, err)
		}
	})
	if err := c.Send(ctx, "<presence/>"); err != nil {
		t.Fatalf("testenv: initial presence of %s: %v", c.JID, err)
	}
	return c
}

func login(ctx context.Context, addr string, j jid.JID, password string) (*Client, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	bind := xmpp.BindResource()
	if j.Resourcepart() != "" {
		bind = bindResource(j.Resourcepart())
	}
	// Prosody offers no TLS on loopback; marking the stream Secure lets mellium offer SASL on it.
	// Every call that writes gets its context through callctx.For: a
	// context ending just after a call (Login's deferred cancel) would else
	// set the connection's deadline in the past under the next write.
	negCtx, release := callctx.For(ctx)
	defer release()
	session, err := xmpp.NewSession(negCtx, j.Domain(), j, conn, xmpp.Secure, xmpp.NewNegotiator(
		func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
			return xmpp.StreamConfig{Features: []xmpp.StreamFeature{
				xmpp.SASL("", password, sasl.ScramSha256, sasl.ScramSha1, sasl.Plain),
				bind,
			}}
		}))
	if err != nil {
		conn.Close()
		return nil, err
	}
	c := &Client{
		JID:     session.LocalAddr(),
		session: session,
		done:    make(chan struct{}),
		notify:  make(chan struct{}),
	}
	go func() {
		c.err = session.Serve(xmpp.HandlerFunc(c.handle))
		conn.Close()
		close(c.done)
	}()
	return c, nil
}

// Close ends the stream and waits (briefly) for the server to end its side.
// Later calls do nothing. Next and IQ fail once the session has ended.
func (c *Client) Close() error {
	var err error
	c.closeOnce.Do(func() {
		select {
		case <-c.done:
			return // the server ended the session
		default:
		}
		err = c.session.Close()
		select {
		case <-c.done:
		case <-time.After(3 * time.Second):
			c.session.Conn().Close()
			<-c.done
		}
		// Serve flushes after each stanza it handled; one that arrived as
		// we closed (a roster push, say) finds the output closed, which is
		// our own doing, not a failure.
		if err == nil && c.err != nil && !errors.Is(c.err, net.ErrClosed) && !errors.Is(c.err, xmpp.ErrOutputStreamClosed) {
			err = c.err
		}
	})
	return err
}

// Send transmits one stanza given as raw XML, for example
// `<message to='+12015550123@sms.localhost' id='m1' type='chat'><body>hi</body></message>`.
// The stanza namespace (jabber:client) and a missing id are filled in.
// Malformed XML is reported without sending anything.
func (c *Client) Send(ctx context.Context, raw string) error {
	toks, err := parseStanza(raw)
	if err != nil {
		return err
	}
	callCtx, release := callctx.For(ctx)
	defer release()
	return c.session.Send(callCtx, &tokenSlice{toks: toks})
}

// IQ sends an IQ of type get or set given as raw XML (an id is added if missing) and waits
// for the reply with that id. A type="error" reply is returned like a result, with a nil
// error; see Stanza.ErrorCondition. The error reports a failure to send or to receive.
func (c *Client) IQ(ctx context.Context, raw string) (Stanza, error) {
	toks, err := parseStanza(raw)
	if err != nil {
		return Stanza{}, err
	}
	start := toks[0].(xml.StartElement)
	if start.Name.Local != "iq" {
		return Stanza{}, fmt.Errorf("testenv: IQ: stanza is <%s/>, not <iq/>", start.Name.Local)
	}
	id := attrValue(start.Attr, "id")
	if id == "" {
		id = randomHex(8)
		start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "id"}, Value: id})
		toks[0] = start
	}
	callCtx, release := callctx.For(ctx)
	err = c.session.Send(callCtx, &tokenSlice{toks: toks})
	release()
	if err != nil {
		return Stanza{}, err
	}
	return c.Next(ctx, func(s Stanza) bool {
		return s.Name == "iq" && s.Attr["id"] == id && (s.Attr["type"] == "result" || s.Attr["type"] == "error")
	})
}

// Next returns the oldest received stanza for which match returns true (any stanza if match is nil),
// waiting for one until ctx ends. Stanzas that do not match stay buffered for later calls.
func (c *Client) Next(ctx context.Context, match func(Stanza) bool) (Stanza, error) {
	for {
		c.mu.Lock()
		for i, s := range c.buf {
			if match == nil || match(s) {
				c.buf = append(c.buf[:i], c.buf[i+1:]...)
				c.mu.Unlock()
				return s, nil
			}
		}
		notify := c.notify
		c.mu.Unlock()

		select {
		case <-notify:
		case <-c.done:
			// The session may have delivered a last matching stanza before ending.
			c.mu.Lock()
			grown := c.notify != notify
			c.mu.Unlock()
			if !grown {
				return Stanza{}, fmt.Errorf("testenv: session of %s ended: %v", c.JID, c.err)
			}
		case <-ctx.Done():
			return Stanza{}, fmt.Errorf("testenv: %s waiting for a stanza: %w", c.JID, ctx.Err())
		}
	}
}

// Pending returns the stanzas received and not yet taken by Next, oldest first.
func (c *Client) Pending() []Stanza {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Stanza(nil), c.buf...)
}

func (c *Client) handle(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	// mellium blanks a from equal to our bare JID (RFC 6120 §8.1.2.1); put it back so that
	// tests see what the server sent, e.g. on carbons and roster pushes.
	for i, a := range start.Attr {
		if a.Name.Space == "" && a.Name.Local == "from" && a.Value == "" {
			start.Attr[i].Value = c.JID.Bare().String()
		}
	}
	s, err := readStanza(r, *start)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.buf = append(c.buf, s)
	close(c.notify)
	c.notify = make(chan struct{})
	c.mu.Unlock()
	// Returning without writing makes mellium answer an unanswered get/set IQ with
	// service-unavailable, which is what a client that knows nothing would say.
	return nil
}

// readStanza serialises start and the rest of its element from r.
func readStanza(r xml.TokenReader, start xml.StartElement) (Stanza, error) {
	s := Stanza{Name: start.Name.Local, Attr: make(map[string]string, len(start.Attr))}
	for _, a := range start.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local != "xmlns":
			s.Attr[a.Name.Local] = a.Value
		case a.Name.Space == xmlNS:
			s.Attr["xml:"+a.Name.Local] = a.Value
		}
	}
	var w xmlWriter
	w.start(start)
	var body strings.Builder
	inBody := false
	for {
		tok, err := r.Token()
		if tok != nil {
			switch t := tok.(type) {
			case xml.StartElement:
				if len(w.stack) == 1 && t.Name.Local == "body" && t.Name.Space == start.Name.Space && s.Name == "message" {
					inBody = true
				}
				w.start(t)
			case xml.EndElement:
				w.end()
				if len(w.stack) == 1 {
					inBody = false
				}
			case xml.CharData:
				if inBody {
					body.Write(t)
				}
				xml.EscapeText(&w.b, t)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return Stanza{}, err
		}
	}
	for len(w.stack) > 0 {
		w.end()
	}
	s.XML = w.b.String()
	s.Body = body.String()
	return s, nil
}

const xmlNS = "http://www.w3.org/XML/1998/namespace"

// xmlWriter writes elements declaring the default namespace only where it changes.
type xmlWriter struct {
	b     strings.Builder
	stack []xml.StartElement // open elements, Name.Space resolved
}

func (w *xmlWriter) start(t xml.StartElement) {
	parentNS := ""
	if n := len(w.stack); n > 0 {
		parentNS = w.stack[n-1].Name.Space
	}
	w.b.WriteString("<" + t.Name.Local)
	if t.Name.Space != parentNS {
		w.attr("xmlns", t.Name.Space)
	}
	prefixes := 0
	for _, a := range t.Attr {
		switch {
		case a.Name.Space == "" && a.Name.Local == "xmlns", a.Name.Space == "xmlns":
			// Declarations; names are already resolved.
		case a.Name.Space == "":
			w.attr(a.Name.Local, a.Value)
		case a.Name.Space == xmlNS:
			w.attr("xml:"+a.Name.Local, a.Value)
		default:
			prefixes++
			p := fmt.Sprintf("ns%d", prefixes)
			w.attr("xmlns:"+p, a.Name.Space)
			w.attr(p+":"+a.Name.Local, a.Value)
		}
	}
	w.b.WriteByte('>')
	w.stack = append(w.stack, t)
}

func (w *xmlWriter) attr(name, value string) {
	w.b.WriteString(" " + name + "='")
	xml.EscapeText(&w.b, []byte(value))
	w.b.WriteByte('\'')
}

func (w *xmlWriter) end() {
	n := len(w.stack) - 1
	if n < 0 {
		return
	}
	w.b.WriteString("</" + w.stack[n].Name.Local + ">")
	w.stack = w.stack[:n]
}

// parseStanza checks that raw is exactly one well-formed element and returns its tokens.
func parseStanza(raw string) ([]xml.Token, error) {
	d := xml.NewDecoder(strings.NewReader(raw))
	var toks []xml.Token
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("testenv: stanza %q: %w", raw, err)
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 && len(toks) > 0 {
				return nil, fmt.Errorf("testenv: stanza %q: more than one element", raw)
			}
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 {
				if strings.TrimSpace(string(tok.(xml.CharData))) != "" {
					return nil, fmt.Errorf("testenv: stanza %q: text outside the element", raw)
				}
				continue
			}
		case xml.Comment, xml.ProcInst, xml.Directive:
			continue
		}
		tok = xml.CopyToken(tok)
		if start, ok := tok.(xml.StartElement); ok && start.Name.Space != "" {
			// The name carries the namespace; an xmlns attribute too would be written twice.
			attrs := start.Attr[:0]
			for _, a := range start.Attr {
				if a.Name.Space != "" || a.Name.Local != "xmlns" {
					attrs = append(attrs, a)
				}
			}
			start.Attr = attrs
			tok = start
		}
		toks = append(toks, tok)
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("testenv: stanza %q: no element", raw)
	}
	return toks, nil
}

// tokenSlice is an xml.TokenReader over parsed tokens.
type tokenSlice struct{ toks []xml.Token }

func (r *tokenSlice) Token() (xml.Token, error) {
	if len(r.toks) == 0 {
		return nil, io.EOF
	}
	t := r.toks[0]
	r.toks = r.toks[1:]
	return t, nil
}

func attrValue(attrs []xml.Attr, local string) string {
	for _, a := range attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}

// bindResource is the client side of RFC 6120 resource binding asking for resource.
// mellium v0.22.0's BindResource sends an empty <resource/> instead of the requested one.
func bindResource(resource string) xmpp.StreamFeature {
	f := xmpp.BindResource()
	f.Negotiate = func(ctx context.Context, session *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, error) {
		id := randomHex(8)
		w := session.TokenWriter()
		defer w.Close()
		req := fmt.Sprintf("<iq type='set' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>",
			id, escapeText(resource))
		toks, err := parseStanza(req)
		if err != nil {
			return 0, nil, err
		}
		start := toks[0].(xml.StartElement)
		start.Name.Space = stanza.NSClient
		toks[0], toks[len(toks)-1] = start, start.End()
		if _, err := xmlstream.Copy(w, &tokenSlice{toks: toks}); err != nil {
			return 0, nil, err
		}
		if err := w.Flush(); err != nil {
			return 0, nil, err
		}

		r := session.TokenReader()
		defer r.Close()
		d := xml.NewTokenDecoder(r)
		var resp struct {
			XMLName xml.Name
			ID      string `xml:"id,attr"`
			Type    string `xml:"type,attr"`
			JID     string `xml:"urn:ietf:params:xml:ns:xmpp-bind bind>jid"`
			Error   struct {
				Inner []struct{ XMLName xml.Name } `xml:",any"`
			} `xml:"error"`
		}
		for {
			tok, err := d.Token()
			if err != nil {
				return 0, nil, err
			}
			if start, ok := tok.(xml.StartElement); ok {
				if err := d.DecodeElement(&resp, &start); err != nil {
					return 0, nil, err
				}
				break
			}
		}
		switch {
		case resp.XMLName.Local != "iq" || resp.ID != id:
			return 0, nil, fmt.Errorf("testenv: bind: unexpected <%s id=%q>", resp.XMLName.Local, resp.ID)
		case resp.Type == "error":
			return 0, nil, fmt.Errorf("testenv: bind %q: error %v", resource, resp.Error.Inner)
		}
		j, err := jid.Parse(resp.JID)
		if err != nil {
			return 0, nil, fmt.Errorf("testenv: bind: %w", err)
		}
		session.UpdateAddr(j)
		return xmpp.Ready, nil, nil
	}
	return f
}

func escapeText(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
