package component

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"

	"mellium.im/xmpp/stanza"

	"switchboard/router"
)

// Namespaces of content that changes how a message reads as SMS.
const (
	nsOOB        = "jabber:x:oob"                          // XEP-0066 (and XEP-0363 uploads)
	nsGeoloc     = "http://jabber.org/protocol/geoloc"     // XEP-0080
	nsCorrection = "urn:xmpp:message-correct:0"            // XEP-0308
	nsRosterX    = "http://jabber.org/protocol/rosterx"    // XEP-0144, a shared contact
	nsChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsMarkers    = "urn:xmpp:chat-markers:0"               // XEP-0333
	nsReactions  = "urn:xmpp:reactions:0"                  // XEP-0444
	nsReply      = "urn:xmpp:reply:0"                      // XEP-0461
	nsFallback   = "urn:xmpp:fallback:0"                   // XEP-0428
	nsSID        = "urn:xmpp:sid:0"                        // XEP-0359 origin-id
)

// Namespaces of content an SMS cannot carry (see unsendable).
const (
	nsOMEMOLegacy = "eu.siacs.conversations.axolotl" // OMEMO as Conversations, Gajim and Dino send it
	nsOMEMO1      = "urn:xmpp:omemo:1"
	nsOMEMO2      = "urn:xmpp:omemo:2"   // XEP-0384
	nsOpenPGP     = "urn:xmpp:openpgp:0" // XEP-0373
	nsLegacyPGP   = "jabber:x:encrypted" // XEP-0027
	nsEME         = "urn:xmpp:eme:0"     // XEP-0380: how the message is encrypted
	nsRetract0    = "urn:xmpp:message-retract:0"
	nsRetract1    = "urn:xmpp:message-retract:1" // XEP-0424
	nsFasten      = "urn:xmpp:fasten:0"          // XEP-0422, how version 0 of retraction applies
)

// unsendable returns the error for a message the gateway must not pass on,
// and whether there is one. Its body is then a fallback written for XMPP
// clients that do not understand it — "I sent you an OMEMO encrypted
// message but your client doesn't seem to support that", "This person
// attempted to retract a previous message" — which as an SMS would reach a
// phone as if the user had written it:
//   - an end-to-end encrypted message: a phone has no key, nor does the
//     number's JID, which no client can encrypt for, whichever way the
//     message would go;
//   - a retraction: an SMS cannot be taken back.
func unsendable(s *inStanza) (stanza.Error, bool) {
	if bodyMarkup(s) {
		return markupErr, true
	}
	if strings.HasPrefix(s.text(), "?OTR") {
		// Off-the-Record (no element of its own): a query ("?OTRv23?")
		// or an encrypted message ("?OTR:").
		return encryptedErr, true
	}
	for _, e := range s.Payload {
		switch e.XMLName.Space {
		case nsOMEMOLegacy, nsOMEMO1, nsOMEMO2, nsOpenPGP, nsLegacyPGP, nsEME:
			return encryptedErr, true
		case nsRetract0, nsRetract1:
			return retractErr, true
		case nsFasten:
			var v struct {
				Retract *struct{} `xml:"urn:xmpp:message-retract:0 retract"`
			}
			if e.XMLName.Local == "apply-to" && e.decode(&v) == nil && v.Retract != nil {
				return retractErr, true
			}
		}
	}
	return stanza.Error{}, false
}

// rich tells whether s carries more than its text, besides what only
// concerns the conversation live (chat states, markers, hints, ids, a
// receipt request): see router.Message.Rich.
func rich(s *inStanza) bool {
	for _, e := range s.Payload {
		switch e.XMLName.Space {
		case nsReceipts, nsChatStates, nsMarkers, nsHints, nsSID:
			continue
		}
		return true
	}
	return false
}

// bodyMarkup tells whether a body of s holds elements.
func bodyMarkup(s *inStanza) bool {
	return slices.ContainsFunc(s.Body, func(b body) bool { return len(b.Markup) > 0 })
}

var markupErr = errText(stanza.Modify, stanza.BadRequest,
	"A message body holds plain text, not elements (RFC 6121 5.2.3): the message was not sent.")

var encryptedErr = errText(stanza.Modify, stanza.NotAcceptable,
	"An SMS cannot carry an end-to-end encrypted message: turn encryption off for this contact and send it again.")

var retractErr = errText(stanza.Cancel, stanza.FeatureNotImplemented,
	"A message through the SMS gateway cannot be retracted: an SMS cannot be taken back once sent.")

