package component

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"switchboard/roster"
	"switchboard/roster/addressbook"
	"switchboard/roster/number"
	"switchboard/store"
	"switchboard/xep/adhoc"
	"switchboard/xep/dataform"
)

// Namespaces of the ways an address book comes in.
const (
	nsQuicksy  = "im.quicksy.synchronization:0" // Quicksy phone-book sync
	nsGateway  = "jabber:iq:gateway"            // XEP-0100 §6.3
	nsVCardTmp = "vcard-temp"                   // XEP-0054
)

// NodeAddressBook is the address-book upload command.
const NodeAddressBook = "address-book"

// AddressBook is the roster service. *roster.Service satisfies it.
type AddressBook interface {
	Upload(ctx context.Context, owner jid.JID, data []byte) (*roster.Report, error)
	Merge(ctx context.Context, owner jid.JID, contacts []addressbook.Contact) (*roster.Report, error)
	Relation(ctx context.Context, requester jid.JID, num string) (roster.Relation, error)
	Sync(ctx context.Context, owner jid.JID, numbers []string) (string, []roster.Entry, error)
	PresenceFor(ctx context.Context, requester jid.JID, num string) (string, bool)
}

// cmdAddressBook asks for contacts (pasted, or a URL to fetch), imports
// them, and reports who is on XMPP.
func (c *Component) cmdAddressBook(ctx context.Context, from jid.JID, req *adhoc.Command, sess *store.CommandSession) (*adhoc.Command, error) {
	form := &dataform.Form{
		Type:  dataform.TypeForm,
		Title: "Upload your address book",
		Instructions: []string{"Paste your contacts (a vCard or CSV export, or lines of \"Name, number\"), or give the address of such a file. " +
			"This replaces the address book uploaded before: contacts no longer in it leave your roster."},
		Fields: []dataform.Field{
			dataform.Text(dataform.TextMulti, "contacts", "Contacts", false),
			dataform.Text(dataform.TextSingle, "url", "…or the address of a file", false),
		},
	}
	if sess.Stage == 0 {
		sess.Stage = 1
		return executing(form, true), nil
	}
	var (
		data    []byte
		fetched bool
	)
	if req.Form != nil {
		if lines := req.Form.Values("contacts"); len(lines) > 0 {
			data = []byte(strings.Join(lines, "\n"))
		}
		if u, _ := req.Form.Get("url"); u != "" && len(strings.TrimSpace(string(data))) == 0 {
			body, err := c.fetch(ctx, u)
			if err != nil {
				return executing(form, true, adhoc.Note{Type: adhoc.Error, Text: err.Error()}), nil
			}
			data, fetched = body, true
		}
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return executing(form, true, adhoc.Note{Type: adhoc.Error, Text: "Paste your contacts or give the address of a file."}), nil
	}
	rep, err := c.cfg.AddressBook.Upload(ctx, from, data)
	var re *roster.Error
	if errors.As(err, &re) {
		return completed(adhoc.Error, re.Text), nil
	}
	if err != nil {
		return nil, err
	}
	// A fetched file's lines are not quoted back: the user has the file,
	// and the gateway must not read out what it fetched from elsewhere.
	return reportCommand(rep, !fetched), nil
}

// noNumberYet tells a user who imported contacts without a number of
// their own that they cannot write to them yet.
const noNumberYet = "You have no phone number on this gateway yet: register one (the command \"Register a phone number\") to write to these contacts."

// count is n with the noun for one or for many: "1 contact", "2 contacts".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// reach sums up how a report's contacts are reached.
func reach(rep *roster.Report) string {
	s := fmt.Sprintf("%d on XMPP", rep.OnXMPP())
	if n := rep.NotMutual(); n > 0 && rep.Own != "" {
		s += fmt.Sprintf(" (%d without your number yet, shown as SMS in your roster until they add it)", n)
	}
	s += fmt.Sprintf(", %d by SMS", rep.BySMS())
	if n := rep.Unreachable(); n > 0 {
		s += fmt.Sprintf(", %d not reachable (this gateway sends no SMS there)", n)
	}
	return s
}

