package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/version"

	"switchboard/internal/jidcache"
	"switchboard/roster/number"
	"switchboard/router"
	"switchboard/xep/adhoc"
)

// Namespaces the component speaks.
const (
	nsDiscoInfo  = "http://jabber.org/protocol/disco#info"
	nsDiscoItems = "http://jabber.org/protocol/disco#items"
	nsPing       = "urn:xmpp:ping"
	nsLast       = "jabber:iq:last" // XEP-0012: the server's uptime
	nsReceipts   = "urn:xmpp:receipts"
	nsHints      = "urn:xmpp:hints"
)

// features lists what the component domain implements, for disco#info.
var features = []string{nsDiscoInfo, nsDiscoItems, nsPing, version.NS, nsReceipts, adhoc.NS, nsRegister, nsMAM}

// numberFeatures lists what a number JID implements: besides receipts,
// what the gateway writes out as SMS text (a reaction, a correction, a
// reply, a link), which clients offer only to a contact that advertises it
// (Dino's reactions, XEP-0444 §2's MUST).
var numberFeatures = []string{nsDiscoInfo, nsReceipts, nsReactions, nsCorrection, nsReply, nsOOB}

// inStanza is any stanza as read from the stream. JIDs are kept as strings
// and parsed by the handlers, so a malformed one gets a stanza error instead
// of ending the session. readStanza fills it; the tags say what it reads,
// as encoding/xml would (TestReadStanzaAsDecode holds it to them).
type inStanza struct {
	XMLName xml.Name
	// The attributes come from the start element (setAttrs), not from the
	// decoder, which would copy each one and read x:from as from.
	From, To, ID, Type, Lang string    `xml:"-"`
	Body                     []body    `xml:"body"`
	Request                  *struct{} `xml:"urn:xmpp:receipts request"`
	Payload                  []element `xml:",any"`
}

// setAttrs sets s's attributes from its start element.
func (s *inStanza) setAttrs(attrs []xml.Attr) {
	s.From, s.To, s.ID, s.Type = stanzaAttrs(attrs)
	s.Lang = xmlLang(attrs)
}

// xmlNS is the namespace of the xml: prefix.
const xmlNS = "http://www.w3.org/XML/1998/namespace"

// xmlLang returns an element's xml:lang among attrs, or "".
func xmlLang(attrs []xml.Attr) string {
	lang := ""
	for _, a := range attrs {
		if a.Name.Local == "lang" && (a.Name.Space == "xml" || a.Name.Space == xmlNS) {
			lang = a.Value
		}
	}
	return lang
}

// stanzaAttrs returns a stanza's from, to, id and type: the attributes
// without a namespace. (encoding/xml would fill a field tagged "from,attr"
// from the last attribute of that local name in any namespace, so a sender
// could add x:from or x:to and be taken for someone else, or make the
// component answer from another domain.)
func stanzaAttrs(attrs []xml.Attr) (from, to, id, typ string) {
	for _, a := range attrs {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "from":
			from = a.Value
		case "to":
			to = a.Value
		case "id":
			id = a.Value
		case "type":
			typ = a.Value
		}
	}
	return from, to, id, typ
}

type body struct {
	XMLName xml.Name
	Lang    string `xml:"http://www.w3.org/XML/1998/namespace lang,attr"`
	Text    string `xml:",chardata"`
	// Markup is child elements, which a body may not hold (RFC 6121
	// 5.2.3: no mixed content); read only to refuse them.
	Markup []struct {
		XMLName xml.Name
	} `xml:",any"`
}

// element is an IQ payload or other child, kept as tokens so it can be
// decoded into the type its namespace calls for. (innerxml would be empty:
// the stream is read through a token reader, not from bytes.)
type element struct {
	XMLName xml.Name
	Attr    []xml.Attr
	toks    []xml.Token
}

// maxElementTokens bounds what one child element may hold.
const maxElementTokens = 100_000

// errTooLarge is a child element of more than maxElementTokens tokens.
var errTooLarge = errors.New("component: element too large")

// UnmarshalXML records the element's tokens (see read), for encoding/xml.
func (e *element) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	return e.read(d, start)
}

