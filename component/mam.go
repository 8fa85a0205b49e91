package component

import (
	"cmp"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster/number"
	"switchboard/store"
	"switchboard/xep/dataform"
)

// Namespaces of XEP-0313 (Message Archive Management) and what it uses.
const (
	nsMAM     = "urn:xmpp:mam:2"
	nsRSM     = "http://jabber.org/protocol/rsm"
	nsForward = "urn:xmpp:forward:0"
	nsDelay   = "urn:xmpp:delay"
	nsClient  = "jabber:client"
)

// Page sizes of archive queries (XEP-0059 max).
const (
	mamDefaultMax = 50
	mamMaxMax     = 250
)

// Archive is the message archive the component serves (XEP-0313): each
// user's conversations with numbers, kept by the gateway itself so they
// survive a new device whatever the user's server keeps. *store.Store
// satisfies it.
type Archive interface {
	Archive(ctx context.Context, q store.ArchiveQuery) (store.ArchivePage, error)
	ArchiveMetadata(ctx context.Context, user string) (store.ArchiveBounds, error)
}

// mamQuery is <query xmlns='urn:xmpp:mam:2'/>.
type mamQuery struct {
	QueryID  string         `xml:"queryid,attr"`
	Node     string         `xml:"node,attr"`
	Form     *dataform.Form `xml:"jabber:x:data x"`
	Set      *rsmSet        `xml:"http://jabber.org/protocol/rsm set"`
	FlipPage *struct{}      `xml:"flip-page"`
}

// rsmSet is an XEP-0059 request.
type rsmSet struct {
	Max    *string `xml:"max"`
	After  *string `xml:"after"`
	Before *string `xml:"before"`
	Index  *string `xml:"index"`
}

// mamFields are the filters the archive understands, as offered by the form.
var mamFields = []dataform.Field{
	{Var: "FORM_TYPE", Type: dataform.Hidden, Values: []string{nsMAM}},
	{Var: "with", Type: dataform.JIDSingle, Label: "Conversation with (a number JID)"},
	{Var: "start", Type: dataform.TextSingle, Label: "Messages from (XEP-0082 time)"},
	{Var: "end", Type: dataform.TextSingle, Label: "Messages until (XEP-0082 time)"},
	{Var: "after-id", Type: dataform.TextSingle, Label: "Messages after this archive id"},
	{Var: "before-id", Type: dataform.TextSingle, Label: "Messages before this archive id"},
}

// archiveUser checks that from may use the archive and returns its bare JID.
func (c *Component) archiveUser(from jid.JID) (string, error) {
	if c.cfg.Archive == nil {
		return "", errText(stanza.Cancel, stanza.FeatureNotImplemented, "This gateway keeps no archive.")
	}
	if !c.router.Served(from) {
		return "", errText(stanza.Cancel, stanza.Forbidden, "Only users of the XMPP domains this gateway serves have an archive here.")
	}
	return from.Bare().String(), nil
}

// handleMAMForm answers a query for the archive's search form.
func (c *Component) handleMAMForm(t xmlstream.TokenReadEncoder, s *inStanza, from jid.JID) error {
	if _, err := c.archiveUser(from); err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	form, err := marshalTokens(&dataform.Form{Type: dataform.TypeForm, Fields: mamFields})
	if err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	return c.iqResult(t, s, xmlstream.Wrap(form, xml.StartElement{Name: xml.Name{Space: nsMAM, Local: "query"}}))
}

// handleMAM answers an archive query: the page of messages goes out first,
// one <message/> each, then the IQ result closing it. (Nothing may be
// written on t before the messages are sent: t holds the stream's output
// from its first token until the handler returns.)
func (c *Component) handleMAM(ctx context.Context, t xmlstream.TokenReadEncoder, s *inStanza, from jid.JID, q element) error {
	user, err := c.archiveUser(from)
	if err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	var req mamQuery
	if err := q.decode(&req); err != nil {
		return c.iqError(t, s, errText(stanza.Modify, stanza.BadRequest, "The archive query could not be read: "+err.Error()))
	}
	aq, none, err := c.archiveQuery(user, &req)
	if err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	var page store.ArchivePage
	if none {
		page.Complete = true
	} else {
		page, err = c.cfg.Archive.Archive(ctx, aq)
		if errors.Is(err, store.ErrNotFound) {
			return c.iqError(t, s, errText(stanza.Cancel, stanza.ItemNotFound, "An archive id in the query is not in your archive."))
		}
		if err != nil {
			return c.iqError(t, s, c.asStanzaError(err))
		}
	}
	prefix := randomID()
	for _, it := range page.Items {
		if err := c.send(ctx, c.mamResult(from, req.QueryID, prefix, it)); err != nil {
			c.log.Warn().Err(err).Msg("sending archive results failed")
			return c.iqError(t, s, errText(stanza.Wait, stanza.InternalServerError, "The archive results could not be sent; try again."))
		}
	}
	return c.iqResult(t, s, mamFin(req.QueryID, page))
}