// reportCommand renders an import report: counts in a note, the contacts
// in a result table, and unreadable entries in a second note, quoted when
// quote is set, else by line and reason only.
func reportCommand(rep *roster.Report, quote bool) *adhoc.Command {
	cmd := completed(adhoc.Info, fmt.Sprintf("%s: %s. Added %d, changed %d, removed %d.",
		count(len(rep.Entries), "contact", "contacts"), reach(rep), rep.Added, rep.Changed, rep.Removed))
	if rep.Own == "" {
		cmd.Notes = append(cmd.Notes, adhoc.Note{Type: adhoc.Warn, Text: noNumberYet})
	}
	if len(rep.Problems) > 0 {
		var b strings.Builder
		if len(rep.Problems) == 1 {
			b.WriteString("1 entry could not be read:")
		} else {
			fmt.Fprintf(&b, "%d entries could not be read:", len(rep.Problems))
		}
		for i, p := range rep.Problems {
			if i == 20 {
				fmt.Fprintf(&b, "\n… and %d more", len(rep.Problems)-20)
				break
			}
			if !quote {
				p.Entry, p.Name = "", ""
			}
			b.WriteString("\n" + problemLine(p))
		}
		cmd.Notes = append(cmd.Notes, adhoc.Note{Type: adhoc.Warn, Text: b.String()})
	}
	table := &dataform.Form{Type: dataform.TypeResult, Title: "Your contacts", Reported: &dataform.Reported{Fields: []dataform.Field{
		{Var: "name", Label: "Name"}, {Var: "number", Label: "Number"}, {Var: "reach", Label: "Reached by"},
	}}}
	size := 0
	for i, e := range rep.Entries {
		if i == reportRows || size > reportBytes {
			cmd.Notes = append(cmd.Notes, adhoc.Note{Type: adhoc.Info, Text: fmt.Sprintf(
				"The table lists the first %d of your %d contacts; all of them are on their way to your roster.", i, len(rep.Entries))})
			break
		}
		by := "SMS"
		switch {
		case e.OnXMPP && e.Mutual:
			by = "XMPP"
		case e.OnXMPP:
			by = "XMPP (shown as SMS until they have your number)"
		case e.Unreachable != "":
			by = "Not reachable: " + e.Unreachable
		}
		name := e.Name
		if r := []rune(name); len(r) > reportName {
			name = string(r[:reportName-1]) + "…"
		}
		size += len(name) + len(e.Number) + len(by) + 120 // and the item's markup
		table.Items = append(table.Items, dataform.Item{Fields: []dataform.Field{
			{Var: "name", Values: []string{name}}, {Var: "number", Values: []string{e.Number.String()}}, {Var: "reach", Values: []string{by}},
		}})
	}
	cmd.Form = table
	return cmd
}

// The report's table lists at most reportRows contacts and about
// reportBytes of them, each name cut to reportName characters: the whole
// of a book of 2,000 contacts made an answer over Prosody's limit for a
// component's stanza (512 KiB), which closed the component's stream, for
// every user, and left the uploader without an answer. The roster holds
// them all; the table is the uploader's summary.
const (
	reportRows  = 500
	reportBytes = 96 << 10
	reportName  = 100
)