// read records the tokens of the element that start opened, read from r up
// to its end element. At maxElementTokens it stops with errTooLarge, reading
// no further: mellium skips the rest of the stanza after the handler
// returns.
func (e *element) read(r xml.TokenReader, start xml.StartElement) error {
	e.XMLName, e.Attr = start.Name, start.Attr
	e.toks = append(e.toks[:0], start.Copy())
	for depth := 1; depth > 0; {
		if len(e.toks) >= maxElementTokens {
			e.toks = nil
			return errTooLarge
		}
		t, err := r.Token()
		if err != nil {
			return noEOF(err)
		}
		switch t.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		}
		e.toks = append(e.toks, xml.CopyToken(t))
	}
	return nil
}

// noEOF turns the end of the tokens inside an element into an error.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readStanza reads into s the children of the stanza that start opened:
// the tokens r gives, up to the stanza's end element, which the stream's
// decoder has checked for nesting. It fills s as encoding/xml's Decode
// would from inStanza's tags, without a second decoder over the stream's
// tokens and without reflection: a body (any element named body), a
// receipt request, the rest as payload elements. Attributes are setAttrs'.
func readStanza(start xml.StartElement, r xml.TokenReader, s *inStanza) error {
	s.XMLName = start.Name
	for {
		t, err := r.Token()
		if err != nil {
			return noEOF(err)
		}
		switch t := t.(type) {
		case xml.EndElement:
			s.ownBodies()
			return nil
		case xml.StartElement:
			switch {
			case t.Name.Local == "body":
				b, err := readBody(t, r)
				if err != nil {
					return err
				}
				s.Body = append(s.Body, b)
			case t.Name.Space == nsReceipts && t.Name.Local == "request":
				s.Request = &struct{}{}
				if err := noEOF(xmlstream.Skip(r)); err != nil {
					return err
				}
			default:
				s.Payload = append(s.Payload, element{})
				if err := s.Payload[len(s.Payload)-1].read(r, t); err != nil {
					return err
				}
			}
		}
	}
}

// readBody reads a body whose start element is start: its language, its
// text (the character data directly inside it) and the names of any
// elements in it.
func readBody(start xml.StartElement, r xml.TokenReader) (body, error) {
	var (
		b    body
		text []byte
	)
	b.XMLName, b.Lang = start.Name, xmlLang(start.Attr)
	for {
		t, err := r.Token()
		if err != nil {
			return b, noEOF(err)
		}
		switch t := t.(type) {
		case xml.CharData:
			text = append(text, t...)
		case xml.StartElement:
			b.Markup = append(b.Markup, struct{ XMLName xml.Name }{t.Name})
			if err := noEOF(xmlstream.Skip(r)); err != nil {
				return b, err
			}
		case xml.EndElement:
			b.Text = string(text)
			return b, nil
		}
	}
}

// text picks the body in the stanza's language (RFC 6121 5.2.3: one
// without xml:lang, or with the stanza's), or else the first one.
// ownBodies drops the bodies that are not a message's: an element named
// body in another namespace is some extension's, no text of the message.
// (An IQ's, the one child it must have, is kept for the count.)
func (s *inStanza) ownBodies() {
	if s.XMLName.Local != "message" {
		return
	}
	s.Body = slices.DeleteFunc(s.Body, func(b body) bool {
		ns := b.XMLName.Space
		return ns != s.XMLName.Space && ns != nsClient && ns != ""
	})
	if len(s.Body) == 0 {
		s.Body = nil
	}
}

func (s *inStanza) text() string {
	for _, b := range s.Body {
		if b.Lang == "" || strings.EqualFold(b.Lang, s.Lang) {
			return b.Text
		}
	}
	if len(s.Body) > 0 {
		return s.Body[0].Text
	}
	return ""
}

// textElem is <name attr…>s</name>.
func textElem(name xml.Name, s string, attr ...xml.Attr) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(s)), xml.StartElement{Name: name, Attr: attr})
}

func errText(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	return stanza.Error{Type: typ, Condition: cond, Text: map[string]string{"": text}}
}