// subject is the message's subject (RFC 6121 5.2.4): the one in the
// stanza's language, or else the first; "" when it has none that shows.
func (s *inStanza) subject() string {
	var first string
	for _, e := range s.Payload {
		if e.XMLName.Local != "subject" || e.XMLName.Space != s.XMLName.Space {
			continue
		}
		var v struct {
			Text string `xml:",chardata"`
		}
		if e.decode(&v) != nil || strings.TrimFunc(v.Text, invisible) == "" {
			continue
		}
		if lang := xmlLang(e.Attr); lang == "" || strings.EqualFold(lang, s.Lang) {
			return v.Text
		}
		if first == "" {
			first = v.Text
		}
	}
	return first
}

// invisible tells the characters that show nothing: white space and
// format characters (zero-width space, joiners, byte-order mark). A body
// of those alone is empty.
func invisible(r rune) bool { return unicode.IsSpace(r) || unicode.Is(unicode.Cf, r) }

// smsText is the text an SMS carries for a message: the body, with out-of-
// band links, locations and shared contacts written out, and corrections
// marked. "" means the stanza has nothing to send as SMS. r is the
// message's reactions (reactionOf), if any.
func smsText(s *inStanza, r *router.Reaction) string {
	if r != nil {
		// Whatever fallback body a client added: the router quotes the
		// message reacted to, as phones write a reaction in an SMS.
		if len(r.Emojis) == 0 {
			return "" // a reaction taken back: nothing to tell a phone
		}
		return router.ReactionText(r.Emojis, "")
	}
	body := s.text()
	if quote, reply, ok := replyOf(s, body); ok {
		body = router.ReplyText(quote, reply)
	}
	if strings.TrimFunc(body, invisible) == "" {
		body = ""
	}
	if subject := s.subject(); subject != "" && subject != body {
		// A phone shows no subject: it goes first, on a line of its own.
		body = strings.TrimSuffix(subject+"\n"+body, "\n")
	}
	var extra []string
	correction := false
	for _, e := range s.Payload {
		switch e.XMLName.Space {
		case nsOOB:
			var v struct {
				URL  string `xml:"url"`
				Desc string `xml:"desc"`
			}
			if e.decode(&v) == nil && v.URL != "" && !strings.Contains(body, v.URL) {
				line := v.URL
				if v.Desc != "" {
					line = v.Desc + ": " + v.URL
				}
				extra = append(extra, line)
			}
		case nsGeoloc:
			var v struct {
				Lat  string `xml:"lat"`
				Lon  string `xml:"lon"`
				Text string `xml:"text"`
			}
			if e.decode(&v) == nil && v.Lat != "" && v.Lon != "" {
				line := fmt.Sprintf("geo:%s,%s https://www.openstreetmap.org/?mlat=%s&mlon=%s", v.Lat, v.Lon, v.Lat, v.Lon)
				if strings.Contains(body, fmt.Sprintf("geo:%s,%s", v.Lat, v.Lon)) {
					// The body is the location already (clients send its
					// geo: URI as the fallback): the map link only.
					line = fmt.Sprintf("https://www.openstreetmap.org/?mlat=%s&mlon=%s", v.Lat, v.Lon)
				}
				if v.Text != "" {
					line = v.Text + " " + line
				}
				extra = append(extra, line)
			}
		case nsRosterX:
			var v struct {
				Items []struct {
					JID  string `xml:"jid,attr"`
					Name string `xml:"name,attr"`
				} `xml:"item"`
			}
			if e.decode(&v) == nil {
				for _, it := range v.Items {
					who := it.JID
					if local, _, ok := strings.Cut(it.JID, "@"); ok && strings.HasPrefix(local, "+") {
						who = local
					}
					if it.Name != "" {
						who = it.Name + ": " + who
					}
					extra = append(extra, "Contact "+who)
				}
			}
		case nsCorrection:
			correction = e.XMLName.Local == "replace"
		}
	}
	if body == "" && len(extra) == 0 {
		return ""
	}
	parts := make([]string, 0, 1+len(extra))
	if body != "" {
		parts = append(parts, body)
	}
	parts = append(parts, extra...)
	text := strings.Join(parts, "\n")
	if correction {
		text = "Correction: " + text
	}
	return text
}