// archiveQuery reads the form and the RSM request. none reports a query that
// cannot match anything here (with names no number of this gateway).
func (c *Component) archiveQuery(user string, req *mamQuery) (q store.ArchiveQuery, none bool, err error) {
	q = store.ArchiveQuery{User: user, Max: mamDefaultMax}
	bad := func(format string, args ...any) error {
		return errText(stanza.Modify, stanza.BadRequest, fmt.Sprintf(format, args...))
	}
	if req.FlipPage != nil {
		return q, false, errText(stanza.Cancel, stanza.FeatureNotImplemented, "This archive does not flip pages.")
	}
	if f := req.Form; f != nil {
		if ft := f.FormType(); ft != "" && ft != nsMAM {
			return q, false, bad("The form type %q is not %s.", ft, nsMAM)
		}
		for _, fl := range f.Fields {
			var v string
			if len(fl.Values) > 0 {
				v = strings.TrimSpace(fl.Values[0])
			}
			if v == "" && fl.Var != "FORM_TYPE" {
				continue
			}
			switch fl.Var {
			case "FORM_TYPE":
			case "with":
				j, err := jid.Parse(v)
				if err != nil {
					return q, false, bad("with: %q is not a valid address.", v)
				}
				n, ok := c.numberOf(j)
				if !ok {
					none = true
				}
				q.With = string(n)
			case "start", "end":
				ts, err := time.Parse(time.RFC3339Nano, v)
				if err != nil {
					return q, false, bad("%s: %q is not an XEP-0082 time such as 2026-11-02T09:00:00Z.", fl.Var, v)
				}
				if fl.Var == "start" {
					q.Start = ts
				} else {
					q.End = ts
				}
			case "after-id", "before-id":
				id, ok := archiveID(v)
				if !ok {
					return q, false, errText(stanza.Cancel, stanza.ItemNotFound, fmt.Sprintf("%s: %q is not in your archive.", fl.Var, v))
				}
				if fl.Var == "after-id" {
					q.AfterID = id
				} else {
					q.BeforeID = id
				}
			default:
				return q, false, bad("The archive cannot filter by %q.", fl.Var)
			}
		}
	}
	if set := req.Set; set != nil {
		if set.Index != nil {
			return q, false, errText(stanza.Cancel, stanza.FeatureNotImplemented, "This archive pages by id, not by index.")
		}
		if set.Max != nil {
			n, err := strconv.Atoi(strings.TrimSpace(*set.Max))
			if err != nil || n < 0 {
				return q, false, bad("max: %q is not a whole number.", *set.Max)
			}
			q.Max = min(n, mamMaxMax)
		}
		if set.After != nil && strings.TrimSpace(*set.After) != "" {
			id, ok := archiveID(*set.After)
			if !ok {
				return q, false, errText(stanza.Cancel, stanza.ItemNotFound, fmt.Sprintf("after: %q is not in your archive.", *set.After))
			}
			q.PageAfter = id
		}
		if set.Before != nil {
			q.Backward = true
			if v := strings.TrimSpace(*set.Before); v != "" {
				id, ok := archiveID(v)
				if !ok {
					return q, false, errText(stanza.Cancel, stanza.ItemNotFound, fmt.Sprintf("before: %q is not in your archive.", v))
				}
				q.PageBefore = id
			}
		}
	}
	return q, none, nil
}

// numberOf reads the number of a number JID of this gateway.
func (c *Component) numberOf(j jid.JID) (number.E164, bool) {
	if j.Domainpart() != c.cfg.JID.Domainpart() || j.Localpart() == "" {
		return "", false
	}
	local := j.Localpart()
	if strings.HasPrefix(local, "+") {
		n, err := number.FromDigits(local)
		return n, err == nil
	}
	n, err := number.Parse(local, "")
	return n, err == nil
}

func archiveID(s string) (int64, bool) {
	id, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	return id, err == nil && id > 0
}