// handle is the session's only handler. It never returns an error for a
// problem with one stanza: mellium would end the session.
func (c *Component) handle(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if cc := c.capped.Load(); cc != nil {
		defer cc.stanzaDone()
	}
	if start.Name.Local == "iq" {
		if _, _, _, typ := stanzaAttrs(start.Attr); typ == "result" || typ == "error" {
			// An answer to a request of the component's own, here or
			// in another instance (answers.go).
			if err := c.handleAnswer(t, *start); err != nil {
				c.log.Warn().Err(err).Msg("unreadable answer")
			}
			return nil
		}
	}
	var s inStanza
	if err := readStanza(*start, t, &s); err != nil {
		c.log.Warn().Err(err).Str("element", start.Name.Local).Msg("unreadable stanza")
		if errors.Is(err, errTooLarge) {
			return c.refuseTooLarge(t, start)
		}
		// The stream itself is broken; the next read reports it.
		return nil
	}
	s.setAttrs(start.Attr)
	c.stanzas.Add(1)
	defer func() {
		if r := recover(); r != nil {
			c.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Str("element", s.XMLName.Local).Msg("handler failed")
			if s.XMLName.Local == "iq" && (s.Type == "get" || s.Type == "set") {
				_ = c.iqError(t, &s, errText(stanza.Wait, stanza.InternalServerError, "The gateway failed to handle this request."))
			}
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	switch s.XMLName.Local {
	case "message":
		c.handleMessage(ctx, &s)
	case "iq":
		if err := c.handleIQ(ctx, t, &s); err != nil {
			return err // only write errors on the stream end the session
		}
	case "presence":
		c.handlePresence(ctx, &s)
	}
	return nil
}

// refuseTooLarge answers an IQ request with a child of more than
// maxElementTokens tokens: every get and set gets an answer (RFC 6120
// §8.2.3), here policy-violation (§8.3.3.12). Other stanzas are dropped.
func (c *Component) refuseTooLarge(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	s := inStanza{XMLName: start.Name}
	s.setAttrs(start.Attr)
	if s.XMLName.Local != "iq" || (s.Type != "get" && s.Type != "set") {
		return nil
	}
	if _, err := jid.Parse(s.To); err != nil {
		s.To = c.cfg.JID.String()
	}
	return c.iqError(t, &s, errText(stanza.Modify, stanza.PolicyViolation,
		fmt.Sprintf("The request is too large: an element may hold at most %d XML tokens.", maxElementTokens)))
}

func (c *Component) handleMessage(ctx context.Context, s *inStanza) {
	if c.recordPrivilege(s) {
		return
	}
	from, err := senders.Parse(s.From)
	if err != nil {
		c.log.Warn().Str("from", s.From).Msg("message with an unreadable sender dropped")
		return
	}
	// Never answer an error with an error (RFC 6120 8.3.1), even when its
	// address is malformed.
	switch s.Type {
	case "error":
		to, err := jid.Parse(s.To)
		if err == nil && to.Localpart() != "" && !c.router.Bounce(ctx, from, to, s.ID, payloadXML(s)) {
			c.log.Debug().Str("from", from.String()).Str("id", s.ID).Msg("message error for no relayed message")
		}
		return
	case "headline":
		// No reply is expected to a headline (RFC 6121 5.2.2): a server's
		// announcement or an event notification is never answered. One a
		// user of the gateway wrote, with a body, is an alert to a phone:
		// it goes as SMS (or over XMPP), like a normal message.
		if from.Localpart() == "" || s.text() == "" || !c.router.Served(from) {
			return
		}
	case "groupchat":
		// From a user, an answer (a room's messages, to a number that
		// is no occupant, get none).
		if s.text() != "" && c.router.Served(from) {
			at := c.cfg.JID // from the address written to, when it is one
			if to, err := jid.Parse(s.To); err == nil {
				at = to
			}
			c.replyError(ctx, at, from, s.ID, errText(stanza.Cancel, stanza.ServiceUnavailable,
				"A phone number is not a group chat: send it a chat message."))
		}
		return
	}
	to, err := jidcache.Parse(s.To)
	if err != nil {
		c.refuseAddress(ctx, s, from)
		return
	}
	if to.Localpart() == "" {
		for _, e := range s.Payload {
			if e.XMLName.Space == nsRosterX && e.XMLName.Local == "x" && c.cfg.AddressBook != nil && c.router.Served(from) {
				if err := c.handleRosterX(ctx, from, e); err != nil {
					c.replyError(ctx, to, from, s.ID, c.asStanzaError(err))
				}
				return
			}
		}
		if s.text() != "" {
			c.replyError(ctx, to, from, s.ID, errText(stanza.Cancel, stanza.ServiceUnavailable,
				"This is an SMS gateway: write to a phone number, e.g. +12015550123@"+c.cfg.JID.Domainpart()+"."))
		}
		return
	}
	react := reactionOf(s)
	m := router.Message{
		From:        from,
		To:          to,
		ID:          s.ID,
		Body:        s.text(),
		SMSText:     smsText(s, react),
		Reaction:    react,
		Payload:     payloadXML(s),
		Rich:        rich(s),
		WantReceipt: s.Request != nil,
	}
	e, bad := unsendable(s)
	if id, ok := receiptOf(s); ok && s.text() == "" && c.router.Receipt(ctx, m, id, !bad) {
		return
	}
	if bad && c.router.Served(from) {
		// One without a body (an OMEMO key exchange) is not answered:
		// the user wrote nothing. A body of markup alone was written.
		if s.text() != "" || bodyMarkup(s) {
			c.replyError(ctx, to, from, s.ID, e)
		}
		return
	}
	if err := c.router.Outbound(ctx, m); err != nil {
		var se stanza.Error
		if !errors.As(err, &se) {
			c.log.Error().Err(err).Msg("routing failed")
			se = errText(stanza.Wait, stanza.InternalServerError, "The gateway could not take the message; send it again later.")
		}
		c.replyError(ctx, to, from, s.ID, se)
	}
}

// refuseAddress answers a message to an address that does not parse, from
// the component's domain. A number written in other digits than 0 to 9
// (Arabic-Indic, Persian: JIDs the rules of RFC 7622 refuse for their
// direction, and servers' older rules take) is told how to write it, from
// the address as written, so that the client shows the error in the
// conversation it came from.
func (c *Component) refuseAddress(ctx context.Context, s *inStanza, from jid.JID) {
	local, domain, ok := strings.Cut(s.To, "@")
	if !ok || domain != c.cfg.JID.Domainpart() || !foreignDigits(local) {
		c.replyError(ctx, c.cfg.JID, from, s.ID, errText(stanza.Modify, stanza.JIDMalformed, fmt.Sprintf("%q is not a valid address.", s.To)))
		return
	}
	e := errText(stanza.Modify, stanza.JIDMalformed, fmt.Sprintf(
		"Write the phone number with the digits 0 to 9, e.g. +12015550123@%s.", c.cfg.JID.Domainpart()))
	msg := xml.StartElement{Name: xml.Name{Local: "message"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "from"}, Value: s.To},
		{Name: xml.Name{Local: "to"}, Value: from.String()},
		{Name: xml.Name{Local: "id"}, Value: s.ID},
		{Name: xml.Name{Local: "type"}, Value: "error"},
	}}
	if err := c.send(ctx, xmlstream.Wrap(e.TokenReader(), msg)); err != nil {
		c.log.Warn().Err(err).Msg("sending stanza error failed")
	}
}