// replyOf splits the body of a reply (XEP-0461) into the quote of the
// message replied to, which the client wrote into the body as a fallback
// (XEP-0428: "> " lines, at the range it names, counted in code points per
// XEP-0426), and the reply itself. ok is false for a message that is no
// reply or whose fallback range does not fit its body: then the body goes
// as it is.
func replyOf(s *inStanza, body string) (quote, reply string, ok bool) {
	replying := false
	start, end := -1, -1
	for _, e := range s.Payload {
		switch {
		case e.XMLName.Space == nsReply && e.XMLName.Local == "reply":
			replying = true
		case e.XMLName.Space == nsFallback && e.XMLName.Local == "fallback":
			var v struct {
				For  string `xml:"for,attr"`
				Body []struct {
					Start *int `xml:"start,attr"`
					End   *int `xml:"end,attr"`
				} `xml:"body"`
			}
			if e.decode(&v) != nil || v.For != nsReply || len(v.Body) != 1 || v.Body[0].Start == nil || v.Body[0].End == nil {
				continue
			}
			start, end = *v.Body[0].Start, *v.Body[0].End
		}
	}
	runes := []rune(body)
	if !replying || start < 0 || end <= start || end > len(runes) {
		return "", "", false
	}
	var lines []string
	for _, l := range strings.Split(string(runes[start:end]), "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), ">"))
		if l != "" {
			lines = append(lines, l)
		}
	}
	reply = strings.TrimSpace(string(runes[:start]) + string(runes[end:]))
	return strings.Join(lines, " "), reply, reply != ""
}

// reactionOf returns the message's reactions (XEP-0444), or nil.
func reactionOf(s *inStanza) *router.Reaction {
	for _, e := range s.Payload {
		if e.XMLName.Space != nsReactions || e.XMLName.Local != "reactions" {
			continue
		}
		var v struct {
			ID        string   `xml:"id,attr"`
			Reactions []string `xml:"reaction"`
		}
		if e.decode(&v) != nil || v.ID == "" {
			return nil
		}
		r := &router.Reaction{ID: v.ID}
		for _, x := range v.Reactions {
			if x = strings.TrimSpace(x); x != "" && !slices.Contains(r.Emojis, x) {
				r.Emojis = append(r.Emojis, x)
			}
		}
		return r
	}
	return nil
}

// payloadXML renders the stanza's children — bodies and every other
// element except the receipt request, which the relay sets itself — as XML
// to relay.
func payloadXML(s *inStanza) []byte {
	p := payloadEncoders.Get().(*payloadEncoder)
	p.b.Reset()
	failed := false
	check := func(err error) { failed = failed || err != nil }
	for _, bd := range s.Body {
		start := xml.StartElement{Name: xml.Name{Local: "body"}}
		if bd.Lang != "" {
			start.Attr = []xml.Attr{{Name: xml.Name{Local: "xml:lang"}, Value: bd.Lang}}
		}
		check(p.enc.EncodeElement(bd.Text, start))
	}
	for _, e := range s.Payload {
		if e.XMLName.Space == nsReceipts && e.XMLName.Local == "request" {
			continue
		}
		for _, t := range e.toks {
			check(p.enc.EncodeToken(t))
		}
	}
	check(p.enc.Flush())
	out := bytes.Clone(p.b.Bytes())
	// An encoder that failed may be inside an element, and a buffer grown
	// for a large stanza would hold its memory: neither is reused.
	if !failed && p.b.Cap() <= 64<<10 {
		payloadEncoders.Put(p)
	}
	return out
}

// payloadEncoder is an XML encoder with the buffer it writes to, reused:
// a new encoder allocates a 4 KB write buffer, which was an eighth of
// everything allocated per message.
type payloadEncoder struct {
	b   bytes.Buffer
	enc *xml.Encoder
}

var payloadEncoders = sync.Pool{New: func() any {
	p := new(payloadEncoder)
	p.enc = xml.NewEncoder(&p.b)
	return p
}}

// payloadTokens reads relayed XML back as tokens for the stream, without
// the xmlns attributes encoding/xml writes (the stream writer adds its own).
// marshalTokens uses it too.
func payloadTokens(payload []byte) xml.TokenReader {
	d := xml.NewDecoder(bytes.NewReader(payload))
	var toks []xml.Token
	for {
		t, err := d.Token()
		if err != nil {
			break
		}
		if se, ok := t.(xml.StartElement); ok {
			attrs := se.Attr[:0:0]
			for _, a := range se.Attr {
				if a.Name.Local == "xmlns" || a.Name.Space == "xmlns" {
					continue
				}
				if a.Name.Space == "xml" {
					a.Name.Space = "http://www.w3.org/XML/1998/namespace"
				}
				attrs = append(attrs, a)
			}
			se.Attr = attrs
			t = se
		}
		toks = append(toks, xml.CopyToken(t))
	}
	return &tokenSlice{toks: toks}
}

// receiptOf returns the id of an XEP-0184 <received/> in the stanza.
func receiptOf(s *inStanza) (string, bool) {
	for _, e := range s.Payload {
		if e.XMLName.Space == nsReceipts && e.XMLName.Local == "received" {
			for _, a := range e.Attr {
				if a.Name.Local == "id" {
					return a.Value, true
				}
			}
		}
	}
	return "", false
}