// problemLine is one unreadable entry of a report: its line, the entry
// quoted (after the contact's name when the entry does not hold it), and
// why.
func problemLine(p addressbook.Problem) string {
	who := ""
	switch {
	case p.Entry == "":
		who = p.Name
	case p.Name == "" || strings.Contains(p.Entry, p.Name):
		who = `"` + p.Entry + `"`
	default:
		who = p.Name + ` ("` + p.Entry + `")`
	}
	if who == "" {
		return fmt.Sprintf("line %d: %s", p.Line, p.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s", p.Line, who, p.Reason)
}

// maxFetch bounds a fetched address book.
const maxFetch = 5 << 20

// errPrivateAddress is the dialer's refusal of an address on a loopback,
// private or link-local network (see newFetchClient).
var errPrivateAddress = errors.New("component: address on a loopback, private or link-local network")

// specialRanges are addresses of no host on the public internet that
// netip's predicates do not tell (IANA's special-purpose registries):
// behind some of them sit a cloud's metadata service or a VPN's peers.
var specialRanges = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (RFC 6598): carrier NAT, VPNs, a cloud's metadata at 100.100.100.200
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),  // documentation
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"), // reserved, and the broadcast address
	netip.MustParsePrefix("100::/64"),    // discard
	netip.MustParsePrefix("2001::/23"),   // IETF protocol assignments (Teredo among them)
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("fec0::/10"),      // site-local, deprecated
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96") // an IPv4 address in its last 32 bits
	sixTo4 = netip.MustParsePrefix("2002::/16")    // an IPv4 address in bits 16–47
)

// publicAddr reports whether a is an address on the public internet. An
// IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) is judged by
// that address.
func publicAddr(a netip.Addr) bool {
	a = a.Unmap()
	if a.Is6() {
		b := a.As16()
		switch {
		case nat64.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[12:16])))
		case sixTo4.Contains(a):
			return publicAddr(netip.AddrFrom4([4]byte(b[2:6])))
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		return false
	}
	for _, p := range specialRanges {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// newFetchClient is the HTTP client fetch uses, built once in New. Unless
// private is set, addresses on loopback, private and link-local networks
// are refused, so the gateway cannot be used to reach inside its own
// network.
func newFetchClient(private bool) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if !private {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return errPrivateAddress
			}
			return nil
		}
	}
	return &http.Client{Timeout: fetchTimeout, Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil}}
}

// fetchesURL tells whether req, a command request, uploads an address book
// by URL (and no pasted contacts): its answer waits for a download.
func fetchesURL(req *adhoc.Command) bool {
	if req.Node != NodeAddressBook || req.Form == nil {
		return false
	}
	u, _ := req.Form.Get("url")
	return strings.TrimSpace(u) != "" && strings.TrimSpace(strings.Join(req.Form.Values("contacts"), "")) == ""
}

// fetching bounds the address-book commands waiting for a download: one
// per user, maxFetching in all. Their goroutines belong to Run: they end
// with its context, and Run returns once they have.
type fetching struct {
	mu    sync.Mutex
	users map[string]bool
	ctx   context.Context // Run's; nil before it starts
	wg    sync.WaitGroup
}

// run makes Run's ctx the one downloads end with, and returns a function
// that waits for them.
func (f *fetching) run(ctx context.Context) (wait func()) {
	f.mu.Lock()
	f.ctx = ctx
	f.mu.Unlock()
	return f.wg.Wait
}

const (
	maxFetching  = 8
	fetchTimeout = 15 * time.Second
)

// commandAside runs command req from from, an upload by URL, in a goroutine
// of its own and sends its answer to s when done: the stream's reader, which
// handles every user's stanzas in turn, does not wait for the download (a
// server that never answers held everyone's stanzas for 10 s). It refuses
// at once a user's second upload while the first waits, and any beyond
// maxFetching.
func (c *Component) commandAside(from jid.JID, s inStanza, req *adhoc.Command) error {
	user := from.Bare().String()
	f := &c.fetching
	f.mu.Lock()
	switch {
	case f.users[user]:
		f.mu.Unlock()
		return errText(stanza.Wait, stanza.ResourceConstraint, "Your previous address book is still being fetched; wait for its answer.")
	case len(f.users) >= maxFetching:
		f.mu.Unlock()
		return errText(stanza.Wait, stanza.ResourceConstraint, "The gateway is fetching other address books; try again in a minute.")
	}
	if f.users == nil {
		f.users = make(map[string]bool)
	}
	f.users[user] = true
	parent := cmp.Or(f.ctx, context.Background())
	f.mu.Unlock()
	f.wg.Go(func() {
		defer func() {
			f.mu.Lock()
			delete(f.users, user)
			f.mu.Unlock()
		}()
		// The download, then the import.
		ctx, cancel := context.WithTimeout(parent, fetchTimeout+15*time.Second)
		defer cancel()
		var answer xml.TokenReader
		defer func() {
			if r := recover(); r != nil {
				c.log.Error().Interface("panic", r).Bytes("stack", debug.Stack()).Msg("address-book command failed")
				answer = xmlstream.Wrap(errText(stanza.Wait, stanza.InternalServerError, "The gateway failed to handle this request.").TokenReader(), iqStart(&s, "error"))
			}
			if err := c.send(ctx, answer); err != nil {
				c.log.Warn().Err(err).Str("to", s.From).Msg("answering an address-book command failed")
			}
		}()
		resp, err := c.handleCommand(ctx, from, req)
		var r xml.TokenReader
		if err == nil {
			r, err = marshalTokens(resp)
		}
		if err != nil {
			answer = xmlstream.Wrap(c.errorTokens(err), iqStart(&s, "error"))
			return
		}
		answer = xmlstream.Wrap(r, iqStart(&s, "result"))
	})
	return nil
}