// foreignDigits tells whether local is a number written in other digits
// than 0 to 9: digits and an optional leading "+", at most 32 bytes, at
// least one digit of another script.
func foreignDigits(local string) bool {
	n := strings.TrimPrefix(local, "+")
	if n == "" || len(local) > 32 {
		return false
	}
	foreign := false
	for _, r := range n {
		if !unicode.IsDigit(r) {
			return false
		}
		foreign = foreign || r > '9'
	}
	return foreign
}

// senders is parseSender through a cache: a message's sender is parsed
// for every message (see package jidcache).
var senders = jidcache.New(8192, parseSender)

// parseSender parses a stanza's sender, an address the component answers.
// mellium normalises some addresses into forms that normalise again into
// others, or not at all (".." into ".", "0.." into "0." into "0"): a
// stanza from one gets no answer, for the answer would go to another
// address than the sender's.
func parseSender(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return j, err
	}
	// Most senders are written normalised: then j parses from its own
	// form, since it came from it.
	n := j.String()
	if n == s {
		return j, nil
	}
	if k, err := jid.Parse(n); err != nil || !k.Equal(j) {
		return jid.JID{}, fmt.Errorf("component: sender %q is not a stable address (%q once normalised)", s, j)
	}
	return j, nil
}

func (c *Component) replyError(ctx context.Context, from, to jid.JID, id string, e stanza.Error) {
	if err := c.SendError(ctx, from, to, id, e); err != nil {
		c.log.Warn().Err(err).Msg("sending stanza error failed")
	}
}