// mamResult is one archived message, forwarded to the requester.
func (c *Component) mamResult(to jid.JID, queryID, prefix string, it store.ArchiveItem) xml.TokenReader {
	id := strconv.FormatInt(it.ID, 10)
	body := it.Body
	// In the form of the number the user wrote to, as live.
	peerJID, err := c.cfg.JID.Domain().WithLocal(cmp.Or(it.Local, it.Number))
	if err != nil {
		// Not a number: a sender's name a JID cannot hold ("My Bank").
		// As the message came (router.Router.send): from the gateway
		// itself, the name before the text.
		peerJID, body = c.cfg.JID, it.Number+": "+body
	}
	user, peer := to.Bare().String(), peerJID.String()
	msgFrom, msgTo := peer, user
	if it.Outgoing {
		msgFrom, msgTo = user, peer
	}
	msgID := it.StanzaID
	if msgID == "" {
		msgID = "sms-" + id // as the message from a phone came (router.Router.send)
	}
	attr := func(k, v string) xml.Attr { return xml.Attr{Name: xml.Name{Local: k}, Value: v} }
	result := xml.StartElement{Name: xml.Name{Space: nsMAM, Local: "result"}, Attr: []xml.Attr{attr("id", id)}}
	if queryID != "" {
		result.Attr = append([]xml.Attr{attr("queryid", queryID)}, result.Attr...)
	}
	// As its sender wrote it, when the text alone would change what it
	// is (a correction would read as a new message).
	content := textElem(xml.Name{Local: "body"}, body)
	if it.Payload != "" && !peerJID.Equal(c.cfg.JID) {
		content = payloadTokens([]byte(it.Payload))
	}
	inner := xmlstream.Wrap(
		content,
		xml.StartElement{Name: xml.Name{Space: nsClient, Local: "message"}, Attr: []xml.Attr{
			attr("from", msgFrom), attr("to", msgTo), attr("type", string(stanza.ChatMessage)), attr("id", msgID),
		}})
	forwarded := xmlstream.Wrap(xmlstream.MultiReader(
		delay(it.At, jid.JID{}),
		inner,
	), xml.StartElement{Name: xml.Name{Space: nsForward, Local: "forwarded"}})
	return stanza.Message{From: c.cfg.JID, To: to, ID: prefix + "-" + id, Type: stanza.NormalMessage}.Wrap(xmlstream.Wrap(forwarded, result))
}

// mamFin closes a query: whether the page reached the end, and the RSM set.
func mamFin(queryID string, page store.ArchivePage) xml.TokenReader {
	fin := xml.StartElement{Name: xml.Name{Space: nsMAM, Local: "fin"}, Attr: []xml.Attr{
		{Name: xml.Name{Local: "complete"}, Value: strconv.FormatBool(page.Complete)},
	}}
	if queryID != "" {
		fin.Attr = append(fin.Attr, xml.Attr{Name: xml.Name{Local: "queryid"}, Value: queryID})
	}
	text := func(name, v string, attr ...xml.Attr) xml.TokenReader {
		return textElem(xml.Name{Local: name}, v, attr...)
	}
	var set []xml.TokenReader
	if n := len(page.Items); n > 0 {
		set = append(set,
			text("first", strconv.FormatInt(page.Items[0].ID, 10), xml.Attr{Name: xml.Name{Local: "index"}, Value: strconv.Itoa(page.Index)}),
			text("last", strconv.FormatInt(page.Items[n-1].ID, 10)))
	}
	set = append(set, text("count", strconv.Itoa(page.Count)))
	return xmlstream.Wrap(xmlstream.Wrap(xmlstream.MultiReader(set...), xml.StartElement{Name: xml.Name{Space: nsRSM, Local: "set"}}), fin)
}

// handleMAMMetadata answers an archive metadata query: the first and last
// message of the user's archive.
func (c *Component) handleMAMMetadata(ctx context.Context, t xmlstream.TokenReadEncoder, s *inStanza, from jid.JID) error {
	user, err := c.archiveUser(from)
	if err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	b, err := c.cfg.Archive.ArchiveMetadata(ctx, user)
	if err != nil {
		return c.iqError(t, s, c.asStanzaError(err))
	}
	var bounds []xml.TokenReader
	if !b.Empty {
		for _, e := range []struct {
			name string
			id   int64
			at   time.Time
		}{{"start", b.FirstID, b.FirstAt}, {"end", b.LastID, b.LastAt}} {
			bounds = append(bounds, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Local: e.name}, Attr: []xml.Attr{
				{Name: xml.Name{Local: "id"}, Value: strconv.FormatInt(e.id, 10)},
				{Name: xml.Name{Local: "timestamp"}, Value: stamp(e.at)},
			}}))
		}
	}
	return c.iqResult(t, s, xmlstream.Wrap(xmlstream.MultiReader(bounds...), xml.StartElement{Name: xml.Name{Space: nsMAM, Local: "metadata"}}))
}

// stamp is an XEP-0082 time in UTC with milliseconds.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// delay is an XEP-0203 delay element: the stanza was first sent at at (by
// from, when not zero).
func delay(at time.Time, from jid.JID) xml.TokenReader {
	d := xml.StartElement{Name: xml.Name{Space: nsDelay, Local: "delay"}}
	if !from.Equal(jid.JID{}) {
		d.Attr = append(d.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from.String()})
	}
	d.Attr = append(d.Attr, xml.Attr{Name: xml.Name{Local: "stamp"}, Value: stamp(at)})
	return xmlstream.Wrap(nil, d)
}

func randomID() string { return randHex(6) }