// fetch downloads an address book over HTTP(S), with a size limit and a
// timeout, through c.fetcher (see newFetchClient).
func (c *Component) fetch(ctx context.Context, raw string) ([]byte, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, errors.New("The address must be an http or https URL.")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil) // c.fetcher's Timeout bounds it
	if err != nil {
		return nil, errors.New("The address could not be used.")
	}
	resp, err := c.fetcher.Do(hreq)
	if err != nil {
		c.log.Info().Err(err).Str("host", u.Host).Msg("address book fetch failed")
		host := u.Host // or the address a redirect led to, which failed
		var ue *url.Error
		if errors.As(err, &ue) {
			if p, perr := url.Parse(ue.URL); perr == nil && p.Host != "" {
				host = p.Host
			}
		}
		var ne net.Error
		switch {
		case errors.Is(err, errPrivateAddress):
			return nil, fmt.Errorf("The file at %s could not be fetched: this gateway does not fetch from addresses on loopback, private or link-local networks.", host)
		case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
			return nil, fmt.Errorf("The file at %s could not be fetched: the server did not answer within %v.", host, fetchTimeout)
		}
		return nil, fmt.Errorf("The file at %s could not be fetched.", host)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("The file could not be fetched: the server answered %s.", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxFetch+1))
	if err != nil {
		return nil, errors.New("The file could not be read completely.")
	}
	if len(data) > maxFetch {
		return nil, fmt.Errorf("The file is larger than %d MiB.", maxFetch>>20)
	}
	return data, nil
}

// rosterxItems reads XEP-0144 items naming number JIDs on the component,
// and how many items it passed over (deletions, and additions of anything
// else).
func (c *Component) rosterxItems(e element) (out []addressbook.Contact, skipped int) {
	var v struct {
		Items []struct {
			Action string `xml:"action,attr"`
			JID    string `xml:"jid,attr"`
			Name   string `xml:"name,attr"`
		} `xml:"item"`
	}
	if e.decode(&v) != nil {
		return nil, 0
	}
	for _, it := range v.Items {
		if it.Action == "delete" {
			continue
		}
		j, err := jid.Parse(it.JID)
		if err != nil || j.Domainpart() != c.cfg.JID.Domainpart() {
			continue
		}
		n, err := number.FromJID(j, c.cfg.DefaultRegion)
		if err != nil {
			continue
		}
		out = append(out, addressbook.Contact{Name: it.Name, Number: n})
	}
	return out, len(v.Items) - len(out)
}