func (c *Component) handleIQ(ctx context.Context, t xmlstream.TokenReadEncoder, s *inStanza) error {
	if s.Type != "get" && s.Type != "set" {
		return nil // results and errors for IQs nobody waits for
	}
	to, err := jid.Parse(s.To)
	if err != nil {
		bad := s.To
		s.To = c.cfg.JID.String()
		return c.iqError(t, s, errText(stanza.Modify, stanza.JIDMalformed, fmt.Sprintf("%q is not a valid address.", bad)))
	}
	if _, err := jid.Parse(s.From); err != nil {
		// No one to answer; the XMPP server would not route it.
		c.log.Warn().Str("from", s.From).Msg("IQ with an unreadable sender dropped")
		return c.iqError(t, s, errText(stanza.Modify, stanza.JIDMalformed, "The sender's address is not valid."))
	}
	children := len(s.Payload) + len(s.Body)
	if s.Request != nil {
		children++
	}
	if children != 1 {
		return c.iqError(t, s, errText(stanza.Modify, stanza.BadRequest, "An IQ request must have exactly one child element."))
	}
	if len(s.Payload) == 0 {
		// The child was decoded as a <body/> or a receipt <request/>.
		return c.iqError(t, s, errText(stanza.Cancel, stanza.ServiceUnavailable, "The gateway does not serve this request."))
	}
	p := s.Payload[0].XMLName
	from, _ := jid.Parse(s.From)
	node := nodeOf(s.Payload[0])
	toComponent := to.Localpart() == ""
	switch {
	case s.Type == "get" && p.Space == nsDiscoInfo && p.Local == "query" && node != "" && toComponent:
		if r, ok := c.commandInfoReply(from, node, s.Payload[0]); ok {
			return c.iqResult(t, s, r)
		}
		return c.iqError(t, s, errText(stanza.Cancel, stanza.ItemNotFound, fmt.Sprintf("There is no node %q here.", node)))
	case s.Type == "get" && p.Space == nsDiscoInfo && p.Local == "query":
		r, err := c.discoInfo(ctx, from, to, s.Payload[0])
		if err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
		return c.iqResult(t, s, r)
	case c.cfg.AddressBook != nil && toComponent && ((s.Type == "get" && p.Space == nsQuicksy && p.Local == "phone-book") ||
		(s.Type == "set" && p.Space == nsRosterX && p.Local == "x") || (p.Space == nsGateway && p.Local == "query")):
		if !c.router.Served(from) {
			return c.iqError(t, s, errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves may use its address book."))
		}
		var (
			r   xml.TokenReader
			err error
		)
		switch p.Space {
		case nsQuicksy:
			r, err = c.quicksySync(ctx, from, s.Payload[0])
		case nsGateway:
			r, err = c.gatewayQuery(ctx, from, s.Type, s.Payload[0])
		case nsRosterX:
			err = c.handleRosterX(ctx, from, s.Payload[0])
		}
		if err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
		return c.iqResult(t, s, r)
	case s.Type == "get" && p.Space == nsVCardTmp && p.Local == "vCard" && !toComponent:
		r, err := c.vcardOf(ctx, from, to)
		if err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
		return c.iqResult(t, s, r)
	case s.Type == "get" && p.Space == nsDiscoItems && p.Local == "query" && node == adhoc.NS && toComponent:
		return c.iqResult(t, s, c.commandItems(from, s.Payload[0]))
	case s.Type == "get" && p.Space == nsDiscoItems && p.Local == "query":
		// No items anywhere; an address that is no number is an error, as
		// disco#info says.
		if l := to.Localpart(); l != "" && !number.IsShortCode(l) {
			if _, err := number.FromJID(to, c.cfg.DefaultRegion); err != nil {
				return c.iqError(t, s, c.notANumber(to))
			}
		}
		return c.iqResult(t, s, xmlstream.Wrap(nil, queryStart(nsDiscoItems, s.Payload[0])))
	case s.Type == "set" && p.Space == adhoc.NS && p.Local == "command" && toComponent:
		var req adhoc.Command
		if err := s.Payload[0].decode(&req); err != nil {
			return c.iqError(t, s, errText(stanza.Modify, stanza.BadRequest, "The command request could not be read: "+err.Error()))
		}
		if c.cfg.AddressBook != nil && fetchesURL(&req) && c.router.Served(from) {
			// A download may take seconds: off the stream's one reader.
			// (Others are refused by handleCommand, without taking one of
			// the few fetch slots.)
			if err := c.commandAside(from, *s, &req); err != nil {
				return c.iqError(t, s, c.asStanzaError(err))
			}
			return nil
		}
		resp, err := c.handleCommand(ctx, from, &req)
		if err != nil {
			return c.iqFail(t, s, err)
		}
		r, err := marshalTokens(resp)
		if err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
		return c.iqResult(t, s, r)
	case s.Type == "set" && p.Space == nsMAM && p.Local == "query" && toComponent:
		return c.handleMAM(ctx, t, s, from, s.Payload[0])
	case s.Type == "get" && p.Space == nsMAM && p.Local == "query" && toComponent:
		return c.handleMAMForm(t, s, from)
	case s.Type == "get" && p.Space == nsMAM && p.Local == "metadata" && toComponent:
		return c.handleMAMMetadata(ctx, t, s, from)
	case p.Space == nsRegister && p.Local == "query" && toComponent:
		var q registerQuery
		if err := s.Payload[0].decode(&q); err != nil {
			return c.iqError(t, s, errText(stanza.Modify, stanza.BadRequest, "The registration could not be read: "+err.Error()))
		}
		if s.Type == "get" {
			resp, err := c.registerGet(ctx, from)
			if err != nil {
				return c.iqError(t, s, c.asStanzaError(err))
			}
			r, err := marshalTokens(resp)
			if err != nil {
				return c.iqError(t, s, c.asStanzaError(err))
			}
			return c.iqResult(t, s, r)
		}
		if err := c.registerSet(ctx, from, &q); err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
		return c.iqResult(t, s, nil)
	case s.Type == "get" && p.Space == nsPing && p.Local == "ping":
		return c.iqResult(t, s, nil)
	case s.Type == "get" && p.Space == version.NS && p.Local == "query" && to.Localpart() == "":
		return c.iqResult(t, s, version.Query{Name: "Switchboard", Version: c.cfg.Version}.TokenReader())
	}
	return c.iqError(t, s, errText(stanza.Cancel, stanza.ServiceUnavailable,
		fmt.Sprintf("The gateway does not serve %s %q requests here.", s.Type, p.Space)))
}

// asStanzaError passes stanza errors through and hides any other error
// behind internal-server-error, logging it.
func (c *Component) asStanzaError(err error) stanza.Error {
	var se stanza.Error
	if errors.As(err, &se) {
		return se
	}
	c.log.Error().Err(err).Msg("request failed")
	return errText(stanza.Wait, stanza.InternalServerError, "The gateway failed to handle this request; try again later.")
}

func nodeOf(q element) string {
	for _, a := range q.Attr {
		if a.Name.Local == "node" && a.Name.Space == "" {
			return a.Value
		}
	}
	return ""
}

// queryStart echoes the node attribute of a disco query.
func queryStart(ns string, q element) xml.StartElement {
	start := xml.StartElement{Name: xml.Name{Space: ns, Local: "query"}}
	for _, a := range q.Attr {
		if a.Name.Local == "node" && a.Name.Space == "" {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: "node"}, Value: a.Value})
		}
	}
	return start
}

// discoInfo answers for the component, or for a number JID: client/phone
// when the number is registered and in the requester's address book,
// client/sms otherwise (registration is not revealed beyond the book), and
// for a short code. A JID whose localpart is neither is jid-malformed, as
// a message to it is.
// notANumber is the error for an address on the component whose localpart
// is neither a phone number nor a short code.
func (c *Component) notANumber(to jid.JID) stanza.Error {
	return errText(stanza.Modify, stanza.JIDMalformed,
		fmt.Sprintf("%q is not a phone number: write it in international form, e.g. +12015550123@%s.", to.Localpart(), c.cfg.JID.Domainpart()))
}

func (c *Component) discoInfo(ctx context.Context, from, to jid.JID, q element) (xml.TokenReader, error) {
	var (
		id   info.Identity
		feat []string
	)
	if to.Localpart() == "" {
		id, feat = info.Identity{Category: "gateway", Type: "sms", Name: "Switchboard SMS gateway"}, features
		if c.cfg.AddressBook != nil {
			feat = append(slices.Clone(feat), nsGateway, nsQuicksy, nsRosterX)
		}
	} else if number.IsShortCode(to.Localpart()) {
		// A service's sender, which messages come from and which may be
		// answered (Limits.ShortCodeReply): no one's number, no vCard.
		id, feat = info.Identity{Category: "client", Type: "sms", Name: to.Localpart()}, numberFeatures
	} else {
		n, err := number.FromJID(to, c.cfg.DefaultRegion)
		if err != nil {
			return nil, c.notANumber(to)
		}
		id, feat = info.Identity{Category: "client", Type: "sms", Name: to.Localpart()}, numberFeatures
		if c.cfg.AddressBook != nil {
			if rel, err := c.cfg.AddressBook.Relation(ctx, from, n.String()); err == nil && rel.OnXMPP {
				id.Type = "phone"
			}
			feat = append(slices.Clone(feat), nsVCardTmp)
		}
	}
	readers := []xml.TokenReader{id.TokenReader()}
	for _, f := range feat {
		readers = append(readers, info.Feature{Var: f}.TokenReader())
	}
	return xmlstream.Wrap(xmlstream.MultiReader(readers...), queryStart(nsDiscoInfo, q)), nil
}