// handleRosterX imports XEP-0144 items a user's client sent to the
// component, and tells the user what happened. When no item adds a phone
// number it imports nothing and returns the stanza error to answer with.
func (c *Component) handleRosterX(ctx context.Context, from jid.JID, e element) error {
	contacts, skipped := c.rosterxItems(e)
	if len(contacts) == 0 {
		dom := c.cfg.JID.Domainpart()
		return errText(stanza.Modify, stanza.BadRequest, fmt.Sprintf(
			"No item adds a phone number of %s (such as +12015550123@%s); nothing was imported.", dom, dom))
	}
	rep, err := c.cfg.AddressBook.Merge(ctx, from, contacts)
	text := ""
	var re *roster.Error
	switch {
	case errors.As(err, &re):
		text = re.Text
	case err != nil:
		c.log.Error().Err(err).Msg("importing roster items failed")
		text = "The contacts could not be imported; try again later."
	default:
		text = fmt.Sprintf("Added %s (%d already known): %s.", count(rep.Added, "contact", "contacts"), rep.Changed+rep.Unchanged, reach(rep))
		if rep.Own == "" {
			text += " " + noNumberYet
		}
		if skipped > 0 {
			text += " " + count(skipped, "other item was not a phone number to add: left out.", "other items were not phone numbers to add: left out.")
		}
	}
	if err := c.Notify(ctx, from, text); err != nil {
		c.log.Warn().Err(err).Msg("could not report the import")
	}
	return nil
}