func (c *Component) iqResult(t xmlstream.TokenReadEncoder, s *inStanza, payload xml.TokenReader) error {
	_, err := xmlstream.Copy(t, xmlstream.Wrap(payload, iqStart(s, "result")))
	return err
}

func (c *Component) iqError(t xmlstream.TokenReadEncoder, s *inStanza, e stanza.Error) error {
	_, err := xmlstream.Copy(t, xmlstream.Wrap(e.TokenReader(), iqStart(s, "error")))
	return err
}

// iqFail answers s with err, as errorTokens renders it.
func (c *Component) iqFail(t xmlstream.TokenReadEncoder, s *inStanza, err error) error {
	_, werr := xmlstream.Copy(t, xmlstream.Wrap(c.errorTokens(err), iqStart(s, "error")))
	return werr
}

// errorTokens is the <error/> for err: an ad-hoc command's with its
// specific condition (XEP-0050 §4.6), else as asStanzaError has it.
func (c *Component) errorTokens(err error) xml.TokenReader {
	var f adhoc.Failure
	if errors.As(err, &f) {
		return f.TokenReader()
	}
	return c.asStanzaError(err).TokenReader()
}

// iqStart answers s: from and to swapped (attributes copied as strings, so
// an unparseable address is echoed rather than fatal), same id.
func iqStart(s *inStanza, typ string) xml.StartElement {
	attr := []xml.Attr{
		{Name: xml.Name{Local: "type"}, Value: typ},
		{Name: xml.Name{Local: "id"}, Value: s.ID},
	}
	if s.From != "" {
		attr = append(attr, xml.Attr{Name: xml.Name{Local: "to"}, Value: s.From})
	}
	if s.To != "" {
		attr = append(attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: s.To})
	}
	return xml.StartElement{Name: xml.Name{Local: "iq"}, Attr: attr}
}