// quicksySync answers the Quicksy phone-book IQ.
func (c *Component) quicksySync(ctx context.Context, from jid.JID, q element) (xml.TokenReader, error) {
	var v struct {
		Ver     string `xml:"ver,attr"`
		Entries []struct {
			Number string `xml:"number,attr"`
		} `xml:"entry"`
	}
	if err := q.decode(&v); err != nil {
		return nil, errText(stanza.Modify, stanza.BadRequest, "The phone book could not be read.")
	}
	nums := make([]string, 0, len(v.Entries))
	for _, e := range v.Entries {
		nums = append(nums, e.Number)
	}
	ver, entries, err := c.cfg.AddressBook.Sync(ctx, from, nums)
	var re *roster.Error
	if errors.As(err, &re) {
		return nil, errText(stanza.Modify, stanza.PolicyViolation, re.Text)
	}
	if err != nil {
		return nil, err
	}
	start := xml.StartElement{Name: xml.Name{Space: nsQuicksy, Local: "phone-book"}, Attr: []xml.Attr{{Name: xml.Name{Local: "ver"}, Value: ver}}}
	if ver == v.Ver {
		return xmlstream.Wrap(nil, start), nil
	}
	var items []xml.TokenReader
	for _, e := range entries {
		items = append(items, xmlstream.Wrap(
			textElem(xml.Name{Local: "jid"}, e.Number.JID(c.cfg.JID).String()),
			xml.StartElement{Name: xml.Name{Local: "entry"}, Attr: []xml.Attr{{Name: xml.Name{Local: "number"}, Value: e.Number.String()}}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(items...), start), nil
}

// gatewayQuery answers XEP-0100 jabber:iq:gateway: a prompt for a phone
// number (get), and the number JID for a number in any common form (set).
// It reveals nothing about registration.
func (c *Component) gatewayQuery(ctx context.Context, from jid.JID, typ string, q element) (xml.TokenReader, error) {
	start := xml.StartElement{Name: xml.Name{Space: nsGateway, Local: "query"}}
	text := func(name, s string) xml.TokenReader { return textElem(xml.Name{Local: name}, s) }
	if typ == "get" {
		return xmlstream.Wrap(xmlstream.MultiReader(
			text("desc", "Enter the phone number of the contact you want to add."),
			text("prompt", "Phone number"),
		), start), nil
	}
	var v struct {
		Prompt string `xml:"prompt"`
	}
	if err := q.decode(&v); err != nil || strings.TrimSpace(v.Prompt) == "" {
		return nil, errText(stanza.Modify, stanza.BadRequest, "Send the phone number in <prompt/>.")
	}
	region := c.cfg.DefaultRegion
	if c.cfg.Registrar != nil {
		if b, err := c.cfg.Registrar.Status(ctx, from); err == nil {
			if r := number.E164(b.Number).Region(); r != "" {
				region = r
			}
		}
	}
	n, err := number.Parse(v.Prompt, region)
	if err != nil {
		return nil, errText(stanza.Modify, stanza.NotAcceptable, fmt.Sprintf("%q is not a phone number.", v.Prompt))
	}
	j := n.JID(c.cfg.JID).String()
	return xmlstream.Wrap(xmlstream.MultiReader(text("jid", j), text("prompt", j)), start), nil
}

// vcardOf answers vcard-temp for a number JID with the name (and photo)
// the requester's own address book gives it. A national number is read in
// the default region, as disco#info and the router read it.
func (c *Component) vcardOf(ctx context.Context, from, to jid.JID) (xml.TokenReader, error) {
	text := func(name, s string) xml.TokenReader { return textElem(xml.Name{Local: name}, s) }
	vcard := func(parts ...xml.TokenReader) xml.TokenReader {
		return xmlstream.Wrap(xmlstream.MultiReader(parts...), xml.StartElement{Name: xml.Name{Space: nsVCardTmp, Local: "vCard"}})
	}
	n, err := number.FromJID(to, c.cfg.DefaultRegion)
	if err != nil {
		// A service's short code or sender name (messages come from
		// them): named as it is, as clients show a contact.
		switch l := to.Localpart(); {
		case number.IsShortCode(l):
			return vcard(text("FN", l), xmlstream.Wrap(text("NUMBER", l), xml.StartElement{Name: xml.Name{Local: "TEL"}})), nil
		case number.IsName(l):
			return vcard(text("FN", l)), nil
		}
		return nil, errText(stanza.Cancel, stanza.ItemNotFound, "Not a phone number.")
	}
	var rel roster.Relation
	if c.cfg.AddressBook != nil {
		if rel, err = c.cfg.AddressBook.Relation(ctx, from, n.String()); err != nil {
			return nil, err
		}
	}
	fn := rel.Name
	if fn == "" {
		fn = n.String()
	}
	parts := []xml.TokenReader{
		text("FN", fn),
		xmlstream.Wrap(text("NUMBER", n.String()), xml.StartElement{Name: xml.Name{Local: "TEL"}}),
	}
	if len(rel.Photo) > 0 {
		typ := rel.PhotoType
		if typ == "" {
			typ = "image/jpeg"
		}
		parts = append(parts, xmlstream.Wrap(xmlstream.MultiReader(text("TYPE", typ), text("BINVAL", base64.StdEncoding.EncodeToString(rel.Photo))),
			xml.StartElement{Name: xml.Name{Local: "PHOTO"}}))
	}
	return vcard(parts...), nil
}

// statusShortCode is the status of a short code's JID.
const statusShortCode = "SMS (short code)"

// handlePresence answers served users' presence addressed to number JIDs,
// short codes and the component itself, and passes users' own presence,
// forwarded to the component, to observe (see the README's presence
// rules).
//
// Answers come from the address written to (RFC 6120 §8.1.2.1): a number
// may be written in any form that parses, +1-201-555-0123@… or
// 2015550123@… (in the default region) as well as +12015550123@…, and the
// user's server takes a subscribed from another address than the one
// subscribed to for no answer at all (RFC 6121 §3.1.6). What is said is
// the state of the canonical number. Roster items and the presence the
// gateway sends of its own accord (roster.Service) use the canonical JID.
func (c *Component) handlePresence(ctx context.Context, s *inStanza) {
	from, err := parseSender(s.From)
	if err != nil {
		return
	}
	to, err := jid.Parse(s.To)
	if err != nil || !to.Domain().Equal(c.cfg.JID.Domain()) || !c.router.Served(from) {
		return
	}
	at := to.Bare()
	if to.Localpart() == "" {
		if from.Localpart() != "" {
			c.gatewayPresence(ctx, from, at, s.Type)
		}
		return
	}
	switch s.Type {
	case "":
		return // a user's presence broadcast to a number in their roster
	case "unavailable":
		// ejabberd 23.01 (XEP-0356 in its urn:xmpp:privilege:1 form)
		// forwards under the privilege only the presence a client sends
		// itself: when a client's connection ends without one, the
		// unavailable the server then broadcasts to the user's contacts is
		// the only word that the user has gone. Servers also send it to
		// one contact the user unsubscribes from or blocks, while the user
		// stays online, so where forwarding is complete (Prosody's
		// urn:xmpp:privilege:2) it is not taken for the user's presence;
		// on ejabberd, only after the user's roster shows the number still
		// subscribed to it (see unavailableToNumber).
		if ns, _ := c.presenceGrant(from.Domainpart()); ns == nsPrivilege1 {
			c.unavailableToNumber(ctx, from, at)
		}
		return
	}
	status, avail := roster.StatusSMS, true
	n, err := number.FromJID(to, c.cfg.DefaultRegion) // as the router reads a message's address
	switch {
	case err == nil:
		if c.cfg.AddressBook != nil {
			status, avail = c.cfg.AddressBook.PresenceFor(ctx, from, n.String())
		}
	case number.IsShortCode(to.Localpart()):
		// A service's sender: its messages come from this address, so
		// clients offer to add it.
		status = statusShortCode
	default:
		// No such contact (RFC 6121 §8.5.1): a subscription request or a
		// probe gets unsubscribed (§4.3.2 for the probe, so the user's
		// server ends the subscription it thought it had), the rest
		// nothing.
		if s.Type == "subscribe" || s.Type == "probe" {
			c.sendPresence(ctx, at, from, stanza.UnsubscribedPresence, "")
		}
		return
	}
	switch s.Type {
	case "subscribe":
		c.sendPresence(ctx, at, from, stanza.SubscribedPresence, "")
		c.sendPresence(ctx, at, from, stanza.SubscribePresence, "")
		fallthrough
	case "probe":
		if avail {
			c.sendPresence(ctx, at, from, "", status)
		} else {
			c.sendPresence(ctx, at, from, stanza.UnavailablePresence, status)
		}
	case "unsubscribe":
		// The user no longer wants the number's presence: the contact's
		// side sends unavailable (RFC 6121 §3.3.3). unsubscribed would
		// cancel the other direction, the number's subscription to the
		// user, and the user never asked for that.
		c.sendPresence(ctx, at, from, stanza.UnavailablePresence, "")
	}
}

// gatewayPresence handles a served user's presence to the component's own
// address, at. Available and unavailable presence is the user's own,
// forwarded under the XEP-0356 presence privilege: observe records it.
// The rest is answered as a contact answers, so that a client that adds
// the gateway to its roster (XEP-0100 §4.1.1) sees it online: a
// subscription request is approved, a probe gets available presence, an
// unsubscribe unavailable (RFC 6121 §3.3.3), and none of them is recorded
// as the user's presence.
//
// The gateway does not ask for the user's presence back, as XEP-0100's
// registration has a gateway do (§4.1.1, so that it learns when the user
// logs in, §4.4): it learns that under the privilege, and a subscription
// would bring to observe the unavailable a server sends when the user
// cancels it (RFC 6121 §3.2.2), though the user stays online.
func (c *Component) gatewayPresence(ctx context.Context, from, at jid.JID, typ string) {
	switch typ {
	case "", "unavailable":
		c.observe(from, typ)
	case "subscribe":
		c.sendPresence(ctx, at, from, stanza.SubscribedPresence, "")
		c.sendPresence(ctx, at, from, "", "")
	case "probe":
		c.sendPresence(ctx, at, from, "", "")
	case "unsubscribe":
		c.sendPresence(ctx, at, from, stanza.UnavailablePresence, "")
	}
}

// sendPresence sends presence of type typ, with status if not "", from at
// to user's bare JID.
func (c *Component) sendPresence(ctx context.Context, at, user jid.JID, typ stanza.PresenceType, status string) {
	var inner xml.TokenReader
	if status != "" {
		inner = textElem(xml.Name{Local: "status"}, status)
	}
	p := stanza.Presence{From: at, To: user.Bare(), Type: typ}
	if err := c.send(ctx, p.Wrap(inner)); err != nil {
		c.log.Debug().Err(err).Msg("presence reply failed")
	}
}
